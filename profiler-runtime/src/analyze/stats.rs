//! Per-function statistics of a [`Profile`]: call counts, inclusive and exclusive time, the
//! distribution of call durations, and for async functions their wall time.
//!
//! # What is counted
//!
//! - A *call* is a span that began in this profile. Spans flagged
//!   [`continued`](crate::SpanFlags::continued) began in an earlier flush, were counted there, and
//!   add only their time here; [`incomplete`](crate::SpanFlags::incomplete) spans are calls with
//!   the time they have so far.
//! - *Total* (inclusive) time adds up the outermost calls only: a call nested inside another call
//!   of the same function on the same thread (recursion) adds nothing, so no time is counted
//!   twice. *Self* (exclusive) time is a span's duration less its children's.
//! - The distribution (`min`, `max`, `mean`, percentiles) is over every call's own duration,
//!   recursive calls included, so `mean_ns` can differ from `total_ns / calls` under recursion.
//!   Percentiles are nearest-rank over the exact durations.
//! - For an `async fn`, each poll is a span on the thread that polled it: those give its total and
//!   self time, which are *busy* time. A call is one future ([`AsyncSpan`](crate::AsyncSpan)),
//!   from its first poll to its completion or drop: its duration is the future's *wall* time, and
//!   [`AsyncStats`] holds the rest (polls, wall total, cancellations).
//! - Shares are fractions of the time recorded on all threads, i.e. the sum of every root span's
//!   duration (which is also the sum of every function's self time).
//! - Times that add up past `u64::MAX` nanoseconds (only in files, about 584 years) saturate at
//!   `u64::MAX` rather than wrap.

// The streaming statistics (`StreamingStats` and its histogram) serve the Perfetto reader only.
#![cfg_attr(not(feature = "stream"), allow(dead_code))]

use serde::{Deserialize, Serialize};

use crate::collect::profile::Profile;
use crate::record::registry::FunctionKind;

/// Statistics of one function, scope or context. Every registered function has one, called or
/// not. All times are nanoseconds; distribution fields are 0 when `calls` is 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionStats {
    /// The full name, e.g. `my_crate::db::Pool::get`.
    pub name: String,
    /// Function, async function, scope or context.
    #[serde(with = "kind_name")]
    pub kind: FunctionKind,
    /// The module it is defined in.
    pub module_path: String,
    /// The source file.
    pub file: String,
    /// The source line.
    pub line: u32,
    /// Calls that began in this profile (for an `async fn`: futures first polled in it).
    pub calls: u64,
    /// Inclusive time on threads, recursion counted once (for an `async fn`: busy time, polls).
    pub total_ns: u64,
    /// Exclusive time: total less the time of callees.
    pub self_ns: u64,
    /// Shortest call (for an `async fn`: shortest wall time).
    pub min_ns: u64,
    /// Longest call.
    pub max_ns: u64,
    /// Mean duration of a call.
    pub mean_ns: f64,
    /// Median duration of a call (nearest rank).
    pub p50_ns: u64,
    /// 90th percentile of call durations (nearest rank).
    pub p90_ns: u64,
    /// 99th percentile of call durations (nearest rank).
    pub p99_ns: u64,
    /// `total_ns` as a fraction of the time recorded on all threads.
    pub total_share: f64,
    /// `self_ns` as a fraction of the time recorded on all threads (these add up to 1).
    pub self_share: f64,
    /// For an `async fn`: its polls and wall time.
    #[serde(default, rename = "async", skip_serializing_if = "Option::is_none")]
    pub async_stats: Option<AsyncStats>,
    /// The budget given with `#[profile(budget = "...")]`, ns (checked by the regression gate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_ns: Option<u64>,
}

/// What an `async fn` adds to [`FunctionStats`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsyncStats {
    /// Polls (spans on threads) that began in this profile.
    pub polls: u64,
    /// Wall time of its futures within this profile, first poll to completion or drop, added up.
    pub wall_ns: u64,
    /// Futures dropped before they completed.
    pub cancelled: u64,
}

