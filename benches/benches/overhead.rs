//! Overhead per instrumented call (one enter + one exit), this project side by side with the
//! peers, in one run. See `benches/README.md` for the setup of each case and the results.
//!
//! Every case runs its calls in batches of [`BATCH`] and, where the profiler has a consumer side,
//! drains it between batches *inside the timed region* (our `drain()` or `flush()`, fastrace's
//! root span end and `flush()`, puffin's `new_frame()`, tracing-chrome's `FlushGuard::flush()`):
//! the figures include the cost of getting the events out, and the buffers never fill. Ours is
//! measured three ways: `drain()` timed (the events leave the ring; merged later, outside), the
//! background collector thread of `Config::init` (its CPU time in the CPU column), and `flush()`
//! timed (drain and merge into a `Profile`, the per-call share of the merge included). Process CPU time is
//! tallied beside wall time, so background threads are counted too; the table printed at the end
//! shows both.
//!
//! Run: `CARGO_TARGET_DIR=... cargo bench -p profiler-benches --bench overhead -- --warm-up-time 1
//! --measurement-time 2`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion};
use profiler_benches::measure::{mib, rss_bytes, Elapsed, Stopwatch};
use profiler_benches::{bare, floor, nested10, recorded, scope_in_loop, work};

/// Calls between two drains: 2^17 events of ours, an eighth of the default ring.
const BATCH: u64 = 1 << 16;

/// Batches between two flushes where ours only drains after each batch: what the drains hold
/// then (2^19 events) fits in the memory the flush keeps for reuse (a ring's worth).
const DRAINS_PER_FLUSH: u64 = 4;

/// Whole-run totals of one case (warm-up included: criterion calls the routine then too).
#[derive(Debug, Default, Clone)]
struct Tally {
    name: String,
    /// Calls per thread.
    calls: u64,
    threads: u32,
    spans_per_call: u32,
    elapsed: Elapsed,
    dropped: u64,
    rss_growth: i64,
}

static TALLIES: Mutex<Vec<Tally>> = Mutex::new(Vec::new());

fn tally(
    name: &str,
    threads: u32,
    spans_per_call: u32,
    calls: u64,
    elapsed: Elapsed,
    dropped: u64,
    rss_growth: i64,
) {
    let mut tallies = TALLIES.lock().unwrap();
    let index = tallies
        .iter()
        .position(|t| t.name == name)
        .unwrap_or_else(|| {
            tallies.push(Tally {
                name: name.to_owned(),
                threads,
                spans_per_call,
                ..Tally::default()
            });
            tallies.len() - 1
        });
    let t = &mut tallies[index];
    t.calls += calls;
    t.elapsed += elapsed;
    t.dropped += dropped;
    t.rss_growth += rss_growth;
}

/// Resident memory now, in bytes (0 where unknown).
fn rss_now() -> i64 {
    i64::try_from(rss_bytes().unwrap_or(0)).unwrap_or(i64::MAX)
}

/// Runs `iters` calls of `call` in batches, calling `between` after each batch.
// Inlined into every case so that each case's loop is specialised to its own function.
#[allow(clippy::inline_always)]
#[inline(always)]
fn batched(iters: u64, call: impl Fn(u64) -> u64, mut between: impl FnMut()) {
    let mut done = 0;
    while done < iters {
        let n = BATCH.min(iters - done);
        for i in done..done + n {
            black_box(call(black_box(i)));
        }
        done += n;
        between();
    }
}

