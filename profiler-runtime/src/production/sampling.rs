//! Production modes for requests: head sampling, tail ("conditional") profiling, and the flight
//! recorder of kept slow requests.
//!
//! A request is a region begun with [`ProfileContext::request`](crate::ProfileContext::request),
//! named by its *root* (`"api_request"`). Each root has a policy, set at run time by name or from
//! the environment:
//!
//! - **Head sampling** ([`set_sample_rate`]): when the request begins, a thread-local xorshift
//!   generator decides whether it is recorded. An unsampled request *closes* its thread's buffer
//!   (see `ring.rs`): every profiled call inside then fails the buffer's room check that the
//!   recording path makes anyway, and returns from a cold function without reading the clock. The
//!   plain recording path has no extra branch for this.
//! - **Tail profiling** ([`set_tail_threshold`]): every request is recorded into its thread's
//!   buffer, but held back from the collector. When it ends, it is kept (published to the
//!   timeline, and copied to the flight recorder) if it took at least the threshold, ended in an
//!   error ([`ProfileContext::mark_error`](crate::ProfileContext::mark_error)) or a panic, or
//!   broke its SLA; otherwise the buffer is rewound, discarding it without copying. Kept requests
//!   are complete while the buffer has room; what does not fit is counted
//!   ([`RootStats::truncated`](crate::production::aggregate::RootStats::truncated) and the timeline's dropped
//!   events).
//! - With per-function aggregation on, every request is held the same way, so that its calls can
//!   be aggregated from the buffer when it ends (then kept or discarded as above).
//!
//! A request begun inside another request on the same thread follows the outer one's mode.
//!
//! # Environment
//!
//! | variable | example | effect |
//! |---|---|---|
//! | `PROFILER_SAMPLE_RATE` | `0.01` or `api_request=0.01,health=0` | head sampling rate, default and per root |
//! | `PROFILER_TAIL_THRESHOLD` | `50ms` or `api_request=20ms` | tail mode threshold, default and per root |
//! | `PROFILER_SLA` | `api_request=50ms` | SLA threshold per root (see [`alert`](crate::production::alert)) |
//! | `PROFILER_AGGREGATE` | `1` | per-function aggregation on |
//!
//! Durations take `ns`, `us`, `ms` or `s`. Values set in code override the environment.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use crate::collect::calibration;
use crate::collect::profile::{ClockInfo, Profile, Span, ThreadTimeline};
use crate::collect::{self, Cursor, FunctionTable, Merge};
use crate::export::{ExportFilesError, Format};
use crate::production::aggregate::{self, RequestOutcome};
use crate::record::clock;
use crate::record::recorder::{self, Event};
use crate::record::registry::FunctionInfo;
use crate::record::ring::Producer;

/// Sampling threshold meaning "always" (`rate * 2^32`, compared with 32 random bits).
const ALWAYS: u64 = 1 << 32;

/// Settings by root name, as set in code or read from the environment.
#[derive(Debug, Default)]
struct Settings {
    default_rate: Option<f64>,
    default_tail: Option<Duration>,
    rates: HashMap<String, f64>,
    /// `None` inside: explicitly off for this root.
    tails: HashMap<String, Option<Duration>>,
    slas: HashMap<String, Option<Duration>>,
}

/// Bumped on every settings change; roots compare it with the one they applied.
static EPOCH: AtomicU64 = AtomicU64::new(1);

static SETTINGS: OnceLock<Mutex<Settings>> = OnceLock::new();

fn settings() -> MutexGuard<'static, Settings> {
    SETTINGS
        .get_or_init(|| Mutex::new(Settings::from_env()))
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// What is called when a request breaks its SLA: `(root, duration in ticks, threshold in ns,
/// the kept request if any)`. Set by the alert module above this one when a callback is
/// installed; without it, violations are only counted in the aggregates.
pub(crate) type ViolationHook = fn(&'static str, u64, u64, Option<Arc<KeptRequest>>);

static VIOLATION_HOOK: OnceLock<ViolationHook> = OnceLock::new();

/// Installs the SLA-violation hook (once; the alert module's `report`).
pub(crate) fn set_violation_hook(hook: ViolationHook) {
    let _ = VIOLATION_HOOK.set(hook);
}

fn change(f: impl FnOnce(&mut Settings)) {
    f(&mut settings());
    EPOCH.fetch_add(1, Ordering::Release);
}

/// Parses `50ms`, `20us`, `1.5s`, `800ns` (a bare number is milliseconds).
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let ns = match unit.trim() {
        "ns" => number,
        "us" | "µs" => number * 1e3,
        "ms" | "" => number * 1e6,
        "s" => number * 1e9,
        _ => return None,
    };
    Some(Duration::from_nanos(ns as u64))
}

