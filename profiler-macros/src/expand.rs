//! The rewrite behind `#[profile]`: sync and async bodies, `impl` and `trait` blocks, and the
//! error fallback.
//!
//! A sync function keeps its signature, attributes and visibility; only its block changes:
//!
//! ```text
//! Input:  #[inline] pub fn get(&self, key: u32) -> Option<&V> { BODY }
//! Output: #[inline] pub fn get(&self, key: u32) -> Option<&V> {
//!             let __profiler_guard = {
//!                 static __PROFILER_SITE: FunctionInfo = FunctionInfo::new(NAME, module_path!(), file!(), line!(), ..);
//!                 inventory::submit! { Registration(&__PROFILER_SITE) }
//!                 enter(&__PROFILER_SITE)
//!             };
//!             { BODY }
//!         }
//! ```
//!
//! An `async fn` stays `async`; its body moves into a future that records every poll:
//!
//! ```text
//! Input:  async fn load(id: u64) -> Result<Row, Error> { BODY }
//! Output: async fn load(id: u64) -> Result<Row, Error> {
//!             instrument::<Result<Row, Error>, _>(
//!                 { static __PROFILER_SITE ..; submit!; &__PROFILER_SITE },
//!                 async move { let __profiler_output: Result<Row, Error> = { BODY }; __profiler_output },
//!             ).await
//!         }
//! ```
//!
//! The typed `let` pins the body's output to the declared type (with `impl Trait` erased to `_`),
//! so `?` still infers its error conversion and a type error points at the user's expression.
//! Generated names are resolved at `Span::mixed_site()` and the static lives in its own block,
//! so the user's code can neither see nor shadow them.