/// Computes the statistics of every function of `profile`, in the order of
/// [`Profile::functions`] (so `result[span.function]` describes a span's function).
///
/// # Examples
///
/// ```
/// let profile = profiler_runtime::flush();
/// let stats = profiler_runtime::analyze::stats::function_stats(&profile);
/// assert_eq!(stats.len(), profile.functions.len());
/// ```
pub fn function_stats(profile: &Profile) -> Vec<FunctionStats> {
    let SpanTimes {
        mut calls,
        total,
        self_time,
        mut durations,
    } = span_times(profile);

    let mut async_stats: Vec<Option<AsyncStats>> = profile
        .functions
        .iter()
        .map(|f| {
            (f.kind == FunctionKind::AsyncFunction).then_some(AsyncStats {
                polls: 0,
                wall_ns: 0,
                cancelled: 0,
            })
        })
        .collect();
    for thread in &profile.threads {
        for span in &thread.spans {
            if let Some(Some(a)) = async_stats.get_mut(span.function as usize) {
                if !span.flags.continued {
                    a.polls += 1;
                }
            }
        }
    }
    for span in &profile.async_spans {
        let f = span.function as usize;
        let wall = span.end_ns.saturating_sub(span.start_ns);
        let a = async_stats[f].get_or_insert(AsyncStats {
            polls: 0,
            wall_ns: 0,
            cancelled: 0,
        });
        a.wall_ns = a.wall_ns.saturating_add(wall);
        if !span.flags.continued {
            a.cancelled += u64::from(span.cancelled);
            calls[f] += 1;
            durations[f].push(wall);
        }
    }

    let recorded = saturating_sum(self_time.iter().copied());
    let share = |ns: u64| {
        if recorded == 0 {
            0.0
        } else {
            ns as f64 / recorded as f64
        }
    };
    profile
        .functions
        .iter()
        .enumerate()
        .map(|(f, entry)| {
            let d = &mut durations[f];
            d.sort_unstable();
            // In floating point: the durations of a file can add up past u64.
            let sum: f64 = d.iter().map(|&ns| ns as f64).sum();
            FunctionStats {
                name: entry.name.clone(),
                kind: entry.kind,
                module_path: entry.module_path.clone(),
                file: entry.file.clone(),
                line: entry.line,
                calls: calls[f],
                total_ns: total[f],
                self_ns: self_time[f],
                min_ns: d.first().copied().unwrap_or(0),
                max_ns: d.last().copied().unwrap_or(0),
                mean_ns: if d.is_empty() {
                    0.0
                } else {
                    sum / d.len() as f64
                },
                p50_ns: percentile(d, 50),
                p90_ns: percentile(d, 90),
                p99_ns: percentile(d, 99),
                total_share: share(total[f]),
                self_share: share(self_time[f]),
                async_stats: async_stats[f].take(),
                budget_ns: entry.budget_ns,
            }
        })
        .collect()
}

/// What the spans on threads give, per function.
struct SpanTimes {
    calls: Vec<u64>,
    total: Vec<u64>,
    self_time: Vec<u64>,
    /// Durations of the calls, unsorted.
    durations: Vec<Vec<u64>>,
}

/// Calls, total and self time of every function from the spans of every thread; async functions'
/// polls add time but not calls.
fn span_times(profile: &Profile) -> SpanTimes {
    let n = profile.functions.len();
    let mut calls = vec![0_u64; n];
    let mut total = vec![0_u64; n];
    let mut self_time = vec![0_u64; n];
    let mut durations: Vec<Vec<u64>> = vec![Vec::new(); n];

    // How many spans of each function are open on the current thread's stack.
    let mut active = vec![0_u32; n];
    let mut stack: Vec<usize> = Vec::new();
    for thread in &profile.threads {
        let spans = &thread.spans;
        let mut own = spans
            .iter()
            .map(crate::Span::duration_ns)
            .collect::<Vec<_>>();
        for span in spans {
            if let Some(p) = span.parent {
                if let Some(slot) = own.get_mut(p as usize) {
                    *slot = slot.saturating_sub(span.duration_ns());
                }
            }
        }
        stack.clear();
        for (i, span) in spans.iter().enumerate() {
            while let Some(&top) = stack.last() {
                if Some(top as u32) == span.parent {
                    break;
                }
                active[spans[top].function as usize] -= 1;
                stack.pop();
            }
            let f = span.function as usize;
            if active[f] == 0 {
                total[f] = total[f].saturating_add(span.duration_ns());
            }
            self_time[f] = self_time[f].saturating_add(own[i]);
            active[f] += 1;
            stack.push(i);
            let is_async = profile.functions[f].kind == FunctionKind::AsyncFunction;
            if !span.flags.continued {
                // A poll is not a call of an async fn: its futures are, below.
                if !is_async {
                    calls[f] += 1;
                    durations[f].push(span.duration_ns());
                }
            }
        }
        while let Some(top) = stack.pop() {
            active[spans[top].function as usize] -= 1;
        }
    }

    SpanTimes {
        calls,
        total,
        self_time,
        durations,
    }
}

