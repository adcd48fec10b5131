//! The streamed Perfetto trace (issue 15) read back: a file cut anywhere loads what came before
//! the cut, the stream and the in-memory flush of one run give the same spans, the streaming
//! summary equals the one computed from the whole profile, and `profiler summary` of a large
//! streamed file stays within a memory bound.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use profiler_runtime::analyze::report::Report;
use profiler_runtime::export::Format;
use profiler_runtime::import::{load_saved, SavedFile};
use profiler_runtime::import::{read_perfetto, summarize_perfetto};
use profiler_runtime::{profile, Config, Profile};

/// One recording at a time in this process: the stream and the rings are global.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("profiler-stream-{}", std::process::id()))
        .join(test);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[profile]
fn leaf(n: u64) -> u64 {
    std::hint::black_box(n.wrapping_mul(2_654_435_761) >> 7)
}

#[profile]
fn middle(n: u64) -> u64 {
    (0..4).map(|i| leaf(n + i)).sum::<u64>()
}

#[profile]
fn recurse(depth: u32) -> u64 {
    if depth == 0 {
        leaf(1)
    } else {
        recurse(depth - 1) + 1
    }
}

#[profile]
fn outer(calls: u64) -> u64 {
    let mut sum = 0u64;
    for i in 0..calls {
        sum = sum.wrapping_add(middle(i));
        if i % 100 == 0 {
            sum = sum.wrapping_add(recurse(5));
        }
    }
    sum
}

/// Pending the first time it is polled.
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

#[profile]
async fn step(n: u64) -> u64 {
    YieldOnce(false).await;
    leaf(n)
}

#[profile]
async fn task(n: u64) -> u64 {
    let mut sum = 0;
    for i in 0..n {
        sum += step(i).await;
    }
    sum
}

/// Polls `future` once on this thread; `true` when it completed.
fn poll_once<F: Future>(future: Pin<&mut F>) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    future.poll(&mut cx).is_ready()
}

fn block_on<F: Future>(future: F) {
    let mut future = std::pin::pin!(future);
    while !poll_once(future.as_mut()) {}
}

