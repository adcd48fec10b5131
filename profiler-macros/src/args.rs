//! The arguments of `#[profile(...)]`: `name = "..."`, `skip`, `budget = "..."`, `crate = path`.
//!
//! Parsing never stops at the first mistake: every malformed or unknown argument gets its own
//! error on its own tokens, and they are reported together.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Ident, LitStr, Meta, Path, Token};

/// What every "expected" message lists.
const EXPECTED: &str = "expected `name`, `skip`, `budget` or `crate`";

/// The argument names, for suggestions.
const ARGUMENTS: [&str; 4] = ["name", "skip", "budget", "crate"];

/// The parsed arguments of one `#[profile(...)]`. Each field keeps the tokens it came from, so
/// later checks (say, `skip` outside an `impl` block) can point at them.
#[derive(Default)]
pub(crate) struct Args {
    /// `name = "..."`: the recorded name, verbatim.
    pub(crate) name: Option<LitStr>,
    /// `skip`: leave this method of an instrumented block out.
    pub(crate) skip: Option<Ident>,
    /// `budget = "2ms"`: the budget in nanoseconds and the literal it came from.
    pub(crate) budget: Option<(u64, LitStr)>,
    /// `crate = path`: where the runtime is, for crates that re-export it.
    pub(crate) krate: Option<Path>,
}

impl Args {
    /// Parses the tokens between the parentheses. Returns what could be parsed, and the combined
    /// error of everything that could not.
    pub(crate) fn parse(tokens: TokenStream) -> (Args, Option<syn::Error>) {
        let mut args = Args::default();
        let mut errors = Errors::default();
        let parser = |input: ParseStream| {
            while !input.is_empty() {
                if let Err(e) = args.parse_one(input) {
                    errors.push(e);
                    skip_to_comma(input);
                }
                if input.is_empty() {
                    break;
                }
                if input.parse::<Token![,]>().is_err() {
                    errors.push(syn::Error::new(
                        input.span(),
                        "expected `,` between arguments",
                    ));
                    skip_to_comma(input);
                    // The comma itself, if the skip stopped at one.
                    let _ = input.parse::<Option<Token![,]>>();
                }
            }
            Ok(())
        };
        if let Err(e) = parser.parse2(tokens) {
            errors.push(e);
        }
        (args, errors.finish())
    }

    /// The arguments of an attribute found on a method inside an instrumented block:
    /// `#[profile]` or `#[profile(...)]`.
    pub(crate) fn from_attribute(attr: &Attribute) -> (Args, Option<syn::Error>) {
        match &attr.meta {
            Meta::Path(_) => (Args::default(), None),
            Meta::List(list) => Args::parse(list.tokens.clone()),
            Meta::NameValue(nv) => (
                Args::default(),
                Some(syn::Error::new_spanned(
                    &nv.value,
                    "expected `#[profile]` or `#[profile(...)]`",
                )),
            ),
        }
    }

    /// Whether only `skip` (and perhaps `crate`) was given.
    pub(crate) fn is_plain_except_skip(&self) -> bool {
        self.name.is_none() && self.budget.is_none()
    }