/// The sum of `values`, `u64::MAX` if it does not fit: times read from a file (a trace of another
/// tool, a hand-edited one) can add up past a `u64` of nanoseconds, which would wrap in release
/// builds and panic in debug ones.
pub(crate) fn saturating_sum(values: impl IntoIterator<Item = u64>) -> u64 {
    values
        .into_iter()
        .fold(0, |sum: u64, value| sum.saturating_add(value))
}

/// Nearest-rank percentile of sorted values: the smallest value with at least `p`% of the values
/// at or below it; 0 for no values.
fn percentile(sorted: &[u64], p: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len() as u64;
    let rank = (p * n).div_ceil(100).max(1);
    sorted[(rank - 1) as usize]
}

/// A multiply-rotate hasher for integer keys (the Perfetto decoder's sequence ids, track
/// uuids, thread ids and iids, the streaming statistics' call paths), looked up several times per event: SipHash, the default, was a fifth of the time
/// of reading a trace. Keys come from the file, so a hostile file can make its own lookups slow,
/// and nothing else.
#[derive(Default, Clone, Copy)]
#[cfg_attr(not(feature = "stream"), allow(dead_code))]
pub(crate) struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// A map with integer keys, hashed by [`FastHasher`].
#[cfg_attr(not(feature = "stream"), allow(dead_code))]
pub(crate) type FastMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;

/// Durations kept exactly per function before a streaming accumulator switches that function to
/// a histogram: below it, [`StreamingStats`] gives the same percentiles as [`function_stats`].
const EXACT_DURATIONS: usize = 4096;

/// Sub-buckets per power of two of the histogram: a percentile is off by less than 1/128 of it.
const SUB_BITS: u32 = 7;

/// The durations of one function's calls in bounded memory: exact up to [`EXACT_DURATIONS`], then
/// a log-linear histogram (128 buckets per power of two, about 30 KiB for durations up to a
/// second) whose percentiles are within 0.8% of the exact ones.
#[derive(Clone, Debug, Default)]
pub(crate) struct Durations {
    exact: Vec<u64>,
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
    min: u64,
    max: u64,
}

impl Durations {
    fn bucket(ns: u64) -> usize {
        let sub = 1u64 << SUB_BITS;
        if ns < sub {
            return ns as usize;
        }
        let e = ns.ilog2();
        let shift = e - SUB_BITS;
        (u64::from(e - SUB_BITS + 1) << SUB_BITS | ((ns >> shift) & (sub - 1))) as usize
    }

    /// The smallest duration of bucket `i`, and its width.
    fn bucket_range(i: usize) -> (u64, u64) {
        let sub = 1usize << SUB_BITS;
        if i < sub {
            return (i as u64, 1);
        }
        let shift = (i >> SUB_BITS) as u32 - 1;
        let low = ((sub | (i & (sub - 1))) as u64) << shift;
        (low, 1u64 << shift)
    }

    fn add_to_histogram(buckets: &mut Vec<u64>, ns: u64) {
        let b = Self::bucket(ns);
        if buckets.len() <= b {
            buckets.resize(b + 1, 0);
        }
        buckets[b] += 1;
    }

    pub(crate) fn push(&mut self, ns: u64) {
        if self.count == 0 {
            self.min = ns;
            self.max = ns;
        } else {
            self.min = self.min.min(ns);
            self.max = self.max.max(ns);
        }
        self.count += 1;
        self.sum += ns as f64;
        if self.buckets.is_empty() && self.exact.len() < EXACT_DURATIONS {
            self.exact.push(ns);
            return;
        }
        for ns in self.exact.drain(..) {
            Self::add_to_histogram(&mut self.buckets, ns);
        }
        self.exact = Vec::new();
        Self::add_to_histogram(&mut self.buckets, ns);
    }

    /// Nearest-rank percentile: exact while the durations are, else the middle of the bucket
    /// holding that rank (within the range seen).
    fn percentile(&mut self, p: u64) -> u64 {
        if self.buckets.is_empty() {
            self.exact.sort_unstable();
            return percentile(&self.exact, p);
        }
        let rank = (p * self.count).div_ceil(100).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, width) = Self::bucket_range(i);
                return (low + (width - 1) / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }

    fn mean(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        if self.buckets.is_empty() {
            // Sorted, as `function_stats` adds them, for the same rounding.
            let mut sorted = self.exact.clone();
            sorted.sort_unstable();
            return sorted.iter().map(|&ns| ns as f64).sum::<f64>() / sorted.len() as f64;
        }
        self.sum / self.count as f64
    }
}

/// One function's figures while spans stream in.
#[derive(Clone, Debug, Default)]
struct Accumulated {
    calls: u64,
    total: u64,
    self_time: u64,
    durations: Durations,
    polls: u64,
    wall: u64,
    cancelled: u64,
    futures: u64,
}

/// Per thread: how many spans of each function are open (recursion adds time once).
#[derive(Default)]
struct ThreadActive {
    active: Vec<u32>,
}

/// [`function_stats`] and the [`CallTree`](crate::analyze::tree::CallTree) computed from spans
/// delivered one at a time (at their begin and end, innermost first on each thread), holding
/// no span: memory is the functions (each with at most [`EXACT_DURATIONS`] durations or a
/// histogram), the distinct call paths and the threads. What `profiler summary` uses on a
/// streamed trace of any length.
#[derive(Default)]
pub(crate) struct StreamingStats {
    functions: Vec<Accumulated>,
    threads: FastMap<u32, ThreadActive>,
    nodes: Vec<crate::analyze::tree::CallNode>,
    node_index: FastMap<(Option<u32>, u32), u32>,
}

impl StreamingStats {
    fn function(&mut self, f: u32) -> &mut Accumulated {
        let f = f as usize;
        if self.functions.len() <= f {
            self.functions.resize_with(f + 1, Accumulated::default);
        }
        &mut self.functions[f]
    }

    /// A span of `function` begins on `tid` inside the span whose begin returned `parent`; returns
    /// its call tree node.
    pub(crate) fn begin(&mut self, tid: u32, function: u32, parent: Option<u32>) -> u32 {
        let depth = parent.map_or(0, |p| self.nodes[p as usize].depth + 1);
        let nodes = &mut self.nodes;
        let id = *self
            .node_index
            .entry((parent, function))
            .or_insert_with(|| {
                nodes.push(crate::analyze::tree::CallNode {
                    function,
                    parent,
                    depth,
                    calls: 0,
                    total_ns: 0,
                    self_ns: 0,
                });
                (nodes.len() - 1) as u32
            });
        self.nodes[id as usize].calls += 1;
        let active = &mut self.threads.entry(tid).or_default().active;
        if active.len() <= function as usize {
            active.resize(function as usize + 1, 0);
        }
        active[function as usize] += 1;
        id
    }

    /// The span whose begin returned `node` ends, lasting `duration` of which `self_ns` its own.
    pub(crate) fn end(
        &mut self,
        tid: u32,
        node: u32,
        kind: FunctionKind,
        duration: u64,
        self_ns: u64,
    ) {
        let n = &mut self.nodes[node as usize];
        n.total_ns = n.total_ns.saturating_add(duration);
        let function = n.function;
        let outermost = self.threads.get_mut(&tid).is_none_or(|t| {
            let a = &mut t.active[function as usize];
            *a -= 1;
            *a == 0
        });
        let acc = self.function(function);
        if outermost {
            acc.total = acc.total.saturating_add(duration);
        }
        acc.self_time = acc.self_time.saturating_add(self_ns);
        if kind == FunctionKind::AsyncFunction {
            acc.polls += 1;
        } else {
            acc.calls += 1;
            acc.durations.push(duration);
        }
    }

    /// A future's life.
    pub(crate) fn async_span(&mut self, span: &crate::collect::profile::AsyncSpan) {
        let wall = span.end_ns.saturating_sub(span.start_ns);
        let acc = self.function(span.function);
        acc.futures += 1;
        acc.wall = acc.wall.saturating_add(wall);
        if !span.flags.continued {
            acc.cancelled += u64::from(span.cancelled);
            acc.calls += 1;
            acc.durations.push(wall);
        }
    }

