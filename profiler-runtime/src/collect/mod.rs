//! The collector: the registry of recording threads, the drain that takes the rings' filled
//! blocks into the collector's keeping (16 bytes an event, unmerged, not copied), and the flush
//! that drains every ring and merges everything held into one [`Profile`].
//!
//! Collect is the layer above record: it owns the merged model ([`profile`]), the run's build
//! metadata ([`build_info`]) and the tick-to-time calibration ([`calibration`]), and uses only the
//! record layer below it.

pub(crate) mod build_info;
pub(crate) mod calibration;
pub(crate) mod profile;

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::collect::profile::{
    AsyncSpan, ClockInfo, FunctionEntry, Profile, Span, SpanFlags, ThreadTimeline,
};
use crate::record::clock::{self, Timebase};
use crate::record::recorder::{self, Event, EventKind};
use crate::record::registry::{self, FunctionInfo};
use crate::record::ring::{BlockPool, Drained};
use crate::record::threads::{self, ThreadShared};

/// Default cap on the events [`drain`] holds between two flushes: 32 Mi events, 512 MiB.
pub const DEFAULT_MAX_BUFFERED_EVENTS: usize = 1 << 25;

static MAX_BUFFERED_EVENTS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many events [`drain`] may hold between two flushes (16 bytes each). Once that many
/// are held, `drain` moves nothing more: rings fill, and further calls are dropped whole and
/// counted in [`Profile::dropped_events`], as with no drain at all. The default is
/// [`DEFAULT_MAX_BUFFERED_EVENTS`], or `PROFILER_MAX_BUFFERED_EVENTS` from the environment.
pub fn set_max_buffered_events(events: usize) {
    MAX_BUFFERED_EVENTS.store(events.max(1), Ordering::Relaxed);
}

/// The cap [`drain`] works under (see [`set_max_buffered_events`]).
pub fn max_buffered_events() -> usize {
    threads::setting(
        &MAX_BUFFERED_EVENTS,
        "PROFILER_MAX_BUFFERED_EVENTS",
        DEFAULT_MAX_BUFFERED_EVENTS,
    )
}

/// A span open on a thread when its events were merged.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Open {
    site: &'static FunctionInfo,
    /// Index of its span in the thread's timeline being built.
    pub(crate) span: u32,
}

/// A span open at a flush, carried into the next one.
#[derive(Clone, Copy, Debug)]
struct Carried {
    site: &'static FunctionInfo,
}

#[derive(Debug)]
struct ThreadState {
    shared: &'static ThreadShared,
    tid: u32,
    name: String,
    /// Spans open at the last flush, outermost first.
    carried: Vec<Carried>,
    /// `ring.dropped()` already reported.
    reported_dropped: u64,
    /// The ring's dropped count when this thread took it (a pooled ring keeps counting).
    #[cfg_attr(not(feature = "stream"), allow(dead_code))]
    dropped_at_start: u64,
    /// The last timestamp merged, to keep the thread's timeline monotonic.
    last_ns: u64,
    /// When the last flush drained this thread (ns): spans carried from it continue from here.
    boundary_ns: u64,
    /// Events taken out of the ring by [`drain`] since the last flush, oldest first: whole blocks
    /// of the ring, not copies.
    pending: Drained<Event>,
}

/// An async begin/end seen in a ring, before matching.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AsyncRecord {
    kind: EventKind,
    site: &'static FunctionInfo,
    id: u64,
    ns: u64,
    tid: u32,
}

#[derive(Clone, Copy, Debug)]
struct OpenAsync {
    site: &'static FunctionInfo,
    start_ns: u64,
    start_tid: u32,
    continued: bool,
}

#[derive(Debug)]
struct Collector {
    threads: Vec<ThreadState>,
    timebase: Option<Timebase>,
    /// Start of the next profile: the earliest moment the last flush drained a thread (events
    /// recorded after a thread's drain belong to the next profile).
    next_start_ns: u64,
    open_async: BTreeMap<u64, OpenAsync>,
    reported_lost: u64,
    /// Events held in the threads' `pending` since the last flush.
    pending_events: usize,
    /// Spare ring blocks: they replace the blocks drains take, and get those back after a flush.
    blocks: BlockPool<Event>,
}

