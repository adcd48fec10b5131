//! The `#[profile]` attribute. Use it through `profiler-runtime`, which re-exports it.
use proc_macro::TokenStream;

/// Instruments a function (placeholder expansion: returns the item unchanged).
#[proc_macro_attribute]
pub fn profile(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
