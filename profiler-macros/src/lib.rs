//! The `#[profile]` attribute of `profiler-runtime`. Depend on `profiler-runtime`, which
//! re-exports it, rather than on this crate.
//!
//! # Where it goes
//!
//! - On a function with a body: free functions, methods, trait methods with a default body,
//!   generic, `unsafe`, `extern "C"`, `async`, returning `impl Trait`, next to other attributes.
//! - On an `impl` block (inherent or trait) or a `trait`: every method with a body is instrumented,
//!   except those marked `#[profile(skip)]` and `const fn`s (which cannot record at run time).
//!
//! # Arguments
//!
//! | argument | effect |
//! |---|---|
//! | `name = "..."` | the recorded name, verbatim (on a function or a method of a block) |
//! | `skip` | leaves a method of an instrumented block out |
//! | `budget = "2ms"` | a time budget (`ns`, `us`, `ms`, `s`; decimals allowed, such as `1.5s`) |
//! | `crate = path` | where the runtime is, for crates that re-export it (default `::profiler_runtime`) |
//!
//! # Recorded names
//!
//! A function is recorded under its path as the compiler knows it, read once (not per call) from
//! `core::any::type_name_of_val` of an item the expansion nests in the function. So the name
//! says which `impl` and which trait a method belongs to, whether the attribute sits on the
//! method or on its block, and two different functions never share a name:
//!
//! | code | name |
//! |---|---|
//! | `fn parse` in `my_crate::db` | `my_crate::db::parse` |
//! | `impl Pool { fn get }` | `my_crate::db::Pool::get` |
//! | `impl Source for Pool { fn get }` | `<my_crate::db::Pool as my_crate::db::Source>::get` |
//! | `impl fmt::Display for Pool { fn fmt }` | `<my_crate::db::Pool as core::fmt::Display>::fmt` |
//! | `impl<T> Pool<T> { fn get }` | `my_crate::db::Pool::get` (generic parameters left open are dropped) |
//! | `trait Source { fn describe(&self) }` (default body), called on a `Pool` | `<my_crate::db::Pool as my_crate::db::Source>::describe` |
//! | `async fn load` | `my_crate::db::load` |
//! | `#[profile(name = "pool get")]` | `pool get` |
//!
//! A trait's default method records under the type it was called on (its receiver type, without
//! generic arguments), one name per type. It needs `self` or `Self` in its signature when the
//! attribute sits on the method alone; on the `trait` block every default method gets it.
//!
//! # Expansion
//!
//! With the `enable` feature off, the item is returned as written (a block loses only its
//! methods' `#[profile(...)]` attributes), after the same checks. With it on, a sync function
//! becomes, in outline:
//!
//! ```text
//! fn parse(input: &str) -> usize {
//!     let __profiler_guard = {
//!         fn __profiler_here() -> &'static str { type_name_of_val(&__profiler_here) }
//!         static __PROFILER_SITE: FunctionInfo = FunctionInfo::new(
//!             concat!(module_path!(), "::parse"), module_path!(), file!(), line!(), Function)
//!             .with_path(__profiler_here); // the name, read when first needed
//!         inventory::submit! { Registration(&__PROFILER_SITE) }
//!         enter(&__PROFILER_SITE)      // records the enter; dropping the guard records the exit
//!     };
//!     input.split(',').count()         // the body's statements as written
//! }
//! ```
//!
//! and an `async fn` keeps its signature and awaits
//! `instrument::<Output, _>(&__PROFILER_SITE, async move { body })`, which records each poll as a
//! span and the future's life as an async span.

mod args;
mod expand;
mod item;

use proc_macro::TokenStream;

/// Records every call of a function (or every method of an `impl` block or `trait`) as a span.
///
/// See the crate documentation for the forms, arguments and expansion.
#[proc_macro_attribute]
pub fn profile(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args.into(), item.into(), cfg!(feature = "enable")).into()
}
