//! The cases measured by `benches/overhead.rs` and counted by `src/bin/callgrind_probe.rs`, kept in
//! one place so that the timing and the instruction counts measure the same machine code.
//!
//! Every case is an `#[inline(never)]` function wrapping the same small unit of work ([`work`],
//! about 2 ns), so "ns per call" of a case minus "ns per call" of [`bare`] is what the
//! instrumentation adds per call (one enter and one exit).
//!
//! This project is measured through [`profiler_runtime::profile_scope!`] at the top of an
//! `#[inline(never)]` function: that is the code `#[profile]` generates for a sync function (a
//! static site, its registration, and `let guard = enter(&SITE)` before the body).

pub mod floor;
pub mod measure;

use std::hint::black_box;

/// The unit of work every case wraps: a few dependent integer operations, about 2 ns.
#[inline(never)]
pub fn work(x: u64) -> u64 {
    let x = black_box(x);
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ x
}

/// The uninstrumented call.
#[inline(never)]
pub fn bare(x: u64) -> u64 {
    work(x)
}

/// This project, recording: the shape `#[profile]` expands to.
#[inline(never)]
pub fn recorded(x: u64) -> u64 {
    profiler_runtime::profile_scope!("recorded");
    work(x)
}

/// `n` calls with a scope opened inside the loop body of the caller (no wrapper function): the
/// scope macro inlined into a hot loop.
#[inline(never)]
pub fn scope_in_loop(n: u64) -> u64 {
    let mut acc = 0;
    for i in 0..n {
        profiler_runtime::profile_scope!("scope in loop");
        acc ^= work(i);
    }
    acc
}

/// Ten nested instrumented calls around one [`work`]: 10 spans per call.
#[inline(never)]
pub fn nested10(x: u64) -> u64 {
    profiler_runtime::profile_scope!("nested 1");
    nested9(x)
}

macro_rules! nested_chain {
    ($($name:ident => $next:ident, $label:literal;)*) => {
        $(
            #[inline(never)]
            fn $name(x: u64) -> u64 {
                profiler_runtime::profile_scope!($label);
                $next(x)
            }
        )*
    };
}

nested_chain! {
    nested9 => nested8, "nested 2";
    nested8 => nested7, "nested 3";
    nested7 => nested6, "nested 4";
    nested6 => nested5, "nested 5";
    nested5 => nested4, "nested 6";
    nested4 => nested3, "nested 7";
    nested3 => nested2, "nested 8";
    nested2 => nested1, "nested 9";
    nested1 => work, "nested 10";
}
