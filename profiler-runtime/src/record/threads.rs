//! The thread registry: hands each recording thread a ring (a pooled one, or a new one), and
//! keeps the threads that started recording until the collector adopts them. The ring's
//! capacity settings live here too. The collector reaches down to this module; this module
//! knows nothing of it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use crate::record::clock::{self, Anchor};
use crate::record::event::Event;
use crate::record::ring::Ring;

/// Default ring capacity in events (16 bytes each): 1 Mi events, 16 MiB per recording thread in
/// blocks of 4096 events (plus one spare block), allocated when the thread first records; their
/// pages are touched as they fill.
pub const DEFAULT_BUFFER_EVENTS: usize = 1 << 20;

static BUFFER_EVENTS: AtomicUsize = AtomicUsize::new(0);

/// Sets the capacity, in events, of the buffers of threads that start recording from now on
/// (rounded up to a power of two, at least 16). Threads already recording keep theirs. The
/// default is [`DEFAULT_BUFFER_EVENTS`], or `PROFILER_BUFFER_EVENTS` from the environment.
pub fn set_buffer_capacity(events: usize) {
    BUFFER_EVENTS.store(events.max(16), Ordering::Relaxed);
}

/// The capacity new threads get.
pub fn buffer_capacity() -> usize {
    setting(
        &BUFFER_EVENTS,
        "PROFILER_BUFFER_EVENTS",
        DEFAULT_BUFFER_EVENTS,
    )
    .max(16)
}

/// What a recording thread shares with the collector. Leaked and reused by later threads.
#[derive(Debug)]
pub(crate) struct ThreadShared {
    pub(crate) ring: &'static Ring<Event>,
    /// Set (Release) by the thread's exit hook after it released the ring.
    pub(crate) exited: AtomicBool,
}

/// A thread that started recording, not yet adopted by the collector.
#[derive(Debug)]
pub(crate) struct NewThread {
    pub(crate) shared: &'static ThreadShared,
    /// The profiler's own thread number: 1 for the first thread that recorded.
    pub(crate) tid: u32,
    pub(crate) name: String,
    /// The ring's dropped count when the thread took it (a pooled ring keeps counting).
    pub(crate) dropped_at_start: u64,
}

#[derive(Debug)]
struct Registry {
    /// Threads registered since the collector last looked.
    new: Vec<NewThread>,
    /// Released rings, ready for new threads.
    pool: Vec<&'static ThreadShared>,
    next_tid: u32,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    new: Vec::new(),
    pool: Vec::new(),
    next_tid: 1,
});

/// The clock's anchor when the first thread registered: every event is younger than it.
static FIRST_ANCHOR: OnceLock<Anchor> = OnceLock::new();

/// Nothing panics while the lock is held; a poisoned lock is still consistent.
fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Gives the calling thread a ring: a pooled one of the current capacity, or a new one.
pub(crate) fn register_current_thread() -> &'static ThreadShared {
    let capacity = buffer_capacity().next_power_of_two();
    let name = std::thread::current().name().map(str::to_owned);
    FIRST_ANCHOR.get_or_init(clock::anchor);
    let mut r = registry();
    let pooled = r
        .pool
        .iter()
        .position(|t| t.ring.capacity() == capacity && !t.ring.is_claimed());
    let shared = match pooled {
        Some(i) => {
            let t = r.pool.swap_remove(i);
            t.exited.store(false, Ordering::Relaxed);
            t
        }
        None => &*Box::leak(Box::new(ThreadShared {
            ring: Ring::leak(capacity),
            exited: AtomicBool::new(false),
        })),
    };
    let tid = r.next_tid;
    r.next_tid += 1;
    r.new.push(NewThread {
        shared,
        tid,
        name: name.unwrap_or_else(|| format!("thread-{tid}")),
        dropped_at_start: shared.ring.dropped(),
    });
    HAS_NEW.store(true, Ordering::Release);
    shared
}

/// Whether [`register_current_thread`] added a thread the collector has not taken yet: read
/// before the lock, so that the collector's every drain does not take a second lock for nothing.
static HAS_NEW: AtomicBool = AtomicBool::new(false);

/// The threads registered since the last call, oldest first.
pub(crate) fn take_new_threads() -> Vec<NewThread> {
    // Acquire pairs with the Release store made under the lock after a push: seeing `false` may
    // miss a thread registering right now, which the next call takes.
    if !HAS_NEW.load(Ordering::Acquire) {
        return Vec::new();
    }
    let mut r = registry();
    HAS_NEW.store(false, Ordering::Relaxed);
    std::mem::take(&mut r.new)
}

/// The clock's anchor taken when the first thread registered, if one has.
pub(crate) fn first_anchor() -> Option<Anchor> {
    FIRST_ANCHOR.get().copied()
}

/// Gives an exited thread's ring back, for a later thread to take.
pub(crate) fn release(shared: &'static ThreadShared) {
    registry().pool.push(shared);
}

/// A count of events set in code (`value`, `0` while unset), else read once from the environment
/// variable `var` (digits, `_` allowed; empty, zero or unreadable means `default`), and kept.
pub(crate) fn setting(value: &AtomicUsize, var: &str, default: usize) -> usize {
    match value.load(Ordering::Relaxed) {
        0 => {
            let from_env = std::env::var(var)
                .ok()
                .and_then(|v| v.trim().replace('_', "").parse::<usize>().ok())
                .filter(|&n| n > 0)
                .unwrap_or(default);
            value.store(from_env, Ordering::Relaxed);
            from_env
        }
        n => n,
    }
}
