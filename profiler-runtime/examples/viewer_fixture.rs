//! Records small real workloads and writes the files that `viewers/check.mjs` loads into
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
//! - a `ProfileContext` per request;
//! - an `async fn` first polled on one thread and finished on another (an async span).
//!
//! It also writes `OUTDIR/siblings.trace.json` and `OUTDIR/siblings.expect.json`: a second
//! recording, sibling-heavy (calls back to back at several depths, of one function and of
//! several, on many threads), put on a 100 ns grid as a clock of that resolution would have
//! recorded it (Windows' `QueryPerformanceCounter` ticks at 10 MHz), and moved 30 hours after
//! the profiler's epoch, as in a long-running service.
//! On the grid, calls end exactly where their next sibling starts, children end with their
//! parents, and short calls take zero time: the ties that floating-point readers (Speedscope)
//! get wrong, here on every run and machine instead of now and then with a fine clock.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::thread;

use profiler_runtime::export::{export_profile, Format};
use profiler_runtime::{
    buffer_capacity, profile, profile_scope, set_buffer_capacity, Profile, ProfileContext,
};

/// A span name with every character class that needs escaping in JSON, or that naive CSV-like
/// parsing would split on.
const TRICKY_SCOPE: &str = "parse \"quoted\" C:\\path\\file, <T, U> naïve 日本語 ✓";
/// A thread name with the same.
const TRICKY_THREAD: &str = "io \"pool\", <A, B> \\ ünï";

const WORKERS: usize = 3;
const ITEMS_PER_WORKER: u64 = 100;

/// Threads of the sibling-heavy recording.
const SIBLING_THREADS: u64 = 8;
/// Batches each of them runs.
const BATCHES: u64 = 12;
/// The grid the sibling-heavy recording is put on, ns.
const GRID_NS: u64 = 100;
/// How long after the profiler's epoch it is moved: 30 hours, in ns.
const LATER_NS: u64 = 30 * 3_600 * 1_000_000_000;

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

    // An async span: first polled here, finished on another thread.
    let mut fetch = Box::pin(fetch_page(7));
    let mut cx = Context::from_waker(Waker::noop());
    if fetch.as_mut().poll(&mut cx).is_ready() {
        return Err(
            "fetch_page finished on its first poll: the fixture lost its async span".into(),
        );
    }
    named("async poller")
        .spawn(move || {
            let mut cx = Context::from_waker(Waker::noop());
            while fetch.as_mut().poll(&mut cx).is_pending() {}
        })?
        .join()
        .map_err(|_| "async poller thread panicked")?;

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
    let tricky_thread = profile.threads.iter().any(|t| t.name == TRICKY_THREAD);
    let tricky_scope = profile
        .threads
        .iter()
        .flat_map(|t| &t.spans)
        .any(|s| profile.function(s.function).name == TRICKY_SCOPE);
    if !tricky_thread || !tricky_scope {
        return Err("the profile lost a tricky name (thread or span)".into());
    }
    if profile.async_spans.len() != 1 {
        return Err(format!("{} async spans, expected 1", profile.async_spans.len()).into());
    }

    let trace = out_dir.join("fixture.trace.json");
    let speedscope = out_dir.join("fixture.speedscope.json");
    export_profile(&profile, &trace, Some(Format::ChromeTrace))?;
    export_profile(&profile, &speedscope, Some(Format::Speedscope))?;
    std::fs::write(out_dir.join("fixture.expect.json"), expectations(&profile))?;
    println!(
        "wrote {} and {} ({} threads, {} spans, {} events dropped)",
        trace.display(),
        speedscope.display(),
        profile.threads.len(),
        profile.threads.iter().map(|t| t.spans.len()).sum::<usize>(),
        profile.dropped_events,
    );
    siblings(out_dir)
}

