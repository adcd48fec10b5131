//! Tutorial 04, case study 2: four threads counting words into one `Mutex<HashMap>` spend their
//! time waiting for the lock; the timeline shows it, and sharding the map fixes it.
//!
//! Run: `cargo run --release -p profiler-examples --example case_lock_contention`
//! Runs the contended variant, then the sharded one, in one process; writes
//! `target/profiles/case_lock_contention-before.*` and `-after.*` (or under `$PROFILER_OUTPUT`).

use std::collections::HashMap;
use std::sync::Mutex;

use profiler_examples::logs::Rng;
use profiler_examples::{measure, output_prefix};
use profiler_runtime::{profile, profile_scope};

const THREADS: usize = 4;
const SHARDS: usize = 16;
/// Lines a thread sorts by shard before taking the shards' locks.
const BATCH: usize = 32;

/// Generates `lines` lines of text over a vocabulary of 5000 words with a skewed distribution.
#[profile]
fn corpus(lines: usize) -> Vec<String> {
    let mut rng = Rng::new(5);
    (0..lines)
        .map(|_| {
            (0..12)
                .map(|_| {
                    // Squaring skews towards low ids: a few words are very common.
                    let r = rng.below(5000);
                    format!("w{}", r * r / 5000)
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

// ANCHOR: before
/// Before: every thread adds each line's words to the one shared map, under its one lock.
#[profile]
fn count_shared(lines: &[String], counts: &Mutex<HashMap<String, u64>>) {
    for line in lines {
        let mut map = {
            profile_scope!("lock wait");
            counts.lock().expect("no thread panics while holding the lock")
        };
        for word in line.split(' ') {
            *map.entry(word.to_owned()).or_default() += 1;
        }
    }
}
// ANCHOR_END: before

// ANCHOR: after
/// After: the map is split into shards by the word's hash. A thread sorts a batch of lines'
/// words by shard, then locks each shard once for its share, so two threads rarely want the
/// same lock at the same time, and each lock is taken less often.
#[profile]
fn count_sharded(lines: &[String], shards: &[Mutex<HashMap<String, u64>>], first: usize) {
    let mut by_shard: Vec<Vec<&str>> = vec![Vec::new(); shards.len()];
    for batch in lines.chunks(BATCH) {
        for word in batch.iter().flat_map(|line| line.split(' ')) {
            by_shard[shard_of(word, shards.len())].push(word);
        }
        // Threads start at different shards, so they do not queue up behind each other.
        for n in (0..shards.len()).map(|i| (first + i) % shards.len()) {
            let (shard, words) = (&shards[n], &mut by_shard[n]);
            let mut map = {
                profile_scope!("lock wait");
                shard.lock().expect("no thread panics while holding the lock")
            };
            for word in words.drain(..) {
                *map.entry(word.to_owned()).or_default() += 1;
            }
        }
    }
}
// ANCHOR_END: after

/// The shard of a word: FNV-1a of its bytes.
fn shard_of(word: &str, shards: usize) -> usize {
    let hash = word.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    hash as usize % shards
}

/// Runs `work` on [`THREADS`] named threads, one share of `lines` each, with the thread's index.
fn on_threads(lines: &[String], work: impl Fn(usize, &[String]) + Sync) {
    let share = lines.len().div_ceil(THREADS);
    std::thread::scope(|scope| {
        for (n, part) in lines.chunks(share).enumerate() {
            let work = &work;
            std::thread::Builder::new()
                .name(format!("counter-{n}"))
                .spawn_scoped(scope, move || work(n, part))
                .expect("spawn a counting thread");
        }
    });
}

#[profile]
fn run_before(lines: &[String]) -> HashMap<String, u64> {
    let counts = Mutex::new(HashMap::new());
    on_threads(lines, |_, part| count_shared(part, &counts));
    counts.into_inner().expect("not poisoned")
}

#[profile]
fn run_after(lines: &[String]) -> HashMap<String, u64> {
    let shards: Vec<_> = (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect();
    on_threads(lines, |n, part| count_sharded(part, &shards, n * SHARDS / THREADS));
    let mut all = HashMap::new();
    for shard in shards {
        all.extend(shard.into_inner().expect("not poisoned"));
    }
    all
}

// ANCHOR: main
fn main() {
    let lines = corpus(40_000);
    let prefix = output_prefix("case_lock_contention");
    let _ = profiler_runtime::flush();

    let before = run_before(&lines);
    let before_profile = profiler_runtime::flush();
    let after = run_after(&lines);
    let after_profile = profiler_runtime::flush();
    assert_eq!(before, after, "both variants must count the same words");

    println!(
        "{} lines, {} distinct words, {THREADS} threads",
        lines.len(),
        after.len()
    );
    println!(
        "{:<8} {:>12} {:>12} {:>16} {:>12}",
        "variant", "wall", "lock waits", "time waiting", "mean wait"
    );
    for (variant, profile, function) in [
        ("before", &before_profile, "run_before"),
        ("after", &after_profile, "run_after"),
    ] {
        let wall = measure::totals(profile, function);
        let waits = measure::totals(profile, "lock wait");
        println!(
            "{variant:<8} {:>12} {:>12} {:>16} {:>9} ns",
            measure::ms(wall.total_ns),
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
