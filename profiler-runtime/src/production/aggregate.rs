//! Always-on aggregation: per function and per request root, exact call counts and log-linear
//! latency histograms, kept per thread and merged on read.
//!
//! # Where the figures come from
//!
//! - **Per root** (each request begun with [`ProfileContext::request`](crate::ProfileContext::request)):
//!   always. The request reads the clock when it begins and ends, and adds the duration to its
//!   thread's table once per request.
//! - **Per function**, when [`set_per_function`]`(true)` (or `PROFILER_AGGREGATE=1`): every request is
//!   recorded into the thread's ring while held back (see the tail mode in
//!   [`sampling`](crate::production::sampling)); when it ends, its events are read in place and each call's
//!   duration goes into the function's histogram, then the events are discarded by rewinding the
//!   ring (or kept, if the request was sampled or slow). Calls made outside any request are not
//!   aggregated. If the ring fills during one request, the calls that did not fit are not counted;
//!   [`Snapshot::dropped_events`] says how many events that was.
//!
//! Each thread's table sits behind its own mutex, taken once per request by its thread (never
//! contended except during a snapshot) and by [`snapshot`]. When a thread exits, its figures are
//! merged into a retired table, so counts never go backwards.
//!
//! # Histograms
//!
//! [`Histogram`] buckets are log-linear: exact below 64 ticks, then 32 buckets per power of two.
//! A bucket spans at most 1/32 of its lower bound, so a quantile, reported at its bucket's
//! midpoint, is within **1.6%** of the true value (3.2% at worst counting the tick-to-nanosecond
//! factor's rounding, which is far smaller). Memory is bounded: at most 44 blocks of 32 counters,
//! allocated on first use, per histogram; values above 2^48 ticks (about a day) are clamped.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::collect::calibration;
use crate::collect::AddressHasher;
use crate::record::recorder::{self, Event, EventKind};
use crate::record::registry::FunctionInfo;

/// Whether per-function aggregation is on.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// The fraction of requests whose calls are timed, as `rate * 2^32`.
static TIMING_THRESHOLD: AtomicU64 = AtomicU64::new(DEFAULT_TIMING_RATE_BITS);

/// Default fraction of requests whose calls are timed when aggregating: 1 in 16.
pub const DEFAULT_TIMING_RATE: f64 = 1.0 / 16.0;
const DEFAULT_TIMING_RATE_BITS: u64 = 1 << 28;

/// Sets the fraction of requests (`0.0..=1.0`) whose profiled calls are timed into the
/// per-function histograms while aggregating; the calls of the other requests are only counted.
/// Default [`DEFAULT_TIMING_RATE`]: timing a call costs two clock reads and two buffer writes, and
/// reading them back when the request ends, where counting it costs a few instructions. Call counts
/// stay exact either way. Requests recorded for another reason (sampled, tail mode) are always
/// timed.
pub fn set_timing_rate(rate: f64) {
    TIMING_THRESHOLD.store(
        (rate.clamp(0.0, 1.0) * (1u64 << 32) as f64) as u64,
        Ordering::Relaxed,
    );
}

/// [`set_timing_rate`]'s value as `rate * 2^32`.
pub(crate) fn timing_threshold() -> u64 {
    TIMING_THRESHOLD.load(Ordering::Relaxed)
}

/// Turns per-function aggregation on or off (per-root figures are always kept). Off by default,
/// unless `PROFILER_AGGREGATE=1`. Takes effect for requests that begin afterwards.
///
/// # Examples
///
/// ```
/// profiler_runtime::production::aggregate::set_per_function(true);
/// assert!(profiler_runtime::production::aggregate::per_function());
/// # profiler_runtime::production::aggregate::set_per_function(false);
/// ```
pub fn set_per_function(enabled: bool) {
    env_loaded();
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Reads `PROFILER_AGGREGATE` once, before the first setting made in code (which then wins).
/// After the first call, one atomic load.
pub(crate) fn env_loaded() {
    static LOADED: std::sync::Once = std::sync::Once::new();
    LOADED.call_once(|| {
        let on = std::env::var("PROFILER_AGGREGATE").is_ok_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "on" | "yes"
            )
        });
        if on {
            ENABLED.store(true, Ordering::Relaxed);
        }
    });
}