/// Runs `iters` calls of ours in batches, timing each batch with `after_batch` (how the case gets
/// its events out of the ring, if it does), and flushing outside the timed region every
/// `flush_every` batches and at the end. Returns the time and the dropped events.
fn timed_batches(iters: u64, flush_every: u64, mut after_batch: impl FnMut()) -> (Elapsed, u64) {
    let mut elapsed = Elapsed::default();
    let mut dropped = 0;
    let mut done = 0;
    let mut batches = 0;
    while done < iters {
        let n = BATCH.min(iters - done);
        let watch = Stopwatch::start();
        for i in done..done + n {
            black_box(recorded(black_box(i)));
        }
        after_batch();
        elapsed += watch.elapsed();
        done += n;
        batches += 1;
        // A long-running program flushes now and then; the merge is not in these figures.
        if batches % flush_every == 0 {
            dropped += flush_dropped();
        }
    }
    (elapsed, dropped + flush_dropped())
}

/// Times `body` (which returns the events it saw dropped) and tallies it under `name`.
fn timed(name: &str, iters: u64, body: impl FnOnce() -> u64) -> Duration {
    let rss_before = rss_now();
    let watch = Stopwatch::start();
    let dropped = body();
    let elapsed = watch.elapsed();
    let rss_growth = rss_now() - rss_before;
    tally(name, 1, 1, iters, elapsed, dropped, rss_growth);
    elapsed.wall
}

fn flush_dropped() -> u64 {
    profiler_runtime::flush().dropped_events
}

fn case(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &'static str,
    routine: impl Fn(u64) -> Duration,
) {
    group.bench_function(name, |b| b.iter_custom(&routine));
}

// ---------------------------------------------------------------------------------------------
// This project.

/// Two threads record the same number of calls at once, each flushing after each of its batches
/// (a flush drains both rings while the other thread keeps recording). Wall time is per call per
/// thread.
fn ours_two_threads(iters: u64) -> Duration {
    let name = "ours: recording, 2 threads at once";
    let barrier = Barrier::new(2);
    let rss_before = rss_now();
    let (elapsed, dropped) = std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .name("bench-worker".into())
            .spawn_scoped(s, || {
                barrier.wait();
                let mut dropped = 0;
                batched(iters, recorded, || dropped += flush_dropped());
                dropped
            })
            .expect("spawn the worker");
        barrier.wait();
        let watch = Stopwatch::start();
        let mut dropped = 0;
        batched(iters, recorded, || dropped += flush_dropped());
        dropped += worker.join().expect("worker");
        dropped += flush_dropped();
        (watch.elapsed(), dropped)
    });
    let rss_growth = rss_now() - rss_before;
    tally(name, 2, 1, iters, elapsed, dropped, rss_growth);
    elapsed.wall
}

/// A thread whose ring (16 events) is full: every call takes the dropped-event path.
fn ours_ring_full(iters: u64) -> Duration {
    let name = "ours: ring full (dropped path)";
    let result = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("bench-full-ring".into())
            .spawn_scoped(s, || {
                profiler_runtime::set_buffer_capacity(16);
                black_box(recorded(0));
                profiler_runtime::set_buffer_capacity(profiler_runtime::DEFAULT_BUFFER_EVENTS);
                for i in 0..16 {
                    black_box(recorded(i));
                }
                let watch = Stopwatch::start();
                batched(iters, recorded, || {});
                watch.elapsed()
            })
            .expect("spawn")
            .join()
            .expect("join")
    });
    let dropped = flush_dropped();
    tally(name, 1, 1, iters, result, dropped, 0);
    result.wall
}

/// `drain()` after each batch, timed (what the background collector does); a flush every
/// [`DRAINS_PER_FLUSH`] batches, as a long-running program would, is not: the merge's cost is in
/// [`OURS_FLUSHED`].
const OURS_DRAINED: &str = "ours: recording, drain timed";
/// The background collector thread started by `Config::init` drains every millisecond; its CPU
/// time counts in the CPU column (process CPU time, while the batches run), the flushes every
/// [`DRAINS_PER_FLUSH`] batches do not.
const OURS_BACKGROUND: &str = "ours: recording, background collector";
/// `flush()` between batches, timed: drain plus the merge into a `Profile`.
const OURS_FLUSHED: &str = "ours: recording, flush timed";