    fn parse_one(&mut self, input: ParseStream) -> syn::Result<()> {
        if !input.peek(Ident::peek_any) {
            if input.peek(LitStr) {
                // `#[profile("x")]`: most likely meant as the name.
                let literal: LitStr = input.parse()?;
                return Err(syn::Error::new(
                    literal.span(),
                    format!(
                        "expected an argument, found a string; to name the function write \
                         `name = {}`",
                        quote::quote!(#literal)
                    ),
                ));
            }
            let span = input
                .cursor()
                .token_tree()
                .map_or_else(Span::call_site, |(tt, _)| tt.span());
            return Err(syn::Error::new(span, format!("{EXPECTED} here")));
        }
        // `crate` is a keyword, hence `parse_any`.
        let key = Ident::parse_any(input)?;
        match key.to_string().as_str() {
            "name" => {
                let value = string_value(input, &key, "name = \"my_crate::work\"")?;
                if value.value().is_empty() {
                    return Err(syn::Error::new(value.span(), "`name` must not be empty"));
                }
                set_once(&mut self.name, value, &key)
            }
            "skip" => {
                if input.peek(Token![=]) || input.peek(syn::token::Paren) {
                    return Err(syn::Error::new(key.span(), "`skip` takes no value"));
                }
                set_once(&mut self.skip, key.clone(), &key)
            }
            "budget" => {
                let value = string_value(input, &key, "budget = \"2ms\"")?;
                let ns = parse_duration(&value.value()).map_err(|msg| {
                    syn::Error::new(
                        value.span(),
                        format!("invalid budget {:?}: {msg}", value.value()),
                    )
                })?;
                set_once(&mut self.budget, (ns, value), &key)
            }
            "crate" => {
                input.parse::<Token![=]>().map_err(|_| {
                    syn::Error::new(
                        key.span(),
                        "expected `crate = path`, such as `crate = ::my_facade::profiler`",
                    )
                })?;
                if input.peek(LitStr) {
                    let literal: LitStr = input.parse()?;
                    let path = literal.value();
                    let hint = if syn::parse_str::<Path>(&path).is_ok() {
                        format!("write `crate = {path}`")
                    } else {
                        "such as `crate = ::my_facade::profiler`".to_owned()
                    };
                    return Err(syn::Error::new(
                        literal.span(),
                        format!(
                            "`crate` takes a path to the runtime, not a string: {hint}, \
                             without quotes"
                        ),
                    ));
                }
                let path = input.call(Path::parse_mod_style).map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "expected a path to the runtime, such as `crate = ::my_facade::profiler`",
                    )
                })?;
                set_once(&mut self.krate, path, &key)
            }
            other => Err(syn::Error::new(
                key.span(),
                match closest(other) {
                    Some(known) => format!("unknown argument `{other}`; did you mean `{known}`?"),
                    None => format!("unknown argument `{other}`; {EXPECTED}"),
                },
            )),
        }
    }
}

/// The known argument closest to a misspelt one, if it is close enough to be a typo: at most
/// two edits, and fewer than half its letters (`nmae` -> `name`, `budjet` -> `budget`).
fn closest(unknown: &str) -> Option<&'static str> {
    let unknown = unknown.to_ascii_lowercase();
    ARGUMENTS
        .iter()
        .map(|&known| (edit_distance(&unknown, known), known))
        .filter(|&(distance, known)| distance <= 2 && distance * 2 < known.len())
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, known)| known)
}

/// Levenshtein distance, with a swap of two neighbours counted as one edit (`nmae`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: the distance between a[..i] and b[..j].
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

/// Parses `= "literal"` after `key`.
fn string_value(input: ParseStream, key: &Ident, example: &str) -> syn::Result<LitStr> {
    if input.parse::<Token![=]>().is_err() {
        return Err(syn::Error::new(key.span(), format!("expected `{example}`")));
    }
    input
        .parse::<LitStr>()
        .map_err(|e| syn::Error::new(e.span(), format!("expected a string literal: `{example}`")))
}

