//! Absolute time limits per function: from `#[profile(budget = "2ms")]` and from a budgets file
//! kept apart from the baseline (so regenerating a baseline never erases them).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which per-call statistic a budget limits. Each run gives one value; the budget is checked on
/// the median of the runs' values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Statistic {
    /// Median call duration.
    P50,
    /// 99th percentile of call durations.
    #[default]
    P99,
    /// Mean call duration.
    Mean,
}

impl Statistic {
    /// `p50`, `p99` or `mean`.
    pub fn name(self) -> &'static str {
        match self {
            Statistic::P50 => "p50",
            Statistic::P99 => "p99",
            Statistic::Mean => "mean",
        }
    }

    /// Parses `p50`, `p99` or `mean` (case-insensitive).
    pub fn parse(s: &str) -> Option<Statistic> {
        match s.to_ascii_lowercase().as_str() {
            "p50" | "median" => Some(Statistic::P50),
            "p99" => Some(Statistic::P99),
            "mean" => Some(Statistic::Mean),
            _ => None,
        }
    }
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One function's limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// The function's full name.
    pub function: String,
    /// The limit, ns.
    pub limit_ns: u64,
    /// The statistic limited.
    pub statistic: Statistic,
    /// Where it comes from: `#[profile]` or `file:line`.
    pub source: String,
}

/// A set of budgets, at most one per function and statistic.
///
/// # The budgets file
///
/// One budget per line: the function's full name, the limit, and optionally the statistic it
/// limits (`p50`, `p99` or `mean`; default `p99`). `#` starts a comment.
///
/// ```text
/// # function                 limit   statistic
/// my_app::db::query          2ms     p99
/// my_app::render             500us   mean
/// my_app::parse              150µs
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budgets {
    budgets: Vec<Budget>,
}

impl Budgets {
    /// No budgets.
    pub fn new() -> Budgets {
        Budgets::default()
    }

    /// The budgets of `#[profile(budget = "...")]` of every function of this program, limiting
    /// `statistic`.
    ///
    /// # Examples
    ///
    /// ```
    /// use profiler_runtime::baseline::{Budgets, Statistic};
    /// let budgets = Budgets::from_registered_functions(Statistic::P99);
    /// # let _ = budgets;
    /// ```
    pub fn from_registered_functions(statistic: Statistic) -> Budgets {
        let mut budgets = Budgets::new();
        for info in crate::registered_functions() {
            if let Some(limit_ns) = info.budget_ns {
                budgets.insert(Budget {
                    function: info.name,
                    limit_ns,
                    statistic,
                    source: "#[profile]".to_owned(),
                });
            }
        }
        budgets
    }

    /// Adds a budget, replacing one for the same function and statistic.
    pub fn insert(&mut self, budget: Budget) {
        self.budgets
            .retain(|b| !(b.function == budget.function && b.statistic == budget.statistic));
        self.budgets.push(budget);
    }

    /// Adds every budget of `other`, which wins over `self` on the same function and statistic.
    pub fn extend(&mut self, other: Budgets) {
        for b in other.budgets {
            self.insert(b);
        }
    }