/// The paired measurement of the switched-off path: its criterion name.
const PAIRED: &str = "ours: disable()d and bare call, paired";

/// Calls in each half of a pair.
const PAIR_RUN: u64 = 4096;

/// Per pair, ns per call of the switched-off call minus the bare call.
static PAIRED_DIFFS: Mutex<Vec<f64>> = Mutex::new(Vec::new());

/// The switched-off call and the bare call in alternating runs of [`PAIR_RUN`] calls (the order
/// within a pair alternates too), each run timed with `Instant`: both sides see the same
/// neighbours and clock speed within microseconds, so the machine's drift, which moves two
/// separately measured ~3 ns cases by a nanosecond or more, cancels. Returns the switched-off
/// side's time; the per-pair differences go to [`PAIRED_DIFFS`].
fn paired_disabled(iters: u64) -> Duration {
    fn run(f: fn(u64) -> u64, from: u64, n: u64) -> Duration {
        let start = Instant::now();
        for i in from..from + n {
            black_box(f(black_box(i)));
        }
        start.elapsed()
    }
    profiler_runtime::disable();
    let mut diffs = Vec::with_capacity((iters / PAIR_RUN + 1) as usize);
    let mut off_total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = PAIR_RUN.min(iters - done);
        let (off, plain) = if diffs.len() % 2 == 0 {
            let off = run(recorded, done, n);
            (off, run(bare, done, n))
        } else {
            let plain = run(bare, done, n);
            (run(recorded, done, n), plain)
        };
        diffs.push((off.as_nanos() as f64 - plain.as_nanos() as f64) / n as f64);
        off_total += off;
        done += n;
    }
    profiler_runtime::enable();
    PAIRED_DIFFS.lock().unwrap().extend(diffs);
    off_total
}

/// Median and mean of the paired differences, and how many pairs.
fn paired_figures() -> (f64, f64, usize) {
    let mut diffs = PAIRED_DIFFS.lock().unwrap().clone();
    if diffs.is_empty() {
        return (f64::NAN, f64::NAN, 0);
    }
    diffs.sort_by(f64::total_cmp);
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    (diffs[diffs.len() / 2], mean, diffs.len())
}

fn bench_ours(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    case(group, OURS_DRAINED, |iters| {
        let (elapsed, dropped) = timed_batches(iters, DRAINS_PER_FLUSH, || {
            black_box(profiler_runtime::drain());
        });
        tally(OURS_DRAINED, 1, 1, iters, elapsed, dropped, 0);
        elapsed.wall
    });
    case(group, OURS_BACKGROUND, |iters| {
        let guard = profiler_runtime::Config::new()
            .formats(&[])
            .collect_interval(Some(Duration::from_millis(1)))
            .init();
        let (elapsed, dropped) = timed_batches(iters, DRAINS_PER_FLUSH, || {});
        // Stops the collector thread, then flushes (and writes no file: no formats).
        guard.finish().expect("no files to write");
        tally(OURS_BACKGROUND, 1, 1, iters, elapsed, dropped, 0);
        elapsed.wall
    });
    case(group, OURS_FLUSHED, |iters| {
        timed("ours: recording, flush timed", iters, || {
            let mut dropped = 0;
            batched(iters, recorded, || dropped += flush_dropped());
            dropped
        })
    });
    case(
        group,
        "ours: recording, flush outside the timed region",
        |iters| {
            let name = "ours: recording, flush outside the timed region";
            let (elapsed, dropped) = timed_batches(iters, 1, || {});
            tally(name, 1, 1, iters, elapsed, dropped, 0);
            elapsed.wall
        },
    );
    case(group, "ours: scope macro in a hot loop", |iters| {
        timed("ours: scope macro in a hot loop", iters, || {
            let mut dropped = 0;
            let mut done = 0;
            while done < iters {
                let n = BATCH.min(iters - done);
                black_box(scope_in_loop(black_box(n)));
                done += n;
                dropped += flush_dropped();
            }
            dropped
        })
    });
    case(group, "ours: compiled in, disable()d", |iters| {
        profiler_runtime::disable();
        let wall = timed("ours: compiled in, disable()d", iters, || {
            batched(iters, recorded, || {});
            0
        });
        profiler_runtime::enable();
        wall
    });
    case(group, PAIRED, paired_disabled);
    case(
        group,
        "ours: nested depth 10 (per call of 10 spans)",
        |iters| {
            let name = "ours: nested depth 10 (per call of 10 spans)";
            let rss_before = rss_now();
            let watch = Stopwatch::start();
            let mut dropped = 0;
            let mut done = 0;
            while done < iters {
                let n = (BATCH / 10).min(iters - done);
                for i in done..done + n {
                    black_box(nested10(black_box(i)));
                }
                done += n;
                dropped += flush_dropped();
            }
            let elapsed = watch.elapsed();
            let growth = rss_now() - rss_before;
            tally(name, 1, 10, iters, elapsed, dropped, growth);
            elapsed.wall
        },
    );
    case(
        group,
        "ours: recording, 2 threads at once",
        ours_two_threads,
    );
    case(group, "ours: ring full (dropped path)", ours_ring_full);
}