fn set_once<T>(slot: &mut Option<T>, value: T, key: &Ident) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            key.span(),
            format!("duplicate argument `{key}`"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// Skips the rest of a malformed argument, up to the next top-level comma.
fn skip_to_comma(input: ParseStream) {
    while !input.is_empty() && !input.peek(Token![,]) {
        if input.parse::<TokenTree>().is_err() {
            break;
        }
    }
}

/// Collects errors into one, in order.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn extend(&mut self, error: Option<syn::Error>) {
        if let Some(e) = error {
            self.push(e);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub(crate) fn finish(self) -> Option<syn::Error> {
        self.0
    }
}

/// Parses a duration such as `100ns`, `500us` (or `500µs`), `2ms` or `1.5s` into nanoseconds.
pub(crate) fn parse_duration(text: &str) -> Result<u64, String> {
    const HELP: &str =
        "expected a number and a unit, such as \"100ns\", \"500us\", \"2ms\" or \"1.5s\"";
    // `2ms`, `2 ms` and ` 2ms ` alike: spaces around the number and the unit are allowed.
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(|| format!("no unit; {HELP}"))?;
    let (number, unit) = text.split_at(split);
    let unit = unit.trim_start();
    let scale: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        _ => return Err(format!("unknown unit {unit:?}; {HELP}")),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || (number.contains('.') && fraction.is_empty()) || fraction.contains('.') {
        return Err(HELP.to_owned());
    }
    let too_long = || "too long; the most is u64::MAX nanoseconds".to_owned();
    let whole: u128 = whole.parse().map_err(|_| too_long())?;
    let mut ns = whole.checked_mul(scale).ok_or_else(too_long)?;
    if !fraction.is_empty() {
        // Digits past nanosecond precision must be zeros.
        let digits = u32::try_from(fraction.len()).map_err(|_| too_long())?;
        let divisor = 10u128.checked_pow(digits).ok_or_else(too_long)?;
        let fraction: u128 = fraction.parse().map_err(|_| too_long())?;
        let scaled = fraction.checked_mul(scale).ok_or_else(too_long)?;
        if scaled % divisor != 0 {
            return Err("not a whole number of nanoseconds".to_owned());
        }
        ns = ns.checked_add(scaled / divisor).ok_or_else(too_long)?;
    }
    if ns == 0 {
        return Err("a budget must be more than zero".to_owned());
    }
    u64::try_from(ns).map_err(|_| too_long())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn errors_of(tokens: TokenStream) -> Vec<String> {
        let (_, error) = Args::parse(tokens);
        error
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("100ns"), Ok(100));
        assert_eq!(parse_duration("500us"), Ok(500_000));
        assert_eq!(parse_duration("500µs"), Ok(500_000));
        assert_eq!(parse_duration("2ms"), Ok(2_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("0.25ms"), Ok(250_000));
        assert_eq!(parse_duration("1.000000001s"), Ok(1_000_000_001));
        assert_eq!(parse_duration("2 ms"), Ok(2_000_000));
        assert_eq!(parse_duration(" 1.5  s "), Ok(1_500_000_000));
        for bad in [
            "",
            "2",
            "ms",
            "2 m s",
            "2 ms x",
            "2min",
            "1.5ns",
            "0s",
            "1.s",
            ".5s",
            "1.2.3s",
            "99999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn all_arguments() {
        let (args, error) =
            Args::parse(quote!(name = "x::y", budget = "2ms", crate = ::facade::rt));
        assert!(error.is_none());
        assert_eq!(args.name.unwrap().value(), "x::y");
        assert_eq!(args.budget.unwrap().0, 2_000_000);
        let krate = args.krate.unwrap();
        assert_eq!(quote!(#krate).to_string(), ":: facade :: rt");
        let (args, error) = Args::parse(quote!(skip,));
        assert!(error.is_none() && args.skip.is_some() && args.is_plain_except_skip());
    }

    #[test]
    fn errors_are_combined() {
        assert_eq!(
            errors_of(quote!(nmae = "x", budget = "2min", skip = true, name)),
            [
                "unknown argument `nmae`; did you mean `name`?",
                "invalid budget \"2min\": unknown unit \"min\"; expected a number and a unit, \
                 such as \"100ns\", \"500us\", \"2ms\" or \"1.5s\"",
                "`skip` takes no value",
                "expected `name = \"my_crate::work\"`",
            ]
        );
        assert_eq!(errors_of(quote!(skip, skip)), ["duplicate argument `skip`"]);
        assert_eq!(
            errors_of(quote!(name = 3)),
            ["expected a string literal: `name = \"my_crate::work\"`"]
        );
        assert_eq!(
            errors_of(quote!("x")),
            ["expected an argument, found a string; to name the function write `name = \"x\"`"]
        );
        assert_eq!(
            errors_of(quote!(3)),
            ["expected `name`, `skip`, `budget` or `crate` here"]
        );
        assert_eq!(
            errors_of(quote!(
                verbose = true,
                budjet = "1ms",
                Name = "x",
                krate = a
            )),
            [
                "unknown argument `verbose`; expected `name`, `skip`, `budget` or `crate`",
                "unknown argument `budjet`; did you mean `budget`?",
                "unknown argument `Name`; did you mean `name`?",
                "unknown argument `krate`; did you mean `crate`?",
            ]
        );
        assert_eq!(
            errors_of(quote!(crate = "my_facade::profiler")),
            ["`crate` takes a path to the runtime, not a string: write \
              `crate = my_facade::profiler`, without quotes"]
        );
        assert_eq!(
            errors_of(quote!(crate = "not a path")),
            [
                "`crate` takes a path to the runtime, not a string: such as \
              `crate = ::my_facade::profiler`, without quotes"
            ]
        );
        assert_eq!(
            errors_of(quote!(skip name = "a")),
            ["expected `,` between arguments"]
        );
        assert_eq!(errors_of(quote!(name = "")), ["`name` must not be empty"]);
    }
}