    /// The statistics of `functions` (indexed as the spans' `function`) and the call tree.
    pub(crate) fn finish(
        mut self,
        functions: &[crate::collect::profile::FunctionEntry],
    ) -> (Vec<FunctionStats>, crate::analyze::tree::CallTree) {
        if self.functions.len() < functions.len() {
            self.functions
                .resize_with(functions.len(), Accumulated::default);
        }
        let recorded = saturating_sum(self.functions.iter().map(|a| a.self_time));
        let share = |ns: u64| {
            if recorded == 0 {
                0.0
            } else {
                ns as f64 / recorded as f64
            }
        };
        let stats = functions
            .iter()
            .zip(&mut self.functions)
            .map(|(entry, acc)| {
                let is_async = entry.kind == FunctionKind::AsyncFunction;
                let d = &mut acc.durations;
                FunctionStats {
                    name: entry.name.clone(),
                    kind: entry.kind,
                    module_path: entry.module_path.clone(),
                    file: entry.file.clone(),
                    line: entry.line,
                    calls: acc.calls,
                    total_ns: acc.total,
                    self_ns: acc.self_time,
                    min_ns: d.min,
                    max_ns: d.max,
                    mean_ns: d.mean(),
                    p50_ns: d.percentile(50),
                    p90_ns: d.percentile(90),
                    p99_ns: d.percentile(99),
                    total_share: share(acc.total),
                    self_share: share(acc.self_time),
                    async_stats: (is_async || acc.futures > 0).then_some(AsyncStats {
                        polls: acc.polls,
                        wall_ns: acc.wall,
                        cancelled: acc.cancelled,
                    }),
                    budget_ns: entry.budget_ns,
                }
            })
            .collect();
        let mut children_time = vec![0_u64; self.nodes.len()];
        for node in &self.nodes {
            if let Some(p) = node.parent {
                let sum = &mut children_time[p as usize];
                *sum = sum.saturating_add(node.total_ns);
            }
        }
        for (node, children) in self.nodes.iter_mut().zip(children_time) {
            node.self_ns = node.total_ns.saturating_sub(children);
        }
        let tree = crate::analyze::tree::CallTree { nodes: self.nodes }.into_pre_order();
        (stats, tree)
    }
}

/// `FunctionKind` as its export name (`function`, `async`, `scope`, `context`).
pub(crate) mod kind_name {
    use serde::{de, Deserialize, Deserializer, Serializer};

    use crate::record::registry::FunctionKind;

    const KINDS: [FunctionKind; 4] = [
        FunctionKind::Function,
        FunctionKind::AsyncFunction,
        FunctionKind::Scope,
        FunctionKind::Context,
    ];

    /// The kind whose export name is `name`.
    pub(crate) fn parse(name: &str) -> Option<FunctionKind> {
        KINDS.into_iter().find(|k| k.as_str() == name)
    }

    #[allow(clippy::trivially_copy_pass_by_ref)] // the signature serde's `with` expects
    pub(crate) fn serialize<S: Serializer>(kind: &FunctionKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.as_str())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<FunctionKind, D::Error> {
        let name = String::deserialize(d)?;
        parse(&name).ok_or_else(|| {
            de::Error::invalid_value(
                de::Unexpected::Str(&name),
                &"one of `function`, `async`, `scope`, `context`",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{percentile, Durations};

    #[test]
    fn histogram_percentiles_stay_within_a_percent() {
        let mut d = Durations::default();
        let values: Vec<u64> = (0..100_000u64)
            .map(|i| (i * 7919) % 1_000_003 + 1)
            .collect();
        for &v in &values {
            d.push(v);
        }
        let mut sorted = values.clone();
        sorted.sort_unstable();
        for p in [50, 90, 99] {
            let exact = percentile(&sorted, p) as f64;
            let approx = d.percentile(p) as f64;
            assert!(
                (approx - exact).abs() <= exact / 100.0,
                "p{p}: {approx} vs {exact}"
            );
        }
        for ns in [0, 1, 127, 128, 129, 255, 256, 1000, 1 << 40, u64::MAX] {
            let (low, width) = Durations::bucket_range(Durations::bucket(ns));
            assert!(low <= ns && ns - low < width, "{ns}: {low} +{width}");
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), 50);
        assert_eq!(percentile(&v, 90), 90);
        assert_eq!(percentile(&v, 99), 99);
        assert_eq!(percentile(&[7], 99), 7);
        assert_eq!(percentile(&[1, 2], 50), 1);
        assert_eq!(percentile(&[1, 2], 90), 2);
        assert_eq!(percentile(&[], 50), 0);
        let ten: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&ten, 99), 10);
        assert_eq!(percentile(&ten, 90), 9);
    }
}