/// Whether per-function aggregation is on.
pub fn per_function() -> bool {
    env_loaded();
    ENABLED.load(Ordering::Relaxed)
}

/// Where [`snapshot`] finds each root's SLA threshold (ns): set by the sampling policy, which
/// owns the thresholds and sits above this module.
static SLA_THRESHOLDS: std::sync::OnceLock<fn(&'static FunctionInfo) -> Option<u64>> =
    std::sync::OnceLock::new();

/// Tells [`snapshot`] how to find a root's SLA threshold (the narrow interface through which
/// the sampling policy above reports it).
pub(crate) fn set_sla_thresholds(lookup: fn(&'static FunctionInfo) -> Option<u64>) {
    let _ = SLA_THRESHOLDS.set(lookup);
}

/// Number of sub-buckets per power of two, as a power of two: 2^5 = 32.
const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
/// Values at or above `2^MAX_BITS` are clamped.
const MAX_BITS: u32 = 48;
/// Blocks 0 and 1 hold 0..64 exactly; block `b >= 2` holds the octave `[2^(b+4), 2^(b+5))`.
const BLOCKS: usize = (MAX_BITS - SUB_BITS + 1) as usize;

/// A log-linear histogram of durations, mergeable, with bounded memory and a relative error of at
/// most 1.6% on quantiles (see the [module docs](self)).
///
/// Values are recorded in clock ticks; a histogram taken from a [`Snapshot`] carries the
/// nanoseconds per tick measured at the snapshot, and its accessors answer in nanoseconds.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    blocks: Vec<Option<Box<[u64; SUB]>>>,
    count: u64,
    /// Sum of the recorded values, in ticks.
    sum: u128,
    min: u64,
    max: u64,
    /// Nanoseconds per tick (0 until set by a snapshot: then values are reported as ticks).
    ns_per_tick: f64,
}

impl PartialEq for Histogram {
    fn eq(&self, other: &Self) -> bool {
        self.count == other.count
            && self.sum == other.sum
            && (0..BLOCKS)
                .all(|b| self.block(b).unwrap_or(&[0; SUB]) == other.block(b).unwrap_or(&[0; SUB]))
    }
}

/// Which block and sub-bucket `value` falls in.
fn locate(value: u64) -> (usize, usize) {
    let value = value.min((1 << MAX_BITS) - 1);
    if value < 2 * SUB as u64 {
        return ((value >> SUB_BITS) as usize, (value as usize) & (SUB - 1));
    }
    let exponent = value.ilog2();
    let shift = exponent - SUB_BITS;
    (
        (exponent - 4) as usize,
        ((value >> shift) as usize) & (SUB - 1),
    )
}

/// The lower bound and width of a bucket, in ticks.
fn bucket_bounds(block: usize, sub: usize) -> (u64, u64) {
    if block < 2 {
        ((block * SUB + sub) as u64, 1)
    } else {
        let shift = block as u32 - 1;
        (((SUB + sub) as u64) << shift, 1 << shift)
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram::default()
    }

    fn block(&self, b: usize) -> Option<&[u64; SUB]> {
        self.blocks.get(b).and_then(|block| block.as_deref())
    }

    /// Adds one value, in ticks.
    #[inline]
    pub(crate) fn record(&mut self, ticks: u64) {
        let (block, sub) = locate(ticks);
        if let Some(Some(counts)) = self.blocks.get_mut(block) {
            counts[sub] += 1;
        } else {
            self.record_in_new_block(block, sub);
        }
        if self.count == 0 || ticks < self.min {
            self.min = ticks;
        }
        self.max = self.max.max(ticks);
        self.count += 1;
        self.sum += u128::from(ticks);
    }

    #[cold]
    #[inline(never)]
    fn record_in_new_block(&mut self, block: usize, sub: usize) {
        if self.blocks.len() <= block {
            self.blocks.resize_with(block + 1, || None);
        }
        self.blocks[block].get_or_insert_with(|| Box::new([0; SUB]))[sub] += 1;
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (b, block) in other.blocks.iter().enumerate() {
            let Some(block) = block else { continue };
            if self.blocks.len() <= b {
                self.blocks.resize_with(b + 1, || None);
            }
            let mine = self.blocks[b].get_or_insert_with(|| Box::new([0; SUB]));
            for (a, o) in mine.iter_mut().zip(block.iter()) {
                *a += o;
            }
        }
        if other.count > 0 {
            self.min = if self.count == 0 {
                other.min
            } else {
                self.min.min(other.min)
            };
            self.max = self.max.max(other.max);
        }
        self.count += other.count;
        self.sum += other.sum;
        if self.ns_per_tick == 0.0 {
            self.ns_per_tick = other.ns_per_tick;
        }
    }

    /// The values recorded in `self` but not in `earlier` (an earlier state of the same
    /// histogram). Min and max are those of `self`.
    #[must_use]
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let mut out = self.clone();
        for (b, block) in earlier.blocks.iter().enumerate() {
            let (Some(block), Some(Some(mine))) = (block, out.blocks.get_mut(b)) else {
                continue;
            };
            for (a, o) in mine.iter_mut().zip(block.iter()) {
                *a = a.saturating_sub(*o);
            }
        }
        out.count = self.count.saturating_sub(earlier.count);
        out.sum = self.sum.saturating_sub(earlier.sum);
        out
    }

    fn scale(&self) -> f64 {
        if self.ns_per_tick > 0.0 {
            self.ns_per_tick
        } else {
            1.0
        }
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the values, in nanoseconds.
    pub fn sum_ns(&self) -> f64 {
        self.sum as f64 * self.scale()
    }

    /// Mean, in nanoseconds (0 when empty).
    pub fn mean_ns(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_ns() / self.count as f64
        }
    }

    /// Smallest value, in nanoseconds (0 when empty).
    pub fn min_ns(&self) -> f64 {
        self.min as f64 * self.scale()
    }

    /// Largest value, in nanoseconds (0 when empty).
    pub fn max_ns(&self) -> f64 {
        self.max as f64 * self.scale()
    }

    /// The `q` quantile (`0.0..=1.0`; 0.99 is p99), in nanoseconds, within 1.6% of the exact
    /// value. `None` when empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use profiler_runtime::production::aggregate::Histogram;
    /// let mut h = Histogram::new();
    /// for v in 1..=1000 {
    ///     h.record_ticks(v * 1000);
    /// }
    /// let p50 = h.quantile(0.5).unwrap();
    /// assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.016);
    /// ```
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, block) in self.blocks.iter().enumerate() {
            let Some(block) = block else { continue };
            for (sub, &n) in block.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    let (low, width) = bucket_bounds(b, sub);
                    let mid = if width == 1 {
                        low as f64
                    } else {
                        low as f64 + width as f64 / 2.0
                    };
                    let mid = mid.clamp(self.min as f64, self.max as f64);
                    return Some(mid * self.scale());
                }
            }
        }
        Some(self.max_ns())
    }

    /// How many values are at most `bound_ns` nanoseconds. Exact at bucket boundaries; within a
    /// bucket the count is interpolated linearly.
    pub fn count_at_most(&self, bound_ns: f64) -> f64 {
        let bound = bound_ns / self.scale();
        let mut total = 0.0;
        for (b, block) in self.blocks.iter().enumerate() {
            let Some(block) = block else { continue };
            for (sub, &n) in block.iter().enumerate() {
                if n == 0 {
                    continue;
                }
                let (low, width) = bucket_bounds(b, sub);
                let (low, high) = (low as f64, (low + width) as f64);
                if high - 1.0 <= bound {
                    total += n as f64;
                } else if low <= bound {
                    total += n as f64 * (bound - low + 1.0) / (high - low);
                } else {
                    return total;
                }
            }
        }
        total
    }

    /// Adds one value given in ticks (for tests and for feeding external measurements; in a
    /// histogram without a tick factor, ticks read as nanoseconds).
    pub fn record_ticks(&mut self, ticks: u64) {
        self.record(ticks);
    }

    /// Bytes of heap memory this histogram uses.
    pub fn heap_bytes(&self) -> usize {
        self.blocks.capacity() * std::mem::size_of::<Option<Box<[u64; SUB]>>>()
            + self.blocks.iter().flatten().count() * std::mem::size_of::<[u64; SUB]>()
    }

    fn with_scale(mut self, ns_per_tick: f64) -> Self {
        self.ns_per_tick = ns_per_tick;
        self
    }
}