use proc_macro2::{Delimiter, Literal, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::visit_mut::VisitMut;
use syn::{
    Attribute, Block, Ident, ImplItem, LitStr, Path, ReturnType, Signature, TraitItem, Type,
};

use crate::args::{Args, Errors};
use crate::item::{self, Function, Rejected, Target};

/// Expands `#[profile(args)] item`. With `enabled` false the item comes back as written (an
/// `impl` or `trait` block loses only the `#[profile(...)]` attributes of its methods, which the
/// block's attribute consumes), after the same checks, so enabling never reveals new errors.
pub(crate) fn expand(args: TokenStream, item: TokenStream, enabled: bool) -> TokenStream {
    let (args, args_error) = Args::parse(args);
    let mut errors = Errors::default();
    errors.extend(args_error);
    let target = match item::parse(item.clone()) {
        Ok(target) => target,
        Err(Rejected::Unparsable) => return fallback(errors, item),
        Err(Rejected::Misplaced(error)) => {
            errors.push(error);
            return fallback(errors, item);
        }
    };
    match target {
        Target::Function(function) => expand_function(function, &args, errors, item, enabled),
        Target::Impl(block) => expand_impl(block, &args, errors, item, enabled),
        Target::Trait(block) => expand_trait(block, &args, errors, item, enabled),
    }
}

/// The `compile_error!`s (if any) followed by the item.
fn fallback(errors: Errors, item: TokenStream) -> TokenStream {
    match errors.finish() {
        Some(error) => {
            let error = error.to_compile_error();
            quote!(#error #item)
        }
        None => item,
    }
}

/// Who owns a function, which decides its recorded name.
enum Owner<'a> {
    /// A free function, or a method whose block is out of sight.
    Free,
    /// A method of `impl Type` or `impl Trait for Type`.
    Impl {
        self_ty: &'a Type,
        trait_path: Option<&'a Path>,
    },
    /// A default method of `trait Name`.
    Trait(&'a Ident),
}

/// Everything the generated code of one function needs.
struct Site<'a> {
    owner: Owner<'a>,
    name: Option<&'a LitStr>,
    budget_ns: Option<u64>,
    runtime: Path,
}

fn default_runtime() -> Path {
    syn::parse_quote!(::profiler_runtime)
}

fn const_error(sig: &Signature) -> Option<syn::Error> {
    sig.constness.map(|constness| {
        syn::Error::new(
            constness.span,
            "`#[profile]` cannot instrument a `const fn`: it records at run time; remove `const` or the attribute",
        )
    })
}

fn expand_function(
    function: Function,
    args: &Args,
    mut errors: Errors,
    item: TokenStream,
    enabled: bool,
) -> TokenStream {
    let sig = match &function {
        Function::Item(f) => &f.sig,
        Function::TraitMethod(m) => &m.sig,
    };
    if let Some(skip) = &args.skip {
        errors.push(syn::Error::new(
            skip.span(),
            "`skip` goes on a method inside a `#[profile]` impl or trait block",
        ));
    }
    errors.extend(const_error(sig));
    if !errors.is_empty() || !enabled {
        return fallback(errors, item);
    }
    let site = Site {
        owner: Owner::Free,
        name: args.name.as_ref(),
        budget_ns: args.budget.as_ref().map(|b| b.0),
        runtime: args.krate.clone().unwrap_or_else(default_runtime),
    };
    match function {
        Function::Item(mut f) => {
            *f.block = instrument(&f.sig, &f.block, &site);
            f.into_token_stream()
        }
        Function::TraitMethod(mut m) => {
            if let Some(block) = &m.default {
                m.default = Some(instrument(&m.sig, block, &site));
            }
            m.into_token_stream()
        }
    }
}

/// What the block's attribute and a method's own `#[profile(...)]` say about one method.
struct MethodPlan {
    name: Option<LitStr>,
    budget_ns: Option<u64>,
    runtime: Path,
}

/// Errors for arguments that make no sense on a whole block.
fn check_block_args(args: &Args, errors: &mut Errors) {
    if let Some(name) = &args.name {
        errors.push(syn::Error::new(
            name.span(),
            "`name` names one function; put `#[profile(name = \"...\")]` on a method of the block",
        ));
    }
    if let Some(skip) = &args.skip {
        errors.push(syn::Error::new(
            skip.span(),
            "`skip` goes on a method inside a `#[profile]` impl or trait block, not on the block",
        ));
    }
}

/// Removes the `#[profile(...)]` attributes of a method inside a block and merges their
/// arguments with the block's. `None` when the method is skipped.
fn plan_method(
    attrs: &mut Vec<Attribute>,
    sig: &Signature,
    block_args: &Args,
    errors: &mut Errors,
    stripped: &mut bool,
) -> Option<MethodPlan> {
    let mut own: Option<Args> = None;
    let mut kept = Vec::with_capacity(attrs.len());
    for attr in attrs.drain(..) {
        if !item::is_profile_attribute(&attr) {
            kept.push(attr);
            continue;
        }
        *stripped = true;
        let (args, error) = Args::from_attribute(&attr);
        errors.extend(error);
        if own.is_some() {
            errors.push(syn::Error::new_spanned(
                attr.path(),
                "duplicate `#[profile]` on this method",
            ));
        } else {
            own = Some(args);
        }
    }
    *attrs = kept;
    let own = own.unwrap_or_default();
    if let Some(skip) = &own.skip {
        if !own.is_plain_except_skip() {
            errors.push(syn::Error::new(
                skip.span(),
                "`skip` takes no other argument",
            ));
        }
        return None;
    }
    if sig.constness.is_some() {
        // A block's attribute instruments what it can: a `const fn` is left as it is.
        if own.name.is_some() || own.budget.is_some() {
            errors.extend(const_error(sig));
        }
        return None;
    }
    Some(MethodPlan {
        name: own.name,
        budget_ns: own
            .budget
            .or_else(|| block_args.budget.clone())
            .map(|b| b.0),
        runtime: own
            .krate
            .or_else(|| block_args.krate.clone())
            .unwrap_or_else(default_runtime),
    })
}

fn expand_impl(
    mut block: syn::ItemImpl,
    args: &Args,
    mut errors: Errors,
    item: TokenStream,
    enabled: bool,
) -> TokenStream {
    check_block_args(args, &mut errors);
    let mut stripped = false;
    let plans: Vec<Option<MethodPlan>> = block
        .items
        .iter_mut()
        .map(|member| match member {
            ImplItem::Fn(method) => plan_method(
                &mut method.attrs,
                &method.sig,
                args,
                &mut errors,
                &mut stripped,
            ),
            _ => None,
        })
        .collect();
    if !errors.is_empty() || !enabled {
        let item = if stripped {
            block.into_token_stream()
        } else {
            item
        };
        return fallback(errors, item);
    }
    let self_ty = (*block.self_ty).clone();
    let trait_path = block.trait_.as_ref().map(|(_, path, _)| path.clone());
    for (member, plan) in block.items.iter_mut().zip(plans) {
        if let (ImplItem::Fn(method), Some(plan)) = (member, plan) {
            let site = Site {
                owner: Owner::Impl {
                    self_ty: &self_ty,
                    trait_path: trait_path.as_ref(),
                },
                name: plan.name.as_ref(),
                budget_ns: plan.budget_ns,
                runtime: plan.runtime,
            };
            method.block = instrument(&method.sig, &method.block, &site);
        }
    }
    block.into_token_stream()
}

fn expand_trait(
    mut block: syn::ItemTrait,
    args: &Args,
    mut errors: Errors,
    item: TokenStream,
    enabled: bool,
) -> TokenStream {
    check_block_args(args, &mut errors);
    let mut stripped = false;
    let plans: Vec<Option<MethodPlan>> = block
        .items
        .iter_mut()
        .map(|member| match member {
            TraitItem::Fn(method) => {
                let had_attribute = method.attrs.iter().any(item::is_profile_attribute);
                let plan = plan_method(&mut method.attrs, &method.sig, args, &mut errors, &mut stripped);
                if method.default.is_none() {
                    if had_attribute && plan.is_some() {
                        errors.push(syn::Error::new_spanned(
                            &method.sig,
                            "this method has no body to instrument; put `#[profile]` on its implementations",
                        ));
                    }
                    return None;
                }
                plan
            }
            _ => None,
        })
        .collect();
    if !errors.is_empty() || !enabled {
        let item = if stripped {
            block.into_token_stream()
        } else {
            item
        };
        return fallback(errors, item);
    }
    let trait_ident = block.ident.clone();
    for (member, plan) in block.items.iter_mut().zip(plans) {
        if let (TraitItem::Fn(method), Some(plan)) = (member, plan) {
            if let Some(body) = &method.default {
                let site = Site {
                    owner: Owner::Trait(&trait_ident),
                    name: plan.name.as_ref(),
                    budget_ns: plan.budget_ns,
                    runtime: plan.runtime,
                };
                method.default = Some(instrument(&method.sig, body, &site));
            }
        }
    }
    block.into_token_stream()
}

/// The instrumented block of a function.
fn instrument(sig: &Signature, body: &Block, site: &Site<'_>) -> Block {
    let span = Span::mixed_site();
    let rt = &site.runtime;
    let site_ident = Ident::new("__PROFILER_SITE", span);
    // A lone method cannot see its `impl` block: its receiver type is resolved on the first call.
    let self_type = matches!(site.owner, Owner::Free) && site.name.is_none() && mentions_self(sig);
    let method_name = sig.ident.unraw().to_string();
    let name = match site.name {
        Some(name) => name.to_token_stream(),
        None => name_expr(&site.owner, &method_name),
    };
    let kind = if sig.asyncness.is_some() {
        quote_spanned!(span=> AsyncFunction)
    } else {
        quote_spanned!(span=> Function)
    };
    let with_method = self_type.then(|| quote_spanned!(span=> .with_method(#method_name)));
    let with_budget = site.budget_ns.map(|ns| {
        let ns = Literal::u64_suffixed(ns);
        quote_spanned!(span=> .with_budget_ns(#ns))
    });
    // Spanned on the function's name, so that `line!()` gives the line of the signature.
    let line = quote_spanned!(sig.ident.span()=> ::core::line!());
    let static_site = quote_spanned! {span=>
        static #site_ident: #rt::__private::FunctionInfo = #rt::__private::FunctionInfo::new(
            #name,
            ::core::module_path!(),
            ::core::file!(),
            #line,
            #rt::__private::FunctionKind::#kind,
        ) #with_method #with_budget;
        #rt::__private::inventory::submit! {
            #rt::__private::Registration(&#site_ident)
        }
    };
    let type_name = quote_spanned!(span=> ::core::any::type_name::<Self>);
    let tokens = if sig.asyncness.is_some() {
        let output = output_type(&sig.output);
        let output_ident = Ident::new("__profiler_output", span);
        let future = quote_spanned! {body.brace_token.span.join()=>
            async move {
                let #output_ident: #output = #body;
                #output_ident
            }
        };
        let call = if self_type {
            quote_spanned!(span=> #rt::__private::instrument_method::<#output, _>(
                { #static_site &#site_ident }, #type_name, #future))
        } else {
            quote_spanned!(span=> #rt::__private::instrument::<#output, _>(
                { #static_site &#site_ident }, #future))
        };
        quote_spanned!(span=> #call.await)
    } else {
        let guard = Ident::new("__profiler_guard", span);
        let enter = if self_type {
            quote_spanned!(span=> #rt::__private::enter_method(&#site_ident, #type_name))
        } else {
            quote_spanned!(span=> #rt::__private::enter(&#site_ident))
        };
        quote_spanned! {span=>
            let #guard = { #static_site #enter };
            #body
        }
    };
    Block {
        brace_token: body.brace_token,
        stmts: vec![syn::Stmt::Expr(syn::Expr::Verbatim(tokens), None)],
    }
}

/// The declared output type with `impl Trait` erased to `_` (and `()` when there is none).
fn output_type(output: &ReturnType) -> TokenStream {
    struct EraseImplTrait;
    impl VisitMut for EraseImplTrait {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::ImplTrait(impl_trait) = ty {
                let span = impl_trait.impl_token.span;
                *ty = Type::Infer(syn::TypeInfer {
                    underscore_token: syn::Token![_](span),
                });
            } else {
                syn::visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    match output {
        ReturnType::Default => quote_spanned!(Span::mixed_site()=> ()),
        ReturnType::Type(_, ty) => {
            let mut ty = (**ty).clone();
            EraseImplTrait.visit_type_mut(&mut ty);
            ty.into_token_stream()
        }
    }
}

/// Whether a signature has a `self` receiver or mentions `Self`: then it is a method or an
/// associated function, whatever the attribute can see.
fn mentions_self(sig: &Signature) -> bool {
    fn walk(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|tree| match tree {
            TokenTree::Ident(ident) => ident == "Self",
            TokenTree::Group(group) => walk(group.stream()),
            _ => false,
        })
    }
    sig.receiver().is_some()
        || walk(sig.inputs.to_token_stream())
        || walk(sig.output.to_token_stream())
        || walk(sig.generics.to_token_stream())
}

/// One piece of a `concat!`.
enum Piece {
    ModulePath,
    Text(String),
}

/// The recorded name as a `concat!` of `module_path!()` and literal text: computed by the
/// compiler, nothing at run time.
fn name_expr(owner: &Owner<'_>, method: &str) -> TokenStream {
    let mut pieces = Vec::new();
    match owner {
        Owner::Free => pieces.push(Piece::ModulePath),
        Owner::Impl {
            self_ty,
            trait_path,
        } => {
            if trait_path.is_some() {
                pieces.push(Piece::Text("<".to_owned()));
            }
            if is_local_type(self_ty) {
                pieces.push(Piece::ModulePath);
                pieces.push(Piece::Text("::".to_owned()));
            }
            pieces.push(Piece::Text(render(self_ty.to_token_stream())));
            if let Some(path) = trait_path {
                pieces.push(Piece::Text(format!(
                    " as {}>",
                    render(path.to_token_stream())
                )));
            }
        }
        Owner::Trait(ident) => {
            pieces.push(Piece::ModulePath);
            pieces.push(Piece::Text(format!("::{}", ident.unraw())));
        }
    }
    pieces.push(Piece::Text(format!("::{method}")));
    let span = Span::mixed_site();
    let mut parts: Vec<TokenStream> = Vec::new();
    let mut text = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => text.push_str(&t),
            Piece::ModulePath => {
                if !text.is_empty() {
                    parts.push(LitStr::new(&std::mem::take(&mut text), span).into_token_stream());
                }
                parts.push(quote_spanned!(span=> ::core::module_path!()));
            }
        }
    }
    if !text.is_empty() {
        parts.push(LitStr::new(&text, span).into_token_stream());
    }
    quote_spanned!(span=> ::core::concat!(#(#parts),*))
}

/// Whether a self type is a plain name of the current module (`Pool`, `Pool<T>`), which gets the
/// module path in front. Other types (`&Pool`, `Vec<u8>`, `crate::db::Pool`) are kept as written.
fn is_local_type(ty: &Type) -> bool {
    const PRELUDE: [&str; 6] = ["Self", "String", "Vec", "Box", "Option", "Result"];
    let Type::Path(path) = ty else { return false };
    if path.qself.is_some() || path.path.leading_colon.is_some() || path.path.segments.len() != 1 {
        return false;
    }
    let ident = path.path.segments[0].ident.to_string();
    ident.starts_with(|c: char| c.is_ascii_uppercase()) && !PRELUDE.contains(&ident.as_str())
}

/// What the last token written was, for spacing.
#[derive(Clone, Copy, PartialEq)]
enum Last {
    Start,
    Word,
    /// A keyword or a lifetime: a group after it is spaced (`mut [u8]`, `'a (..)`).
    Keyword,
    Tight,
    Spaced,
}

/// Renders type or path tokens the way rustfmt writes them: `Pool<T>`, `&'a mut [u8; 4]`,
/// `Box<dyn Fn(u8) -> T + Send>`, `Iterator<Item = u8>`.
fn render(tokens: TokenStream) -> String {
    fn write(out: &mut String, tokens: TokenStream, last: &mut Last, mut previous: Option<char>) {
        for tree in tokens {
            match tree {
                TokenTree::Ident(ident) => {
                    if matches!(*last, Last::Word | Last::Keyword | Last::Spaced) {
                        out.push(' ');
                    }
                    let text = ident.to_string();
                    out.push_str(&text);
                    let keyword = matches!(
                        text.as_str(),
                        "mut" | "dyn" | "impl" | "const" | "as" | "for" | "unsafe"
                    );
                    *last = if keyword || previous == Some('\'') {
                        Last::Keyword
                    } else {
                        Last::Word
                    };
                    previous = None;
                }
                TokenTree::Literal(literal) => {
                    if matches!(*last, Last::Word | Last::Keyword | Last::Spaced) {
                        out.push(' ');
                    }
                    out.push_str(&literal.to_string());
                    *last = Last::Word;
                    previous = None;
                }
                TokenTree::Punct(punct) => {
                    let c = punct.as_char();
                    let arrow = previous == Some('-') && c == '>';
                    let spaced_before = match c {
                        '+' | '=' => true,
                        '-' => punct.spacing() == proc_macro2::Spacing::Joint,
                        '\'' => matches!(*last, Last::Word | Last::Keyword | Last::Spaced),
                        ',' | ';' | '>' => false,
                        _ => *last == Last::Spaced,
                    };
                    if spaced_before && *last != Last::Start {
                        out.push(' ');
                    }
                    out.push(c);
                    *last = if arrow || matches!(c, '+' | '=' | ',' | ';') {
                        Last::Spaced
                    } else {
                        Last::Tight
                    };
                    previous = Some(c);
                }
                TokenTree::Group(group) => {
                    let (open, close) = match group.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::Brace => ("{", "}"),
                        Delimiter::None => ("", ""),
                    };
                    if matches!(*last, Last::Spaced | Last::Keyword) {
                        out.push(' ');
                    }
                    out.push_str(open);
                    let mut inner = if open.is_empty() { *last } else { Last::Start };
                    write(out, group.stream(), &mut inner, None);
                    out.push_str(close);
                    *last = if close.is_empty() { inner } else { Last::Word };
                    previous = None;
                }
            }
        }
    }
    let mut out = String::new();
    write(&mut out, tokens, &mut Last::Start, None);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pretty(tokens: &TokenStream) -> String {
        let file: syn::File = syn::parse2(tokens.clone()).expect("the expansion parses as a file");
        prettyplease::unparse(&file)
    }

    fn expand_str(args: TokenStream, item: TokenStream, enabled: bool) -> String {
        expand(args, item, enabled).to_string()
    }

    #[test]
    fn off_returns_the_item_token_for_token() {
        let items = [
            quote! {
                /// Docs.
                #[inline]
                pub(crate) unsafe extern "C" fn f<'a, T: Clone>(x: &'a T) -> Result<T, ()> where T: Send {
                    #![allow(unused)]
                    if true { return Err(()); }
                    Ok(x.clone())
                }
            },
            quote! { async fn g(self: Box<Self>) -> impl Sized { 1 } },
            quote! { impl<T> Pool<T> { fn get(&self) -> u8 { 1 } const fn k() {} type X = u8; } },
            quote! { trait Source { fn get(&self) -> u8 { 0 } fn put(&mut self); } },
        ];
        for item in items {
            let out = expand(TokenStream::new(), item.clone(), false);
            assert_eq!(out.to_string(), item.to_string());
            // Same tokens, same spans: compare the trees, not only the text.
            let before: Vec<String> = item.into_iter().map(|t| format!("{t:?}")).collect();
            let after: Vec<String> = out.into_iter().map(|t| format!("{t:?}")).collect();
            assert_eq!(before, after);
        }
        let item = quote! { fn f() {} };
        assert_eq!(
            expand_str(
                quote!(name = "x", budget = "1ms", crate = ::a::b),
                item.clone(),
                false
            ),
            item.to_string()
        );
    }

    #[test]
    fn off_still_reports_errors() {
        for enabled in [false, true] {
            let out = expand_str(quote!(nmae = "x"), quote! { fn f() {} }, enabled);
            assert!(out.starts_with(":: core :: compile_error !"), "{out}");
            assert!(out.contains("unknown argument `nmae`"), "{out}");
            assert!(
                out.ends_with("fn f () { }"),
                "the item follows the error unchanged: {out}"
            );
            let out = expand_str(TokenStream::new(), quote! { const fn f() {} }, enabled);
            assert!(out.contains("cannot instrument a `const fn`"), "{out}");
            let out = expand_str(quote!(skip), quote! { fn f() {} }, enabled);
            assert!(out.contains("`skip` goes on a method"), "{out}");
            let out = expand_str(TokenStream::new(), quote! { struct S; }, enabled);
            assert!(out.contains("cannot be applied to a struct"), "{out}");
        }
    }

    #[test]
    fn off_strips_method_attributes_of_a_block() {
        let out = expand(
            TokenStream::new(),
            quote! { impl S { #[profile(skip)] fn a(&self) {} #[inline] fn b(&self) {} } },
            false,
        );
        assert_eq!(
            out.to_string(),
            quote! { impl S { fn a(&self) {} #[inline] fn b(&self) {} } }.to_string()
        );
    }

    #[test]
    fn unparsable_items_go_to_rustc_unchanged() {
        let item = quote! { fn f() { let = ; } };
        assert_eq!(
            expand_str(TokenStream::new(), item.clone(), true),
            item.to_string()
        );
    }

    #[test]
    fn shape_of_a_sync_function() {
        let out = expand(
            quote!(budget = "2ms"),
            quote! {
                #[inline]
                pub fn parse(input: &str) -> usize {
                    #![allow(clippy::all)]
                    input.len()
                }
            },
            true,
        );
        assert_eq!(
            pretty(&out),
            r#"#[inline]
pub fn parse(input: &str) -> usize {
    #![allow(clippy::all)]
    let __profiler_guard = {
        static __PROFILER_SITE: ::profiler_runtime::__private::FunctionInfo = ::profiler_runtime::__private::FunctionInfo::new(
                ::core::concat!(::core::module_path!(), "::parse"),
                ::core::module_path!(),
                ::core::file!(),
                ::core::line!(),
                ::profiler_runtime::__private::FunctionKind::Function,
            )
            .with_budget_ns(2000000u64);
        ::profiler_runtime::__private::inventory::submit! {
            ::profiler_runtime::__private::Registration(& __PROFILER_SITE)
        }
        ::profiler_runtime::__private::enter(&__PROFILER_SITE)
    };
    { input.len() }
}
"#
        );
    }

    #[test]
    fn shape_of_an_async_method_out_of_its_block() {
        let out = expand(
            quote!(crate = ::facade::rt),
            quote! { async fn get(&self) -> impl Sized { self.0 } },
            true,
        );
        assert_eq!(
            pretty(&out),
            r#"async fn get(&self) -> impl Sized {
    ::facade::rt::__private::instrument_method::<
        _,
        _,
    >(
            {
                static __PROFILER_SITE: ::facade::rt::__private::FunctionInfo = ::facade::rt::__private::FunctionInfo::new(
                        ::core::concat!(::core::module_path!(), "::get"),
                        ::core::module_path!(),
                        ::core::file!(),
                        ::core::line!(),
                        ::facade::rt::__private::FunctionKind::AsyncFunction,
                    )
                    .with_method("get");
                ::facade::rt::__private::inventory::submit! {
                    ::facade::rt::__private::Registration(& __PROFILER_SITE)
                }
                &__PROFILER_SITE
            },
            ::core::any::type_name::<Self>,
            async move {
                let __profiler_output: _ = { self.0 };
                __profiler_output
            },
        )
        .await
}
"#
        );
    }

    #[test]
    fn shape_of_a_trait_impl_block() {
        let out = expand(
            TokenStream::new(),
            quote! {
                impl<T: Clone> Source<T> for Pool<T> {
                    #[profile(name = "pool get")]
                    fn get(&self) -> T { self.0.clone() }
                    #[profile(skip)]
                    fn len(&self) -> usize { 1 }
                    const fn id() -> u8 { 0 }
                }
            },
            true,
        );
        let text = pretty(&out);
        assert!(
            text.contains(
                r#"FunctionInfo::new(
                "pool get","#
            ),
            "{text}"
        );
        assert!(
            text.contains("fn len(&self) -> usize {\n        1\n    }"),
            "{text}"
        );
        assert!(
            text.contains("const fn id() -> u8 {\n        0\n    }"),
            "{text}"
        );
        assert!(!text.contains("#[profile"), "{text}");
        assert_eq!(text.matches("static __PROFILER_SITE").count(), 1, "{text}");
    }

    #[test]
    fn names() {
        let name = |owner: &Owner<'_>| name_expr(owner, "get").to_string();
        assert_eq!(
            name(&Owner::Free),
            r#":: core :: concat ! (:: core :: module_path ! () , "::get")"#
        );
        let pool: Type = syn::parse_quote!(Pool<T>);
        let source: Path = syn::parse_quote!(db::Source<u8>);
        assert_eq!(
            name(&Owner::Impl {
                self_ty: &pool,
                trait_path: Some(&source)
            }),
            r#":: core :: concat ! ("<" , :: core :: module_path ! () , "::Pool<T> as db::Source<u8>>::get")"#
        );
        let slice: Type = syn::parse_quote!(&'a [u8]);
        assert_eq!(
            name(&Owner::Impl {
                self_ty: &slice,
                trait_path: None
            }),
            r#":: core :: concat ! ("&'a [u8]::get")"#
        );
        let ident = Ident::new("Source", Span::call_site());
        assert_eq!(
            name(&Owner::Trait(&ident)),
            r#":: core :: concat ! (:: core :: module_path ! () , "::Source::get")"#
        );
    }

    #[test]
    fn types_render_like_rustfmt() {
        for text in [
            "Pool<T>",
            "&'a mut [u8; 4]",
            "Box<dyn Fn(u8, &str) -> T + Send + 'static>",
            "HashMap<String, Vec<(u8, u16)>>",
            "<T as Iterator>::Item",
            "dyn Iterator<Item = u8>",
            "*const T",
            "fn() -> !",
            "crate::db::Pool<'a, T>",
        ] {
            let ty: Type = syn::parse_str(text).unwrap();
            assert_eq!(render(ty.to_token_stream()), text);
        }
    }

    #[test]
    fn self_is_detected() {
        let sig = |tokens: TokenStream| syn::parse2::<syn::ItemFn>(tokens).unwrap().sig;
        assert!(mentions_self(&sig(quote! { fn a(&self) {} })));
        assert!(mentions_self(&sig(quote! { fn a() -> Self { todo!() } })));
        assert!(mentions_self(&sig(quote! { fn a(x: Vec<Self>) {} })));
        assert!(!mentions_self(&sig(
            quote! { fn a(selfish: u8) -> u8 { selfish } }
        )));
    }
}