/// Splits `a=1,b=2,3` into per-name values and a default.
fn parse_list<T>(text: &str, parse: impl Fn(&str) -> Option<T>) -> (Option<T>, Vec<(String, T)>) {
    let mut default = None;
    let mut named = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item.split_once('=') {
            Some((name, value)) => {
                if let Some(v) = parse(value) {
                    named.push((name.trim().to_owned(), v));
                }
            }
            None => default = parse(item).or(default),
        }
    }
    (default, named)
}

impl Settings {
    fn from_env() -> Settings {
        let mut s = Settings::default();
        let rate = |v: &str| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
        };
        if let Ok(text) = std::env::var("PROFILER_SAMPLE_RATE") {
            let (default, named) = parse_list(&text, rate);
            s.default_rate = default;
            s.rates.extend(named);
        }
        if let Ok(text) = std::env::var("PROFILER_TAIL_THRESHOLD") {
            let (default, named) = parse_list(&text, parse_duration);
            s.default_tail = default;
            s.tails.extend(named.into_iter().map(|(n, d)| (n, Some(d))));
        }
        if let Ok(text) = std::env::var("PROFILER_SLA") {
            let (_, named) = parse_list(&text, parse_duration);
            s.slas.extend(named.into_iter().map(|(n, d)| (n, Some(d))));
        }
        aggregate::env_loaded();
        aggregate::set_sla_thresholds(sla_threshold_ns);
        s
    }
}

/// Sets the head-sampling rate of the root `root` (`0.0..=1.0`, clamped): the fraction of its
/// requests that are recorded. Roots without a rate of their own use
/// [`set_default_sample_rate`]'s, which is 1 (record everything) unless `PROFILER_SAMPLE_RATE`
/// says otherwise.
///
/// # Examples
///
/// ```
/// profiler_runtime::production::sampling::set_sample_rate("doc_health_check", 0.0);
/// let request = profiler_runtime::ProfileContext::request("doc_health_check");
/// assert!(!request.is_recording());
/// ```
pub fn set_sample_rate(root: &str, rate: f64) {
    change(|s| {
        s.rates.insert(root.to_owned(), rate.clamp(0.0, 1.0));
    });
}

/// Sets the head-sampling rate of roots that have none of their own.
pub fn set_default_sample_rate(rate: f64) {
    change(|s| s.default_rate = Some(rate.clamp(0.0, 1.0)));
}

/// Turns tail profiling on for `root` (`Some(threshold)`: keep requests at least that slow, and
/// those ending in an error or a panic) or off (`None`), overriding the default.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use profiler_runtime::{production::sampling, ProfileContext};
/// sampling::set_sample_rate("doc_tail", 0.0); // only the tail mode keeps requests
/// sampling::set_tail_threshold("doc_tail", Some(Duration::from_secs(3600)));
/// drop(ProfileContext::request("doc_tail")); // fast: recorded, then discarded
/// let stats = profiler_runtime::production::aggregate::snapshot();
/// assert_eq!(stats.root("doc_tail").unwrap().discarded, 1);
/// ```
pub fn set_tail_threshold(root: &str, threshold: Option<Duration>) {
    change(|s| {
        s.tails.insert(root.to_owned(), threshold);
    });
}

/// Sets the tail threshold of roots that have none of their own (`None`: tail mode off).
pub fn set_default_tail_threshold(threshold: Option<Duration>) {
    change(|s| s.default_tail = threshold);
}

/// Sets the SLA threshold of `root` (`None`: no SLA). Requests slower than it count as
/// violations, are kept like slow tail requests when they were recorded, and go to the callback
/// set with [`alert::on_sla_violation`](crate::production::alert::on_sla_violation).
pub fn set_sla(root: &str, threshold: Option<Duration>) {
    change(|s| {
        s.slas.insert(root.to_owned(), threshold);
    });
}

