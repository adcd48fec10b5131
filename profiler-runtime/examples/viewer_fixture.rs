//! Records a small real workload and writes the files that `viewers/check.mjs` loads into
//! Speedscope, Perfetto UI and the catapult trace viewer.
//!
//! ```text
//! cargo run -p profiler-runtime --features enable --example viewer_fixture -- OUTDIR
//! ```
//!
//! Writes `OUTDIR/fixture.trace.json`, `OUTDIR/fixture.speedscope.json` and
//! `OUTDIR/fixture.expect.json`. The last one lists, as the Rust strings the program used, the
//! thread and span names the viewers must show, so the check compares what a viewer decoded
//! against the source, not against our own JSON.
//!
//! The workload covers what viewers are known to be strict about:
//! - names full of quotes, backslashes, commas, `<T, U>` generics and non-ASCII characters, in
//!   spans and in thread names;
//! - nesting several levels deep, and recursion;
//! - threads that exit before the flush (their events are kept);
//! - a thread with a 16-event buffer, so most of its calls are dropped and counted;
//! - spans still open at the flush, nested, so a child ends exactly where its parent ends;
//! - a `ProfileContext` per request.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use profiler_runtime::export::{export_profile, Format};
use profiler_runtime::{buffer_capacity, profile_scope, set_buffer_capacity, ProfileContext};

/// A span name with every character class that needs escaping in JSON, or that naive CSV-like
/// parsing would split on.
const TRICKY_SCOPE: &str = "parse \"quoted\" C:\\path\\file, <T, U> naïve 日本語 ✓";
/// A thread name with the same.
const TRICKY_THREAD: &str = "io \"pool\", <A, B> \\ ünï";

const WORKERS: usize = 3;
const ITEMS_PER_WORKER: u64 = 100;

fn main() {
    let Some(out_dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: viewer_fixture OUTDIR");
        std::process::exit(2);
    };
    if let Err(e) = run(&out_dir) {
        eprintln!("viewer_fixture: {e}");
        std::process::exit(1);
    }
}

fn run(out_dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out_dir)?;
    profiler_runtime::enable();
    // Start from an empty profile: nothing recorded before this point.
    drop(profiler_runtime::flush());

    let request = ProfileContext::new("fixture \"main\" request");
    profile_scope!("spawn workers");

    // A thread with a tiny buffer: most of its calls are dropped. Its ring is claimed on its first
    // event, so the capacity is restored only after it has finished.
    let capacity = buffer_capacity();
    set_buffer_capacity(16);
    let tiny = named("tiny-buffer").spawn(|| {
        for i in 0..100 {
            profile_scope!("tiny::step");
            std::hint::black_box(checksum(i));
        }
    })?;
    tiny.join().map_err(|_| "tiny-buffer thread panicked")?;
    set_buffer_capacity(capacity);

    // Workers that exit before the flush.
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            named(&format!("worker-{w}")).spawn(move || {
                for item in 0..ITEMS_PER_WORKER {
                    process_item(w as u64 * ITEMS_PER_WORKER + item);
                }
            })
        })
        .collect::<Result<_, _>>()?;

    // A thread alive at the flush, inside two nested spans: both are closed at the flush time, so
    // the child ends exactly where its parent ends.
    let (at_flush_tx, at_flush_rx) = mpsc::channel::<()>();
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let long_lived = named(TRICKY_THREAD).spawn(move || {
        let _session = ProfileContext::new("session<Conn, \"tls\">");
        for i in 0..50 {
            profile_scope!("parse \"quoted\" C:\\path\\file, <T, U> naïve 日本語 ✓");
            std::hint::black_box(checksum(i));
        }
        profile_scope!("wait for shutdown");
        // The receiver lives until the flush below; a send error only means it is gone.
        let _ = entered_tx.send(());
        // Returns when main drops the sender, after the flush.
        let _ = at_flush_rx.recv();
    })?;

    for worker in workers {
        worker.join().map_err(|_| "worker thread panicked")?;
    }
    entered_rx.recv()?;

    let profile = profiler_runtime::flush();
    drop(at_flush_tx);
    long_lived
        .join()
        .map_err(|_| "long-lived thread panicked")?;
    drop(request);

    profile
        .validate()
        .map_err(|e| format!("the merged profile is malformed: {e}"))?;
    if profile.dropped_events == 0 {
        return Err("the tiny buffer dropped nothing: the fixture lost its overflow case".into());
    }

    let trace = out_dir.join("fixture.trace.json");
    let speedscope = out_dir.join("fixture.speedscope.json");
    export_profile(&profile, &trace, Some(Format::ChromeTrace))?;
    export_profile(&profile, &speedscope, Some(Format::Speedscope))?;
    std::fs::write(out_dir.join("fixture.expect.json"), expectations(&profile)?)?;
    println!(
        "wrote {} and {} ({} threads, {} spans, {} events dropped)",
        trace.display(),
        speedscope.display(),
        profile.threads.len(),
        profile.threads.iter().map(|t| t.spans.len()).sum::<usize>(),
        profile.dropped_events,
    );
    Ok(())
}

