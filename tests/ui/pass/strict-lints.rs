//! Expansions compile in a crate that forbids `unsafe` and denies every warning.
#![forbid(unsafe_code)]
#![deny(warnings, clippy::pedantic)]
#![deny(
    missing_debug_implementations,
    rust_2018_idioms,
    single_use_lifetimes,
    trivial_casts,
    unreachable_pub,
    unused_lifetimes,
    unused_qualifications,
    unused_results,
    variant_size_differences
)]

use profiler_runtime::profile;

#[profile]
fn work(x: u32) -> u32 {
    x + 1
}

#[profile]
async fn work_async(x: u32) -> u32 {
    x + 1
}

#[derive(Debug)]
struct Pool;

#[profile]
impl Pool {
    fn get(&self) -> u32 {
        work(1)
    }
}

impl Pool {
    #[profile]
    fn lone(&self) -> u32 {
        2
    }
}

fn main() {
    assert_eq!(work(1) + Pool.get() + Pool.lone(), 6);
    drop(work_async(1));
}
