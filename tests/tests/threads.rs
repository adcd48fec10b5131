//! Many threads recording while flushes run concurrently: every event is accounted for exactly
//! once, and threads that exit before the flush keep their events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use profiler_runtime::{profile_scope, Profile};

const THREADS: usize = 8;
const CALLS: u64 = 100_000;

#[inline(never)]
fn work(i: u64) -> u64 {
    profile_scope!("work");
    std::hint::black_box(i.wrapping_mul(31))
}

/// Per worker: (enters seen, exits seen, dropped, span starts in order).
type Tally = HashMap<String, (u64, u64, u64, Vec<u64>)>;

fn tally(profiles: &[Profile]) -> Tally {
    let mut by_thread: Tally = HashMap::new();
    for p in profiles {
        p.validate()
            .expect("well-formed timeline under concurrent flushes");
        for t in p.threads.iter().filter(|t| t.name.starts_with("worker-")) {
            let e = by_thread.entry(t.name.clone()).or_default();
            e.2 += t.dropped_events;
            for s in &t.spans {
                if !s.flags.continued {
                    e.0 += 1;
                    e.3.push(s.start_ns);
                }
                if !s.flags.incomplete {
                    e.1 += 1;
                }
            }
        }
    }
    by_thread
}

fn run(buffer_events: usize) -> Tally {
    let _serial = profiler_tests::serial();
    profiler_runtime::enable();
    profiler_runtime::set_buffer_capacity(buffer_events);
    let _ = profiler_runtime::flush();
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(THREADS + 1));
    let flusher = {
        let done = Arc::clone(&done);
        std::thread::Builder::new()
            .name("flusher".into())
            .spawn(move || {
                let mut profiles = Vec::new();
                while !done.load(Ordering::Acquire) {
                    profiles.push(profiler_runtime::flush());
                    std::thread::yield_now();
                }
                profiles
            })
            .unwrap()
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|w| {
            let start = Arc::clone(&start);
            std::thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || {
                    start.wait();
                    (0..CALLS).map(work).fold(0, u64::wrapping_add)
                })
                .unwrap()
        })
        .collect();
    start.wait();
    for w in workers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Release);
    let mut profiles = flusher.join().unwrap();
    // The workers have exited: their events must still be there.
    profiles.push(profiler_runtime::flush());
    profiler_runtime::set_buffer_capacity(profiler_runtime::DEFAULT_BUFFER_EVENTS);
    tally(&profiles)
}

fn check(by_thread: &Tally) {
    assert_eq!(by_thread.len(), THREADS, "every worker appears");
    for (name, (enters, exits, dropped, starts)) in by_thread {
        assert_eq!(enters, exits, "{name}: balanced");
        // Exact: a duplicated call would push the sum over, a lost one under.
        assert_eq!(
            enters + exits + dropped,
            2 * CALLS,
            "{name}: recorded + dropped"
        );
        assert!(
            starts.windows(2).all(|w| w[0] <= w[1]),
            "{name}: calls out of order across flushes"
        );
    }
}

#[test]
fn eight_threads_with_concurrent_flushes_lose_and_duplicate_nothing() {
    let by_thread = run(profiler_runtime::DEFAULT_BUFFER_EVENTS);
    check(&by_thread);
    let dropped: u64 = by_thread.values().map(|t| t.2).sum();
    assert_eq!(
        dropped, 0,
        "the default buffer holds 200k events per thread"
    );
}

#[test]
fn small_buffers_drop_whole_calls_and_count_them() {
    // 256 events per thread: the flusher cannot keep up, so calls are dropped.
    let by_thread = run(256);
    check(&by_thread);
}

#[test]
fn a_thread_that_exits_before_the_flush_keeps_its_events() {
    let profile = profiler_tests::record(|| {
        std::thread::Builder::new()
            .name("short-lived".into())
            .spawn(|| {
                for i in 0..10 {
                    work(i);
                }
            })
            .unwrap()
            .join()
            .unwrap();
    });
    let t = profile
        .threads
        .iter()
        .find(|t| t.name == "short-lived")
        .expect("exited thread's timeline");
    assert!(t.exited);
    assert_eq!(t.spans.len(), 10);
    // The next flush does not report it again.
    let _serial = profiler_tests::serial();
    let next = profiler_runtime::flush();
    assert!(next.threads.iter().all(|t| t.name != "short-lived"));
}