/// Aggregates of one function (or scope, or nested context).
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionAggregate {
    /// The function's name.
    pub name: String,
    /// Calls that completed within requests while aggregation was on: exact, unless the buffer
    /// overflowed (see [`Snapshot::dropped_events`]).
    pub calls: u64,
    /// Their durations (inclusive of callees).
    pub histogram: Histogram,
}

/// Aggregates of one request root ([`ProfileContext::request`](crate::ProfileContext::request)).
#[derive(Clone, Debug, PartialEq)]
pub struct RootStats {
    /// The root's name.
    pub name: String,
    /// Requests that completed.
    pub requests: u64,
    /// Requests that ended in an error (marked) or a panic.
    pub errors: u64,
    /// Requests slower than the SLA threshold in force when they ended.
    pub sla_violations: u64,
    /// The SLA threshold in force at the snapshot, in nanoseconds.
    pub sla_threshold_ns: Option<u64>,
    /// Requests recorded into the timeline because head sampling picked them.
    pub sampled: u64,
    /// Requests kept by the tail mode (slow, error or panic).
    pub tail_kept: u64,
    /// Requests recorded and then discarded by rewinding the buffer.
    pub discarded: u64,
    /// Requests that were kept but did not fit whole in the buffer (their missing events are in
    /// the timeline's dropped count).
    pub truncated: u64,
    /// Request durations.
    pub histogram: Histogram,
}

