//! The per-thread single-producer, single-consumer ring buffer.
//!
//! One [`Ring`] belongs to one recording thread at a time (its [`Producer`] holds the claim) and
//! is drained by the collector (one consumer at a time, serialised by an internal lock). Rings are
//! leaked (`&'static`) and reused by later threads once drained, so a producer never needs to own
//! or free its ring, and the thread-local that holds the producer has no destructor.
//!
//! # Protocol and invariants
//!
//! - `head` and `tail` are monotonically increasing event counters (they never wrap in practice:
//!   2^64 events). Slot `i & mask` holds event `i`.
//! - Only the claiming producer stores `head`, with `Release`, after writing the slot; the consumer
//!   loads it with `Acquire` and then reads slots `tail..head`.
//! - Only the consumer stores `tail`, with `Release`, after reading the slots; the producer loads it
//!   with `Acquire` (on its cold path only) before it reuses those slots.
//! - Hence `tail <= head <= tail + capacity` at all times, and a slot is never read and written at
//!   once: the producer writes slot `head` only while `head < cached_tail + capacity`, and
//!   `cached_tail <= tail`.
//!
//! The producer's fast path is: one compare, one slot store, one `Release` store of `head` (a
//! plain `mov` on x86-64). There is no read-modify-write atomic and no lock anywhere on it.
//!
//! # Reservations
//!
//! A timeline must stay well formed when the buffer fills: a recorded *enter* must get its *exit*.
//! [`Producer::push_reserving`] therefore only succeeds when there is room for the event **and**
//! one more slot, which it reserves; [`Producer::push_reserved`] uses such a slot and never fails
//! while a reservation is held. `committed = head + reservations <= limit` is maintained.
#![allow(unsafe_code)]

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Keeps the producer's and the consumer's counters on separate cache lines.
#[repr(align(128))]
#[derive(Debug)]
struct CachePadded<T>(T);

/// A bounded SPSC ring of `T`. See the module docs for the protocol.
pub(crate) struct Ring<T> {
    /// `capacity` slots; slot `i & mask` holds event number `i` while `tail <= i < head`.
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    /// `capacity - 1`; capacity is a power of two.
    mask: usize,
    /// Number of events ever published. Stored only by the claiming producer.
    head: CachePadded<AtomicUsize>,
    /// Number of events ever consumed. Stored only by the consumer (under `consumer`).
    tail: CachePadded<AtomicUsize>,
    /// Whether a [`Producer`] is attached; at most one is.
    claimed: AtomicBool,
    /// Events the producer could not record. Stored only by the claiming producer (load + store,
    /// no read-modify-write), read by the collector.
    dropped: AtomicU64,
    /// Serialises consumers.
    consumer: Mutex<()>,
}

