//! A program as users write one: `init()` at the top of `main`, the guard dropped at its end.
//! `tests/guard_exit.rs` runs it as a child process, because what the guard says on stderr at
//! exit can only be read from outside. The argument is how many calls to record (default 10).

use profiler_runtime::profile;

#[profile]
fn work(i: u64) -> u64 {
    std::hint::black_box(i * 2)
}

fn main() {
    let _profiler = profiler_runtime::init();
    let calls: u64 = std::env::args()
        .nth(1)
        .map_or(10, |n| n.parse().expect("a number of calls"));
    let sum: u64 = (0..calls).map(work).sum();
    std::hint::black_box(sum);
}