/// A merged view of every thread's aggregates.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Per function, sorted by name.
    pub functions: Vec<FunctionAggregate>,
    /// Per request root, sorted by name.
    pub roots: Vec<RootStats>,
    /// Events lost inside aggregated requests because the buffer was full.
    pub dropped_events: u64,
    /// Profiled calls (and requests) the profiler has timed in aggregated or held requests.
    pub probes: u64,
    /// The measured cost of one probe (enter and exit), in nanoseconds.
    pub probe_cost_ns: f64,
    /// Nanoseconds per clock tick used for every histogram of this snapshot.
    pub ns_per_tick: f64,
}

impl Snapshot {
    /// The estimated time the profiler itself spent on the probes counted in this snapshot, in
    /// seconds: `probes * probe_cost_ns`.
    pub fn estimated_overhead_seconds(&self) -> f64 {
        self.probes as f64 * self.probe_cost_ns * 1e-9
    }

    /// The root named `name`.
    pub fn root(&self, name: &str) -> Option<&RootStats> {
        self.roots.iter().find(|r| r.name == name)
    }

    /// The function named `name`.
    pub fn function(&self, name: &str) -> Option<&FunctionAggregate> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// What happened between `earlier` and `self` (windowed figures): counts and histograms are
    /// differences; entries absent from `earlier` are taken whole.
    ///
    /// # Examples
    ///
    /// ```
    /// use profiler_runtime::{production::aggregate, ProfileContext};
    /// let before = aggregate::snapshot();
    /// drop(ProfileContext::request("doc_window"));
    /// let window = aggregate::snapshot().since(&before);
    /// assert_eq!(window.root("doc_window").unwrap().requests, 1);
    /// ```
    #[must_use]
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        let functions = self
            .functions
            .iter()
            .map(|f| match earlier.function(&f.name) {
                Some(e) => FunctionAggregate {
                    name: f.name.clone(),
                    calls: f.calls.saturating_sub(e.calls),
                    histogram: f.histogram.since(&e.histogram),
                },
                None => f.clone(),
            })
            .collect();
        let roots = self
            .roots
            .iter()
            .map(|r| match earlier.root(&r.name) {
                Some(e) => RootStats {
                    name: r.name.clone(),
                    requests: r.requests.saturating_sub(e.requests),
                    errors: r.errors.saturating_sub(e.errors),
                    sla_violations: r.sla_violations.saturating_sub(e.sla_violations),
                    sla_threshold_ns: r.sla_threshold_ns,
                    sampled: r.sampled.saturating_sub(e.sampled),
                    tail_kept: r.tail_kept.saturating_sub(e.tail_kept),
                    discarded: r.discarded.saturating_sub(e.discarded),
                    truncated: r.truncated.saturating_sub(e.truncated),
                    histogram: r.histogram.since(&e.histogram),
                },
                None => r.clone(),
            })
            .collect();
        Snapshot {
            functions,
            roots,
            dropped_events: self.dropped_events.saturating_sub(earlier.dropped_events),
            probes: self.probes.saturating_sub(earlier.probes),
            probe_cost_ns: self.probe_cost_ns,
            ns_per_tick: self.ns_per_tick,
        }
    }
}

