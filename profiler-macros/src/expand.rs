//! The rewrite behind `#[profile]`: sync and async bodies, `impl` and `trait` blocks, and the
//! error fallback.
//!
//! A sync function keeps its signature, attributes and visibility; only its block changes:
//!
//! ```text
//! Input:  #[inline] pub fn get(&self, key: u32) -> Option<&V> { BODY }
//! Output: #[inline] pub fn get(&self, key: u32) -> Option<&V> {
//!             let __profiler_guard = {
//!                 fn __profiler_here() -> &'static str { type_name_of_val(&__profiler_here) }
//!                 static __PROFILER_SITE: FunctionInfo = FunctionInfo::new(NAME, module_path!(), file!(), line!(), ..)
//!                     .with_receiver(__profiler_here);
//!                 inventory::submit! { Registration(&__PROFILER_SITE) }
//!                 enter_method(&__PROFILER_SITE, type_name::<Self>)
//!             };
//!             BODY'S STATEMENTS
//!         }
//! ```
//!
//! The nested `__profiler_here` gives the function's name as the compiler knows it, read once
//! when the name is first needed: `<my_crate::Pool as my_crate::Source>::get` for a method of a
//! trait impl, whether the attribute sits on the method or on the block. A function without
//! `Self` in its signature calls `enter(&__PROFILER_SITE)`; one with `Self` passes the receiver
//! type too, so that a trait's default method records under the type it was called on.
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

use proc_macro2::{Literal, Span, TokenStream, TokenTree};
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

/// Who owns a function, which decides how its recorded name is found.
#[derive(Clone, Copy)]
enum Owner {
    /// A free function, or a method whose block is out of sight.
    Free,
    /// A method of `impl Type` or `impl Trait for Type`.
    Impl,
    /// A default method of `trait Name`.
    Trait,
}

