//! Tutorial 01: profile a real multi-threaded workload and open the result in a viewer.
//!
//! Run: `cargo run --release -p profiler-examples --example basic_profiling`
//! Streams `target/profiles/basic_profiling.perfetto-trace` (Perfetto) while it runs, and writes
//! `target/profiles/basic_profiling.trace.json` (Perfetto, chrome://tracing) and
//! `target/profiles/basic_profiling.speedscope.json` (Speedscope) at the end, or under
//! `$PROFILER_OUTPUT`.

use profiler_examples::{logs, output_prefix};

// ANCHOR: main
fn main() {
    // 1. Start the profiler: the guard writes the trace files when `main` returns.
    let profiler = profiler_runtime::Config::new()
        .output(output_prefix("basic_profiling"))
        .init();

    // 2. Run the instrumented workload: 50k log lines parsed on 4 threads.
    let report = logs::run_analysis(50_000, 4);
    println!("{report}");

    // 3. Write the files now (rather than at drop) to print where they are. The streamed trace
    //    was written during the run; `finish` completes it and makes the other formats from it.
    let streamed = profiler.config().stream_path();
    match profiler.finish() {
        Ok(paths) => {
            for path in streamed.into_iter().chain(paths) {
                println!("wrote {}", path.display());
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
// ANCHOR_END: main
