//! Tutorial 03, chapter 01: write a flamegraph (and an icicle graph) of a real multi-threaded run,
//! the folded stacks it is drawn from, and a Speedscope file; then confirm by numbers what the
//! picture shows.
//!
//! Run: `cargo run --release -p profiler-examples --example 01_flamegraph_analysis`
//! Writes `target/profiles/01_flamegraph_analysis.{svg,icicle.svg,folded,speedscope.json}` (or
//! under `$PROFILER_OUTPUT`). Open the SVG in a browser: click a frame to zoom, search to highlight.

use profiler_examples::{logs, output_prefix};
use profiler_runtime::analyze::stats::function_stats;
use profiler_runtime::export::{export_profile, Format};

// ANCHOR: main
fn main() {
    profiler_runtime::enable();
    // The workload: the log analysis of Tutorial 01, 40k lines on 4 threads.
    let report = logs::run_analysis(40_000, 4);
    println!("{}", report.lines().next().unwrap_or_default());
    let profile = profiler_runtime::flush();

    // The flamegraph, its upside-down twin, the folded stacks, and Speedscope for exploring.
    let prefix = output_prefix("01_flamegraph_analysis");
    if let Some(dir) = prefix.parent() {
        std::fs::create_dir_all(dir).expect("create the output folder");
    }
    for format in [
        Format::FlamegraphSvg,
        Format::IcicleSvg,
        Format::Folded,
        Format::Speedscope,
    ] {
        let mut path = prefix.clone().into_os_string();
        path.push(format.extensions()[0]);
        if let Err(e) = export_profile(&profile, &path, Some(format)) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        println!("wrote {}", path.to_string_lossy());
    }

    // Confirm by numbers: the widest plateaus are the functions with the most self time.
    let mut stats = function_stats(&profile);
    stats.sort_by_key(|f| std::cmp::Reverse(f.self_ns));
    println!(
        "{:>10}  {:>6}  {:>8}  function",
        "self ms", "self%", "calls"
    );
    for f in stats.iter().take(5) {
        println!(
            "{:>10.3}  {:>5.1}%  {:>8}  {}",
            f.self_ns as f64 / 1e6,
            f.self_share * 100.0,
            f.calls,
            f.name
        );
    }
}
// ANCHOR_END: main