/// Four threads of nested and recursive calls and async tasks, one future that moves between
/// threads and one dropped before it completes: `calls` outer iterations a thread.
fn workload(calls: u64) {
    let mut moved = Box::pin(task(3));
    assert!(!poll_once(moved.as_mut()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let moved = (t == 0).then(|| std::mem::replace(&mut moved, Box::pin(task(0))));
            std::thread::Builder::new()
                .name(format!("worker-{t}"))
                .spawn(move || {
                    std::hint::black_box(outer(calls));
                    block_on(task(5 + t));
                    if let Some(moved) = moved {
                        block_on(moved);
                    }
                    let mut dropped = Box::pin(task(4));
                    assert!(!poll_once(dropped.as_mut()));
                    drop(dropped);
                })
                .unwrap()
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    block_on(moved);
    std::hint::black_box(outer(calls / 10));
}

/// Records `workload(calls)` streamed to `dir/run.perfetto-trace`; with `keep`, the events also
/// stay in memory, and the flush is returned.
fn record_stream(dir: &Path, calls: u64, keep: bool) -> (PathBuf, Option<Profile>) {
    let _ = profiler_runtime::flush();
    // Without `keep`, a Chrome trace too, made from the stream at the end.
    let formats: &[Format] = if keep { &[] } else { &[Format::ChromeTrace] };
    let guard = Config::new()
        .output(dir.join("run"))
        .formats(formats)
        .quiet(true)
        .signals(false)
        .collect_interval(Some(Duration::from_millis(2)))
        .stream(true)
        .stream_keep_in_memory(keep)
        .init();
    let path = guard.config().stream_path().unwrap();
    workload(calls);
    guard.finish().unwrap();
    let flushed = keep.then(profiler_runtime::flush);
    (path, flushed)
}

/// A span as both paths must agree on it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    name: String,
    tid: u32,
    start_ns: u64,
    end_ns: u64,
    depth: u32,
}

fn keys(profile: &Profile, complete_only: bool) -> Vec<Key> {
    let mut keys: Vec<Key> = profile
        .threads
        .iter()
        .flat_map(|t| t.spans.iter().map(move |s| (t.tid, s)))
        .filter(|(_, s)| !(complete_only && s.flags.incomplete))
        .map(|(tid, s)| Key {
            name: profile.function(s.function).name.clone(),
            tid,
            start_ns: s.start_ns,
            end_ns: s.end_ns,
            depth: s.depth,
        })
        .collect();
    keys.sort();
    keys
}

/// Async spans as (name, start, end, start thread, end thread, cancelled), sorted.
fn async_keys(profile: &Profile) -> Vec<(String, u64, u64, u32, u32, bool)> {
    let mut keys: Vec<_> = profile
        .async_spans
        .iter()
        .map(|s| {
            (
                profile.function(s.function).name.clone(),
                s.start_ns,
                s.end_ns,
                s.start_tid,
                s.end_tid,
                s.cancelled,
            )
        })
        .collect();
    keys.sort();
    keys
}

fn read(path: &Path) -> Profile {
    read_perfetto(std::fs::File::open(path).unwrap(), u64::MAX).unwrap()
}

/// Issue 15: "the streamed file and the in-memory flush of the same run convert to the same
/// spans", on threads (nested, recursive, async polls) and async spans (one that moved between
/// threads, one cancelled), over a run with many collector drains and no flush but the last.
#[test]
fn the_stream_and_the_flush_of_one_run_hold_the_same_spans() {
    let _serial = serial();
    let dir = temp_dir("same-spans");
    let (path, flushed) = record_stream(&dir, 3_000, true);
    let flushed = flushed.unwrap();
    let streamed = read(&path);
    assert_eq!(flushed.dropped_events, 0, "a run without drops");
    assert_eq!(streamed.dropped_events, 0);

    let from_flush = keys(&flushed, false);
    let from_stream = keys(&streamed, false);
    assert!(from_flush.len() > 60_000, "{} spans", from_flush.len());
    assert_eq!(from_stream.len(), from_flush.len());
    if let Some((s, f)) = from_stream.iter().zip(&from_flush).find(|(s, f)| s != f) {
        panic!("first difference: streamed {s:?}, flushed {f:?}");
    }
    assert!(from_stream.iter().any(|k| k.depth >= 7), "recursion nests");
    let async_flushed = async_keys(&flushed);
    assert_eq!(async_keys(&streamed), async_flushed);
    assert!(async_flushed.iter().any(|k| k.5), "a cancelled future");
    assert!(
        async_flushed.iter().any(|k| k.3 != k.4),
        "a future that moved"
    );
    let names = |p: &Profile| -> Vec<(String, u32)> {
        let mut t: Vec<_> = p.threads.iter().map(|t| (t.name.clone(), t.tid)).collect();
        t.sort();
        t
    };
    assert_eq!(names(&streamed), names(&flushed));

    // The streaming summary is the whole profile's: statistics, call tree and threads; the
    // percentiles of a function called more than 4096 times come from a histogram, within 1%.
    let mut whole = Report::new(&streamed);
    whole.run.host = None;
    let summary = summarize_perfetto(std::fs::File::open(&path).unwrap(), u64::MAX).unwrap();
    assert_eq!(summary.run, whole.run);
    assert_eq!(summary.call_tree, whole.call_tree);
    assert_eq!(summary.functions.len(), whole.functions.len());
    for (s, w) in summary.functions.iter().zip(&whole.functions) {
        let mut s = s.clone();
        assert!(
            (s.mean_ns - w.mean_ns).abs() <= w.mean_ns * 1e-12,
            "{}",
            w.name
        );
        s.mean_ns = w.mean_ns;
        if w.calls > 4096 {
            for (approx, exact) in [
                (&mut s.p50_ns, w.p50_ns),
                (&mut s.p90_ns, w.p90_ns),
                (&mut s.p99_ns, w.p99_ns),
            ] {
                assert!(
                    approx.abs_diff(exact) <= exact / 100 + 1,
                    "{}: {approx} vs {exact}",
                    w.name
                );
                *approx = exact;
            }
        }
        assert_eq!(&s, w);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The end of the first top-level packet: a cut before it loses the run's opening.
fn first_packet_end(bytes: &[u8]) -> usize {
    assert_eq!(bytes[0], 0x0a);
    let (mut len, mut shift, mut at) = (0usize, 0, 1);
    loop {
        let b = bytes[at];
        at += 1;
        len |= usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return at + len;
        }
    }
}

/// Issue 15: a streamed file cut at 100 random byte offsets loads, and each cut holds a
/// prefix-consistent subset of the whole file: every span complete in the cut is in the whole
/// file as it is there, and the spans never get fewer as the cut moves later.
#[test]
fn a_stream_cut_anywhere_loads_a_consistent_prefix() {
    let _serial = serial();
    let dir = temp_dir("cuts");
    let (path, _) = record_stream(&dir, 2_000, false);
    let bytes = std::fs::read(&path).unwrap();
    let full = read_perfetto(&bytes[..], u64::MAX).unwrap();
    // The Chrome trace the guard made from the stream at the end holds its spans.
    let SavedFile::Timeline(chrome) = load_saved(dir.join("run.trace.json")).unwrap() else {
        panic!("a Chrome trace has a timeline")
    };
    assert_eq!(chrome.span_count(), full.span_count());
    let mut full_keys: HashMap<Key, usize> = HashMap::new();
    for key in keys(&full, false) {
        *full_keys.entry(key).or_default() += 1;
    }
    let opening = first_packet_end(&bytes);
    assert!(
        bytes.len() > opening + 20_000,
        "several batches: {} bytes",
        bytes.len()
    );
    let mut rng = fastrand::Rng::with_seed(15);
    let mut offsets: Vec<usize> = (0..100).map(|_| rng.usize(opening..=bytes.len())).collect();
    offsets.sort_unstable();
    let (mut last_spans, mut last_complete) = (0, 0);
    for &cut in &offsets {
        let profile = read_perfetto(&bytes[..cut], u64::MAX)
            .unwrap_or_else(|e| panic!("cut at {cut} of {}: {e}", bytes.len()));
        let spans = profile.span_count();
        let complete = keys(&profile, true);
        assert!(
            spans >= last_spans,
            "cut at {cut}: {spans} < {last_spans} spans"
        );
        assert!(complete.len() >= last_complete, "cut at {cut}");
        let mut seen: HashMap<&Key, usize> = HashMap::new();
        for key in &complete {
            let n = seen.entry(key).or_default();
            *n += 1;
            assert!(
                full_keys.get(key).copied().unwrap_or(0) >= *n,
                "cut at {cut}: {key:?} is not in the whole file"
            );
        }
        (last_spans, last_complete) = (spans, complete.len());
    }
    assert_eq!(
        read_perfetto(&bytes[..], u64::MAX).unwrap().span_count(),
        full.span_count()
    );
    // Cuts inside the opening packet fail cleanly or load, never panic.
    for cut in 0..opening.min(64) {
        let _ = read_perfetto(&bytes[..cut], u64::MAX);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 15: "a summary of a 1 GB trace within 300 MB of resident memory". A recorded stream is
/// repeated into a file of `PROFILER_TEST_SUMMARY_MB` MiB (default 8: a few seconds for the
/// debug build; the benches README has the 1 GB run), which `profiler summary` must summarise
/// within 300 MiB of address space and 48 MiB of resident memory: the spans of the whole
/// profile would take about 40 bytes each, 56 MiB at the default size.
#[test]
#[cfg(target_os = "linux")]
fn summary_of_a_large_stream_stays_in_bounded_memory() {
    use std::io::Write as _;
    let mib: u64 = std::env::var("PROFILER_TEST_SUMMARY_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let dir = temp_dir("large");
    let base = {
        let _serial = serial();
        let (path, _) = record_stream(&dir, 20_000, false);
        std::fs::read(path).unwrap()
    };
    let base_spans = read_perfetto(&base[..], u64::MAX).unwrap().span_count() as u64;
    let large = dir.join("large.perfetto-trace");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&large).unwrap());
    let copies = (mib << 20).div_ceil(base.len() as u64);
    for _ in 0..copies {
        out.write_all(&base).unwrap();
    }
    out.flush().unwrap();
    drop(out);

    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {} && exec \"$@\"", 300 * 1024))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_profiler"))
        .args(["summary", "--max-input-size", "4G", "--top", "5"])
        .arg(&large)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The child's peak resident set, read from /proc while it runs (the last reading before it
    // exits): `getrusage(RUSAGE_CHILDREN)` would count this test process, which the child
    // starts as a copy of.
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let output = loop {
        if let Ok(text) = std::fs::read_to_string(&status) {
            if let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            {
                peak_kib = kib;
            }
        }
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}{}",
        text,
        String::from_utf8_lossy(&output.stderr)
    );
    let spans: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("threads: "))
        .unwrap()
        .split(" spans")
        .filter_map(|part| part.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(spans, base_spans * copies, "{text}");
    eprintln!(
        "summary of {} MiB ({spans} spans): {peak_kib} KiB resident at most",
        (copies * base.len() as u64) >> 20
    );
    assert!(peak_kib < 48 * 1024, "{peak_kib} KiB");
    let _ = std::fs::remove_dir_all(&dir);
}