// ---------------------------------------------------------------------------------------------
// fastrace: a reporter that counts and drops the spans; one root span per batch, made the local
// parent, and `LocalSpan::enter_with_local_parent` per call (fastrace's cheapest recording API).
// A local parent holds at most 10,240 spans (fastrace's DEFAULT_SPAN_QUEUE_SIZE) and silently
// drops the rest, cheaply, so the batch is smaller than that: every span is really recorded (the
// summary prints the count the reporter received).

const FASTRACE_BATCH: u64 = 8_192;

static FASTRACE_SPANS: AtomicU64 = AtomicU64::new(0);

struct CountingReporter;

impl fastrace::collector::Reporter for CountingReporter {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        FASTRACE_SPANS.fetch_add(spans.len() as u64, Ordering::Relaxed);
    }
}

fn fastrace_setup() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        fastrace::set_reporter(CountingReporter, fastrace::collector::Config::default());
    });
}

#[inline(never)]
fn fastrace_call(x: u64) -> u64 {
    let _span = fastrace::local::LocalSpan::enter_with_local_parent("fastrace_call");
    work(x)
}

fn bench_fastrace(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    fastrace_setup();
    case(group, "fastrace: recording", |iters| {
        timed("fastrace: recording", iters, || {
            let mut done = 0;
            while done < iters {
                let n = FASTRACE_BATCH.min(iters - done);
                {
                    let root =
                        fastrace::Span::root("batch", fastrace::collector::SpanContext::random());
                    let _parent = root.set_local_parent();
                    for i in done..done + n {
                        black_box(fastrace_call(black_box(i)));
                    }
                }
                done += n;
                fastrace::flush();
            }
            0
        })
    });
    case(group, "fastrace: no active trace", |iters| {
        timed("fastrace: no active trace", iters, || {
            batched(iters, fastrace_call, || {});
            0
        })
    });
}

// ---------------------------------------------------------------------------------------------
// puffin: scopes on, a parent scope per batch (puffin is cheaper below an outer scope), and
// `GlobalProfiler::new_frame()` after each batch, with a sink that counts the frames.

static PUFFIN_FRAMES: AtomicU64 = AtomicU64::new(0);

#[inline(never)]
fn puffin_call(x: u64) -> u64 {
    puffin::profile_scope!("puffin_call");
    work(x)
}