fn named(name: &str) -> thread::Builder {
    thread::Builder::new().name(name.to_owned())
}

fn process_item(item: u64) {
    profile_scope!("process_item");
    let parsed = {
        profile_scope!("parse \"quoted\" C:\\path\\file, <T, U> naïve 日本語 ✓");
        checksum(item)
    };
    let _request = (item % 50 == 0).then(|| ProfileContext::new("api_request, \"batch\""));
    std::hint::black_box(fib(4 + item % 4) ^ parsed);
}

/// Recursive, so the timeline nests one function inside itself.
fn fib(n: u64) -> u64 {
    profile_scope!("fib<u64>");
    if n < 2 {
        n
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

fn checksum(seed: u64) -> u64 {
    (0..64u64).fold(seed, |acc, x| {
        acc.rotate_left(5) ^ x.wrapping_mul(0x9E37_79B9)
    })
}

/// `{"threads": [...], "spans": [...], "dropped_events": N, "span_count": N, "depths": [...]}`:
/// the names as this program wrote them, and how many spans sit at each nesting depth, for the
/// viewer check to compare with what each viewer decoded and nested.
fn expectations(profile: &profiler_runtime::Profile) -> Result<String, String> {
    let mut threads: Vec<&str> = profile.threads.iter().map(|t| t.name.as_str()).collect();
    threads.sort_unstable();
    let mut spans: Vec<&str> = profile
        .threads
        .iter()
        .flat_map(|t| {
            t.spans
                .iter()
                .map(|s| profile.function(s.function).name.as_str())
        })
        .collect();
    spans.sort_unstable();
    spans.dedup();
    if !threads.contains(&TRICKY_THREAD) || !spans.contains(&TRICKY_SCOPE) {
        return Err(format!(
            "the profile lost a tricky name: threads {threads:?}, spans {spans:?}"
        ));
    }
    let mut depths: Vec<usize> = Vec::new();
    for span in profile.threads.iter().flat_map(|t| &t.spans) {
        let depth = span.depth as usize;
        if depths.len() <= depth {
            depths.resize(depth + 1, 0);
        }
        depths[depth] += 1;
    }
    let depths: Vec<String> = depths.iter().map(ToString::to_string).collect();
    Ok(format!(
        "{{\"threads\":[{}],\"spans\":[{}],\"dropped_events\":{},\"span_count\":{},\"depths\":[{}]}}\n",
        json_list(&threads),
        json_list(&spans),
        profile.dropped_events,
        profile.threads.iter().map(|t| t.spans.len()).sum::<usize>(),
        depths.join(","),
    ))
}

fn json_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| json_string(s))
        .collect::<Vec<_>>()
        .join(",")
}

/// Written independently of the exporters' escaping (serde_json is a dev-dependency of the
/// runtime), so a bug there cannot hide in the expectations too.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a str always serialises")
}