    /// The budgets, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Budget> {
        self.budgets.iter()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.budgets.is_empty()
    }

    /// Parses a budgets file's text (see [`Budgets`]); `path` names it in errors and sources.
    ///
    /// # Errors
    ///
    /// [`BudgetError::Syntax`] with the line number.
    pub fn parse(text: &str, path: &Path) -> Result<Budgets, BudgetError> {
        let mut budgets = Budgets::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let syntax = |message: String| BudgetError::Syntax {
                path: path.to_owned(),
                line: i + 1,
                message,
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            if !(2..=3).contains(&fields.len()) {
                return Err(syntax(format!(
                    "expected `FUNCTION LIMIT [p50|p99|mean]`, found {} fields",
                    fields.len()
                )));
            }
            let limit_ns = parse_duration(fields[1]).map_err(&syntax)?;
            let statistic = match fields.get(2) {
                Some(s) => Statistic::parse(s).ok_or_else(|| {
                    syntax(format!(
                        "unknown statistic `{s}`; expected `p50`, `p99` or `mean`"
                    ))
                })?,
                None => Statistic::default(),
            };
            budgets.insert(Budget {
                function: fields[0].to_owned(),
                limit_ns,
                statistic,
                source: format!("{}:{}", path.display(), i + 1),
            });
        }
        Ok(budgets)
    }

    /// Reads a budgets file.
    ///
    /// # Errors
    ///
    /// [`BudgetError::Io`] or [`BudgetError::Syntax`], naming the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Budgets, BudgetError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| BudgetError::Io {
            path: path.to_owned(),
            source,
        })?;
        Budgets::parse(&text, path)
    }
}

/// Parses a duration such as `2ms`, `150us`, `150µs`, `1.5s` or `800ns` into nanoseconds.
///
/// # Errors
///
/// A message saying what is accepted.
///
/// # Examples
///
/// ```
/// use profiler_runtime::baseline::parse_duration;
/// assert_eq!(parse_duration("2ms"), Ok(2_000_000));
/// assert_eq!(parse_duration("1.5us"), Ok(1_500));
/// ```
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let scale = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => {
            return Err(format!(
                "invalid duration `{s}`; expected a number and a unit: ns, us, ms or s (e.g. `2ms`)"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration `{s}`; expected a number before the unit"))?;
    let ns = value * scale;
    if !ns.is_finite() || ns < 1.0 || ns > u64::MAX as f64 {
        return Err(format!("duration `{s}` is out of range"));
    }
    Ok(ns.round() as u64)
}

/// Why a budgets file could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum BudgetError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line does not parse.
    Syntax {
        /// The file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl fmt::Display for BudgetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            BudgetError::Syntax {
                path,
                line,
                message,
            } => write!(f, "{}:{line}: {message}", path.display()),
        }
    }
}

impl std::error::Error for BudgetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BudgetError::Io { source, .. } => Some(source),
            BudgetError::Syntax { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("800ns"), Ok(800));
        assert_eq!(parse_duration("150µs"), Ok(150_000));
        assert_eq!(parse_duration("2ms"), Ok(2_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("2 hours").is_err());
        assert!(parse_duration("0ms").is_err());
    }

    #[test]
    fn budgets_file_with_comments_and_defaults() {
        let text = "# header\napp::query 2ms p50\n\napp::parse 150us # trailing\n";
        let b = Budgets::parse(text, Path::new("budgets.txt")).unwrap();
        let all: Vec<&Budget> = b.iter().collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].function, "app::query");
        assert_eq!(all[0].limit_ns, 2_000_000);
        assert_eq!(all[0].statistic, Statistic::P50);
        assert_eq!(all[1].statistic, Statistic::P99);
        assert_eq!(all[1].source, "budgets.txt:4");
    }

    #[test]
    fn budgets_file_errors_name_the_line() {
        let err = Budgets::parse("a 2ms\nb 2 parsecs\n", Path::new("b.txt")).unwrap_err();
        assert!(err.to_string().starts_with("b.txt:2: "), "{err}");
        let err = Budgets::parse("a 2ms p95\n", Path::new("b.txt")).unwrap_err();
        assert!(err.to_string().contains("unknown statistic `p95`"), "{err}");
    }

    #[test]
    fn file_budget_replaces_attribute_budget() {
        let mut b = Budgets::new();
        b.insert(Budget {
            function: "f".into(),
            limit_ns: 1,
            statistic: Statistic::P99,
            source: "#[profile]".into(),
        });
        b.extend(Budgets::parse("f 5ms\n", Path::new("x")).unwrap());
        assert_eq!(b.iter().count(), 1);
        assert_eq!(b.iter().next().unwrap().limit_ns, 5_000_000);
    }
}
