//! Tutorial 04, case study 2: four threads share a read-through cache behind one `Mutex`. A miss
//! fetches from a slow backend while holding the lock, so every other thread waits; the timeline
//! shows it, and sharding the cache fixes it.
//!
//! Run: `cargo run --release -p profiler-examples --example case_lock_contention`
//! Runs the contended variant, then the sharded one, in one process; writes
//! `target/profiles/case_lock_contention-before.*` and `-after.*` (or under `$PROFILER_OUTPUT`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use profiler_examples::logs::Rng;
use profiler_examples::{measure, output_prefix};
use profiler_runtime::{profile, profile_scope};

const THREADS: usize = 4;
const SHARDS: usize = 16;
const LOOKUPS_PER_THREAD: usize = 20_000;
const KEYS: u64 = 600;

/// A user's profile page as the cache keeps it.
type Page = String;

/// The backend: a network round trip (its latency is waited, not computed) and then the
/// rendering of the user's page from the record it returned.
#[profile]
fn fetch_from_backend(user: u64) -> Page {
    std::thread::sleep(Duration::from_micros(200));
    let mut rng = Rng::new(user + 1);
    let mut page = format!("<h1>user {user}</h1><ul>");
    for _ in 0..20 {
        let _ = write!(
            page,
            "<li>order {}: {} items</li>",
            rng.below(1_000_000),
            rng.below(9) + 1
        );
    }
    page.push_str("</ul>");
    page
}

/// The keys one thread looks up: skewed, so a few users are very popular.
fn workload(thread: usize) -> Vec<u64> {
    let mut rng = Rng::new(thread as u64 + 17);
    (0..LOOKUPS_PER_THREAD)
        .map(|_| {
            let r = rng.below(KEYS);
            (r * r / KEYS + rng.below(KEYS)) % KEYS
        })
        .collect()
}

// ANCHOR: before
/// Before: one cache, one lock, held across the backend call on a miss.
#[profile]
fn serve_shared(keys: &[u64], cache: &Mutex<HashMap<u64, Page>>) -> usize {
    let mut bytes = 0;
    for &user in keys {
        let mut map = {
            profile_scope!("lock wait");
            cache
                .lock()
                .expect("no thread panics while holding the lock")
        };
        bytes += map
            .entry(user)
            .or_insert_with(|| fetch_from_backend(user))
            .len();
    }
    bytes
}
// ANCHOR_END: before

// ANCHOR: after
/// After: the cache is split into shards by key, each behind its own lock. A miss still holds
/// its shard's lock during the fetch, but only lookups of the same shard wait for it.
#[profile]
fn serve_sharded(keys: &[u64], shards: &[Mutex<HashMap<u64, Page>>]) -> usize {
    let mut bytes = 0;
    for &user in keys {
        let shard = &shards[(user % shards.len() as u64) as usize];
        let mut map = {
            profile_scope!("lock wait");
            shard
                .lock()
                .expect("no thread panics while holding the lock")
        };
        bytes += map
            .entry(user)
            .or_insert_with(|| fetch_from_backend(user))
            .len();
    }
    bytes
}
// ANCHOR_END: after

/// Runs `work` on [`THREADS`] named threads, each with its own lookups; sums what they return.
fn on_threads(work: impl Fn(&[u64]) -> usize + Sync) -> usize {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|n| {
                let work = &work;
                std::thread::Builder::new()
                    .name(format!("server-{n}"))
                    .spawn_scoped(scope, move || work(&workload(n)))
                    .expect("spawn a server thread")
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("server thread"))
            .sum()
    })
}

#[profile]
fn run_before() -> usize {
    let cache = Mutex::new(HashMap::new());
    on_threads(|keys| serve_shared(keys, &cache))
}

#[profile]
fn run_after() -> usize {
    let shards: Vec<_> = (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect();
    on_threads(|keys| serve_sharded(keys, &shards))
}

// ANCHOR: main
fn main() {
    let prefix = output_prefix("case_lock_contention");
    let _ = profiler_runtime::flush();

    let before = run_before();
    let before_profile = profiler_runtime::flush();
    let after = run_after();
    let after_profile = profiler_runtime::flush();
    assert_eq!(before, after, "both variants must serve the same pages");

    println!(
        "{THREADS} threads x {LOOKUPS_PER_THREAD} lookups over {KEYS} users, {before} bytes served"
    );
    println!(
        "{:<8} {:>10} {:>10} {:>12} {:>14} {:>12}",
        "variant", "wall", "fetches", "lock waits", "time waiting", "mean wait"
    );
    for (variant, profile, function) in [
        ("before", &before_profile, "run_before"),
        ("after", &after_profile, "run_after"),
    ] {
        let wall = measure::totals(profile, function);
        let fetches = measure::totals(profile, "fetch_from_backend");
        let waits = measure::totals(profile, "lock wait");
        println!(
            "{variant:<8} {:>10} {:>10} {:>12} {:>14} {:>9} ns",
            measure::ms(wall.total_ns),
            fetches.calls,
            waits.calls,
            measure::ms(waits.total_ns),
            waits.mean_ns()
        );
        match measure::write_profile(profile, &prefix, &format!("-{variant}")) {
            Ok(paths) => paths.iter().for_each(|p| println!("wrote {}", p.display())),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    }
}
// ANCHOR_END: main