/// The sibling-heavy recording, on a 100 ns grid and 30 hours later (see the module docs).
fn siblings(out_dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    drop(profiler_runtime::flush());
    let threads: Vec<_> = (0..SIBLING_THREADS)
        .map(|t| {
            named(&format!("siblings-{t}")).spawn(move || {
                for batch in 0..BATCHES {
                    sibling_batch(t * BATCHES + batch);
                }
            })
        })
        .collect::<Result<_, _>>()?;
    for thread in threads {
        thread.join().map_err(|_| "siblings thread panicked")?;
    }
    let mut profile = profiler_runtime::flush();
    on_grid_later(&mut profile, GRID_NS, LATER_NS);
    profile
        .validate()
        .map_err(|e| format!("the sibling-heavy profile is malformed: {e}"))?;

    let spans = || profile.threads.iter().flat_map(|t| &t.spans);
    let zero_length = spans().filter(|s| s.duration_ns() == 0).count();
    let back_to_back = profile
        .threads
        .iter()
        .map(|t| {
            let starts: std::collections::HashSet<u64> =
                t.spans.iter().map(|s| s.start_ns).collect();
            t.spans
                .iter()
                .filter(|s| s.duration_ns() > 0 && starts.contains(&s.end_ns))
                .count()
        })
        .sum::<usize>();
    if back_to_back == 0 || zero_length == 0 {
        return Err(format!(
            "the grid made {back_to_back} back-to-back calls and {zero_length} zero-length ones: \
             the sibling-heavy trace lost its ties"
        )
        .into());
    }
    let trace = out_dir.join("siblings.trace.json");
    export_profile(&profile, &trace, Some(Format::ChromeTrace))?;
    std::fs::write(out_dir.join("siblings.expect.json"), expectations(&profile))?;
    println!(
        "wrote {} ({} threads, {} spans: {back_to_back} end where another starts, {zero_length} take no time)",
        trace.display(),
        profile.threads.len(),
        spans().count(),
    );
    Ok(())
}

/// Rounds every time of `profile` down to a multiple of `grid_ns`, as a clock of that resolution
/// would have read it, then adds `later_ns`. Rounding down keeps the nesting: a child still lies
/// within its parent, and a call still ends at or before its next sibling starts.
fn on_grid_later(profile: &mut Profile, grid_ns: u64, later_ns: u64) {
    let at = |ns: u64| ns / grid_ns * grid_ns + later_ns;
    profile.start_ns = at(profile.start_ns);
    profile.end_ns = at(profile.end_ns);
    for span in profile.threads.iter_mut().flat_map(|t| &mut t.spans) {
        span.start_ns = at(span.start_ns);
        span.end_ns = at(span.end_ns);
    }
    for span in &mut profile.async_spans {
        span.start_ns = at(span.start_ns);
        span.end_ns = at(span.end_ns);
    }
}

/// Calls back to back at three depths: stages, steps of one function and of several, and short
/// leaves, some of them last in their parent.
fn sibling_batch(seed: u64) {
    profile_scope!("batch");
    for stage in 0..6 {
        profile_scope!("stage");
        for step in 0..5 {
            if step % 2 == 0 {
                profile_scope!("step");
                leaf(seed ^ step);
            } else {
                profile_scope!("check");
            }
        }
        profile_scope!("step");
        std::hint::black_box(checksum(seed + stage));
        leaf(seed);
    }
}

fn leaf(seed: u64) {
    profile_scope!("leaf");
    std::hint::black_box(seed.rotate_left(7));
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

/// Returns after its second poll, so its async span outlives the first.
#[profile]
async fn fetch_page(n: u64) -> u64 {
    YieldOnce(false).await;
    checksum(n)
}

/// Pending on its first poll, ready on the next.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
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

/// `{"threads": [...], "spans": [...], "dropped_events": N, "span_count": N, "depths": [...],
/// "async_spans": N}`: the names as this program wrote them, how many spans of a nanosecond or
/// more sit at each nesting depth, and how many async spans there are, for the viewer check to
/// compare with what each viewer decoded and nested.
fn expectations(profile: &Profile) -> String {
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
    // Calls shorter than a nanosecond are left out: in whole nanoseconds, as Perfetto and
    // catapult read the trace, one on its parent's last nanosecond could as well be the next
    // sibling's, and each viewer decides its own way. Longer calls nest unambiguously.
    let mut depths: Vec<usize> = Vec::new();
    for span in profile
        .threads
        .iter()
        .flat_map(|t| &t.spans)
        .filter(|s| s.duration_ns() > 0)
    {
        let depth = span.depth as usize;
        if depths.len() <= depth {
            depths.resize(depth + 1, 0);
        }
        depths[depth] += 1;
    }
    let depths: Vec<String> = depths.iter().map(ToString::to_string).collect();
    format!(
        "{{\"threads\":[{}],\"spans\":[{}],\"dropped_events\":{},\"span_count\":{},\"depths\":[{}],\"async_spans\":{}}}\n",
        json_list(&threads),
        json_list(&spans),
        profile.dropped_events,
        profile.threads.iter().map(|t| t.spans.len()).sum::<usize>(),
        depths.join(","),
        profile.async_spans.len(),
    )
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
