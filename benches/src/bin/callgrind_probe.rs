//! Runs one case of the overhead benchmark `N` times after a warm-up, for `benches/callgrind-gate.sh`
//! to count instructions under `valgrind --tool=callgrind`. Run twice with different `N` (of the
//! same number of digits), the difference of the totals divided by the difference of `N` is the
//! instruction count of one call, with start-up and warm-up cancelled out.
//!
//! Usage: `callgrind_probe CASE N`, CASE one of the names `callgrind_probe --list` prints.

use std::hint::black_box;
use std::process::ExitCode;

use profiler_benches::{bare, floor, nested10, recorded, scope_in_loop};

const CASES: [&str; 10] = [
    "bare",
    "two-rdtsc",
    "two-rdtsc-two-stores",
    "recording",
    "recording+drain",
    "recording+flush",
    "disabled",
    "scope-in-loop",
    "nested10",
    "nested10+flush",
];

const WARM_UP: u64 = 1_000;

/// The largest `N` a run may use. The ring's size depends on it alone, not on `N`: creating a
/// ring allocates its blocks, and that set-up must cost the same in both runs to cancel out.
const MAX_N: u64 = 1_000_000;

/// Calls between two drains in `recording+drain` (divides every `N` the gate uses).
const DRAIN_BATCH: u64 = 10_000;

fn run(case: &str, n: u64) -> Option<u64> {
    let call: fn(u64) -> u64 = match case {
        "bare" => bare,
        "two-rdtsc" => floor::two_rdtsc,
        "two-rdtsc-two-stores" => floor::two_rdtsc_two_stores,
        "recording" | "recording+drain" | "recording+flush" | "disabled" => recorded,
        "scope-in-loop" => {
            return Some(black_box(scope_in_loop(WARM_UP)) ^ black_box(scope_in_loop(n)))
        }
        "nested10" | "nested10+flush" => nested10,
        _ => return None,
    };
    let mut acc = 0;
    // The warm-up attaches this thread's ring (the recording cases) and faults in the code.
    for i in 0..WARM_UP {
        acc ^= call(black_box(i));
    }
    if case == "disabled" {
        profiler_runtime::disable();
    }
    if case == "recording+drain" {
        // A drain after every batch, as the background collector does: its share is in the figure.
        for batch in 0..n / DRAIN_BATCH {
            for i in batch * DRAIN_BATCH..(batch + 1) * DRAIN_BATCH {
                acc ^= call(black_box(i));
            }
            acc ^= black_box(profiler_runtime::drain()) as u64;
        }
        return Some(acc);
    }
    for i in 0..n {
        acc ^= call(black_box(i));
    }
    // Draining and merging the events: the per-call figure includes the flush's share. The
    // nested case merges spans that are not leaves (only the innermost of ten is).
    let spans_per_call = match case {
        "recording+flush" => 1,
        "nested10+flush" => 10,
        _ => 0,
    };
    if spans_per_call > 0 {
        let profile = profiler_runtime::flush();
        assert_eq!(profile.span_count() as u64, (WARM_UP + n) * spans_per_call);
        acc ^= profile.end_ns;
    }
    Some(acc)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--list") {
        println!("{}", CASES.join("\n"));
        return ExitCode::SUCCESS;
    }
    let (Some(case), Some(Ok(n))) = (args.first(), args.get(1).map(|n| n.parse::<u64>())) else {
        eprintln!("usage: callgrind_probe CASE N (CASE: {})", CASES.join(", "));
        return ExitCode::from(2);
    };
    if n > MAX_N {
        eprintln!("callgrind_probe: N is at most {MAX_N}");
        return ExitCode::from(2);
    }
    // Room for every event of the largest run without a flush: nested10 records 20 events a call.
    profiler_runtime::set_buffer_capacity(((MAX_N + WARM_UP) * 20).next_power_of_two() as usize);
    let Some(acc) = run(case, n) else {
        eprintln!(
            "callgrind_probe: unknown case `{case}` (known: {})",
            CASES.join(", ")
        );
        return ExitCode::from(2);
    };
    // Except in the `+flush` cases, events are left in the ring: no flush in the per-call cost.
    black_box(acc ^ floor::model_checksum());
    ExitCode::SUCCESS
}
