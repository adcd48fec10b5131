//! The hot path: the thread-local recorder, span guards, and the enter/exit records.
//!
//! Cost of one instrumented call (enter + exit), recording: two `rdtsc` reads, two 16-byte
//! stores into this thread's ring, two plain stores of the ring's head, one relaxed load of the
//! global switch and a handful of compares. Compiled in but switched off: one relaxed load and a
//! branch. No lock, no allocation (after the thread's first event), no read-modify-write atomic.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::record::clock;
use crate::record::registry::{self, FunctionInfo};
use crate::record::ring::Producer;
use crate::record::threads;

pub(crate) use crate::record::event::{Event, EventKind};

/// Events lost because their thread could not get a buffer (it was being torn down).
static LOST: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's producer. Constant-initialised and without destructor: accessing it is a
    /// plain TLS offset, with no lazy-initialisation check.
    static PRODUCER: Producer<Event> = const { Producer::new() };
    /// Detaches the producer when the thread exits (see [`ThreadExit`]).
    static THREAD_EXIT: RefCell<Option<ThreadExit>> = const { RefCell::new(None) };
    /// What production mode does with a call skipped because the buffer is closed (an unsampled
    /// request): set by the layer above while it counts the request's calls, `None` otherwise.
    static SKIPPED_CALL_HOOK: Cell<Option<fn(&'static FunctionInfo)>> = const { Cell::new(None) };
    /// The next async span id of this thread and the end of its block of ids.
    static ASYNC_IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Turns recording on (the initial state, unless [`crate::init`] read `PROFILER_ENABLED=0`).
///
/// Sets the switch of every instrumented site (each site tests its own copy, so that the
/// switched-off path is one load and a branch at an address the compiler knows): proportional to
/// the number of sites, meant for occasional use.
pub fn enable() {
    registry::switch_sites(true);
}

/// Turns recording off. Spans already open still record their exit, so timelines stay balanced.
/// Costs one relaxed load of the site's own flag and a branch per instrumented call while off.
/// Like [`enable`], it sets every site's switch.
pub fn disable() {
    registry::switch_sites(false);
}

/// Whether recording is on.
#[inline(always)]
pub fn is_enabled() -> bool {
    registry::is_enabled()
}

pub(crate) fn lost_events() -> u64 {
    LOST.load(Ordering::Relaxed)
}

fn count_lost(n: u64) {
    LOST.fetch_add(n, Ordering::Relaxed);
}

/// Records entering `site` and returns the guard that records leaving it.
#[inline(always)]
pub(crate) fn enter(site: &'static FunctionInfo) -> SpanGuard {
    if !site.is_on() {
        return SpanGuard {
            site: None,
            _not_send: PhantomData,
        };
    }
    if record_enter(site) {
        SpanGuard {
            site: Some(site),
            _not_send: PhantomData,
        }
    } else {
        unrecorded_guard()
    }
}

/// The guard of a call whose enter was dropped. Out of line on purpose: the compiler cannot see
/// that it holds `None`, so the rest of this path (call the body, test the guard) stays apart
/// from the switched-off path instead of being merged with it, and the switched-off path keeps
/// no register saves (they are needed only once recording started).
#[cold]
#[inline(never)]
fn unrecorded_guard() -> SpanGuard {
    SpanGuard {
        site: None,
        _not_send: PhantomData,
    }
}

/// Records an enter event; `false` if it was dropped (and its exit counted as dropped too) or
/// skipped (an unsampled request closed the producer). The clock is read only once room is known,
/// so a skipped call costs a compare and the cold call.
#[inline(always)]
fn record_enter(site: &'static FunctionInfo) -> bool {
    PRODUCER.with(|p| {
        p.push_reserving_with(|| Event::new(EventKind::Enter, clock::now(), site))
            || enter_refused(p, site)
    })
}

/// The room check failed: a closed buffer (inside an unsampled request) or a real slow path.
/// Kept tiny, apart from `enter_slow`, so that a skipped call saves no registers.
#[cold]
#[inline(never)]
fn enter_refused(producer: &Producer<Event>, site: &'static FunctionInfo) -> bool {
    if producer.is_closed() {
        // Inside an unsampled request: not recorded, and not a drop; counted if aggregating.
        if let Ok(Some(hook)) = SKIPPED_CALL_HOOK.try_with(Cell::get) {
            hook(site);
        }
        return false;
    }
    enter_slow(producer, site)
}

#[cold]
#[inline(never)]
fn enter_slow(producer: &Producer<Event>, site: &'static FunctionInfo) -> bool {
    if !producer.is_attached() && !attach(producer) {
        count_lost(2);
        return false;
    }
    // Stamped after attaching: the thread's first span must not include registering the thread.
    let event = Event::new(EventKind::Enter, clock::now(), site);
    // Also the way into the next block of the ring, once every few thousand events.
    if producer.push_reserving(event) {
        return true;
    }
    // Full: this call's enter and exit are both dropped, so the timeline stays balanced.
    producer.add_dropped(2);
    false
}

/// Records an exit event into the slot its enter reserved.
#[inline(always)]
fn record_exit(site: &'static FunctionInfo) {
    let event = Event::new(EventKind::Exit, clock::now(), site);
    PRODUCER.with(|p| {
        if !p.push_reserved(event) {
            exit_dropped(p);
        }
    });
}

#[cold]
#[inline(never)]
fn exit_dropped(producer: &Producer<Event>) {
    // Only reachable without a reservation (a guard dropped after its thread detached): the
    // collector closes the span at the flush and marks it incomplete.
    if !producer.add_dropped(1) {
        count_lost(1);
    }
}

/// Records an async begin, end or cancel with its id. Ends that do not fit in the ring are kept
/// aside for the collector, so an async span that began always ends.
pub(crate) fn record_async(kind: EventKind, site: &'static FunctionInfo, id: u64) -> bool {
    let event = Event::new(kind, clock::now(), site);
    let payload = Event::new(EventKind::Payload, id, site);
    let pushed = PRODUCER.with(|p| {
        p.push_pair(event, payload)
            || (!p.is_attached() && attach(p) && p.push_pair(event, payload))
    });
    if pushed || kind == EventKind::AsyncBegin {
        return pushed;
    }
    SPILLED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((event, id));
    true
}

/// Async ends that did not fit in their thread's ring, with their ids, kept for the collector.
static SPILLED: Mutex<Vec<(Event, u64)>> = Mutex::new(Vec::new());

/// Sets (or clears) this thread's hook for calls skipped because its buffer is closed: the
/// narrow interface through which production mode counts the calls of an unsampled request
/// without the recorder knowing about it.
pub(crate) fn set_skipped_call_hook(hook: Option<fn(&'static FunctionInfo)>) {
    let _ = SKIPPED_CALL_HOOK.try_with(|slot| slot.set(hook));
}

/// Takes the async ends kept aside since the last call (see [`record_async`]).
pub(crate) fn take_spilled() -> Vec<(Event, u64)> {
    std::mem::take(&mut *SPILLED.lock().unwrap_or_else(PoisonError::into_inner))
}

/// A fresh async span id, unique in the process. Ids are handed to threads in blocks, so this
/// touches a shared atomic once per 2^16 futures.
pub(crate) fn next_async_id() -> u64 {
    static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
    const BLOCK: u64 = 1 << 16;
    ASYNC_IDS
        .try_with(|ids| {
            let (mut next, mut end) = ids.get();
            if next == end {
                next = NEXT_BLOCK.fetch_add(1, Ordering::Relaxed) * BLOCK;
                end = next + BLOCK;
            }
            ids.set((next + 1, end));
            next
        })
        .unwrap_or_else(|_| NEXT_BLOCK.fetch_add(1, Ordering::Relaxed) * BLOCK)
}

/// Runs `f` on this thread's producer, attaching it first if needed. `None` while the thread is
/// being torn down or when no ring can be had.
pub(crate) fn with_attached_producer<R>(f: impl FnOnce(&Producer<Event>) -> R) -> Option<R> {
    PRODUCER
        .try_with(|p| (p.is_attached() || attach(p)).then(|| f(p)))
        .ok()
        .flatten()
}

/// Runs `f` on this thread's producer, attached or not. `None` while the thread is torn down.
pub(crate) fn with_producer<R>(f: impl FnOnce(&Producer<Event>) -> R) -> Option<R> {
    PRODUCER.try_with(f).ok()
}

/// Gives this thread a ring and arranges for it to be released when the thread exits.
fn attach(producer: &Producer<Event>) -> bool {
    // A thread being torn down cannot register its exit hook: it records nothing more.
    let Ok(can_register) =
        THREAD_EXIT.try_with(|slot| slot.try_borrow().is_ok_and(|s| s.is_none()))
    else {
        return false;
    };
    if !can_register {
        return false;
    }
    let thread = threads::register_current_thread();
    if !producer.attach(thread.ring) {
        thread.exited.store(true, Ordering::Release);
        return false;
    }
    let installed = THREAD_EXIT.try_with(|slot| {
        *slot.borrow_mut() = Some(ThreadExit { thread });
    });
    if installed.is_err() {
        producer.detach();
        thread.exited.store(true, Ordering::Release);
        return false;
    }
    true
}

/// Runs when the thread exits: releases the ring (events stay in it until the next flush) and
/// tells the collector the thread is gone.
struct ThreadExit {
    thread: &'static threads::ThreadShared,
}

impl Drop for ThreadExit {
    fn drop(&mut self) {
        // If an exit is still owed (a span open in another thread-local's destructor), the ring
        // stays claimed and is never reused; the collector closes the span as incomplete.
        let _ = PRODUCER.try_with(Producer::detach);
        self.thread.exited.store(true, Ordering::Release);
    }
}

/// Records the end of a span when dropped: on return, on `?`, and while unwinding from a panic.
///
/// Returned by the code `#[profile]` generates and by [`profile_scope!`](crate::profile_scope).
/// It is `!Send`: a span begins and ends on the same thread. (Hold it across an `.await` only in
/// futures that stay on one thread; `#[profile] async fn` does the right thing for you.)
#[derive(Debug)]
#[must_use = "the span ends when the guard is dropped"]
pub struct SpanGuard {
    site: Option<&'static FunctionInfo>,
    _not_send: PhantomData<*const ()>,
}

impl SpanGuard {
    /// Whether this span is being recorded (profiling on, and room in the buffer).
    pub fn is_recording(&self) -> bool {
        self.site.is_some()
    }
}

impl Drop for SpanGuard {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(site) = self.site {
            record_exit(site);
        }
    }
}

/// Enters a site that has a receiver type: `type_name` is `core::any::type_name::<Self>`, which
/// picks the receiver type's own site when the function is a trait's default method.
#[inline(always)]
pub(crate) fn enter_method(
    site: &'static FunctionInfo,
    type_name: fn() -> &'static str,
) -> SpanGuard {
    if !site.is_on() {
        return SpanGuard {
            site: None,
            _not_send: PhantomData,
        };
    }
    enter(site.for_receiver(type_name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::registry::FunctionKind;

    static SITE: FunctionInfo = FunctionInfo::new(
        "guard states",
        "recorder::tests",
        file!(),
        line!(),
        FunctionKind::Scope,
    );
    // Registered, as generated sites are, so that `disable()` reaches it.
    inventory::submit! { crate::record::registry::Registration(&SITE) }

    /// The three ways a guard comes out of `enter`: recording; switched off (nothing recorded,
    /// nothing counted); and dropped because the ring is full (counted, enter and exit both).
    #[test]
    fn guard_records_or_is_off_when_disabled_or_full() {
        std::thread::Builder::new()
            .name("guard-states".into())
            .spawn(|| {
                crate::set_buffer_capacity(16);
                let first = enter(&SITE);
                crate::set_buffer_capacity(crate::DEFAULT_BUFFER_EVENTS);
                assert!(first.is_recording());
                drop(first);
                disable();
                assert!(!enter(&SITE).is_recording(), "switched off");
                enable();
                let mut recorded = 1;
                while enter(&SITE).is_recording() {
                    recorded += 1;
                }
                // 16 slots hold 8 enter/exit pairs; the 9th call is dropped whole.
                assert_eq!(recorded, 8);
            })
            .expect("spawn")
            .join()
            .expect("the recording thread");
        let profile = crate::flush();
        let thread = profile
            .threads
            .iter()
            .find(|t| t.name == "guard-states")
            .expect("the thread's timeline");
        assert_eq!(thread.spans.len(), 8);
        assert_eq!(thread.dropped_events, 2);
        assert!(profile.validate().is_ok());
    }
}