static COLLECTOR: Mutex<Collector> = Mutex::new(Collector {
    threads: Vec::new(),
    timebase: None,
    next_start_ns: 0,
    open_async: BTreeMap::new(),
    reported_lost: 0,
    pending_events: 0,
    blocks: BlockPool::new(),
});

/// The collector's lock, with the threads that started recording since the last call adopted:
/// each gets its state here (the record layer only hands out rings).
fn collector() -> MutexGuard<'static, Collector> {
    let mut c = COLLECTOR.lock().unwrap_or_else(PoisonError::into_inner);
    let new = threads::take_new_threads();
    if !new.is_empty() {
        if c.timebase.is_none() {
            c.timebase = threads::first_anchor().map(Timebase::new);
        }
        let start_ns = c.next_start_ns;
        for thread in new {
            c.threads.push(ThreadState {
                shared: thread.shared,
                tid: thread.tid,
                name: thread.name,
                carried: Vec::new(),
                reported_dropped: thread.dropped_at_start,
                dropped_at_start: thread.dropped_at_start,
                last_ns: start_ns,
                boundary_ns: start_ns,
                pending: Drained::new(),
            });
        }
    }
    c
}

/// Moves what every thread has recorded out of its ring buffer into the collector's keeping
/// (16 bytes an event, nothing merged yet) and returns how many events it moved. The next
/// [`flush`] merges them with the rest, exactly as if they had stayed in the rings.
///
/// Nothing is copied but the few events of the block each thread is still filling: the ring's
/// full blocks (4096 events each) change hands, and spare blocks take their place.
///
/// Rings are fixed-size: a thread that records more than its ring holds between two flushes
/// drops calls. Draining often keeps every call while the collector's memory grows by 16 bytes
/// an event, up to [`max_buffered_events`]. [`Config::init`](crate::Config::init) starts a
/// background thread that drains every few milliseconds; without it, call `drain` from a loop of
/// your own, or `flush` periodically. Safe to call from any thread at any time; threads keep
/// recording meanwhile.
///
/// # Examples
///
/// ```
/// #[profiler_runtime::profile]
/// fn step() {}
///
/// for _ in 0..1000 {
///     step();
/// }
/// let moved = profiler_runtime::drain();
/// # #[cfg(feature = "enable")]
/// assert!(moved >= 2000);
/// let profile = profiler_runtime::flush();
/// # #[cfg(feature = "enable")]
/// assert!(profile.span_count() >= 1000);
/// ```
pub fn drain() -> usize {
    if STREAMING.load(Ordering::Acquire) {
        return 0;
    }
    let cap = max_buffered_events();
    let mut c = collector();
    let c = &mut *c;
    let mut moved = 0;
    for t in &mut c.threads {
        // Checked per ring, so the cap may be passed by at most one ring's worth of events.
        if c.pending_events + moved >= cap {
            break;
        }
        moved += t.shared.ring.take(&mut t.pending, &mut c.blocks);
    }
    c.pending_events += moved;
    moved
}

#[cfg(feature = "stream")]
/// One thread's events handed to a [`StreamSink`] at a drain.
#[derive(Debug)]
pub(crate) struct ThreadBatch<'a> {
    /// The profiler's thread id.
    pub(crate) tid: u32,
    /// The thread's name.
    pub(crate) name: &'a str,
    /// What the thread recorded since the last drain, oldest first.
    pub(crate) events: &'a Drained<Event>,
    /// Events its ring dropped since this thread took it (cumulative).
    pub(crate) dropped_total: u64,
}

