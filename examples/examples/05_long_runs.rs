//! Tutorial 03, chapter 05: a long run streamed to disk, and how it ends.
//!
//! Run: `cargo run --release -p profiler-examples --example 05_long_runs -- [SECONDS] [ENDING]`
//!
//! Four worker threads handle requests until SECONDS (default 3) have passed, then the program
//! ends as ENDING says: `return` (default: the guard completes the trace and writes the other
//! formats), `exit` (`std::process::exit(0)` with the guard still alive: the `atexit` hook
//! completes the trace), `panic`, or `abort` (nothing runs: the trace keeps all but the last
//! collect interval). Press Ctrl-C at any time: the trace is completed, then the program ends as
//! Ctrl-C ends it. Streams `target/profiles/05_long_runs.perfetto-trace` (or under
//! `$PROFILER_OUTPUT`); open it in the Perfetto UI or read it with `profiler summary`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use profiler_examples::output_prefix;
use profiler_runtime::profile;

/// Parses a request: a few hundred nanoseconds of hashing.
#[profile]
fn parse(request: u64) -> u64 {
    (0..64).fold(request, |h, i| h.rotate_left(5) ^ (i * 0x9E37_79B9))
}

/// Looks the request up: a call that sometimes takes longer.
#[profile]
fn lookup(key: u64) -> u64 {
    let rounds = if key.is_multiple_of(97) { 4096 } else { 128 };
    (0..rounds).fold(key, |h, i| h.wrapping_mul(31).wrapping_add(i))
}

/// One request: parse, then look up.
#[profile]
fn handle(request: u64) -> u64 {
    lookup(parse(request))
}

// ANCHOR: main
fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().map_or(3.0, |s| s.parse().expect("SECONDS"));
    let ending = args.next().unwrap_or_else(|| "return".to_owned());

    // Streaming is the default: the collector writes the trace while the workers run.
    let profiler = profiler_runtime::Config::new()
        .output(output_prefix("05_long_runs"))
        .init();
    if let Some(path) = profiler.config().stream_path() {
        println!("streaming to {}", path.display());
    }

    let stop = AtomicBool::new(false);
    let handled = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    std::thread::scope(|s| {
        for worker in 0..4 {
            let (stop, handled) = (&stop, &handled);
            std::thread::Builder::new()
                .name(format!("worker-{worker}"))
                .spawn_scoped(s, move || {
                    let mut request = worker;
                    while !stop.load(Ordering::Relaxed) {
                        // A burst of 50 requests, then a millisecond idle: a busy service's
                        // rhythm, about a million events a second in all.
                        for _ in 0..50 {
                            std::hint::black_box(handle(request));
                            request += 4;
                        }
                        handled.fetch_add(50, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
                .expect("a worker thread");
        }
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        println!(
            "{} requests handled; ending by {ending}",
            handled.load(Ordering::Relaxed)
        );
        match ending.as_str() {
            // The workers are still running: every one of these endings cuts them off.
            "exit" => std::process::exit(0),
            "abort" => std::process::abort(),
            "panic" => panic!("the run ends with a panic"),
            _ => stop.store(true, Ordering::Relaxed),
        }
    });
    // `return`: the guard completes the trace and writes the other formats from it.
    drop(profiler);
}
// ANCHOR_END: main
