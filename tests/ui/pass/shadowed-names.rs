//! Generated code names everything by absolute path: modules called `core`, `std` and
//! `profiler_runtime`, and items named like the generated ones, change nothing.
#![no_implicit_prelude]

extern crate profiler_runtime as runtime;
extern crate std as real_std;

mod core {}
mod std {}
mod profiler_runtime {}

#[allow(non_upper_case_globals)]
static __PROFILER_SITE: u8 = 0;

#[runtime::profile]
fn shadowing(__profiler_guard: u32) -> u32 {
    let __profiler_output = __profiler_guard + 1;
    static __PROFILER_SITE: u32 = 1;
    __profiler_output + __PROFILER_SITE
}

#[runtime::profile]
async fn shadowing_async(__profiler_output: u32) -> u32 {
    __profiler_output + 1
}

struct Pool;

#[runtime::profile]
impl Pool {
    fn get(&self) -> u8 {
        __PROFILER_SITE
    }
}

fn main() {
    real_std::assert_eq!(shadowing(1), 3);
    real_std::assert_eq!(Pool.get(), 0);
    let _future = shadowing_async(1);
}