#[cfg(feature = "stream")]
/// Where [`drain_to`] hands what it takes: the streaming writer, a layer above.
pub(crate) trait StreamSink {
    /// One thread's new events, with the converter of this drain (ticks to ns since the epoch)
    /// and the latest time any of them can have (ns).
    fn thread(&mut self, batch: &ThreadBatch<'_>, converter: &mut clock::Converter, limit_ns: u64);
    /// Async ends that did not fit in their thread's ring, with their ids.
    fn spilled(&mut self, events: &[(Event, u64)], converter: &mut clock::Converter, limit_ns: u64);
}

#[cfg(feature = "stream")]
/// The clock's calibration so far: ticks per second (1e9 for the monotonic clock).
pub(crate) fn clock_info() -> ClockInfo {
    let c = collector();
    ClockInfo {
        kind: clock::kind(),
        ticks_per_second: c.timebase.as_ref().map_or(1e9, Timebase::ticks_per_second),
    }
}

#[cfg(feature = "stream")]
/// Events lost outside the rings (a thread that could not get one) since the process started.
pub(crate) fn lost_events_total() -> u64 {
    recorder::lost_events()
}

#[cfg(feature = "stream")]
/// Drains every ring and hands each thread's events to `sink`, in ring order, converted with
/// one converter anchored after every ring was taken. With `keep`, the events also stay for the
/// next [`flush`] (as [`drain`] leaves them); without it, their blocks are recycled at once and
/// exited threads are released, so that memory stays bounded by the rings however long the run.
/// Returns the number of events handed over, and the time (ns) every one of them precedes.
pub(crate) fn drain_to(sink: &mut impl StreamSink, keep: bool) -> (usize, u64) {
    let mut c = collector();
    let c = &mut *c;
    let mut exited = Vec::with_capacity(c.threads.len());
    let mut taken: Vec<Drained<Event>> = Vec::with_capacity(c.threads.len());
    let mut moved = 0;
    for t in &c.threads {
        // The flag before the ring, so that an exited thread's last events are in this take.
        exited.push(t.shared.exited.load(Ordering::Acquire));
        let mut events = Drained::new();
        moved += t.shared.ring.take(&mut events, &mut c.blocks);
        taken.push(events);
    }
    // After every take: each event taken is older than this anchor.
    let anchor = clock::anchor();
    let timebase = c.timebase.get_or_insert_with(|| Timebase::new(anchor));
    if keep {
        // The events stay for the flush, which converts them with these anchors.
        timebase.push_keeping(anchor);
    } else {
        timebase.push(anchor);
    }
    let limit_ns = timebase.last().ns;
    let mut converter = timebase.converter();
    let mut recycled = 0;
    for (t, events) in c.threads.iter_mut().zip(&mut taken) {
        sink.thread(
            &ThreadBatch {
                tid: t.tid,
                name: &t.name,
                events,
                dropped_total: t.shared.ring.dropped().saturating_sub(t.dropped_at_start),
            },
            &mut converter,
            limit_ns,
        );
        if keep {
            t.pending.append(events);
        } else {
            recycled += events.recycle(&mut c.blocks);
        }
    }
    if keep {
        c.pending_events += moved;
    } else {
        // Spare blocks for the next drain: as many as this one took.
        c.blocks.trim(recycled.max(4));
        let mut index = 0;
        c.threads.retain(|t| {
            let gone = exited[index];
            index += 1;
            if gone && !t.shared.ring.is_claimed() {
                threads::release(t.shared);
            }
            !gone
        });
        let spilled = recorder::take_spilled();
        if !spilled.is_empty() {
            sink.spilled(&spilled, &mut converter, limit_ns);
        }
    }
    (moved, limit_ns)
}

/// Events [`drain`] holds now, not yet merged by a [`flush`].
pub fn buffered_events() -> usize {
    collector().pending_events
}

/// Drains every thread's buffer and merges everything recorded since the last flush into one
/// [`Profile`]. Threads keep recording meanwhile; what they record after their buffer was
/// drained goes into the next profile. Spans still open are closed at the flush time and marked
/// incomplete; the next profile continues them (marked continued) without counting them again.
///
/// Concurrent flushes are serialised.
///
/// While [`init`](crate::init) streams the run to a file (the default with the `enable`
/// feature), the rings belong to the stream: `flush` takes nothing from them and returns a
/// profile with every function and no span (the calls are in the streamed file, which
/// `import::read_perfetto` reads back), and [`drain`] moves
/// nothing. `Config::stream(false)` keeps the run in memory for `flush`.
///
/// # Examples
///
/// ```
/// let profile = profiler_runtime::flush();
/// assert!(profile.validate().is_ok());
/// ```
#[allow(clippy::too_many_lines)] // the steps of one flush, numbered in order
pub fn flush() -> Profile {
    let mut c = collector();
    let c = &mut *c;
    if STREAMING.load(Ordering::Acquire) {
        return streamed_elsewhere(c);
    }

    let DrainedAll { exited, boundaries } = drain_all(&mut c.threads, &mut c.blocks);
    c.pending_events = 0;
    // 2. Anchor the clock after draining: every drained event and boundary is older than it.
    let timebase = c
        .timebase
        .get_or_insert_with(|| Timebase::new(clock::anchor()));
    // Every anchor since the events kept by a stream were drained, forgotten once they are
    // converted (below).
    timebase.push_keeping(clock::anchor());
    let start_ns = c.next_start_ns;
    let end_ns = timebase.last().ns.max(start_ns);
    let mut converter = timebase.converter();
    let mut next_start_ns = end_ns;

    // 3. Merge each thread.
    let mut functions = FunctionTable::default();
    let mut threads = Vec::with_capacity(c.threads.len());
    let mut async_records = Vec::new();
    let mut dropped_total = 0;
    let mut recycled_blocks = 0;
    for (t, &boundary) in c.threads.iter_mut().zip(&boundaries) {
        let boundary_ns = converter
            .convert(boundary)
            .clamp(t.last_ns.max(start_ns), end_ns);
        next_start_ns = next_start_ns.min(boundary_ns);
        let mut merge = Merge {
            converter: &mut converter,
            functions: &mut functions,
            async_records: &mut async_records,
        };
        let mut events = std::mem::replace(&mut t.pending, Drained::new());
        let timeline = t.merge(&events, boundary_ns, &mut merge);
        recycled_blocks += events.recycle(&mut c.blocks);
        t.pending = events;
        dropped_total += timeline.dropped_events;
        if !timeline.spans.is_empty() || timeline.dropped_events > 0 {
            threads.push(timeline);
        }
    }
    // Spare blocks for the next drains: as many as this flush gave back, so that a steady rhythm
    // of drains and flushes reuses the same memory, and a burst's extra memory is freed.
    c.blocks.trim(recycled_blocks);
    // Mark exited threads, and release those whose buffers are now empty.
    let mut index = 0;
    c.threads.retain(|t| {
        let gone = exited[index];
        index += 1;
        if gone {
            if let Some(timeline) = threads.iter_mut().find(|tl| tl.tid == t.tid) {
                timeline.exited = true;
            }
            // A ring still claimed (an exit was owed at thread exit) is never reused.
            if !t.shared.ring.is_claimed() {
                threads::release(t.shared);
            }
        }
        !gone
    });

    // 4. Async spans: match begins and ends across threads in time order.
    for (event, id) in recorder::take_spilled() {
        async_records.push(AsyncRecord {
            kind: event.kind(),
            site: event.site(),
            id,
            ns: converter.convert(event.value()).clamp(start_ns, end_ns),
            tid: 0,
        });
    }
    let async_spans = match_async(
        &mut c.open_async,
        async_records,
        &mut functions,
        end_ns,
        next_start_ns,
    );

    // 5. Every registered site, called or not.
    for info in registry::registered_sites() {
        functions.index(info);
    }
    for info in registry::run_time_sites() {
        functions.index(info);
    }

    let lost_now = recorder::lost_events();
    let lost = lost_now - c.reported_lost;
    c.reported_lost = lost_now;
    c.next_start_ns = next_start_ns;
    if let Some(timebase) = c.timebase.as_mut() {
        timebase.prune();
    }
    let clock = ClockInfo {
        kind: clock::kind(),
        ticks_per_second: c.timebase.as_ref().map_or(1e9, Timebase::ticks_per_second),
    };
    threads.sort_by_key(|t| t.tid);
    Profile {
        functions: functions.entries,
        threads,
        async_spans,
        start_ns,
        end_ns,
        epoch_unix_ns: clock::epoch_unix_ns(),
        clock,
        dropped_events: dropped_total + lost,
        process_name: process_name(),
        pid: std::process::id(),
        build: Some(crate::BuildInfo::of_this_build()),
    }
}

/// Set while a stream owns the rings: [`flush`] and [`drain`] then take nothing.
static STREAMING: AtomicBool = AtomicBool::new(false);

/// Hands the rings to a stream (`true`), or back to [`flush`] (`false`).
#[cfg(feature = "stream")]
pub(crate) fn set_streaming(on: bool) {
    STREAMING.store(on, Ordering::Release);
}

/// The profile a flush returns while a stream owns the rings: every function, no span (the calls
/// are in the streamed file), the bounds up to now.
fn streamed_elsewhere(c: &mut Collector) -> Profile {
    let timebase = c
        .timebase
        .get_or_insert_with(|| Timebase::new(clock::anchor()));
    timebase.push(clock::anchor());
    let start_ns = c.next_start_ns;
    let end_ns = timebase.last().ns.max(start_ns);
    c.next_start_ns = end_ns;
    let mut functions = FunctionTable::default();
    for info in registry::registered_sites().chain(registry::run_time_sites()) {
        functions.index(info);
    }
    Profile {
        functions: functions.entries,
        threads: Vec::new(),
        async_spans: Vec::new(),
        start_ns,
        end_ns,
        epoch_unix_ns: clock::epoch_unix_ns(),
        clock: ClockInfo {
            kind: clock::kind(),
            ticks_per_second: timebase.ticks_per_second(),
        },
        dropped_events: 0,
        process_name: process_name(),
        pid: std::process::id(),
        build: Some(crate::BuildInfo::of_this_build()),
    }
}

/// What a flush learns while draining every thread.
struct DrainedAll {
    /// Whether each thread had exited before its drain.
    exited: Vec<bool>,
    /// Per thread, the tick between what this flush takes and what the next one will.
    boundaries: Vec<u64>,
}

/// Drains every ring into its thread's pending events. An exited thread's flag is read before
/// its ring, so its last events are drained. Each thread gets a boundary between what this flush
/// takes and what the next one will: the clock read just before its drain, or its last drained
/// event if that is later (an event stamped before the read but published after it). Open spans
/// are cut there.
fn drain_all(threads: &mut [ThreadState], blocks: &mut BlockPool<Event>) -> DrainedAll {
    let mut drained = DrainedAll {
        exited: Vec::with_capacity(threads.len()),
        boundaries: Vec::with_capacity(threads.len()),
    };
    for t in threads {
        drained.exited.push(t.shared.exited.load(Ordering::Acquire));
        let before = clock::now();
        t.shared.ring.take(&mut t.pending, blocks);
        let last_stamp = t
            .pending
            .runs()
            .rev()
            .flat_map(|run| run.iter().rev())
            .find(|e| e.kind() != EventKind::Payload)
            .map_or(0, |e| e.value());
        drained.boundaries.push(before.max(last_stamp));
    }
    drained
}

/// What merging one thread's events shares with the rest of the flush (or of the flight
/// recorder's profile).
pub(crate) struct Merge<'a> {
    pub(crate) converter: &'a mut clock::Converter,
    pub(crate) functions: &'a mut FunctionTable,
    pub(crate) async_records: &'a mut Vec<AsyncRecord>,
}

