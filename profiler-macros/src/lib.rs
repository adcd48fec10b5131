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
//! Names are the paths a user searches for, put together by the compiler (`concat!` and
//! `module_path!`), so nothing is formatted at run time:
//!
//! | code | name |
//! |---|---|
//! | `fn parse` in `my_crate::db` | `my_crate::db::parse` |
//! | `#[profile] impl Pool { fn get }` | `my_crate::db::Pool::get` |
//! | `#[profile] impl Source for Pool { fn get }` | `<my_crate::db::Pool as Source>::get` |
//! | `#[profile] trait Source { fn get }` (default body) | `my_crate::db::Source::get` |
//! | `#[profile] fn get(&self)` alone in an `impl` | `my_crate::db::Pool::get`: the type is read from `type_name::<Self>()` on the first call |
//! | `#[profile] fn helper()` alone in an `impl`, mentioning neither `self` nor `Self` | `my_crate::db::helper` (nothing tells it is a method: put the attribute on the block) |
//! | `#[profile(name = "pool get")]` | `pool get` |
//!
//! A method resolved at run time keeps the first receiver type it sees, without generic
//! arguments: a default trait method called for several types records under the first one's
//! name. Put `#[profile]` on the `impl` blocks (or on the `trait`) to get one name per type.
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
//!         static __PROFILER_SITE: FunctionInfo = FunctionInfo::new(
//!             concat!(module_path!(), "::parse"), module_path!(), file!(), line!(), Function);
//!         inventory::submit! { Registration(&__PROFILER_SITE) }
//!         enter(&__PROFILER_SITE)      // records the enter; dropping the guard records the exit
//!     };
//!     { input.split(',').count() }     // the body as written
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
