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
//!
//! # Holding, releasing and rewinding (tail profiling)
//!
//! [`Producer::hold`] keeps writing slots but stops publishing. The producer writes through
//! `target`, normally its claimed ring; while held, `target` is the ring's *shadow*: a second
//! [`Ring`] header over the same slots, with a head of its own that nobody reads. The write path is
//! therefore the same instructions held or not (no flag, no branch, no extra load). While held the consumer sees `head` frozen at the mark, so it never
//! reads the held slots, and the producer may still read them ([`Producer::held`]).
//! [`Producer::release`] publishes everything at once; [`Producer::rewind`] moves the producer's
//! head back to the mark, so the held events are overwritten later: discarded without copying.
//! Reservations (`committed - head`) are unchanged by a rewind.
//!
//! # Closing
//!
//! [`Producer::close`] makes every new, unreserved write fail (`limit = committed`) until
//! [`Producer::open`], while reserved slots stay writable: spans open before the close still get
//! their exits. The recorder uses it to skip the calls of an unsampled request with the check it
//! already makes for a full buffer.
#![allow(unsafe_code)]

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Keeps the producer's and the consumer's counters on separate cache lines.
#[repr(align(128))]
#[derive(Debug)]
struct CachePadded<T>(T);

/// A bounded SPSC ring of `T`. See the module docs for the protocol.
pub(crate) struct Ring<T: 'static> {
    /// `capacity` slots; slot `i & mask` holds event number `i` while `tail <= i < head`. Leaked,
    /// so that the ring's shadow can share them.
    slots: &'static [UnsafeCell<MaybeUninit<T>>],
    /// `capacity - 1`; capacity is a power of two.
    mask: usize,
    /// Number of events ever published. Stored only by the claiming producer.
    head: CachePadded<AtomicUsize>,
    /// Number of events ever consumed. Stored only by the consumer (under `consumer`).
    tail: CachePadded<AtomicUsize>,
    /// The shadow header of the same slots, made on the first hold: the claiming producer writes
    /// through it while holding, and its `head` is read by nobody. `None` in a shadow.
    shadow: OnceLock<&'static Ring<T>>,
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
// protocol describes; a shadow shares its ring's slots but is only ever the claiming producer's
// write target (never drained, never claimed by another producer). Every other field is atomic,
// a mutex or a once-cell. `T: Send` because values move from the producer's thread to the
// consumer's.
unsafe impl<T: Send + 'static> Sync for Ring<T> {}