impl ThreadState {
    /// Turns this thread's drained events into its timeline: spans carried from the last flush
    /// first, then every enter/exit, then whatever is still open cut at `boundary_ns` (and carried).
    fn merge(
        &mut self,
        events: &Drained<Event>,
        boundary_ns: u64,
        m: &mut Merge<'_>,
    ) -> ThreadTimeline {
        let mut spans = Vec::with_capacity(events.len() / 2 + self.carried.len());
        let mut stack: Vec<Open> = Vec::with_capacity(self.carried.len() + 16);
        for carried in self.carried.drain(..) {
            let parent = stack.last().map(|o| o.span);
            stack.push(Open {
                site: carried.site,
                span: spans.len() as u32,
            });
            spans.push(Span {
                function: m.functions.index(carried.site),
                start_ns: self.boundary_ns,
                end_ns: self.boundary_ns,
                depth: stack.len() as u32 - 1,
                parent,
                flags: SpanFlags {
                    incomplete: false,
                    continued: true,
                },
            });
        }
        let mut cursor = Cursor::new(self.last_ns, boundary_ns, self.tid);
        for run in events.runs() {
            cursor.merge_run(run, &mut spans, &mut stack, m);
        }
        let last_ns = cursor.last_ns;
        // Spans still open: cut at the boundary, carried into the next profile.
        for open in &stack {
            spans[open.span as usize].end_ns = boundary_ns;
            spans[open.span as usize].flags.incomplete = true;
            self.carried.push(Carried { site: open.site });
        }
        self.last_ns = last_ns.max(boundary_ns);
        self.boundary_ns = boundary_ns;
        let dropped_now = self.shared.ring.dropped();
        let dropped_events = dropped_now - self.reported_dropped;
        self.reported_dropped = dropped_now;
        ThreadTimeline {
            tid: self.tid,
            name: self.name.clone(),
            spans,
            dropped_events,
            exited: false,
        }
    }
}

