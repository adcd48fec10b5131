//! Tutorial 04, case study 3: request handlers that are slow between their polls, not within
//! them. Export jobs hash large buffers inline on the runtime's worker threads, so a handler whose
//! timer has fired waits for a free worker; moving the hashing to `spawn_blocking` fixes it.
//!
//! Run: `cargo run --release -p profiler-examples --example case_async_between_polls`
//! Runs the slow variant, then the fixed one, in one process; writes
//! `target/profiles/case_async_between_polls-before.*` and `-after.*` (or under `$PROFILER_OUTPUT`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use profiler_examples::logs::Rng;
use profiler_examples::{measure, output_prefix};
use profiler_runtime::profile;

const REQUESTS: u32 = 200;
const EXPORTS: u32 = 8;

/// FNV-1a over the buffer, a few rounds: CPU-bound, with no await in it.
#[profile]
fn checksum(data: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for round in 0..3u8 {
        for &byte in data {
            hash = (hash ^ u64::from(byte ^ round)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

// ANCHOR: before
/// Before: the export hashes on the worker thread that polls it, blocking that worker.
#[profile]
async fn export_inline(data: Arc<Vec<u8>>) -> u64 {
    checksum(&data)
}
// ANCHOR_END: before

// ANCHOR: after
/// After: the hashing runs on tokio's blocking pool; the worker is free while it runs.
#[profile]
async fn export_offloaded(data: Arc<Vec<u8>>) -> u64 {
    tokio::task::spawn_blocking(move || checksum(&data))
        .await
        .expect("the checksum does not panic")
}
// ANCHOR_END: after

/// Parses a request line: `GET /items/<id>?fields=a,b,c`.
#[profile]
fn parse_request(line: &str) -> (u32, Vec<String>) {
    let (path, query) = line.split_once('?').unwrap_or((line, ""));
    let id = path
        .rsplit('/')
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or(0);
    let fields = query
        .strip_prefix("fields=")
        .map(|f| f.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    (id, fields)
}

// ANCHOR: handler
/// One request: parse, wait 1 ms for a downstream service, render. Its own polls take
/// microseconds; its life is what the client waits for.
#[profile]
async fn handle(line: String) -> String {
    let (id, fields) = parse_request(&line);
    tokio::time::sleep(Duration::from_millis(1)).await; // the downstream call
    let mut body = format!("{{\"id\":{id}");
    for field in fields {
        let _ = write!(body, ",\"{field}\":\"{field}-{id}\"");
    }
    body.push('}');
    body
}
// ANCHOR_END: handler

/// Serves [`REQUESTS`] requests arriving every 500 us while [`EXPORTS`] export jobs start every
/// 25 ms. Returns the total length of the responses and the export checksums.
async fn serve(data: Arc<Vec<u8>>, offload: bool) -> (usize, Vec<u64>) {
    let mut rng = Rng::new(3);
    let exports: Vec<_> = (0..EXPORTS)
        .map(|n| {
            let data = Arc::clone(&data);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(25 * u64::from(n))).await;
                if offload {
                    export_offloaded(data).await
                } else {
                    export_inline(data).await
                }
            })
        })
        .collect();
    let mut requests = Vec::new();
    let mut arrivals = tokio::time::interval(Duration::from_micros(500));
    for _ in 0..REQUESTS {
        arrivals.tick().await;
        let line = format!("GET /items/{}?fields=name,price,stock", rng.below(10_000));
        requests.push(tokio::spawn(handle(line)));
    }
    let mut bytes = 0;
    for request in requests {
        bytes += request.await.expect("handler").len();
    }
    let mut sums = Vec::new();
    for export in exports {
        sums.push(export.await.expect("export"));
    }
    (bytes, sums)
}

// ANCHOR: main
fn main() {
    let mut rng = Rng::new(8);
    let data: Arc<Vec<u8>> = Arc::new((0..8_000_000).map(|_| rng.next_u64() as u8).collect());
    let prefix = output_prefix("case_async_between_polls");
    let _ = profiler_runtime::flush();

    let mut results = Vec::new();
    let mut profiles = Vec::new();
    for offload in [false, true] {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(if offload {
                "after-worker"
            } else {
                "before-worker"
            })
            .enable_all()
            .build()
            .expect("a tokio runtime");
        results.push(runtime.block_on(serve(Arc::clone(&data), offload)));
        drop(runtime);
        profiles.push(profiler_runtime::flush());
    }
    assert_eq!(results[0], results[1], "both variants must answer the same");

    println!(
        "{REQUESTS} requests, {EXPORTS} exports of {} MB",
        data.len() / 1_000_000
    );
    println!(
        "{:<8} {:>14} {:>14} {:>18} {:>8}",
        "variant", "handle: wall", "in polls", "between polls", "polls"
    );
    for (variant, profile) in ["before", "after"].iter().zip(&profiles) {
        let h = measure::async_totals(profile, "handle");
        let per_call = |ns: u64| ns.checked_div(h.calls).unwrap_or(0);
        println!(
            "{variant:<8} {:>14} {:>14} {:>18} {:>8}   (mean per request)",
            measure::ms(per_call(h.wall_ns)),
            measure::us(per_call(h.busy_ns)),
            measure::ms(per_call(h.between_polls_ns())),
            h.polls
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