// SAFETY: the slots are shared between exactly one producer (guaranteed by `claimed`) and one
// consumer at a time (guaranteed by `consumer`), which access disjoint slots as the module-level
// protocol describes; every other field is atomic or a mutex. `T: Send` because values move from
// the producer's thread to the consumer's.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> std::fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &(self.mask + 1))
            .field("head", &self.head.0.load(Ordering::Relaxed))
            .field("tail", &self.tail.0.load(Ordering::Relaxed))
            .field("claimed", &self.claimed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<T: Copy + Send + 'static> Ring<T> {
    /// A new ring of at least `capacity` slots (rounded up to a power of two, at least 16), leaked
    /// so that producers can refer to it without owning it. The memory is reused, never freed.
    pub(crate) fn leak(capacity: usize) -> &'static Self {
        let capacity = capacity.max(16).next_power_of_two();
        let slots = (0..capacity)
            .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
            .collect::<Box<[_]>>();
        Box::leak(Box::new(Ring {
            slots,
            mask: capacity - 1,
            head: CachePadded(AtomicUsize::new(0)),
            tail: CachePadded(AtomicUsize::new(0)),
            claimed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            consumer: Mutex::new(()),
        }))
    }

    /// The number of slots.
    pub(crate) fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Whether a producer is attached.
    pub(crate) fn is_claimed(&self) -> bool {
        self.claimed.load(Ordering::Acquire)
    }

    /// Events the producer dropped since the ring was created.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events published and not yet drained.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        let tail = self.tail.0.load(Ordering::Acquire);
        self.head.0.load(Ordering::Acquire) - tail
    }

    /// Moves every published event into `out`, oldest first, and frees their slots. Safe to call
    /// while the producer keeps recording: events published after the `head` load stay for the
    /// next drain. Returns how many events were moved.
    pub(crate) fn drain_into(&self, out: &mut Vec<T>) -> usize {
        // A poisoned lock only means another consumer panicked; the counters are still valid.
        let _consumer = self
            .consumer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Only consumers store `tail`, and we hold the consumer lock.
        let tail = self.tail.0.load(Ordering::Relaxed);
        // Pairs with the producer's `Release` store: the slots below `head` are initialised.
        let head = self.head.0.load(Ordering::Acquire);
        debug_assert!(tail <= head && head - tail <= self.capacity());
        // The events `tail..head` lie in at most two runs of slots: from `tail`'s slot towards
        // the end of the buffer, then from its start. Copied run by run, not slot by slot.
        let len = head - tail;
        let start = tail & self.mask;
        let first = len.min(self.capacity() - start);
        debug_assert!(start + first <= self.slots.len() && len - first <= start);
        // `UnsafeCell<MaybeUninit<T>>` has the layout of `T` (both wrappers are transparent).
        let base = self.slots.as_ptr().cast::<T>();
        // SAFETY: the two runs are in bounds (asserted above: `first <= capacity - start`, and
        // `len - first <= start` because `len <= capacity`) and hold events `tail..head`, which the
        // producer initialised before its `Release` store of `head` (our `Acquire` load observed
        // it) and will not write again until it observes a `tail` above them, which we store only
        // below, after the copies and the end of these borrows.
        let (run_a, run_b) = unsafe {
            (
                std::slice::from_raw_parts(base.add(start), first),
                std::slice::from_raw_parts(base, len - first),
            )
        };
        out.reserve(len);
        out.extend_from_slice(run_a);
        out.extend_from_slice(run_b);
        // Pairs with the producer's `Acquire` load in `refresh`: our reads happen before it
        // reuses the slots.
        self.tail.0.store(head, Ordering::Release);
        head - tail
    }
}

/// The writing side of a [`Ring`], kept in a thread-local with constant initialisation (no lazy
/// initialisation check, no destructor). Detached, every push fails, which sends the caller to
/// its cold path, where it attaches.
///
/// All fields are `Cell`s: a producer is used by one thread only (it is `!Sync`).
pub(crate) struct Producer<T: 'static> {
    /// The claimed ring, or `None` while detached.
    ring: Cell<Option<&'static Ring<T>>>,
    /// Mirror of `ring.head` (we are its only writer).
    head: Cell<usize>,
    /// `head` plus the slots reserved for pending exits; `head <= committed <= limit`.
    committed: Cell<usize>,
    /// `cached tail + capacity`: slots below it are free to write. `0` while detached.
    limit: Cell<usize>,
}

impl<T> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("attached", &self.ring.get().is_some())
            .field("head", &self.head.get())
            .field("committed", &self.committed.get())
            .field("limit", &self.limit.get())
            .finish()
    }
}