/// Where one thread's merge is between two runs of events.
pub(crate) struct Cursor {
    /// The last timestamp merged (ns): the next is clamped to at least this.
    last_ns: u64,
    /// Where this flush cuts the thread (ns): no timestamp is later.
    boundary_ns: u64,
    /// An async event waiting for its payload (the next event, maybe in the next run).
    awaiting: Option<(EventKind, &'static FunctionInfo, u64)>,
    tid: u32,
}

impl Cursor {
    /// A merge of thread `tid` whose timestamps are clamped into `[last_ns, boundary_ns]`.
    pub(crate) fn new(last_ns: u64, boundary_ns: u64, tid: u32) -> Self {
        Cursor {
            last_ns,
            boundary_ns,
            awaiting: None,
            tid,
        }
    }

    /// The last timestamp merged (ns).
    pub(crate) fn last_ns(&self) -> u64 {
        self.last_ns
    }

    /// Merges one run of consecutive events into `spans`. Enters and exits are the hot loop;
    /// async events and payloads go through [`Cursor::async_event`], out of line.
    #[inline(never)]
    pub(crate) fn merge_run(
        &mut self,
        run: &[Event],
        spans: &mut Vec<Span>,
        stack: &mut Vec<Open>,
        m: &mut Merge<'_>,
    ) {
        let boundary_ns = self.boundary_ns;
        let mut last_ns = self.last_ns;
        let mut rest = run;
        while let [event, tail @ ..] = rest {
            rest = tail;
            // Clamp into [previous event, boundary]: cross-core TSC skew is tiny but not zero.
            let mut clamped = |ticks| {
                let ns = m.converter.convert(ticks).max(last_ns).min(boundary_ns);
                last_ns = ns;
                ns
            };
            match event.kind() {
                EventKind::Enter => {
                    let parent = stack.last().map(|o| o.span);
                    let depth = stack.len() as u32;
                    let (mut enter, mut exit) = match rest {
                        // A leaf call (most spans are): its exit is the next event, so its span
                        // is complete at once and the stack is not touched.
                        [next, tail @ ..] if is_exit_of(next, event) => {
                            rest = tail;
                            (event, next)
                        }
                        _ => {
                            let start_ns = clamped(event.value());
                            spans.push(Span {
                                function: m.functions.index(event.site()),
                                start_ns,
                                end_ns: start_ns,
                                depth,
                                parent,
                                flags: SpanFlags::default(),
                            });
                            stack.push(Open {
                                site: event.site(),
                                span: spans.len() as u32 - 1,
                            });
                            continue;
                        }
                    };
                    // Leaf calls one after another at the same depth (a loop calling small
                    // functions): the parent and depth stay, so they are merged here.
                    loop {
                        let start_ns = clamped(enter.value());
                        spans.push(Span {
                            function: m.functions.index(enter.site()),
                            start_ns,
                            end_ns: clamped(exit.value()),
                            depth,
                            parent,
                            flags: SpanFlags::default(),
                        });
                        match rest {
                            [next_enter, next_exit, tail @ ..]
                                if next_enter.kind() == EventKind::Enter
                                    && is_exit_of(next_exit, next_enter) =>
                            {
                                (enter, exit) = (next_enter, next_exit);
                                rest = tail;
                            }
                            _ => break,
                        }
                    }
                }
                EventKind::Exit => {
                    let ns = clamped(event.value());
                    let site = event.site();
                    match stack.last() {
                        // Normally the innermost span.
                        Some(top) if std::ptr::eq(top.site, site) => {
                            spans[top.span as usize].end_ns = ns;
                            stack.pop();
                        }
                        _ => close_out_of_order(stack, spans, site, ns),
                    }
                }
                _ => {
                    self.last_ns = last_ns;
                    self.async_event(*event, m);
                    last_ns = self.last_ns;
                }
            }
        }
        self.last_ns = last_ns;
    }

