//! What a native Perfetto trace holds, as this crate reads it back: `viewers/check.mjs` compares
//! what the real Perfetto UI shows of a streamed file with it.
//!
//! ```text
//! cargo run -p profiler-runtime --features enable --example perfetto_expect -- FILE.perfetto-trace
//! ```
//!
//! Prints one JSON object: `processName`, `threads` (names), `spans` (distinct span names),
//! `spanCount` (spans on threads, async spans apart), `incomplete` (spans still open when the
//! file ended), `asyncSpans`, and `depths` (spans of a nanosecond or more per nesting depth, as
//! the viewer checks count them).

use std::fs::File;

use profiler_runtime::import::read_perfetto;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: perfetto_expect FILE.perfetto-trace");
    let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let profile = read_perfetto(file, u64::MAX).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut depths: Vec<u64> = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    let mut count = 0u64;
    let mut incomplete = 0u64;
    for thread in &profile.threads {
        for span in &thread.spans {
            count += 1;
            incomplete += u64::from(span.flags.incomplete);
            names.insert(profile.functions[span.function as usize].name.clone());
            if span.duration_ns() > 0 {
                let d = span.depth as usize;
                if depths.len() <= d {
                    depths.resize(d + 1, 0);
                }
                depths[d] += 1;
            }
        }
    }
    let expect = serde_json::json!({
        "processName": profile.process_name,
        "threads": profile.threads.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        "spans": names,
        "spanCount": count,
        "incomplete": incomplete,
        "asyncSpans": profile.async_spans.len(),
        "depths": depths,
    });
    println!("{expect}");
}