impl<T: Copy + Send + 'static> Producer<T> {
    /// A detached producer.
    pub(crate) const fn new() -> Self {
        Producer {
            ring: Cell::new(None),
            head: Cell::new(0),
            committed: Cell::new(0),
            limit: Cell::new(0),
        }
    }

    /// Whether a ring is attached.
    pub(crate) fn is_attached(&self) -> bool {
        self.ring.get().is_some()
    }

    /// Claims `ring` for this producer. Returns `false` (and changes nothing) if this producer is
    /// already attached or another producer holds the ring.
    pub(crate) fn attach(&self, ring: &'static Ring<T>) -> bool {
        if self.is_attached()
            || ring
                .claimed
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return false;
        }
        // We are now the ring's only producer: `head` is ours to mirror.
        let head = ring.head.0.load(Ordering::Relaxed);
        let tail = ring.tail.0.load(Ordering::Acquire);
        self.ring.set(Some(ring));
        self.head.set(head);
        self.committed.set(head);
        self.limit.set(tail + ring.capacity());
        true
    }

    /// Releases the ring so a later thread can reuse it. Refuses (returns `false`, stays attached)
    /// while a reservation is outstanding, because its owner will still write the reserved slot.
    pub(crate) fn detach(&self) -> bool {
        let Some(ring) = self.ring.get() else {
            return true;
        };
        if self.committed.get() != self.head.get() {
            return false;
        }
        self.ring.set(None);
        self.head.set(0);
        self.committed.set(0);
        self.limit.set(0);
        ring.claimed.store(false, Ordering::Release);
        true
    }

    /// Writes `value` and reserves one more slot for a later [`push_reserved`](Self::push_reserved).
    /// Returns `false`, writing nothing, when fewer than two slots are free by the cached tail (the
    /// caller then tries [`refresh`](Self::refresh) on its cold path).
    #[inline(always)]
    pub(crate) fn push_reserving(&self, value: T) -> bool {
        let committed = self.committed.get();
        if self.limit.get() - committed < 2 {
            return false;
        }
        self.write(value);
        // One slot used, one reserved.
        self.committed.set(committed + 2);
        true
    }

    /// Writes `value` into a slot reserved by [`push_reserving`](Self::push_reserving). Without a
    /// reservation it behaves like [`push`](Self::push). Returns `false` only if there is no room.
    #[inline(always)]
    pub(crate) fn push_reserved(&self, value: T) -> bool {
        let head = self.head.get();
        // Read before the slot write, which the compiler would otherwise assume may change it.
        let committed = self.committed.get();
        if head == self.limit.get() {
            return false;
        }
        self.write(value);
        // Normally `committed` stays put (one reservation became one used slot); without a
        // reservation it must grow with `head`.
        self.committed.set(committed.max(head + 1));
        true
    }

    /// Writes `value` without reservation. Returns `false` when no unreserved slot is free.
    #[inline(always)]
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn push(&self, value: T) -> bool {
        let committed = self.committed.get();
        if self.limit.get() == committed {
            return false;
        }
        self.write(value);
        self.committed.set(committed + 1);
        true
    }

    /// Writes two values that are published together. Returns `false` when they do not fit.
    pub(crate) fn push_pair(&self, first: T, second: T) -> bool {
        let committed = self.committed.get();
        if self.limit.get() - committed < 2 {
            return false;
        }
        self.write_unpublished(first);
        self.write(second);
        self.committed.set(committed + 2);
        true
    }

    /// Reloads the consumer's position. Returns `true` if that freed slots.
    #[cold]
    #[inline(never)]
    pub(crate) fn refresh(&self) -> bool {
        let Some(ring) = self.ring.get() else {
            return false;
        };
        // Pairs with the consumer's `Release` store: its reads of the slots below `tail` are done.
        let limit = ring.tail.0.load(Ordering::Acquire) + ring.capacity();
        let grew = limit > self.limit.get();
        self.limit.set(limit);
        grew
    }

    /// Counts `n` events this producer could not record.
    #[cold]
    pub(crate) fn add_dropped(&self, n: u64) -> bool {
        let Some(ring) = self.ring.get() else {
            return false;
        };
        // We are the only writer of `dropped`, so load + store cannot lose an update.
        let dropped = ring.dropped.load(Ordering::Relaxed);
        ring.dropped.store(dropped + n, Ordering::Relaxed);
        true
    }

    /// Writes `value` at `head` and publishes it. Callers checked `head < limit`.
    #[inline(always)]
    fn write(&self, value: T) {
        // The ring is loaded once for the slot write and the publication: a second `self.ring`
        // load after the slot write would be a real reload, as the compiler cannot tell the slot
        // from our cells.
        if let Some((ring, head)) = self.write_unpublished(value) {
            // Pairs with the consumer's `Acquire` load: the slot write above is visible first.
            ring.head.0.store(head, Ordering::Release);
        }
    }

    /// Writes `value` at `head` and advances our mirror of `head` without publishing it; returns
    /// the ring and the new head (`None`, writing nothing, while detached). Callers checked
    /// `head < limit`.
    #[inline(always)]
    fn write_unpublished(&self, value: T) -> Option<(&'static Ring<T>, usize)> {
        let head = self.head.get();
        // `limit > head` implies attached: while detached `limit == 0`, and every caller checked
        // `head < limit` (directly or through `committed <= limit`).
        let ring = self.ring.get()?;
        debug_assert!(head < self.limit.get());
        let index = head & ring.mask;
        debug_assert!(index < ring.slots.len());
        // SAFETY: `index <= mask` and `slots.len() == mask + 1`: `leak` allocates exactly
        // `mask + 1` slots and neither field changes afterwards.
        let slot = unsafe { ring.slots.get_unchecked(index) };
        // SAFETY: we hold the ring's claim, so no other producer writes; `head < limit =
        // cached_tail + capacity <= tail + capacity`, so the consumer has finished reading this
        // slot (it read it before storing a tail above `head - capacity`, and our cached tail came
        // from an `Acquire` load of that store) and will not read it before we publish `head + 1`.
        unsafe { (*slot.get()).write(value) };
        self.head.set(head + 1);
        Some((ring, head + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    const N: u64 = if cfg!(miri) { 2_000 } else { 200_000 };

    #[test]
    fn fills_then_refuses_and_keeps_reservations() {
        let ring = Ring::<u64>::leak(16);
        let producer = Producer::new();
        assert!(!producer.push(1), "detached producer must refuse");
        assert!(producer.attach(ring));
        // 8 enters reserve 8 exits: 16 slots committed.
        for i in 0..8 {
            assert!(producer.push_reserving(i));
        }
        assert!(
            !producer.push_reserving(99),
            "no room for an enter and its exit"
        );
        assert!(!producer.push(99), "reserved slots are not free");
        for i in 0..8 {
            assert!(
                producer.push_reserved(100 + i),
                "a reservation is always honoured"
            );
        }
        assert!(!producer.push_reserved(7), "ring is full");
        let mut out = Vec::new();
        assert_eq!(ring.drain_into(&mut out), 16);
        assert_eq!(out[..8], [0, 1, 2, 3, 4, 5, 6, 7]);
        assert!(producer.refresh());
        assert!(producer.push_pair(1, 2));
        out.clear();
        assert_eq!(ring.drain_into(&mut out), 2);
        assert_eq!(out, [1, 2]);
        assert!(producer.detach());
    }

    #[test]
    fn one_producer_per_ring_and_detach_waits_for_reservations() {
        let ring = Ring::<u64>::leak(16);
        let (a, b) = (Producer::new(), Producer::new());
        assert!(a.attach(ring));
        assert!(!b.attach(ring));
        assert!(a.push_reserving(1));
        assert!(!a.detach(), "an exit is still owed");
        assert!(a.push_reserved(2));
        assert!(a.detach());
        assert!(b.attach(ring));
        assert!(b.push(3));
        let mut out = Vec::new();
        ring.drain_into(&mut out);
        assert_eq!(out, [1, 2, 3]);
    }

    #[test]
    fn dropped_counter() {
        let ring = Ring::<u64>::leak(16);
        let producer = Producer::new();
        assert!(!producer.add_dropped(1));
        assert!(producer.attach(ring));
        producer.add_dropped(2);
        producer.add_dropped(3);
        assert_eq!(ring.dropped(), 5);
    }

    /// The producer records while a consumer drains concurrently: every event arrives exactly once
    /// and in order, and `recorded + dropped` accounts for all of them.
    #[test]
    fn concurrent_drain_loses_and_duplicates_nothing() {
        let ring = Ring::<u64>::leak(64);
        let done = &*Box::leak(Box::new(AtomicBool::new(false)));
        let producer_thread = std::thread::Builder::new()
            .name("ring-producer".into())
            .spawn(move || {
                let producer = Producer::new();
                assert!(producer.attach(ring));
                let mut dropped = 0;
                for i in 0..N {
                    let pushed = producer.push(i) || (producer.refresh() && producer.push(i));
                    if !pushed {
                        producer.add_dropped(1);
                        dropped += 1;
                    }
                }
                done.store(true, Ordering::Release);
                dropped
            })
            .unwrap();
        let mut seen = Vec::new();
        loop {
            let finished = done.load(Ordering::Acquire);
            ring.drain_into(&mut seen);
            if finished {
                break;
            }
            std::thread::yield_now();
        }
        let dropped = producer_thread.join().unwrap();
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "order or duplicates");
        assert_eq!(seen.len() as u64 + dropped, N);
        assert_eq!(ring.dropped(), dropped);
        assert_eq!(ring.len(), 0);
    }
}