    /// An async begin, end or cancel (remembered until its payload), or a payload.
    #[cold]
    #[inline(never)]
    fn async_event(&mut self, event: Event, m: &mut Merge<'_>) {
        let kind = event.kind();
        if kind == EventKind::Payload {
            if let Some((kind, site, ns)) = self.awaiting.take() {
                m.async_records.push(AsyncRecord {
                    kind,
                    site,
                    id: event.value(),
                    ns,
                    tid: self.tid,
                });
            }
            return;
        }
        let ns = m
            .converter
            .convert(event.value())
            .max(self.last_ns)
            .min(self.boundary_ns);
        self.last_ns = ns;
        self.awaiting = Some((kind, event.site(), ns));
    }
}

/// Whether `exit` is the exit of the span `enter` opened (the same site).
#[inline(always)]
fn is_exit_of(exit: &Event, enter: &Event) -> bool {
    exit.kind() == EventKind::Exit && std::ptr::eq(exit.site(), enter.site())
}

/// An exit that does not match the innermost open span: close the spans above its own as
/// incomplete (their exits were lost), or ignore an exit that matches nothing open.
#[cold]
#[inline(never)]
fn close_out_of_order(stack: &mut Vec<Open>, spans: &mut [Span], site: &FunctionInfo, ns: u64) {
    if let Some(pos) = stack.iter().rposition(|o| std::ptr::eq(o.site, site)) {
        let closing = stack.len() - pos;
        for (n, open) in stack.drain(pos..).rev().enumerate() {
            let span = &mut spans[open.span as usize];
            span.end_ns = ns;
            // All but the span this exit belongs to lost their exits.
            span.flags.incomplete = n + 1 < closing;
        }
    }
}

/// Pairs async begins with their ends (in time order, across threads and flushes). Futures still
/// running are reported incomplete up to `end_ns` and continue from `next_start_ns`.
fn match_async(
    open_async: &mut BTreeMap<u64, OpenAsync>,
    mut records: Vec<AsyncRecord>,
    functions: &mut FunctionTable,
    end_ns: u64,
    next_start_ns: u64,
) -> Vec<AsyncSpan> {
    records.sort_by_key(|r| (r.ns, r.kind != EventKind::AsyncBegin));
    let mut spans = Vec::new();
    for record in records {
        if record.kind == EventKind::AsyncBegin {
            open_async.insert(
                record.id,
                OpenAsync {
                    site: record.site,
                    start_ns: record.ns,
                    start_tid: record.tid,
                    continued: false,
                },
            );
        } else if let Some(open) = open_async.remove(&record.id) {
            spans.push(AsyncSpan {
                function: functions.index(open.site),
                id: record.id,
                start_ns: open.start_ns,
                end_ns: record.ns.max(open.start_ns),
                start_tid: open.start_tid,
                end_tid: if record.tid == 0 {
                    open.start_tid
                } else {
                    record.tid
                },
                cancelled: record.kind == EventKind::AsyncCancel,
                flags: SpanFlags {
                    incomplete: false,
                    continued: open.continued,
                },
            });
        }
    }
    for (&id, open) in open_async.iter_mut() {
        spans.push(AsyncSpan {
            function: functions.index(open.site),
            id,
            start_ns: open.start_ns,
            end_ns,
            start_tid: open.start_tid,
            end_tid: open.start_tid,
            cancelled: false,
            flags: SpanFlags {
                incomplete: true,
                continued: open.continued,
            },
        });
        open.start_ns = next_start_ns;
        open.continued = true;
    }
    spans.sort_by_key(|s| (s.start_ns, s.id));
    spans
}

/// Maps sites to indices of [`Profile::functions`]. Called once per span, so the index is read
/// from a stamp the table leaves on the site itself (its id and the index in one word): one load
/// and a compare. The address map behind it answers the first sight of a site in this table, or
/// a site whose stamp another table (the flight recorder's, building at the same time) replaced.
#[derive(Debug)]
pub(crate) struct FunctionTable {
    /// Keyed by the site's address (a `usize`, so that a table can move between threads).
    index: HashMap<usize, u32, BuildHasherDefault<AddressHasher>>,
    entries: Vec<FunctionEntry>,
    /// This table's id, unique in the process (1, 2, ...; [`NO_STAMPS`] once they run out).
    id: u64,
}

/// Bits of a stamp that hold the index; the id is above them.
const STAMP_INDEX_BITS: u32 = 24;

/// The id of a table that leaves no stamps: above every id a stamp can hold, so it never matches.
const NO_STAMPS: u64 = u64::MAX;

/// The next table id. Ids start at 1: a site's stamp starts at 0, which matches no table.
static NEXT_TABLE_ID: AtomicU64 = AtomicU64::new(1);

impl Default for FunctionTable {
    fn default() -> Self {
        let id = NEXT_TABLE_ID.fetch_add(1, Ordering::Relaxed);
        FunctionTable {
            index: HashMap::default(),
            entries: Vec::new(),
            // 2^40 tables (a flush every microsecond for twelve days) before stamps stop.
            id: if id < 1 << (64 - STAMP_INDEX_BITS) {
                id
            } else {
                NO_STAMPS
            },
        }
    }
}

/// A hasher for addresses: a Fibonacci multiply (addresses are not attacker-controlled). Shared
/// by every table keyed by a site's address.
#[derive(Default)]
pub(crate) struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        // Sites are at least 8-byte aligned: drop the always-zero low bits first.
        self.0 = (n as u64 >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

impl FunctionTable {
    /// The index of `info`, adding its entry on first sight.
    #[inline]
    pub(crate) fn index(&mut self, info: &'static FunctionInfo) -> u32 {
        let stamp = info.table_stamp();
        if stamp >> STAMP_INDEX_BITS == self.id {
            return (stamp & ((1 << STAMP_INDEX_BITS) - 1)) as u32;
        }
        self.index_and_stamp(info)
    }

    /// [`FunctionTable::index`] by address, leaving this table's stamp on the site.
    #[cold]
    #[inline(never)]
    fn index_and_stamp(&mut self, info: &'static FunctionInfo) -> u32 {
        let index = self.lookup(info);
        if self.id != NO_STAMPS && index < 1 << STAMP_INDEX_BITS {
            info.set_table_stamp(self.id << STAMP_INDEX_BITS | u64::from(index));
        }
        index
    }

    /// The number of entries.
    #[cfg(feature = "stream")]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry at `index`.
    #[cfg(feature = "stream")]
    pub(crate) fn entry(&self, index: u32) -> &FunctionEntry {
        &self.entries[index as usize]
    }

    /// The entries, in index order.
    pub(crate) fn into_entries(self) -> Vec<FunctionEntry> {
        self.entries
    }

    fn lookup(&mut self, info: &'static FunctionInfo) -> u32 {
        let entries = &mut self.entries;
        *self
            .index
            .entry(std::ptr::from_ref(info).addr())
            .or_insert_with(|| {
                entries.push(FunctionEntry::of_site(info));
                entries.len() as u32 - 1
            })
    }
}

/// The executable's file name without extension, as profiles name their process.
pub(crate) fn process_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "process".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::registry::FunctionKind;

    static A: FunctionInfo = FunctionInfo::new("a", "m", "f.rs", 1, FunctionKind::Function);
    static B: FunctionInfo = FunctionInfo::new("b", "m", "f.rs", 2, FunctionKind::Function);
    static C: FunctionInfo = FunctionInfo::new("c", "m", "f.rs", 3, FunctionKind::Scope);

    /// Two tables built at the same time over the same sites (a flush beside the flight
    /// recorder) overwrite each other's stamps on the sites; each still gives its own indices,
    /// one entry per site, in first-seen order.
    #[test]
    fn interleaved_function_tables_each_keep_their_own_indices() {
        let mut first = FunctionTable::default();
        let mut second = FunctionTable::default();
        assert_ne!(first.id, second.id);
        assert_eq!(first.index(&A), 0);
        assert_eq!(second.index(&C), 0);
        assert_eq!(second.index(&A), 1);
        assert_eq!(first.index(&B), 1);
        for _ in 0..3 {
            assert_eq!(first.index(&A), 0, "stamp of the second table on A");
            assert_eq!(second.index(&A), 1);
            assert_eq!(first.index(&C), 2);
            assert_eq!(second.index(&C), 0);
            assert_eq!(second.index(&B), 2);
            assert_eq!(first.index(&B), 1);
        }
        let names = |t: FunctionTable| -> Vec<String> {
            t.into_entries().into_iter().map(|e| e.name).collect()
        };
        assert_eq!(names(first), ["a", "b", "c"]);
        assert_eq!(names(second), ["c", "a", "b"]);
    }

    /// A table whose ids ran out leaves no stamps and still answers by address.
    #[test]
    fn a_table_without_stamps_answers_by_address() {
        static D: FunctionInfo = FunctionInfo::new("d", "m", "f.rs", 4, FunctionKind::Function);
        let mut table = FunctionTable {
            id: NO_STAMPS,
            ..FunctionTable::default()
        };
        assert_eq!(table.index(&D), 0);
        assert_eq!(D.table_stamp(), 0, "no stamp left");
        assert_eq!(table.index(&D), 0);
        assert_eq!(table.index(&A), 1);
    }
}