type AddressMap<V> = HashMap<usize, V, BuildHasherDefault<AddressHasher>>;

fn address(info: &'static FunctionInfo) -> usize {
    std::ptr::from_ref(info) as usize
}

#[derive(Clone, Debug)]
struct FunctionCell {
    info: &'static FunctionInfo,
    calls: u64,
    histogram: Histogram,
}

/// What a root's request did, for its counters.
#[derive(Clone, Copy, Debug, Default)]
#[allow(clippy::struct_excessive_bools)] // independent flags, each feeding its own counter
pub(crate) struct RequestOutcome {
    pub(crate) error: bool,
    pub(crate) sla_violation: bool,
    pub(crate) sampled: bool,
    pub(crate) tail_kept: bool,
    pub(crate) discarded: bool,
    pub(crate) truncated: bool,
}

#[derive(Clone, Debug)]
struct RootCell {
    info: &'static FunctionInfo,
    requests: u64,
    errors: u64,
    sla_violations: u64,
    sampled: u64,
    tail_kept: u64,
    discarded: u64,
    truncated: u64,
    histogram: Histogram,
}

/// One thread's aggregates (or the retired threads').
#[derive(Debug, Default)]
struct Table {
    functions: AddressMap<FunctionCell>,
    roots: AddressMap<RootCell>,
    dropped_events: u64,
    probes: u64,
}

impl Table {
    fn function(&mut self, info: &'static FunctionInfo) -> &mut FunctionCell {
        self.functions
            .entry(address(info))
            .or_insert_with(|| FunctionCell {
                info,
                calls: 0,
                histogram: Histogram::new(),
            })
    }

    fn root(&mut self, info: &'static FunctionInfo) -> &mut RootCell {
        self.roots.entry(address(info)).or_insert_with(|| RootCell {
            info,
            requests: 0,
            errors: 0,
            sla_violations: 0,
            sampled: 0,
            tail_kept: 0,
            discarded: 0,
            truncated: 0,
            histogram: Histogram::new(),
        })
    }

    fn merge_into(&self, out: &mut Table) {
        for cell in self.functions.values() {
            let mine = out.function(cell.info);
            mine.calls += cell.calls;
            mine.histogram.merge(&cell.histogram);
        }
        for cell in self.roots.values() {
            let mine = out.root(cell.info);
            mine.requests += cell.requests;
            mine.errors += cell.errors;
            mine.sla_violations += cell.sla_violations;
            mine.sampled += cell.sampled;
            mine.tail_kept += cell.tail_kept;
            mine.discarded += cell.discarded;
            mine.truncated += cell.truncated;
            mine.histogram.merge(&cell.histogram);
        }
        out.dropped_events += self.dropped_events;
        out.probes += self.probes;
    }
}