/// A request root: its site and its policy, cached in atomics so that a request reads them with
/// relaxed loads. Leaked, one per name.
#[derive(Debug)]
pub(crate) struct Root {
    pub(crate) name: &'static str,
    pub(crate) info: &'static FunctionInfo,
    /// The settings epoch applied (0: never).
    epoch: AtomicU64,
    /// `rate * 2^32`.
    sample_threshold: AtomicU64,
    /// Tail threshold in ticks; 0 when off.
    tail_ticks: AtomicU64,
    /// SLA threshold in ticks and ns; 0 when none.
    sla_ticks: AtomicU64,
    sla_ns: AtomicU64,
}

impl Root {
    fn refresh(&self) {
        let current = EPOCH.load(Ordering::Acquire);
        if self.epoch.load(Ordering::Relaxed) != current {
            self.apply(current);
        }
    }

    #[cold]
    #[inline(never)]
    fn apply(&self, epoch: u64) {
        let s = settings();
        let rate = s
            .rates
            .get(self.name)
            .copied()
            .or(s.default_rate)
            .unwrap_or(1.0);
        let tail = s.tails.get(self.name).copied().unwrap_or(s.default_tail);
        let sla = s.slas.get(self.name).copied().flatten();
        drop(s);
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let ticks = |d: Duration| calibration::ns_to_ticks(ns(d)).max(1);
        self.sample_threshold
            .store((rate * ALWAYS as f64) as u64, Ordering::Relaxed);
        self.tail_ticks
            .store(tail.map_or(0, ticks), Ordering::Relaxed);
        self.sla_ticks
            .store(sla.map_or(0, ticks), Ordering::Relaxed);
        self.sla_ns.store(sla.map_or(0, ns), Ordering::Relaxed);
        self.epoch.store(epoch, Ordering::Relaxed);
    }
}

static ROOTS: Mutex<Vec<&'static Root>> = Mutex::new(Vec::new());

thread_local! {
    /// Roots this thread has used, looked up by the name's address first.
    static ROOT_CACHE: RefCell<Vec<&'static Root>> = const { RefCell::new(Vec::new()) };
    /// Xorshift64 state; 0 until seeded.
    static RNG: Cell<u64> = const { Cell::new(0) };
    /// Whether a request is in progress on this thread.
    static IN_REQUEST: Cell<bool> = const { Cell::new(false) };
    /// A small id for flight-recorder timelines.
    static THREAD_ID: Cell<u32> = const { Cell::new(0) };
}

/// The root named `name`, created on first use.
pub(crate) fn root(name: &'static str) -> &'static Root {
    let cached = ROOT_CACHE.try_with(|cache| {
        let cache = cache.borrow();
        cache
            .iter()
            .find(|r| std::ptr::eq(r.name, name))
            .or_else(|| cache.iter().find(|r| r.name == name))
            .copied()
    });
    if let Ok(Some(root)) = cached {
        return root;
    }
    let root = intern_root(name);
    let _ = ROOT_CACHE.try_with(|cache| cache.borrow_mut().push(root));
    root
}

#[cold]
fn intern_root(name: &'static str) -> &'static Root {
    let mut roots = ROOTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(root) = roots.iter().find(|r| r.name == name) {
        return root;
    }
    let root: &'static Root = Box::leak(Box::new(Root {
        name,
        info: crate::record::registry::intern_context(name),
        epoch: AtomicU64::new(0),
        sample_threshold: AtomicU64::new(ALWAYS),
        tail_ticks: AtomicU64::new(0),
        sla_ticks: AtomicU64::new(0),
        sla_ns: AtomicU64::new(0),
    }));
    roots.push(root);
    root
}

/// The SLA threshold of the root whose site is `info`, in ns.
pub(crate) fn sla_threshold_ns(info: &'static FunctionInfo) -> Option<u64> {
    let roots = ROOTS.lock().unwrap_or_else(PoisonError::into_inner);
    let root = roots.iter().find(|r| std::ptr::eq(r.info, info))?;
    root.refresh();
    Some(root.sla_ns.load(Ordering::Relaxed)).filter(|&ns| ns > 0)
}

/// 32 random bits from this thread's xorshift64 generator.
#[inline]
fn random_u32() -> u64 {
    RNG.try_with(|state| {
        let mut x = state.get();
        if x == 0 {
            x = seed();
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x >> 32
    })
    .unwrap_or(0)
}

#[cold]
fn seed() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let mixed = COUNTER
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9)
        ^ clock::now();
    mixed | 1
}