impl<T: 'static> std::fmt::Debug for Ring<T> {
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
        let slots: &'static [_] = Box::leak(
            (0..capacity)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect::<Box<[_]>>(),
        );
        Box::leak(Box::new(Ring {
            slots,
            mask: capacity - 1,
            head: CachePadded(AtomicUsize::new(0)),
            tail: CachePadded(AtomicUsize::new(0)),
            shadow: OnceLock::new(),
            claimed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            consumer: Mutex::new(()),
        }))
    }

    /// The shadow header over this ring's slots (see the module docs), made once.
    fn shadow(&'static self) -> &'static Self {
        self.shadow.get_or_init(|| {
            Box::leak(Box::new(Ring {
                slots: self.slots,
                mask: self.mask,
                head: CachePadded(AtomicUsize::new(0)),
                tail: CachePadded(AtomicUsize::new(0)),
                shadow: OnceLock::new(),
                claimed: AtomicBool::new(true),
                dropped: AtomicU64::new(0),
                consumer: Mutex::new(()),
            }))
        })
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
    /// `cached tail + capacity`: slots below it are free to write. `0` while detached; equal to
    /// `committed` while closed.
    limit: Cell<usize>,
    /// What [`write`](Self::write) writes through: `ring`, or its shadow while held.
    target: Cell<Option<&'static Ring<T>>>,
    /// The head when [`hold`](Self::hold) was called, while held.
    held_from: Cell<Option<usize>>,
    /// Events dropped while held: counted into the ring when released, forgotten when rewound.
    held_dropped: Cell<u64>,
    /// Whether admission is closed ([`close`](Self::close)).
    closed: Cell<bool>,
}

impl<T> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("attached", &self.ring.get().is_some())
            .field("head", &self.head.get())
            .field("committed", &self.committed.get())
            .field("limit", &self.limit.get())
            .field("held_from", &self.held_from.get())
            .field("closed", &self.closed.get())
            .finish_non_exhaustive()
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
            target: Cell::new(None),
            held_from: Cell::new(None),
            held_dropped: Cell::new(0),
            closed: Cell::new(false),
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
        self.target.set(Some(ring));
        self.limit.set(if self.closed.get() {
            head
        } else {
            tail + ring.capacity()
        });
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
        // Whatever is held is kept: nobody is left to decide otherwise.
        self.release();
        self.ring.set(None);
        self.head.set(0);
        self.committed.set(0);
        self.limit.set(0);
        self.target.set(None);
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

    /// Like [`push_reserving`](Self::push_reserving), but makes the value only once room is
    /// known: the recorder reads the clock inside `make`, so a refused call reads no clock.
    #[inline(always)]
    pub(crate) fn push_reserving_with(&self, make: impl FnOnce() -> T) -> bool {
        let committed = self.committed.get();
        if self.limit.get() - committed < 2 {
            return false;
        }
        self.write(make());
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

    /// Reloads the consumer's position. Returns `true` if that freed slots. Does nothing while
    /// closed.
    #[cold]
    #[inline(never)]
    pub(crate) fn refresh(&self) -> bool {
        let Some(ring) = self.ring.get() else {
            return false;
        };
        if self.closed.get() {
            return false;
        }
        // Pairs with the consumer's `Release` store: its reads of the slots below `tail` are done.
        let limit = ring.tail.0.load(Ordering::Acquire) + ring.capacity();
        let grew = limit > self.limit.get();
        self.limit.set(limit);
        grew
    }

    /// Counts `n` events this producer could not record (while held, into the held region's
    /// count, settled by [`release`](Self::release) or [`rewind`](Self::rewind)).
    #[cold]
    pub(crate) fn add_dropped(&self, n: u64) -> bool {
        let Some(ring) = self.ring.get() else {
            return false;
        };
        if self.held_from.get().is_some() {
            self.held_dropped.set(self.held_dropped.get() + n);
            return true;
        }
        // We are the only writer of `dropped`, so load + store cannot lose an update.
        let dropped = ring.dropped.load(Ordering::Relaxed);
        ring.dropped.store(dropped + n, Ordering::Relaxed);
        true
    }

    /// Closes admission: every unreserved write fails until [`open`](Self::open); reserved slots
    /// stay writable. Returns `false` if it was already closed.
    pub(crate) fn close(&self) -> bool {
        if self.closed.replace(true) {
            return false;
        }
        // `limit == committed` fails every check that needs a free, unreserved slot, and keeps
        // `head < limit` for the reserved ones.
        self.limit.set(self.committed.get());
        true
    }

    /// Reopens admission after [`close`](Self::close).
    pub(crate) fn open(&self) {
        if self.closed.replace(false) {
            if self.is_attached() {
                self.refresh();
            } else {
                self.limit.set(0);
            }
        }
    }

    /// Whether admission is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Starts holding back what is written from now on: it is written to the ring but not
    /// published. Returns the mark to [`rewind`](Self::rewind) to, or `None` when detached or
    /// already held (the outer hold then decides for everything).
    pub(crate) fn hold(&self) -> Option<usize> {
        let ring = self.ring.get()?;
        if self.held_from.get().is_some() {
            return None;
        }
        let mark = self.head.get();
        self.held_from.set(Some(mark));
        self.held_dropped.set(0);
        self.target.set(Some(ring.shadow()));
        Some(mark)
    }

    /// Whether events are being held back.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn is_held(&self) -> bool {
        self.held_from.get().is_some()
    }

    /// Number of events written since the hold began (0 when not held).
    pub(crate) fn held_len(&self) -> usize {
        self.held_from
            .get()
            .map_or(0, |mark| self.head.get() - mark)
    }

    /// Events dropped since the hold began for lack of room.
    pub(crate) fn held_dropped(&self) -> u64 {
        self.held_dropped.get()
    }

    /// Copies the held events, oldest first, into `out`.
    pub(crate) fn held(&self, out: &mut Vec<T>) {
        out.reserve(self.held_len());
        self.for_each_held(|event| out.push(event));
    }

    /// Calls `f` with each held event, oldest first, reading them in place.
    pub(crate) fn for_each_held(&self, mut f: impl FnMut(T)) {
        let (Some(ring), Some(mark)) = (self.ring.get(), self.held_from.get()) else {
            return;
        };
        let head = self.head.get();
        debug_assert!(mark <= head && head - mark <= ring.capacity());
        for index in mark..head {
            let slot = &ring.slots[index & ring.mask];
            // SAFETY: `mark <= index < head`: this producer wrote the slot since the hold (so it is
            // initialised), and the consumer cannot read or free it: the published head is still
            // `mark`, and the consumer reads only below the published head. Only this thread writes
            // slots, never while this read is in progress (the read completes before `f` runs).
            f(unsafe { (*slot.get()).assume_init_read() });
        }
    }

    /// Stops holding and publishes the held events (and counts their drops). Does nothing when
    /// not held.
    pub(crate) fn release(&self) {
        let (Some(ring), Some(_)) = (self.ring.get(), self.held_from.take()) else {
            return;
        };
        self.target.set(Some(ring));
        // Pairs with the consumer's `Acquire` load: the held slot writes are visible first.
        ring.head.0.store(self.head.get(), Ordering::Release);
        let dropped = self.held_dropped.replace(0);
        if dropped > 0 {
            self.add_dropped(dropped);
        }
    }

    /// Stops holding and discards the held events: the head moves back to the mark, and the slots
    /// will be overwritten. Returns how many events were discarded and how many had been dropped
    /// in the held region. Does nothing (returns zeros) when not held.
    pub(crate) fn rewind(&self) -> (usize, u64) {
        let (Some(ring), Some(mark)) = (self.ring.get(), self.held_from.take()) else {
            return (0, 0);
        };
        let head = self.head.get();
        debug_assert!(mark <= head);
        let discarded = head - mark;
        self.head.set(mark);
        // Reservations outstanding stay outstanding.
        self.committed.set(self.committed.get() - discarded);
        if self.closed.get() {
            self.limit.set(self.committed.get());
        }
        // Nothing was published since the hold: `ring.head` is still `mark`.
        self.target.set(Some(ring));
        (discarded, self.held_dropped.replace(0))
    }

    /// Writes `value` at `head` and publishes it (or, while held, only records the new head where
    /// nobody reads it). Callers checked `head < limit`.
    #[inline(always)]
    fn write(&self, value: T) {
        // The target is loaded once for the slot write and the publication: a second load after
        // the slot write would be a real reload, as the compiler cannot tell the slot from our
        // cells.
        if let Some((ring, head)) = self.write_unpublished(value) {
            // Pairs with the consumer's `Acquire` load: the slot write above is visible first.
            // (While held, `ring` is the shadow, whose head nobody reads.)
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
        let ring = self.target.get()?;
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

    #[test]
    fn held_events_are_invisible_until_released() {
        let ring = Ring::<u64>::leak(16);
        let producer = Producer::new();
        assert_eq!(producer.hold(), None, "detached: nothing to hold");
        assert!(producer.attach(ring));
        assert!(producer.push(1));
        assert_eq!(producer.hold(), Some(1));
        assert_eq!(producer.hold(), None, "holds do not nest");
        assert!(producer.push_reserving(2));
        assert!(producer.push_reserved(3));
        assert_eq!(producer.held_len(), 2);
        let mut out = Vec::new();
        assert_eq!(
            ring.drain_into(&mut out),
            1,
            "held events are not published"
        );
        assert_eq!(out, [1]);
        let mut held = Vec::new();
        producer.held(&mut held);
        assert_eq!(held, [2, 3]);
        producer.release();
        assert!(!producer.is_held());
        out.clear();
        assert_eq!(ring.drain_into(&mut out), 2);
        assert_eq!(out, [2, 3]);
    }

    #[test]
    fn rewind_discards_and_keeps_outer_reservations() {
        let ring = Ring::<u64>::leak(16);
        let producer = Producer::new();
        assert!(producer.attach(ring));
        assert!(
            producer.push_reserving(10),
            "an outer span, open across the hold"
        );
        let mark = producer.hold().unwrap();
        for i in 0..4 {
            assert!(producer.push_reserving(i));
            assert!(producer.push_reserved(100 + i));
        }
        assert_eq!(producer.rewind(), (8, 0));
        assert_eq!(producer.head.get(), mark);
        assert_eq!(
            producer.committed.get(),
            mark + 1,
            "the outer exit is still reserved"
        );
        assert!(producer.push_reserved(11));
        assert!(producer.push(12));
        let mut out = Vec::new();
        ring.drain_into(&mut out);
        assert_eq!(out, [10, 11, 12], "the discarded events never appear");
        // The rewound slots are reused: fill the ring completely.
        assert!(producer.refresh());
        for i in 0..16 {
            assert!(producer.push(i));
        }
        assert!(!producer.push(16));
        out.clear();
        assert_eq!(ring.drain_into(&mut out), 16);
        assert_eq!(out, (0..16).collect::<Vec<_>>());
    }

    #[test]
    fn drops_while_held_count_only_when_released() {
        let ring = Ring::<u64>::leak(16);
        let producer = Producer::new();
        assert!(producer.attach(ring));
        producer.hold().unwrap();
        producer.add_dropped(2);
        assert_eq!(producer.held_dropped(), 2);
        assert_eq!(producer.rewind(), (0, 2));
        assert_eq!(
            ring.dropped(),
            0,
            "a discarded request's drops are not the timeline's"
        );
        producer.hold().unwrap();
        producer.add_dropped(3);
        producer.release();
        assert_eq!(ring.dropped(), 3);
    }

    #[test]
    fn closed_refuses_new_events_but_honours_reservations() {
        let ring = Ring::<u64>::leak(16);
        let producer = Producer::new();
        assert!(producer.close());
        assert!(!producer.close(), "already closed");
        assert!(producer.attach(ring), "attaching while closed stays closed");
        assert!(!producer.push(1));
        producer.open();
        assert!(producer.push_reserving(1));
        assert!(producer.close());
        assert!(!producer.push_reserving_with(|| 2));
        assert!(!producer.push_pair(2, 3));
        assert!(!producer.refresh(), "refresh does not reopen");
        assert!(
            producer.push_reserved(4),
            "the open span still gets its exit"
        );
        producer.open();
        assert!(producer.push_reserving_with(|| 5));
        let mut out = Vec::new();
        ring.drain_into(&mut out);
        assert_eq!(out, [1, 4, 5]);
        assert!(!producer.detach(), "5 still owes its exit");
    }

    /// Holds and rewinds while a consumer drains concurrently: the consumer sees exactly the
    /// released events, in order, never a rewound one.
    #[test]
    fn concurrent_drain_never_sees_rewound_events() {
        let ring = Ring::<u64>::leak(64);
        let done = &*Box::leak(Box::new(AtomicBool::new(false)));
        let producer_thread = std::thread::Builder::new()
            .name("ring-holder".into())
            .spawn(move || {
                let producer = Producer::new();
                assert!(producer.attach(ring));
                let mut kept = Vec::new();
                let mut next = 0;
                for request in 0..N / 8 {
                    if producer.hold().is_none() {
                        break;
                    }
                    let mut written = Vec::new();
                    for _ in 0..3 {
                        if producer.push(next) || (producer.refresh() && producer.push(next)) {
                            written.push(next);
                        }
                        next += 1;
                    }
                    // Keep every third request; the discarded values are even numbers below
                    // `next`, never seen by the consumer.
                    if request % 3 == 0 {
                        producer.release();
                        kept.extend(written);
                    } else {
                        producer.rewind();
                    }
                }
                done.store(true, Ordering::Release);
                kept
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
        let kept = producer_thread.join().unwrap();
        assert_eq!(seen, kept);
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