type Shared = Arc<Mutex<Table>>;

fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    // Tables are updated in single steps that cannot panic halfway; a poisoned lock is usable.
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every live thread's table, and the retired threads' merged table.
#[derive(Debug, Default)]
struct Registry {
    live: Vec<Shared>,
    retired: Table,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn with_registry<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut guard = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    f(guard.get_or_insert_with(Registry::default))
}

/// This thread's table; merged into the retired table when the thread exits.
struct Local {
    table: Shared,
    /// Open calls while walking a request's events: (site, enter ticks).
    stack: Vec<(&'static FunctionInfo, u64)>,
}

impl Drop for Local {
    fn drop(&mut self) {
        let table = Arc::clone(&self.table);
        with_registry(|r| {
            lock(&table).merge_into(&mut r.retired);
            r.live.retain(|t| !Arc::ptr_eq(t, &table));
        });
    }
}

thread_local! {
    static LOCAL: std::cell::RefCell<Option<Local>> = const { std::cell::RefCell::new(None) };
}

fn with_local<R>(f: impl FnOnce(&mut Local) -> R) -> Option<R> {
    LOCAL
        .try_with(|cell| {
            let mut slot = cell.try_borrow_mut().ok()?;
            let local = slot.get_or_insert_with(|| {
                let table = Shared::default();
                with_registry(|r| r.live.push(Arc::clone(&table)));
                Local {
                    table,
                    stack: Vec::with_capacity(32),
                }
            });
            Some(f(local))
        })
        .ok()
        .flatten()
}

/// Call counts of the current request on this thread, for the calls that are counted and not
/// timed: a small open-addressing table keyed by the site's address, emptied into the thread's
/// table when the request ends.
struct CallCounts {
    slots: [(Option<&'static FunctionInfo>, u64); COUNT_SLOTS],
    /// Sites that found no free slot nearby (rare: more than a few dozen distinct functions).
    overflow: Vec<(&'static FunctionInfo, u64)>,
}

const COUNT_SLOTS: usize = 128;

impl CallCounts {
    #[inline]
    fn add(&mut self, site: &'static FunctionInfo) {
        let start = (address(site) >> 4) % COUNT_SLOTS;
        for probe in 0..4 {
            let slot = &mut self.slots[(start + probe) % COUNT_SLOTS];
            match slot.0 {
                Some(s) if std::ptr::eq(s, site) => {
                    slot.1 += 1;
                    return;
                }
                None => {
                    *slot = (Some(site), 1);
                    return;
                }
                Some(_) => {}
            }
        }
        self.add_overflow(site);
    }

    #[cold]
    fn add_overflow(&mut self, site: &'static FunctionInfo) {
        match self
            .overflow
            .iter_mut()
            .find(|(s, _)| std::ptr::eq(*s, site))
        {
            Some((_, n)) => *n += 1,
            None => self.overflow.push((site, 1)),
        }
    }

    fn drain_into(&mut self, table: &mut Table, root: &'static FunctionInfo) {
        let counted = self
            .slots
            .iter_mut()
            .filter_map(|slot| match std::mem::take(slot) {
                (Some(site), n) => Some((site, n)),
                (None, _) => None,
            })
            .chain(self.overflow.drain(..));
        for (site, n) in counted {
            if !std::ptr::eq(site, root) {
                table.function(site).calls += n;
            }
        }
    }
}

thread_local! {
    /// Whether calls skipped on this thread (the buffer is closed) are counted.
    static COUNTS: std::cell::RefCell<CallCounts> = const {
        std::cell::RefCell::new(CallCounts { slots: [(None, 0); COUNT_SLOTS], overflow: Vec::new() })
    };
}

/// Starts or stops counting the calls this thread skips (a counted request begins or ends).
pub(crate) fn set_counting(on: bool) {
    // The recorder calls the hook for each call it skips because the buffer is closed.
    recorder::set_skipped_call_hook(on.then_some(count_call as fn(&'static FunctionInfo)));
}

/// Out of line, so that a skipped call outside counted requests saves no registers.
#[inline(never)]
fn count_call(site: &'static FunctionInfo) {
    let _ = COUNTS.try_with(|counts| {
        if let Ok(mut counts) = counts.try_borrow_mut() {
            counts.add(site);
        }
    });
}

/// Calls its argument with each held event of a request, oldest first.
pub(crate) type Walk<'a> = &'a dyn Fn(&mut dyn FnMut(Event));

/// Adds one finished request of `root` (and, when `walk` is given, the calls among its held
/// events) to this thread's table.
pub(crate) fn record_request(
    root: &'static FunctionInfo,
    duration_ticks: u64,
    outcome: RequestOutcome,
    walk: Option<Walk<'_>>,
    dropped_events: u64,
) {
    with_local(|local| {
        let mut table = lock(&local.table);
        // Calls counted but not timed (the root's own enter among them: not a function call).
        let _ = COUNTS.try_with(|counts| {
            if let Ok(mut counts) = counts.try_borrow_mut() {
                counts.drain_into(&mut table, root);
            }
        });
        let cell = table.root(root);
        cell.requests += 1;
        cell.errors += u64::from(outcome.error);
        cell.sla_violations += u64::from(outcome.sla_violation);
        cell.sampled += u64::from(outcome.sampled);
        cell.tail_kept += u64::from(outcome.tail_kept);
        cell.discarded += u64::from(outcome.discarded);
        cell.truncated += u64::from(outcome.truncated);
        cell.histogram.record(duration_ticks);
        table.probes += 1;
        table.dropped_events += dropped_events;
        if let Some(walk) = walk {
            let stack = &mut local.stack;
            stack.clear();
            let mut skip_payload = false;
            walk(&mut |event: Event| {
                if std::mem::take(&mut skip_payload) {
                    return;
                }
                match event.kind() {
                    EventKind::Enter => stack.push((event.site(), event.value())),
                    EventKind::Exit => {
                        let site = event.site();
                        if let Some(pos) = stack.iter().rposition(|(s, _)| std::ptr::eq(*s, site)) {
                            let (_, start) = stack[pos];
                            stack.truncate(pos);
                            // The request's own span is the root's figure, not a function's.
                            if !std::ptr::eq(site, root) || pos > 0 {
                                let cell = table.function(site);
                                cell.calls += 1;
                                cell.histogram.record(event.value().saturating_sub(start));
                                table.probes += 1;
                            }
                        }
                    }
                    EventKind::AsyncBegin | EventKind::AsyncEnd | EventKind::AsyncCancel => {
                        skip_payload = true;
                    }
                    EventKind::Payload => {}
                }
            });
        }
    });
}

/// Merges every thread's aggregates (including exited threads') into a [`Snapshot`]. Takes each
/// thread's lock briefly, one at a time.
///
/// # Examples
///
/// ```
/// use profiler_runtime::{production::aggregate, ProfileContext};
/// drop(ProfileContext::request("doc_snapshot"));
/// let snapshot = aggregate::snapshot();
/// assert_eq!(snapshot.root("doc_snapshot").unwrap().requests, 1);
/// ```
pub fn snapshot() -> Snapshot {
    let mut merged = Table::default();
    let live = with_registry(|r| {
        r.retired.merge_into(&mut merged);
        r.live.clone()
    });
    for table in &live {
        lock(table).merge_into(&mut merged);
    }
    let ns_per_tick = calibration::refresh();
    let mut functions: Vec<FunctionAggregate> = merged
        .functions
        .into_values()
        .map(|c| FunctionAggregate {
            name: c.info.name().into_owned(),
            calls: c.calls,
            histogram: c.histogram.with_scale(ns_per_tick),
        })
        .collect();
    functions.sort_by(|a, b| a.name.cmp(&b.name));
    let mut roots: Vec<RootStats> = merged
        .roots
        .into_values()
        .map(|c| RootStats {
            name: c.info.name().into_owned(),
            requests: c.requests,
            errors: c.errors,
            sla_violations: c.sla_violations,
            sla_threshold_ns: SLA_THRESHOLDS.get().and_then(|lookup| lookup(c.info)),
            sampled: c.sampled,
            tail_kept: c.tail_kept,
            discarded: c.discarded,
            truncated: c.truncated,
            histogram: c.histogram.with_scale(ns_per_tick),
        })
        .collect();
    roots.sort_by(|a, b| a.name.cmp(&b.name));
    Snapshot {
        functions,
        roots,
        dropped_events: merged.dropped_events,
        probes: merged.probes,
        probe_cost_ns: calibration::probe_ns(),
        ns_per_tick,
    }
}

/// Clears every thread's aggregates (and the retired threads'): the next snapshot counts from
/// now. Prefer [`Snapshot::since`] for per-interval figures when something else (a Prometheus
/// endpoint) reads the cumulative counters.
pub fn reset() {
    let live = with_registry(|r| {
        r.retired = Table::default();
        r.live.clone()
    });
    for table in &live {
        *lock(table) = Table::default();
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // the compared values are exact integers
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_in_order_with_bounded_width() {
        let mut last = (0, 0);
        for v in 0..5000 {
            assert!(locate(v) >= last, "buckets must be ordered");
            last = locate(v);
        }
        for v in (0..5000).chain((1..48).map(|s| 1u64 << s).flat_map(|p| [p - 1, p, p + 1])) {
            let (b, s) = locate(v);
            let (low, width) = bucket_bounds(b, s);
            assert!(
                low <= v && v < low + width,
                "{v} not in [{low}, {})",
                low + width
            );
            assert!(
                width == 1 || (width as f64) / (low as f64) <= 1.0 / 32.0,
                "{v}"
            );
        }
        assert_eq!(
            locate(u64::MAX).0,
            BLOCKS - 1,
            "clamped into the last block"
        );
    }

    #[test]
    fn quantiles_within_documented_error() {
        let mut h = Histogram::new();
        let mut exact: Vec<u64> = (0..20_000u64).map(|i| 1000 + i * i % 7_919_993).collect();
        for &v in &exact {
            h.record(v);
        }
        exact.sort_unstable();
        for q in [0.5, 0.9, 0.99, 0.999] {
            let truth = exact[((q * exact.len() as f64).ceil() as usize).max(1) - 1] as f64;
            let estimate = h.quantile(q).unwrap();
            assert!(
                (estimate - truth).abs() / truth <= 0.016,
                "q{q}: {estimate} vs {truth}"
            );
        }
        assert_eq!(h.count(), 20_000);
        assert!(h.heap_bytes() <= BLOCKS * (8 + 8 * SUB));
    }

    #[test]
    fn merge_and_since_are_inverse() {
        let (mut a, mut b) = (Histogram::new(), Histogram::new());
        for v in 0..1000 {
            a.record(v * 3);
            b.record(v * 1000 + 7);
        }
        let mut both = a.clone();
        both.merge(&b);
        assert_eq!(both.count(), 2000);
        assert_eq!(both.since(&a), b);
        assert_eq!(both.min_ns(), 0.0);
        assert_eq!(both.max_ns(), 999_007.0);
    }

    #[test]
    fn count_at_most_is_exact_at_bucket_bounds() {
        let mut h = Histogram::new();
        for v in 0..10_000 {
            h.record(v);
        }
        // 8192 is a bucket bound: everything below it is counted exactly.
        assert_eq!(h.count_at_most(8191.0), 8192.0);
        assert_eq!(h.count_at_most(63.0), 64.0);
        assert_eq!(h.count_at_most(1e12), 10_000.0);
        let mid = h.count_at_most(5000.0);
        assert!((mid - 5001.0).abs() / 5001.0 < 0.032, "{mid}");
    }
}