/// Seeds this thread's sampling generator, making its decisions reproducible (tests, demos).
pub fn seed_sampler(seed: u64) {
    let _ = RNG.try_with(|state| state.set(seed | 1));
}

/// How a request records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Recorded like any context (sampled, without tail mode or aggregation).
    Plain,
    /// Unsampled: the buffer is closed for the request.
    Closed,
    /// Aggregating, not timed: the buffer is closed and the skipped calls are counted.
    Counted,
    /// Recorded and held back; decided at the end.
    Held { sampled: bool, walk: bool },
    /// Inside another request: follows it.
    Nested,
}

/// The production state of one request, kept by its [`ProfileContext`](crate::ProfileContext).
#[derive(Debug)]
pub(crate) struct Request {
    root: &'static Root,
    mode: Mode,
    start: u64,
    error: bool,
}

impl Request {
    /// Begins a request of `name`, choosing its mode. The caller records the root's enter after
    /// this (so that it falls inside a hold, or is skipped by a close). `None` while recording
    /// is switched off.
    pub(crate) fn begin(root: &'static Root) -> Option<Request> {
        if !recorder::is_enabled() {
            return None;
        }
        root.refresh();
        let nested = IN_REQUEST.try_with(|r| r.replace(true)).unwrap_or(true);
        let mode = if nested {
            Mode::Nested
        } else {
            let threshold = root.sample_threshold.load(Ordering::Relaxed);
            let sampled = threshold >= ALWAYS || random_u32() < threshold;
            let aggregating = aggregate::per_function();
            let timed = aggregating && {
                let timing = aggregate::timing_threshold();
                timing >= ALWAYS || random_u32() < timing
            };
            // Recorded requests are held when something decides at their end: the tail mode, or
            // the aggregation reading their calls back.
            let hold =
                root.tail_ticks.load(Ordering::Relaxed) > 0 || timed || (aggregating && sampled);
            // Attaching (the thread's first event allocates its buffer) happens here, before the
            // request's clock starts, for every recorded request.
            let holding = (hold || sampled)
                && recorder::with_attached_producer(|p| hold && p.hold().is_some()) == Some(true);
            if holding {
                Mode::Held {
                    sampled,
                    walk: aggregating,
                }
            } else if sampled && !aggregating {
                Mode::Plain
            } else {
                recorder::with_producer(Producer::close);
                if aggregating {
                    aggregate::set_counting(true);
                    Mode::Counted
                } else {
                    Mode::Closed
                }
            }
        };
        Some(Request {
            root,
            mode,
            start: clock::now(),
            error: false,
        })
    }

    pub(crate) fn mark_error(&mut self) {
        self.error = true;
    }

    /// Ends the request, after the root's own exit was recorded.
    pub(crate) fn finish(self) {
        let ticks = clock::now().saturating_sub(self.start);
        let root = self.root;
        let error = self.error || std::thread::panicking();
        let sla_ticks = root.sla_ticks.load(Ordering::Relaxed);
        let sla_violation = sla_ticks > 0 && ticks > sla_ticks;
        let mut outcome = RequestOutcome {
            error,
            sla_violation,
            ..RequestOutcome::default()
        };
        let mut kept_events = None;
        match self.mode {
            Mode::Plain => outcome.sampled = true,
            Mode::Nested => {}
            Mode::Closed => {
                recorder::with_producer(Producer::open);
            }
            Mode::Counted => {
                aggregate::set_counting(false);
                recorder::with_producer(Producer::open);
            }
            Mode::Held { sampled, walk } => {
                let tail_ticks = root.tail_ticks.load(Ordering::Relaxed);
                let slow = tail_ticks > 0 && ticks >= tail_ticks;
                let keep_trace = slow || error || sla_violation;
                recorder::with_producer(|p| {
                    let dropped = p.held_dropped();
                    let walker = |f: &mut dyn FnMut(Event)| p.for_each_held(f);
                    aggregate::record_request(
                        root.info,
                        ticks,
                        RequestOutcome {
                            sampled,
                            tail_kept: keep_trace,
                            discarded: !(sampled || keep_trace),
                            truncated: (sampled || keep_trace) && dropped > 0,
                            ..outcome
                        },
                        walk.then_some(&walker as &dyn Fn(&mut dyn FnMut(Event))),
                        dropped,
                    );
                    if keep_trace {
                        let mut events = Vec::new();
                        p.held(&mut events);
                        kept_events = Some((events, dropped));
                    }
                    if sampled || keep_trace {
                        p.release();
                    } else {
                        p.rewind();
                    }
                });
            }
        }
        if !matches!(self.mode, Mode::Held { .. }) {
            aggregate::record_request(root.info, ticks, outcome, None, 0);
        }
        if self.mode != Mode::Nested {
            let _ = IN_REQUEST.try_with(|r| r.set(false));
        }
        let kept = kept_events.map(|(events, dropped)| {
            let kept = Arc::new(KeptRequest {
                thread: thread_label(),
                events,
                dropped_events: dropped,
            });
            flight_recorder_push(Arc::clone(&kept));
            kept
        });
        if sla_violation {
            if let Some(report) = VIOLATION_HOOK.get() {
                report(root.name, ticks, root.sla_ns.load(Ordering::Relaxed), kept);
            }
        }
    }
}

