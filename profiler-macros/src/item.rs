//! What `#[profile]` sits on: a function (free, method, trait method with a body), an `impl`
//! block or a `trait`. Everything else is rejected with an error on the item's keyword and name.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::{Attribute, Item, ItemImpl, ItemTrait, TraitItemFn};

/// A function with a body, in any of the places syn parses one.
pub(crate) enum Function {
    /// A free function, or a method whose block the attribute cannot see.
    Item(syn::ItemFn),
    /// A method of a trait, with its default body.
    TraitMethod(TraitItemFn),
}

/// The item under the attribute.
pub(crate) enum Target {
    Function(Function),
    Impl(ItemImpl),
    Trait(ItemTrait),
}

/// Why an item cannot be instrumented.
pub(crate) enum Rejected {
    /// A kind of item the attribute does not apply to; the error points at it.
    Misplaced(syn::Error),
    /// Tokens that do not parse as an item: handed back to rustc as they are, so it reports the
    /// syntax error in place.
    Unparsable,
}

/// Parses the item and rejects what the attribute cannot instrument.
pub(crate) fn parse(item: TokenStream) -> Result<Target, Rejected> {
    match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(function)) => Ok(Target::Function(Function::Item(function))),
        Ok(Item::Impl(block)) => Ok(Target::Impl(block)),
        Ok(Item::Trait(block)) => Ok(Target::Trait(block)),
        Ok(Item::Verbatim(tokens)) => match syn::parse2::<TraitItemFn>(tokens) {
            // `fn f(&self) { .. }` inside a trait parses as an item; one without body does not.
            Ok(method) if method.default.is_some() => Ok(Target::Function(Function::TraitMethod(method))),
            Ok(method) => Err(Rejected::Misplaced(syn::Error::new_spanned(
                &method.sig,
                "`#[profile]` needs a function body: put it on the implementations of this method, \
                 or give it a default body",
            ))),
            Err(_) => Err(Rejected::Misplaced(syn::Error::new_spanned(
                item,
                "`#[profile]` goes on a function, an `impl` block or a `trait`",
            ))),
        },
        Ok(other) => Err(Rejected::Misplaced(misplaced(&other))),
        Err(_) => Err(Rejected::Unparsable),
    }
}

/// The error for an item that is not a function, `impl` or `trait`, spanning its keyword and
/// name (not its whole body).
fn misplaced(item: &Item) -> syn::Error {
    let (what, tokens) = match item {
        Item::Struct(s) => ("a struct", tokens(&[&s.struct_token, &s.ident])),
        Item::Enum(e) => ("an enum", tokens(&[&e.enum_token, &e.ident])),
        Item::Union(u) => ("a union", tokens(&[&u.union_token, &u.ident])),
        Item::Const(c) => ("a constant", tokens(&[&c.const_token, &c.ident])),
        Item::Static(s) => ("a static", tokens(&[&s.static_token, &s.ident])),
        Item::Mod(m) => ("a module", tokens(&[&m.mod_token, &m.ident])),
        Item::Type(t) => ("a type alias", tokens(&[&t.type_token, &t.ident])),
        Item::TraitAlias(t) => ("a trait alias", tokens(&[&t.trait_token, &t.ident])),
        Item::Use(u) => ("a `use` declaration", tokens(&[&u.use_token])),
        Item::ExternCrate(e) => (
            "an `extern crate`",
            tokens(&[&e.extern_token, &e.crate_token, &e.ident]),
        ),
        Item::ForeignMod(f) => ("an `extern` block", tokens(&[&f.abi])),
        Item::Macro(m) => ("a macro", tokens(&[&m.mac.path])),
        _ => ("this item", quote!(#item)),
    };
    syn::Error::new_spanned(
        tokens,
        format!("`#[profile]` cannot be applied to {what}; it goes on a function, an `impl` block or a `trait`"),
    )
}

fn tokens(parts: &[&dyn ToTokens]) -> TokenStream {
    let mut out = TokenStream::new();
    for part in parts {
        part.to_tokens(&mut out);
    }
    out
}

/// Whether an attribute is `#[profile]` or `#[profile(...)]` (also written with a path, such as
/// `#[profiler_runtime::profile]`).
pub(crate) fn is_profile_attribute(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "profile")
}
