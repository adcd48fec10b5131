//! Tutorial 03, chapter 02: export one recording to every format through one entry point, then
//! read the profile JSON and the CSV back as another tool would.
//!
//! Run: `cargo run --release -p profiler-examples --example 02_export_integration`
//! Writes `target/profiles/02_export_integration.{trace.json,speedscope.json,json,csv,folded,svg,icicle.svg}`
//! (or under `$PROFILER_OUTPUT`), then try
//! `cargo run -p profiler-runtime --features cli --bin profiler -- summary target/profiles/02_export_integration.json`.

use std::fmt::Write as _;

use profiler_examples::output_prefix;
use profiler_runtime::analyze::report::Report;
use profiler_runtime::export::{export_profile, Format};
use profiler_runtime::profile_scope;

/// A small expression evaluator: tokenise, then evaluate recursively (so the profile shows
/// recursion merged into one inclusive time).
fn tokenize(input: &str) -> Vec<i64> {
    profile_scope!("analysis::tokenize");
    input
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|t| t.parse().ok())
        .collect()
}

fn evaluate(values: &[i64]) -> i64 {
    profile_scope!("analysis::evaluate");
    match values {
        [] => 0,
        [one] => checksum(*one),
        _ => {
            let (left, right) = values.split_at(values.len() / 2);
            evaluate(left).wrapping_add(evaluate(right))
        }
    }
}

fn checksum(value: i64) -> i64 {
    profile_scope!("analysis::checksum");
    (0..64).fold(value, |acc, i| acc.wrapping_mul(31).wrapping_add(i))
}

fn job(seed: i64) -> i64 {
    profile_scope!("analysis::job");
    let input = (0..256).fold(String::new(), |mut text, i| {
        let _ = write!(text, "{} + ", seed * 7 + i);
        text
    });
    evaluate(&tokenize(&input))
}

// ANCHOR: main
fn main() {
    profiler_runtime::enable();
    let workers: Vec<_> = (0..3)
        .map(|w| {
            std::thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || {
                    (0..100)
                        .map(|i| job(w * 1000 + i))
                        .fold(0, i64::wrapping_add)
                })
                .expect("spawn a worker")
        })
        .collect();
    let total = workers
        .into_iter()
        .map(|w| w.join().expect("worker finished"))
        .fold(0, i64::wrapping_add);
    println!("checksum {total}");

    let profile = profiler_runtime::flush();
    let prefix = output_prefix("02_export_integration");
    if let Some(dir) = prefix.parent() {
        std::fs::create_dir_all(dir).expect("create the output folder");
    }
    // One entry point; the format follows the file name.
    for format in Format::ALL {
        let mut path = prefix.clone().into_os_string();
        path.push(format.extensions()[0]);
        match export_profile(&profile, &path, None) {
            Ok(()) => println!("wrote {}", path.to_string_lossy()),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    }
    // Read back as another tool would: the versioned profile JSON, and the CSV.
    let mut json = prefix.clone().into_os_string();
    json.push(".json");
    let saved = Report::load(&json).expect("the profile JSON reads back");
    println!(
        "read back {} functions, {} threads, {} dropped events",
        saved.functions.len(),
        saved.run.threads.len(),
        saved.run.dropped_events
    );
    let mut csv = prefix.clone().into_os_string();
    csv.push(".csv");
    let table = std::fs::read_to_string(&csv).expect("the CSV reads back");
    println!("CSV header: {}", table.lines().next().unwrap_or(""));
    // The statistics in code: the three functions with the most self time.
    let mut report = Report::new(&profile);
    report
        .functions
        .sort_by_key(|f| std::cmp::Reverse(f.self_ns));
    for f in report.functions.iter().take(3) {
        println!(
            "{:<24} {:>8} calls {:>12} ns self",
            f.name, f.calls, f.self_ns
        );
    }
}
// ANCHOR_END: main