/// This thread's id and name for flight-recorder timelines.
fn thread_label() -> (u32, String) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = THREAD_ID
        .try_with(|id| {
            if id.get() == 0 {
                id.set(NEXT.fetch_add(1, Ordering::Relaxed) as u32);
            }
            id.get()
        })
        .unwrap_or(0);
    let name = std::thread::current()
        .name()
        .map_or_else(|| format!("thread-{id}"), str::to_owned);
    (id, name)
}

/// A request kept by the tail mode, as the flight recorder holds it: its raw events, copied out
/// of the buffer once (kept requests are the rare, slow ones).
#[derive(Debug)]
pub(crate) struct KeptRequest {
    thread: (u32, String),
    events: Vec<Event>,
    dropped_events: u64,
}

impl KeptRequest {
    pub(crate) fn thread_name(&self) -> &str {
        &self.thread.1
    }
}

/// Default number of requests the flight recorder keeps.
pub const DEFAULT_FLIGHT_RECORDER_REQUESTS: usize = 64;

static FLIGHT_CAPACITY: AtomicUsize = AtomicUsize::new(DEFAULT_FLIGHT_RECORDER_REQUESTS);
static FLIGHT: Mutex<VecDeque<Arc<KeptRequest>>> = Mutex::new(VecDeque::new());

fn flight() -> MutexGuard<'static, VecDeque<Arc<KeptRequest>>> {
    FLIGHT.lock().unwrap_or_else(PoisonError::into_inner)
}

fn flight_recorder_push(request: Arc<KeptRequest>) {
    let capacity = FLIGHT_CAPACITY.load(Ordering::Relaxed);
    let mut flight = flight();
    while flight.len() >= capacity.max(1) {
        flight.pop_front();
    }
    flight.push_back(request);
}

/// Sets how many of the last kept (slow, failed or SLA-breaking) requests the flight recorder
/// holds (default [`DEFAULT_FLIGHT_RECORDER_REQUESTS`], at least 1).
pub fn set_flight_recorder_capacity(requests: usize) {
    FLIGHT_CAPACITY.store(requests.max(1), Ordering::Relaxed);
    let mut flight = flight();
    while flight.len() > requests.max(1) {
        flight.pop_front();
    }
}

/// Number of requests the flight recorder holds now.
pub fn flight_recorder_len() -> usize {
    flight().len()
}

/// The flight recorder's requests as a [`Profile`]: one timeline per thread, each request a root
/// span with its calls nested inside, oldest first.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use profiler_runtime::{production::sampling, ProfileContext};
/// sampling::set_tail_threshold("doc_flight", Some(Duration::ZERO)); // keep everything
/// drop(ProfileContext::request("doc_flight"));
/// let profile = sampling::flight_recorder_profile();
/// assert!(profile.render_tree().contains("doc_flight"));
/// ```
pub fn flight_recorder_profile() -> Profile {
    let requests: Vec<Arc<KeptRequest>> = flight().iter().cloned().collect();
    requests_profile(&requests)
}