fn bench_puffin(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    puffin::GlobalProfiler::lock().add_sink(Box::new(|_frame| {
        PUFFIN_FRAMES.fetch_add(1, Ordering::Relaxed);
    }));
    case(group, "puffin: recording", |iters| {
        puffin::set_scopes_on(true);
        timed("puffin: recording", iters, || {
            let mut done = 0;
            while done < iters {
                let n = BATCH.min(iters - done);
                {
                    puffin::profile_scope!("batch");
                    for i in done..done + n {
                        black_box(puffin_call(black_box(i)));
                    }
                }
                done += n;
                puffin::GlobalProfiler::lock().new_frame();
            }
            0
        })
    });
    case(group, "puffin: recording, scope outermost", |iters| {
        puffin::set_scopes_on(true);
        timed("puffin: recording, scope outermost", iters, || {
            batched(iters, puffin_call, || {
                puffin::GlobalProfiler::lock().new_frame();
            });
            0
        })
    });
    case(group, "puffin: scopes off", |iters| {
        puffin::set_scopes_on(false);
        let wall = timed("puffin: scopes off", iters, || {
            batched(iters, puffin_call, || {});
            0
        });
        puffin::set_scopes_on(true);
        wall
    });
    puffin::set_scopes_on(false);
}

// ---------------------------------------------------------------------------------------------
// tracing + tracing-chrome: the global subscriber is a registry with an INFO level filter and the
// Chrome layer writing to a temporary file (its own writer thread). `info_span!` records;
// `trace_span!` is compiled in and filtered out at run time.

static TRACING_GUARD: Mutex<Option<tracing_chrome::FlushGuard>> = Mutex::new(None);

fn tracing_file() -> PathBuf {
    std::env::temp_dir().join(format!(
        "profiler-benches-tracing-chrome-{}.json",
        std::process::id()
    ))
}

fn tracing_setup() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let (layer, guard) = tracing_chrome::ChromeLayerBuilder::new()
        .file(tracing_file())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(layer);
    tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
    *TRACING_GUARD.lock().unwrap() = Some(guard);
}

#[inline(never)]
fn tracing_call(x: u64) -> u64 {
    let _span = tracing::info_span!("tracing_call").entered();
    work(x)
}

#[inline(never)]
fn tracing_filtered_call(x: u64) -> u64 {
    let _span = tracing::trace_span!("tracing_filtered_call").entered();
    work(x)
}

fn bench_tracing(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    tracing_setup();
    case(group, "tracing + tracing-chrome: recording", |iters| {
        timed("tracing + tracing-chrome: recording", iters, || {
            batched(iters, tracing_call, || {
                if let Some(guard) = TRACING_GUARD.lock().unwrap().as_ref() {
                    guard.flush();
                }
            });
            0
        })
    });
    case(group, "tracing: span filtered out by level", |iters| {
        timed("tracing: span filtered out by level", iters, || {
            batched(iters, tracing_filtered_call, || {});
            0
        })
    });
}

// ---------------------------------------------------------------------------------------------
// hotpath: a guard built once (aggregating per-function statistics, report to a temp file) and
// `#[hotpath::measure]` on the function.

fn hotpath_report() -> PathBuf {
    std::env::temp_dir().join(format!(
        "profiler-benches-hotpath-{}.txt",
        std::process::id()
    ))
}

#[hotpath::measure]
#[inline(never)]
fn hotpath_call(x: u64) -> u64 {
    work(x)
}

fn bench_hotpath(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
) -> hotpath::HotpathGuard {
    let guard = hotpath::HotpathGuardBuilder::new("overhead")
        .output_path(hotpath_report())
        .build();
    case(group, "hotpath: recording", |iters| {
        timed("hotpath: recording", iters, || {
            batched(iters, hotpath_call, || {});
            0
        })
    });
    guard
}

// ---------------------------------------------------------------------------------------------
// Tracy: the client started without a server connected, features `enable` only. With no
// `ondemand`, Tracy queues every event in memory until a server connects (see the RSS column).

#[inline(never)]
fn tracy_call(x: u64) -> u64 {
    let _span = tracy_client::span!("tracy_call");
    work(x)
}