/// Everything the generated code of one function needs.
struct Site<'a> {
    owner: Owner,
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
    for (member, plan) in block.items.iter_mut().zip(plans) {
        if let (ImplItem::Fn(method), Some(plan)) = (member, plan) {
            let site = Site {
                owner: Owner::Impl,
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
    for (member, plan) in block.items.iter_mut().zip(plans) {
        if let (TraitItem::Fn(method), Some(plan)) = (member, plan) {
            if let Some(body) = &method.default {
                let site = Site {
                    owner: Owner::Trait,
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

/// How a site finds its recorded name when none was given.
#[derive(Clone, Copy, PartialEq)]
enum Naming {
    /// `name = "..."`: the name as given.
    Given,
    /// The compiler's path of the function, read once (no receiver type involved).
    Path,
    /// The path, and a receiver type that may make it a trait's default method: a lone method
    /// whose block the attribute cannot see. The first call decides.
    Receiver,
    /// A trait's default method: each receiver type records under its own name.
    DefaultMethod,
}

/// The instrumented block of a function.
fn instrument(sig: &Signature, body: &Block, site: &Site<'_>) -> Block {
    let span = Span::mixed_site();
    let rt = &site.runtime;
    let site_ident = Ident::new("__PROFILER_SITE", span);
    let here_ident = Ident::new("__profiler_here", span);
    let naming = match (site.name, &site.owner) {
        (Some(_), _) => Naming::Given,
        (None, Owner::Trait) => Naming::DefaultMethod,
        (None, Owner::Free) if mentions_self(sig) => Naming::Receiver,
        (None, _) => Naming::Path,
    };
    let name = match site.name {
        Some(name) => name.to_token_stream(),
        None => fallback_name(&sig.ident),
    };
    let kind = if sig.asyncness.is_some() {
        quote_spanned!(span=> AsyncFunction)
    } else {
        quote_spanned!(span=> Function)
    };
    // The path of an item nested in the function names the function as the compiler sees it
    // (`<my_crate::Pool as my_crate::Source>::get::__profiler_here`): the `impl` and the trait
    // the attribute alone cannot see. Read only when the name is first needed.
    let (here, with_path) = match naming {
        Naming::Given => (None, None),
        Naming::Path | Naming::Receiver | Naming::DefaultMethod => {
            let here = quote_spanned! {span=>
                fn #here_ident() -> &'static ::core::primitive::str {
                    ::core::any::type_name_of_val(&#here_ident)
                }
            };
            let method = match naming {
                Naming::Receiver => quote_spanned!(span=> with_receiver),
                Naming::DefaultMethod => quote_spanned!(span=> with_default_method),
                _ => quote_spanned!(span=> with_path),
            };
            (
                Some(here),
                Some(quote_spanned!(span=> .#method(#here_ident))),
            )
        }
    };
    let receiver = matches!(naming, Naming::Receiver | Naming::DefaultMethod);
    let with_budget = site.budget_ns.map(|ns| {
        let ns = Literal::u64_suffixed(ns);
        quote_spanned!(span=> .with_budget_ns(#ns))
    });
    // Spanned on the function's name, so that `line!()` gives the line of the signature.
    let line = quote_spanned!(sig.ident.span()=> ::core::line!());
    let static_site = quote_spanned! {span=>
        #here
        static #site_ident: #rt::__private::FunctionInfo = #rt::__private::FunctionInfo::new(
            #name,
            ::core::module_path!(),
            ::core::file!(),
            #line,
            #rt::__private::FunctionKind::#kind,
        ) #with_path #with_budget;
        #rt::__private::inventory::submit! {
            #rt::__private::Registration(&#site_ident)
        }
    };
    let type_name = quote_spanned!(span=> ::core::any::type_name::<Self>);
    if sig.asyncness.is_some() {
        let output = output_type(&sig.output);
        let output_ident = Ident::new("__profiler_output", span);
        let future = quote_spanned! {body.brace_token.span.join()=>
            async move {
                let #output_ident: #output = #body;
                #output_ident
            }
        };
        let call = if receiver {
            quote_spanned!(span=> #rt::__private::instrument_method::<#output, _>(
                { #static_site &#site_ident }, #type_name, #future))
        } else {
            quote_spanned!(span=> #rt::__private::instrument::<#output, _>(
                { #static_site &#site_ident }, #future))
        };
        Block {
            brace_token: body.brace_token,
            stmts: vec![syn::Stmt::Expr(
                syn::Expr::Verbatim(quote_spanned!(span=> #call.await)),
                None,
            )],
        }
    } else {
        let guard = Ident::new("__profiler_guard", span);
        let enter = if receiver {
            quote_spanned!(span=> #rt::__private::enter_method(&#site_ident, #type_name))
        } else {
            quote_spanned!(span=> #rt::__private::enter(&#site_ident))
        };
        // The user's statements follow the guard in the same block, not inside a block of their
        // own: a one-expression body (`{ self.x }`) wrapped in braces would trip rustc's
        // `unused_braces` in the user's crate. Their locals still drop before the guard.
        let mut stmts = Vec::with_capacity(body.stmts.len() + 1);
        stmts.push(syn::Stmt::Expr(
            syn::Expr::Verbatim(quote_spanned!(span=> let #guard = { #static_site #enter };)),
            None,
        ));
        stmts.extend(body.stmts.iter().cloned());
        Block {
            brace_token: body.brace_token,
            stmts,
        }
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

/// `module_path!()::name`: what the site says before its path is read (and what `Debug` shows).
fn fallback_name(ident: &Ident) -> TokenStream {
    let span = Span::mixed_site();
    let text = LitStr::new(&format!("::{}", ident.unraw()), span);
    quote_spanned!(span=> ::core::concat!(::core::module_path!(), #text))
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
        fn __profiler_here() -> &'static ::core::primitive::str {
            ::core::any::type_name_of_val(&__profiler_here)
        }
        static __PROFILER_SITE: ::profiler_runtime::__private::FunctionInfo = ::profiler_runtime::__private::FunctionInfo::new(
                ::core::concat!(::core::module_path!(), "::parse"),
                ::core::module_path!(),
                ::core::file!(),
                ::core::line!(),
                ::profiler_runtime::__private::FunctionKind::Function,
            )
            .with_path(__profiler_here)
            .with_budget_ns(2000000u64);
        ::profiler_runtime::__private::inventory::submit! {
            ::profiler_runtime::__private::Registration(& __PROFILER_SITE)
        }
        ::profiler_runtime::__private::enter(&__PROFILER_SITE)
    };
    input.len()
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
                fn __profiler_here() -> &'static ::core::primitive::str {
                    ::core::any::type_name_of_val(&__profiler_here)
                }
                static __PROFILER_SITE: ::facade::rt::__private::FunctionInfo = ::facade::rt::__private::FunctionInfo::new(
                        ::core::concat!(::core::module_path!(), "::get"),
                        ::core::module_path!(),
                        ::core::file!(),
                        ::core::line!(),
                        ::facade::rt::__private::FunctionKind::AsyncFunction,
                    )
                    .with_receiver(__profiler_here);
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