/// Writes the flight recorder's requests to `prefix` plus each format's file ending
/// (`dumps/slow` gives `dumps/slow.trace.json` and `dumps/slow.speedscope.json`), creating the
/// directory. Each file replaces an earlier dump only once it is complete and on disk. Returns
/// the files written.
///
/// # Errors
///
/// [`ExportFilesError`] with every file that could not be written (every format is attempted).
pub fn dump_flight_recorder(
    prefix: impl AsRef<Path>,
    formats: &[Format],
) -> Result<Vec<PathBuf>, ExportFilesError> {
    let profile = flight_recorder_profile();
    let paths = formats.iter().map(|format| {
        let mut name = prefix.as_ref().as_os_str().to_owned();
        name.push(format.extensions()[0]);
        PathBuf::from(name)
    });
    ExportFilesError::collect(crate::write_files(
        &profile,
        paths.zip(formats.iter().copied()),
    ))
}

/// Builds a profile from kept requests: each request's events merged as a flush merges a
/// thread's, one timeline per thread.
pub(crate) fn requests_profile(requests: &[Arc<KeptRequest>]) -> Profile {
    let mut converter = calibration::tick_to_epoch();
    let mut functions = FunctionTable::default();
    // Async lifetimes are not reported here: a kept request holds its polls as spans.
    let mut async_records = Vec::new();
    let mut threads: Vec<ThreadTimeline> = Vec::new();
    let (mut start_ns, mut end_ns) = (u64::MAX, 0);
    let mut dropped_total = 0;
    let mut stack = Vec::new();
    for request in requests {
        let (tid, name) = &request.thread;
        let position = threads
            .iter()
            .position(|t| t.tid == *tid)
            .unwrap_or_else(|| {
                threads.push(ThreadTimeline {
                    tid: *tid,
                    name: name.clone(),
                    spans: Vec::new(),
                    dropped_events: 0,
                    exited: false,
                });
                threads.len() - 1
            });
        let timeline = &mut threads[position];
        timeline.dropped_events += request.dropped_events;
        dropped_total += request.dropped_events;
        let first_span = timeline.spans.len();
        let mut cursor = Cursor::new(
            timeline.spans.last().map_or(0, |s: &Span| s.end_ns),
            u64::MAX,
            *tid,
        );
        cursor.merge_run(
            &request.events,
            &mut timeline.spans,
            &mut stack,
            &mut Merge {
                converter: &mut converter,
                functions: &mut functions,
                async_records: &mut async_records,
            },
        );
        let last_ns = cursor.last_ns();
        // A truncated request may miss exits: close what is open at its last event.
        for open in stack.drain(..) {
            let span = &mut timeline.spans[open.span as usize];
            span.end_ns = last_ns;
            span.flags.incomplete = true;
        }
        if let Some(first) = timeline.spans.get(first_span) {
            start_ns = start_ns.min(first.start_ns);
        }
        end_ns = end_ns.max(last_ns);
    }
    if start_ns > end_ns {
        (start_ns, end_ns) = (0, 0);
    }
    let ns_per_tick = calibration::ns_per_tick();
    Profile {
        functions: functions.into_entries(),
        threads,
        async_spans: Vec::new(),
        start_ns,
        end_ns,
        epoch_unix_ns: clock::epoch_unix_ns(),
        clock: ClockInfo {
            kind: clock::kind(),
            ticks_per_second: 1e9 / ns_per_tick,
        },
        dropped_events: dropped_total,
        process_name: collect::process_name(),
        pid: std::process::id(),
        build: Some(crate::BuildInfo::of_this_build()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_lists() {
        assert_eq!(parse_duration("50ms"), Some(Duration::from_millis(50)));
        assert_eq!(parse_duration("20us"), Some(Duration::from_micros(20)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("800ns"), Some(Duration::from_nanos(800)));
        assert_eq!(parse_duration("7"), Some(Duration::from_millis(7)));
        assert_eq!(parse_duration("fast"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
        let (default, named) = parse_list("api=0.5, 0.01 ,db=x,health=0", |v| {
            v.trim().parse::<f64>().ok()
        });
        assert_eq!(default, Some(0.01));
        assert_eq!(
            named,
            vec![("api".to_owned(), 0.5), ("health".to_owned(), 0.0)]
        );
    }

    #[test]
    fn random_bits_look_uniform() {
        seed_sampler(42);
        let n = 100_000;
        let below = (0..n).filter(|_| random_u32() < ALWAYS / 100).count();
        // 1% of 100k: 1000, with a standard deviation of about 31.
        assert!((800..1200).contains(&below), "{below}");
    }
}