fn bench_tracy(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    // Dropping the handle does not stop Tracy: its queue lives until the process exits (the
    // tally already has its RSS growth).
    let _client = tracy_client::Client::start();
    case(group, "tracy: recording, no server connected", |iters| {
        timed("tracy: recording, no server connected", iters, || {
            batched(iters, tracy_call, || {});
            0
        })
    });
}

// ---------------------------------------------------------------------------------------------

/// A case's name and the function it calls.
type Case = (&'static str, fn(u64) -> u64);

fn bench_floors(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let plain: [Case; 4] = [
        ("bare call", bare),
        ("floor: two rdtsc", floor::two_rdtsc),
        ("floor: two Instant::now()", floor::two_instant),
        (
            "floor: two rdtsc + two 16-byte TLS ring stores",
            floor::two_rdtsc_two_stores,
        ),
    ];
    for (name, f) in plain {
        case(group, name, move |iters| {
            timed(name, iters, || {
                batched(iters, f, || {});
                0
            })
        });
    }
}

fn ns(d: Duration, calls: u64) -> f64 {
    if calls == 0 {
        return f64::NAN;
    }
    d.as_nanos() as f64 / calls as f64
}

/// ns per call of a case by name.
type PerCall<'a> = &'a dyn Fn(&str) -> f64;

/// The goals and the ratios to the peers, from wall and from CPU figures.
fn goals_and_ratios(out: &mut String, wall: PerCall<'_>, cpu: PerCall<'_>) {
    // Each figure twice: wall (what criterion sees; inflated when the machine is shared) and
    // process CPU (all threads, so background threads count; not inflated by being descheduled).
    let rows: [(&str, PerCall<'_>); 2] = [("wall", wall), ("CPU", cpu)];
    writeln!(out, "\n## Goals").unwrap();
    for (label, f) in rows {
        let (bare, floor) = (f("bare call"), f("floor: two rdtsc"));
        writeln!(
            out,
            "- {label}: recording, drain timed - two rdtsc = {:.2} ns (goal <= 5); background collector - two rdtsc = {:.2} ns; flush outside the timed region - two rdtsc = {:.2} ns; flush (drain + merge into a Profile) timed - two rdtsc = {:.2} ns; disable()d - bare = {:.2} ns (goal <= 0.5)",
            f(OURS_DRAINED) - floor,
            f(OURS_BACKGROUND) - floor,
            f("ours: recording, flush outside the timed region") - floor,
            f(OURS_FLUSHED) - floor,
            f("ours: compiled in, disable()d") - bare,
        )
        .unwrap();
    }
    writeln!(
        out,
        "\n## Ratios, peer / ours, same run (overhead = ns over the bare call)"
    )
    .unwrap();
    writeln!(out, "\n| peer | wall total | wall overhead | CPU total | CPU overhead | CPU overhead vs ours with the merge timed |").unwrap();
    writeln!(out, "|---|---:|---:|---:|---:|---:|").unwrap();
    for peer in [
        "tracy: recording, no server connected",
        "puffin: recording",
        "puffin: recording, scope outermost",
        "fastrace: recording",
        "tracing + tracing-chrome: recording",
        "hotpath: recording",
    ] {
        let (wb, cb) = (wall("bare call"), cpu("bare call"));
        writeln!(
            out,
            "| {peer} | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {:.2}x |",
            wall(peer) / wall(OURS_DRAINED),
            (wall(peer) - wb) / (wall(OURS_DRAINED) - wb),
            cpu(peer) / cpu(OURS_DRAINED),
            (cpu(peer) - cb) / (cpu(OURS_DRAINED) - cb),
            (cpu(peer) - cb) / (cpu(OURS_FLUSHED) - cb),
        )
        .unwrap();
    }
    let off = [
        ("ours: compiled in, disable()d", "ours"),
        ("puffin: scopes off", "puffin"),
        ("fastrace: no active trace", "fastrace"),
        ("tracing: span filtered out by level", "tracing"),
    ];
    writeln!(
        out,
        "\n## Switched off at run time, ns over bare (wall / CPU)"
    )
    .unwrap();
    let (median, mean, pairs) = paired_figures();
    writeln!(
        out,
        "- ours, paired with the bare call (alternating runs of {PAIR_RUN} calls): {median:.2} ns median, {mean:.2} ns mean, over {pairs} pairs (goal <= 0.5)"
    )
    .unwrap();
    for (name, short) in off {
        writeln!(
            out,
            "- {short}: {:.2} / {:.2}",
            wall(name) - wall("bare call"),
            cpu(name) - cpu("bare call")
        )
        .unwrap();
    }
}

fn summary() -> String {
    let tallies = TALLIES.lock().unwrap().clone();
    let wall = |name: &str| {
        tallies
            .iter()
            .find(|t| t.name == name)
            .map_or(f64::NAN, |t| ns(t.elapsed.wall, t.calls))
    };
    let cpu = |name: &str| {
        tallies
            .iter()
            .find(|t| t.name == name)
            .map_or(f64::NAN, |t| {
                ns(t.elapsed.cpu, t.calls * u64::from(t.threads))
            })
    };
    let bare = wall("bare call");
    let ours = wall(OURS_DRAINED);
    let mut out = String::new();
    writeln!(out, "\n## Whole-run means (warm-up included), ns per call").unwrap();
    writeln!(out, "\n| case | wall ns/call | CPU ns/call (all threads) | wall over bare | over bare per span | x ours recording | calls (per thread) | dropped events | RSS growth MiB |").unwrap();
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|").unwrap();
    for t in &tallies {
        let w = ns(t.elapsed.wall, t.calls);
        let cpu = ns(t.elapsed.cpu, t.calls * u64::from(t.threads));
        let growth = if t.rss_growth >= 0 {
            mib(Some(t.rss_growth as u64))
        } else {
            format!("-{}", mib(Some(t.rss_growth.unsigned_abs())))
        };
        writeln!(
            out,
            "| {} | {w:.2} | {cpu:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {growth} |",
            t.name,
            w - bare,
            (w - bare) / f64::from(t.spans_per_call),
            w / ours,
            t.calls,
            t.dropped,
        )
        .unwrap();
    }
    goals_and_ratios(&mut out, &wall, &cpu);
    writeln!(out, "\n## Evidence that the peers recorded").unwrap();
    let fastrace_calls = tallies
        .iter()
        .find(|t| t.name == "fastrace: recording")
        .map_or(0, |t| t.calls);
    writeln!(
        out,
        "- fastrace spans reported: {} for {fastrace_calls} calls (plus one root per {FASTRACE_BATCH})",
        FASTRACE_SPANS.load(Ordering::Relaxed)
    )
    .unwrap();
    writeln!(
        out,
        "- puffin frames sent to the sink: {}",
        PUFFIN_FRAMES.load(Ordering::Relaxed)
    )
    .unwrap();
    let size = std::fs::metadata(tracing_file()).map_or(0, |m| m.len());
    writeln!(out, "- tracing-chrome file: {} MiB", mib(Some(size))).unwrap();
    let size = std::fs::metadata(hotpath_report()).map_or(0, |m| m.len());
    writeln!(out, "- hotpath report: {size} bytes").unwrap();
    out
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    {
        let mut group = criterion.benchmark_group("overhead");
        bench_floors(&mut group);
        bench_ours(&mut group);
        bench_fastrace(&mut group);
        bench_puffin(&mut group);
        bench_tracing(&mut group);
        let hotpath_guard = bench_hotpath(&mut group);
        drop(hotpath_guard);
        bench_tracy(&mut group);
        group.finish();
    }
    criterion.final_summary();
    black_box(floor::model_checksum());
    // Flush tracing-chrome's file before reading its size.
    drop(TRACING_GUARD.lock().unwrap().take());
    println!("{}", summary());
    let _ = std::fs::remove_file(tracing_file());
    let _ = std::fs::remove_file(hotpath_report());
}
