//! The per-thread single-producer, single-consumer ring buffer, made of blocks that the consumer
//! takes away whole instead of copying the events out.
//!
//! One [`Ring`] belongs to one recording thread at a time (its [`Producer`] holds the claim) and
//! is drained by the collector (one consumer at a time, serialised by an internal lock). Rings are
//! leaked (`&'static`) and reused by later threads once drained, so a producer never needs to own
//! or free its ring, and the thread-local that holds the producer has no destructor.
//!
//! # Blocks
//!
//! A ring's slots are split into blocks of `block_len` slots (a power of two: at most
//! [`BLOCK_EVENTS`], at most a quarter of the capacity): `capacity / block_len` blocks and one
//! spare, first carved out of one allocation. A table holds, for each position, the block now
//! there: event `i` lives in slot `i % block_len` of the block at position `(i / block_len) %
//! positions`. To drain, the consumer ([`Ring::take`]) lifts every block the producer has filled
//! and left out of the table, puts a spare one from a [`BlockPool`] in its place and keeps the
//! full one in a [`Drained`]: the events are never copied. Only the block the producer is still
//! filling is copied, and only its events not taken before (fewer than `block_len`). After the
//! merge, [`Drained::recycle`] returns the blocks to the pool.
//!
//! # Protocol and invariants
//!
//! - `head` and `tail` are monotonically increasing event counters (they never wrap in practice:
//!   2^64 events).
//! - Only the claiming producer stores `head`, with `Release`, after writing the slot; the consumer
//!   loads it with `Acquire` and then reads or takes the events `tail..head`.
//! - Only the consumer stores `tail`, with `Release`, after reading the slots below it and after
//!   replacing the table entries of the blocks it took; the producer loads it with `Acquire` (on
//!   its cold path only).
//! - The producer writes event `i` only while `i < limit = cached tail + capacity`, so
//!   `tail <= head <= tail + capacity`. A lap is `capacity + block_len` events (the spare block),
//!   so when the producer enters the block position starting at event `s`, writing some event
//!   `i >= s`, the block that was there a lap earlier ended at `s + block_len - lap = s -
//!   capacity <= i - capacity < tail`: the consumer is done with the *whole* of it (read, or taken
//!   and replaced), even when it copied only part of the block the producer was filling, and the
//!   table entry the producer then loads is the replacement.
//! - The consumer takes a block only when the published `head` is at or past the block's end: the
//!   producer has left it, and never writes below the published head again (a rewind goes back
//!   only to a head that was never published past).
//!
//! The producer caches the block it is filling (a base pointer and the block's end), so its fast
//! path is: one compare, one slot store, one `Release` store of `head` (a plain `mov` on x86-64).
//! There is no read-modify-write atomic and no lock anywhere on it, and no allocation on either
//! side of the producer: fresh blocks are the consumer's business. Moving to the next block is a
//! cold call once every `block_len` events.
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
//! [`Producer::hold`] keeps writing slots but stops publishing: while held, the producer stores
//! its head into the ring's `held_head`, which nobody reads, instead of `head`. The write path is
//! therefore the same instructions held or not (no flag, no branch, no extra load). While held the
//! consumer sees `head` frozen at the mark, so it never reads or takes the held slots, and the
//! producer may still read them ([`Producer::held`]). [`Producer::release`] publishes everything
//! at once; [`Producer::rewind`] moves the producer's head back to the mark, so the held events are
//! overwritten later: discarded without copying. Reservations (`committed - head`) are unchanged by
//! a rewind.
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
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// One slot: an event once written.
type Slot<T> = UnsafeCell<MaybeUninit<T>>;

/// The most events one block holds: 4096 events of 16 bytes, 64 KiB.
pub(crate) const BLOCK_EVENTS: usize = 4096;

/// Keeps the producer's and the consumer's counters on separate cache lines.
#[repr(align(128))]
#[derive(Debug)]
struct CachePadded<T>(T);

/// Where a detached producer "publishes": never stored to (a detached producer writes nothing),
/// it only spares the write path a branch on `Option`.
static DETACHED_HEAD: AtomicUsize = AtomicUsize::new(0);

/// A block of slots, owned (by a pool or a [`Drained`]) or given to a ring's table. A ring's
/// first blocks are carved out of one allocation (made and leaked with the ring, like the ring
/// itself, and touched only as it fills); spare blocks a pool makes are allocations of their own,
/// freed when dropped. A carved block dropped (a pool trimming its spares) stays with its ring's
/// leaked allocation.
pub(crate) struct Block<T> {
    first: NonNull<Slot<T>>,
    len: usize,
    /// Whether the block is a `Box<[Slot<T>]>` of `len` slots of its own, freed on drop.
    boxed: bool,
}

// SAFETY: a `Block` is the only handle to its slots while it exists (a boxed block owns its
// allocation; a carved one is the only owner of its part of a leaked allocation), exactly like a
// `Box<[Slot<T>]>`, which is `Send` when `T` is.
unsafe impl<T: Send> Send for Block<T> {}

/// The tag of a carved block's pointer in a ring's table (slots are at least 2-byte aligned, so
/// the lowest bit of a slot's address is free).
const CARVED: usize = 1;

impl<T> Block<T> {
    /// A new block of `len` slots, not written to: its pages are touched only as it fills.
    fn new(len: usize) -> Self {
        let uninit = Box::<[Slot<T>]>::new_uninit_slice(len);
        // SAFETY: an `UnsafeCell<MaybeUninit<T>>` is valid uninitialised: `MaybeUninit` has no
        // validity requirement and `UnsafeCell` is a transparent wrapper around it.
        let slots = unsafe { uninit.assume_init() };
        let first = NonNull::from(Box::leak(slots)).cast::<Slot<T>>();
        Block {
            first,
            len,
            boxed: true,
        }
    }

    /// `blocks` blocks of `len` slots carved out of one new allocation, leaked.
    fn carve(blocks: usize, len: usize) -> impl Iterator<Item = Self> {
        let uninit = Box::<[Slot<T>]>::new_uninit_slice(blocks * len);
        // SAFETY: as in `new`: uninitialised slots are valid.
        let slots = unsafe { uninit.assume_init() };
        let first = NonNull::from(Box::leak(slots)).cast::<Slot<T>>();
        (0..blocks).map(move |i| Block {
            // SAFETY: in bounds of the allocation: `i * len < blocks * len`, its length.
            first: unsafe { first.add(i * len) },
            len,
            boxed: false,
        })
    }

    /// The block's slots.
    fn slots(&self) -> &[Slot<T>] {
        // SAFETY: `first` points to `len` slots that this block alone owns (see the type's docs)
        // and that live as long as it does (a boxed block's until its drop, a carved one's for
        // ever).
        unsafe { std::slice::from_raw_parts(self.first.as_ptr(), self.len) }
    }

    /// Gives the block up for a ring's table: a pointer to its first slot, tagged if carved.
    fn into_tagged(self) -> *mut Slot<T> {
        let first = self.first.as_ptr();
        let tagged = if self.boxed {
            first
        } else {
            first.map_addr(|a| a | CARVED)
        };
        std::mem::forget(self);
        tagged
    }

    /// Takes back a block given up with [`into_tagged`](Self::into_tagged).
    ///
    /// # Safety
    ///
    /// `tagged` came from `into_tagged` on a block of `len` slots, and nothing else owns, writes
    /// or reads that block any more.
    unsafe fn from_tagged(tagged: *mut Slot<T>, len: usize) -> Self {
        // SAFETY: `into_tagged` gave a non-null pointer (a block's first slot), and untagging
        // gives that pointer back.
        let first = unsafe { NonNull::new_unchecked(untag(tagged)) };
        Block {
            first,
            len,
            boxed: tagged.addr() & CARVED == 0,
        }
    }
}

impl<T> Drop for Block<T> {
    fn drop(&mut self) {
        if self.boxed {
            // SAFETY: a boxed block's `first` and `len` are the `Box<[Slot<T>]>` leaked in `new`,
            // owned by this block alone (see the type's docs), freed once: here.
            drop(unsafe {
                Box::from_raw(ptr::slice_from_raw_parts_mut(self.first.as_ptr(), self.len))
            });
        }
    }
}

/// The pointer to a block's first slot, from its table entry.
fn untag<T>(tagged: *mut Slot<T>) -> *mut Slot<T> {
    tagged.map_addr(|a| a & !CARVED)
}

/// Spare blocks, reused by [`Ring::take`] so that steady draining and flushing allocates nothing
/// and touches no new pages.
pub(crate) struct BlockPool<T> {
    free: Vec<Block<T>>,
}

impl<T> BlockPool<T> {
    /// An empty pool.
    pub(crate) const fn new() -> Self {
        BlockPool { free: Vec::new() }
    }

    /// A block of `len` slots: a spare one if there is one, else a new one.
    fn get(&mut self, len: usize) -> Block<T> {
        match self.free.iter().rposition(|b| b.len == len) {
            Some(i) => self.free.swap_remove(i),
            None => Block::new(len),
        }
    }

    /// Keeps at most `blocks` spare blocks, freeing the rest. Carved blocks are kept first: their
    /// memory stays with their ring's allocation whether kept or not, while a boxed block dropped
    /// is given back.
    pub(crate) fn trim(&mut self, blocks: usize) {
        if self.free.len() > blocks {
            self.free.sort_by_key(|b| b.boxed);
            self.free.truncate(blocks);
        }
    }

    /// The number of spare blocks.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        self.free.len()
    }
}

impl<T> std::fmt::Debug for BlockPool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockPool")
            .field("free", &self.free.len())
            .finish()
    }
}

/// A run of drained events: a taken block (from `from` to its end) or copied events.
enum Chunk<T> {
    /// A block the producer filled; slots `from..` hold events (written and published by the
    /// producer before the block was taken).
    Taken { block: Block<T>, from: usize },
    /// Events copied out of the block the producer was still filling.
    Copied(Vec<T>),
}

impl<T: Copy> Chunk<T> {
    fn events(&self) -> &[T] {
        match self {
            Chunk::Copied(events) => events,
            Chunk::Taken { block, from } => {
                let slots = &block.slots()[*from..];
                // SAFETY: a `Taken` chunk is made only by `Ring::take`, from a block whose slots
                // `from..` the producer initialised before publishing a head at or past the
                // block's end (observed by `take`'s `Acquire` load), and the block is owned by
                // this chunk: nothing writes it. `UnsafeCell<MaybeUninit<T>>` has the layout of
                // `T` (both wrappers are transparent).
                unsafe { std::slice::from_raw_parts(slots.as_ptr().cast::<T>(), slots.len()) }
            }
        }
    }
}

/// Events taken out of a ring by [`Ring::take`], oldest first, not yet merged: whole blocks and
/// short copied runs.
pub(crate) struct Drained<T> {
    chunks: Vec<Chunk<T>>,
    len: usize,
}

impl<T: Copy> Drained<T> {
    /// Nothing drained yet.
    pub(crate) const fn new() -> Self {
        Drained {
            chunks: Vec::new(),
            len: 0,
        }
    }

    /// The number of events held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The events as runs of consecutive events, oldest first.
    pub(crate) fn runs(&self) -> impl DoubleEndedIterator<Item = &[T]> {
        self.chunks.iter().map(Chunk::events)
    }

    /// Forgets the events and gives their blocks back to `pool`. Returns how many blocks it gave.
    pub(crate) fn recycle(&mut self, pool: &mut BlockPool<T>) -> usize {
        let mut blocks = 0;
        for chunk in self.chunks.drain(..) {
            if let Chunk::Taken { block, .. } = chunk {
                pool.free.push(block);
                blocks += 1;
            }
        }
        self.len = 0;
        blocks
    }

    /// Moves `other`'s events after these, leaving `other` empty.
    #[cfg_attr(not(feature = "stream"), allow(dead_code))]
    pub(crate) fn append(&mut self, other: &mut Drained<T>) {
        self.len += other.len;
        self.chunks.append(&mut other.chunks);
        other.len = 0;
    }

    /// Appends events copied from a ring, to the last copied run if that is the last chunk.
    fn extend_copied(&mut self, events: &[T]) {
        match self.chunks.last_mut() {
            Some(Chunk::Copied(run)) => run.extend_from_slice(events),
            _ => self.chunks.push(Chunk::Copied(events.to_vec())),
        }
    }
}

impl<T> std::fmt::Debug for Drained<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drained")
            .field("events", &self.len)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

/// A bounded SPSC ring of `T`. See the module docs for the protocol.
pub(crate) struct Ring<T: 'static> {
    /// Per block position, the first slot of the block now there: `capacity / block_len + 1`
    /// positions. Leaked with the ring.
    table: &'static [AtomicPtr<Slot<T>>],
    /// `log2(block_len)`.
    block_shift: u32,
    /// `capacity - 1`; capacity is a power of two.
    mask: usize,
    /// Number of events ever published. Stored only by the claiming producer.
    head: CachePadded<AtomicUsize>,
    /// The claiming producer's head while it holds (see the module docs). Read by nobody.
    held_head: CachePadded<AtomicUsize>,
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

// SAFETY: the blocks are shared between exactly one producer (guaranteed by `claimed`) and one
// consumer at a time (guaranteed by `consumer`), which access disjoint slots, and a block the
// consumer takes is one the producer has left for good, as the module-level protocol describes.
// Every other field is atomic or a mutex. `T: Send` because values move from the producer's thread
// to the consumer's.
unsafe impl<T: Send + 'static> Sync for Ring<T> {}

impl<T: 'static> std::fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &(self.mask + 1))
            .field("block_len", &(1_usize << self.block_shift))
            .field("head", &self.head.0.load(Ordering::Relaxed))
            .field("tail", &self.tail.0.load(Ordering::Relaxed))
            .field("claimed", &self.claimed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<T: Copy + Send + 'static> Ring<T> {
    /// A new ring of at least `capacity` slots (rounded up to a power of two, at least 16) in
    /// blocks of up to [`BLOCK_EVENTS`], leaked so that producers can refer to it without owning
    /// it. The ring is reused, never freed.
    pub(crate) fn leak(capacity: usize) -> &'static Self {
        Self::leak_with_blocks(capacity, BLOCK_EVENTS)
    }

    /// [`leak`](Self::leak) with blocks of at most `max_block` slots (rounded up to a power of
    /// two; a block is at most a quarter of the ring, at least one slot).
    pub(crate) fn leak_with_blocks(capacity: usize, max_block: usize) -> &'static Self {
        let capacity = capacity.max(16).next_power_of_two();
        let block_len = max_block.max(1).next_power_of_two().min(capacity / 4);
        // One spare block: see the module docs.
        assert!(
            std::mem::align_of::<Slot<T>>() > CARVED,
            "no room for the tag"
        );
        let table: Box<[_]> = Block::carve(capacity / block_len + 1, block_len)
            .map(|block| AtomicPtr::new(block.into_tagged()))
            .collect();
        Box::leak(Box::new(Ring {
            table: Box::leak(table),
            block_shift: block_len.trailing_zeros(),
            mask: capacity - 1,
            head: CachePadded(AtomicUsize::new(0)),
            held_head: CachePadded(AtomicUsize::new(0)),
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

    /// The number of slots in a block.
    pub(crate) fn block_len(&self) -> usize {
        1 << self.block_shift
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

    /// The first slot past what the producer may write, given a consumed `tail`.
    fn limit_for(&self, tail: usize) -> usize {
        tail + self.capacity()
    }

    /// The table entry of the block position holding event `index`. (A division: used on cold
    /// paths and once per block, never per event.)
    fn entry(&self, index: usize) -> &AtomicPtr<Slot<T>> {
        &self.table[(index >> self.block_shift) % self.table.len()]
    }

    /// A pointer to the slot of event `index` in the block now at its position. The pointer is
    /// valid while that block stays in the table.
    fn slot(&self, index: usize) -> *mut Slot<T> {
        // `Acquire` pairs with the consumer's swap of the entry (also ordered before its `tail`
        // store, which the producer's limit comes from).
        untag(self.entry(index).load(Ordering::Acquire))
            .wrapping_add(index & (self.block_len() - 1))
    }

    /// Moves every published event into `out`, oldest first, and frees their slots: the blocks the
    /// producer has filled and left are taken whole (a fresh block from `pool` takes each one's
    /// place), the rest of the block it is filling is copied. Safe to call while the producer
    /// keeps recording: events published after the `head` load stay for the next call. Returns how
    /// many events were moved.
    pub(crate) fn take(&self, out: &mut Drained<T>, pool: &mut BlockPool<T>) -> usize {
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
        let block_len = self.block_len();
        let mut at = tail;
        // Every block that ends at or below `head`: the producer filled it and left.
        while at | (block_len - 1) < head {
            let start = at & !(block_len - 1);
            let fresh = pool.get(block_len).into_tagged();
            let full = self.entry(at).swap(fresh, Ordering::AcqRel);
            // SAFETY: `full` came from `into_tagged` on a block of `block_len` slots (every table
            // entry does: `leak_with_blocks` and the swap above put only such pointers there),
            // and it is ours alone from now: it is out of the table; the producer has left it for
            // good (the published head is at or past its end, and the producer never writes below
            // the published head) and loads a position's entry only after observing a `tail` past
            // the old block's end, which we store below, after this swap; and no other consumer
            // runs (we hold the lock).
            let block = unsafe { Block::from_tagged(full, block_len) };
            out.chunks.push(Chunk::Taken {
                block,
                from: at - start,
            });
            at = start + block_len;
        }
        if at < head {
            // The block the producer is filling: copy its events `at..head`.
            // SAFETY: `at..head` lies in one block (the loop stopped: that block ends past
            // `head`), which stays in the table (only consumers swap entries, and we hold the
            // lock). The producer initialised these slots before its `Release` store of `head`
            // (our `Acquire` load observed it) and writes only at or past `head`, until it
            // observes a `tail` above them, which we store only after this copy.
            let run = unsafe { std::slice::from_raw_parts(self.slot(at).cast::<T>(), head - at) };
            out.extend_copied(run);
            at = head;
        }
        out.len += head - tail;
        // Pairs with the producer's `Acquire` load in `refresh`: our reads and swaps happen before
        // it writes those positions again.
        self.tail.0.store(at, Ordering::Release);
        head - tail
    }

    /// Test helper: takes every published event and copies it into `out`.
    #[cfg(test)]
    pub(crate) fn drain_into(&self, out: &mut Vec<T>) -> usize {
        let mut drained = Drained::new();
        let mut pool = BlockPool::new();
        let n = self.take(&mut drained, &mut pool);
        for run in drained.runs() {
            out.extend_from_slice(run);
        }
        n
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
    /// Our head (equal to `ring.head` unless held; we are its only writer).
    head: Cell<usize>,
    /// `head` plus the slots reserved for pending exits; `head <= committed <= limit`.
    committed: Cell<usize>,
    /// Slots below it may be written: [`Ring::limit_for`] the cached tail. `0` while detached;
    /// equal to `committed` while closed.
    limit: Cell<usize>,
    /// `min(limit, block_end)`: what the fast paths check. Below it, `head` is in the cached block.
    fast_limit: Cell<usize>,
    /// The end (an event number) of the cached block; `0` when none is cached. While one is,
    /// `block_end - block_len <= head <= block_end`.
    block_end: Cell<usize>,
    /// Event `i` of the cached block is at `base.wrapping_add(i)`.
    base: Cell<*mut Slot<T>>,
    /// Where the head is published: `ring.head`, or `ring.held_head` while held.
    publish: Cell<&'static AtomicUsize>,
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
            .field("block_end", &self.block_end.get())
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
            fast_limit: Cell::new(0),
            block_end: Cell::new(0),
            base: Cell::new(ptr::null_mut()),
            publish: Cell::new(&DETACHED_HEAD),
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
        self.publish.set(&ring.head.0);
        // The block is loaded by the first write.
        self.forget_block();
        self.set_limit(if self.closed.get() {
            head
        } else {
            ring.limit_for(tail)
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
        self.forget_block();
        self.set_limit(0);
        self.publish.set(&DETACHED_HEAD);
        ring.claimed.store(false, Ordering::Release);
        true
    }

    /// Writes `value` and reserves one more slot for a later [`push_reserved`](Self::push_reserved).
    /// Returns `false`, writing nothing, when there is no room for both.
    pub(crate) fn push_reserving(&self, value: T) -> bool {
        self.push_reserving_with(|| value) || self.push_reserving_slow(value)
    }

    /// The fast path of [`push_reserving`](Self::push_reserving), which makes the value only once
    /// room is known (the recorder reads the clock inside `make`, so a refused call reads no
    /// clock). Returns `false`, making and writing nothing, whenever it cannot write into the
    /// cached block: the caller's cold path then calls `push_reserving`, which knows more.
    #[inline(always)]
    pub(crate) fn push_reserving_with(&self, make: impl FnOnce() -> T) -> bool {
        let committed = self.committed.get();
        if committed + 2 > self.fast_limit.get() {
            return false;
        }
        self.write::<true>(make());
        // One slot used, one reserved.
        self.committed.set(committed + 2);
        true
    }

    #[cold]
    #[inline(never)]
    fn push_reserving_slow(&self, value: T) -> bool {
        let committed = self.committed.get();
        if !self.has_room(committed + 2) {
            return false;
        }
        self.write_anywhere::<true>(value);
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
        if head >= self.fast_limit.get() {
            return self.push_reserved_slow(value);
        }
        self.write::<true>(value);
        // Normally `committed` stays put (one reservation became one used slot); without a
        // reservation it must grow with `head`.
        self.committed.set(committed.max(head + 1));
        true
    }

    #[cold]
    #[inline(never)]
    fn push_reserved_slow(&self, value: T) -> bool {
        let head = self.head.get();
        let committed = self.committed.get();
        if !self.has_room(head + 1) {
            return false;
        }
        self.write_anywhere::<true>(value);
        self.committed.set(committed.max(head + 1));
        true
    }

    /// Writes `value` without reservation. Returns `false` when no unreserved slot is free.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn push(&self, value: T) -> bool {
        let committed = self.committed.get();
        if !self.has_room(committed + 1) {
            return false;
        }
        self.write_anywhere::<true>(value);
        self.committed.set(committed + 1);
        true
    }

    /// Writes two values that are published together. Returns `false` when they do not fit.
    pub(crate) fn push_pair(&self, first: T, second: T) -> bool {
        let committed = self.committed.get();
        if !self.has_room(committed + 2) {
            return false;
        }
        // The first is published with the second.
        self.write_anywhere::<false>(first);
        self.write_anywhere::<true>(second);
        self.committed.set(committed + 2);
        true
    }

    /// Whether the slots below `end` may be written, reloading the consumer's position if needed.
    fn has_room(&self, end: usize) -> bool {
        if end > self.limit.get() {
            self.refresh();
        }
        end <= self.limit.get()
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
        // Pairs with the consumer's `Release` store: its reads of the slots below `tail`, and its
        // swaps of the blocks it took, are done.
        let limit = ring.limit_for(ring.tail.0.load(Ordering::Acquire));
        let grew = limit > self.limit.get();
        self.set_limit(limit);
        grew
    }

    /// Sets `limit`, and `fast_limit` with it.
    fn set_limit(&self, limit: usize) {
        self.limit.set(limit);
        self.fast_limit.set(limit.min(self.block_end.get()));
    }

    /// Drops the cached block: the next write loads the block of its head.
    fn forget_block(&self) {
        self.block_end.set(0);
        self.base.set(ptr::null_mut());
        self.fast_limit.set(0);
    }

    /// Writes `value` at `head`, moving to the head's block first if needed, and publishes the new
    /// head if `PUBLISH`. Callers checked `head < limit`.
    fn write_anywhere<const PUBLISH: bool>(&self, value: T) {
        let head = self.head.get();
        debug_assert!(head < self.limit.get());
        if head >= self.block_end.get() {
            self.load_block(head);
        }
        self.write::<PUBLISH>(value);
        self.fast_limit
            .set(self.limit.get().min(self.block_end.get()));
    }

    /// Caches the block at `head`'s position. Called only with `head < limit` while attached.
    #[cold]
    #[inline(never)]
    fn load_block(&self, head: usize) {
        let Some(ring) = self.ring.get() else {
            return;
        };
        let start = head & !(ring.block_len() - 1);
        // `head < limit`: the consumer is done with the block that held this position a lap
        // earlier, and put in the one we load now before the `tail` store our limit came from.
        let first = untag(ring.entry(head).load(Ordering::Acquire));
        self.base.set(first.wrapping_sub(start));
        self.block_end.set(start + ring.block_len());
        self.fast_limit
            .set(self.limit.get().min(self.block_end.get()));
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
        self.set_limit(self.committed.get());
        true
    }

    /// Reopens admission after [`close`](Self::close).
    pub(crate) fn open(&self) {
        if self.closed.replace(false) {
            if self.is_attached() {
                self.refresh();
            } else {
                self.set_limit(0);
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
        self.publish.set(&ring.held_head.0);
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
        let mut index = mark;
        while index < head {
            // One block at a time: its slots are consecutive.
            let end = ((index | (ring.block_len() - 1)) + 1).min(head);
            let first = ring.slot(index);
            for offset in 0..end - index {
                // SAFETY: `mark <= index + offset < head`, in the block of `index`: this producer
                // wrote the slot since the hold (so it is initialised, in the block now at its
                // position), and the consumer cannot read, free or take it: the published head is
                // still `mark`, and the consumer reads and takes only below the published head.
                // Only this thread writes slots, never while this read is in progress (the read
                // completes before `f` runs).
                f(unsafe { first.add(offset).cast::<T>().read() });
            }
            index = end;
        }
    }

    /// Stops holding and publishes the held events (and counts their drops). Does nothing when
    /// not held.
    pub(crate) fn release(&self) {
        let (Some(ring), Some(_)) = (self.ring.get(), self.held_from.take()) else {
            return;
        };
        self.publish.set(&ring.head.0);
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
        // Back in an earlier block: load it again at the next write.
        if mark + ring.block_len() < self.block_end.get() {
            self.forget_block();
        }
        if self.closed.get() {
            self.set_limit(self.committed.get());
        } else {
            self.set_limit(self.limit.get());
        }
        // Nothing was published since the hold: `ring.head` is still `mark`.
        self.publish.set(&ring.head.0);
        (discarded, self.held_dropped.replace(0))
    }

    /// Writes `value` at `head` and, if `PUBLISH`, publishes the new head (to nobody while held).
    /// Callers checked `head < fast_limit`, or loaded `head`'s block.
    #[inline(always)]
    fn write<const PUBLISH: bool>(&self, value: T) {
        let head = self.head.get();
        debug_assert!(head < self.block_end.get());
        let slot = self.base.get().wrapping_add(head);
        // SAFETY: `block_end - block_len <= head < block_end` (callers checked `head <
        // fast_limit <= block_end`, or loaded `head`'s block; `head` stays in the block's range
        // as only writes move it up, one slot at a time, and `rewind` forgets the block when it
        // moves below it), so `slot` is event `head`'s slot in the cached block, which is in the
        // table at its position (only the consumer swaps entries, and only of blocks wholly below
        // the published head, which is at most `head`). We hold the ring's claim, so no other
        // producer writes; `head < limit`, so the consumer is done with whatever this slot held
        // and will not read it before we publish `head + 1`.
        unsafe { slot.cast::<T>().write(value) };
        self.head.set(head + 1);
        if PUBLISH {
            // Pairs with the consumer's `Acquire` load: the slot write above is visible first.
            self.publish.get().store(head + 1, Ordering::Release);
        }
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

    /// The consumer side of the concurrent tests: calls `step` (with whether the producer had
    /// finished before it) until a step that began after the producer finished, so that the last
    /// step sees everything.
    fn consume_until(done: &AtomicBool, mut step: impl FnMut(bool)) {
        loop {
            let finished = done.load(Ordering::Acquire);
            step(finished);
            if finished {
                return;
            }
            std::thread::yield_now();
        }
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
        consume_until(done, |_| {
            ring.drain_into(&mut seen);
        });
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
        consume_until(done, |_| {
            ring.drain_into(&mut seen);
        });
        let dropped = producer_thread.join().unwrap();
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "order or duplicates");
        assert_eq!(seen.len() as u64 + dropped, N);
        assert_eq!(ring.dropped(), dropped);
        assert_eq!(ring.len(), 0);
    }

    /// The runs of a drain, and which of them are whole taken blocks (`true`) or copies.
    fn runs(drained: &Drained<u64>) -> Vec<(Vec<u64>, bool)> {
        drained
            .runs()
            .zip(&drained.chunks)
            .map(|(run, chunk)| (run.to_vec(), matches!(chunk, Chunk::Taken { .. })))
            .collect()
    }

    /// A producer attached to a new ring of `capacity` slots in blocks of `block`, with the
    /// events `0..n` pushed.
    fn attached(capacity: usize, block: usize, n: u64) -> (&'static Ring<u64>, Producer<u64>) {
        let ring = Ring::leak_with_blocks(capacity, block);
        let producer = Producer::new();
        assert!(producer.attach(ring));
        for i in 0..n {
            assert!(producer.push(i));
        }
        (ring, producer)
    }

    #[test]
    fn filled_blocks_are_taken_whole_and_the_rest_copied() {
        let (ring, producer) = attached(64, 16, 40);
        assert_eq!((ring.capacity(), ring.block_len()), (64, 16));
        let mut pool = BlockPool::new();
        let mut drained = Drained::new();
        assert_eq!(ring.take(&mut drained, &mut pool), 40);
        assert_eq!(
            runs(&drained),
            [
                ((0..16).collect(), true),
                ((16..32).collect(), true),
                ((32..40).collect(), false),
            ]
        );
        // The block being filled (32..48) was copied from, not taken: the producer goes on in it.
        // The copied part is not taken again.
        for i in 40..70 {
            assert!(producer.push(i));
        }
        assert_eq!(ring.take(&mut drained, &mut pool), 30);
        assert_eq!(drained.len(), 70);
        let all: Vec<u64> = drained.runs().flatten().copied().collect();
        assert_eq!(all, (0..70).collect::<Vec<_>>());
        assert_eq!(
            runs(&drained)[3..],
            [
                ((40..48).collect(), true),
                ((48..64).collect(), true),
                ((64..70).collect(), false),
            ]
        );
        // The taken blocks go to the pool and come back as replacements.
        assert_eq!(drained.recycle(&mut pool), 4);
        assert_eq!((drained.len(), drained.runs().count()), (0, 0));
        assert_eq!(pool.len(), 4);
        for i in 70..112 {
            assert!(producer.push(i));
        }
        assert_eq!(ring.take(&mut drained, &mut pool), 42);
        assert_eq!(
            pool.len(),
            1,
            "three filled blocks (64..80, 80..96, 96..112) were replaced from the pool"
        );
        let all: Vec<u64> = drained.runs().flatten().copied().collect();
        assert_eq!(all, (70..112).collect::<Vec<_>>());
        // Taken: the spare position's carved block, and the two boxed blocks the first take put
        // at positions 0 and 1. With the pool's last carved block: two of each kind.
        assert_eq!(drained.recycle(&mut pool), 3);
        let boxed = |pool: &BlockPool<u64>| pool.free.iter().filter(|b| b.boxed).count();
        assert_eq!((pool.len(), boxed(&pool)), (4, 2));
        pool.trim(2);
        assert_eq!(
            (pool.len(), boxed(&pool)),
            (2, 0),
            "carved blocks are kept, boxed ones freed"
        );
    }

    /// Draining part of a block costs no capacity: the spare block lets the producer go a full
    /// `capacity` past the tail without entering the position of a block the consumer may still
    /// take (here block 0, copied from but not taken, while the producer fills the spare).
    #[test]
    fn a_partly_drained_block_costs_no_capacity() {
        let (ring, producer) = attached(64, 16, 8);
        let mut pool = BlockPool::new();
        let mut drained = Drained::new();
        assert_eq!(ring.take(&mut drained, &mut pool), 8);
        for i in 8..72 {
            assert!(producer.push(i), "{i}");
        }
        assert!(!producer.push(72), "64 events past the tail");
        assert_eq!(ring.take(&mut drained, &mut pool), 64);
        let taken = runs(&drained).iter().filter(|(_, taken)| *taken).count();
        assert_eq!(
            taken, 4,
            "block 0 (from 8), 1, 2, 3; 64..72 is in the spare, copied"
        );
        for i in 72..136 {
            assert!(producer.push(i), "{i}");
        }
        assert!(!producer.push(136));
        assert_eq!(ring.take(&mut drained, &mut pool), 64);
        let all: Vec<u64> = drained.runs().flatten().copied().collect();
        assert_eq!(all, (0..136).collect::<Vec<_>>());
    }

    #[test]
    fn rewind_across_blocks_reloads_the_earlier_block() {
        let (ring, producer) = attached(64, 4, 3);
        producer.hold().unwrap();
        for i in 0..10 {
            assert!(producer.push(100 + i), "held writes cross two block ends");
        }
        let mut held = Vec::new();
        producer.held(&mut held);
        assert_eq!(held, (100..110).collect::<Vec<_>>());
        assert_eq!(producer.rewind(), (10, 0));
        for i in 3..12 {
            assert!(producer.push(i));
        }
        let mut out = Vec::new();
        assert_eq!(ring.drain_into(&mut out), 12);
        assert_eq!(out, (0..12).collect::<Vec<_>>());
    }

    #[test]
    fn a_pair_straddling_a_block_end_is_published_whole() {
        let (ring, producer) = attached(16, 4, 3);
        assert!(producer.push_pair(3, 4));
        let mut out = Vec::new();
        assert_eq!(ring.drain_into(&mut out), 5);
        assert_eq!(out, [0, 1, 2, 3, 4]);
    }

    /// Takes blocks while the producer writes on, with blocks recycled through one pool: every
    /// event arrives once and in order (under Miri, also no data race and no use after free).
    #[test]
    fn concurrent_take_with_recycled_blocks() {
        let ring = Ring::leak_with_blocks(64, 8);
        let done = &*Box::leak(Box::new(AtomicBool::new(false)));
        let producer_thread = std::thread::Builder::new()
            .name("ring-blocks".into())
            .spawn(move || {
                let producer = Producer::new();
                assert!(producer.attach(ring));
                let mut dropped = 0;
                for i in 0..N {
                    if !producer.push(i) {
                        dropped += 1;
                    }
                }
                done.store(true, Ordering::Release);
                dropped
            })
            .unwrap();
        let mut pool = BlockPool::new();
        let mut drained = Drained::new();
        let mut seen = Vec::new();
        consume_until(done, |finished| {
            ring.take(&mut drained, &mut pool);
            if drained.len() > 100 || finished {
                seen.extend(drained.runs().flatten().copied());
                drained.recycle(&mut pool);
            }
        });
        let dropped = producer_thread.join().unwrap();
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "order or duplicates");
        assert_eq!(seen.len() as u64 + dropped, N);
    }

    /// Carved blocks (a ring's first ones) and boxed spares travel through one pool between two
    /// rings and are dropped by a trim: each kind keeps its own way of being freed (under Miri:
    /// no double free, no freeing part of a ring's allocation).
    #[test]
    fn carved_and_boxed_blocks_move_between_rings() {
        let ((a, pa), (b, pb)) = (attached(16, 4, 0), attached(16, 4, 0));
        let mut pool = BlockPool::new();
        let mut drained = Drained::new();
        for round in 0..6_u64 {
            for i in 0..16 {
                assert!(pa.push(round * 100 + i));
                assert!(pb.push(round * 100 + 50 + i));
            }
            assert_eq!(a.take(&mut drained, &mut pool), 16);
            assert_eq!(b.take(&mut drained, &mut pool), 16);
            let all: Vec<u64> = drained.runs().flatten().copied().collect();
            let expected: Vec<u64> = (0..16)
                .map(|i| round * 100 + i)
                .chain((0..16).map(|i| round * 100 + 50 + i))
                .collect();
            assert_eq!(all, expected);
            drained.recycle(&mut pool);
            if round % 2 == 1 {
                pool.trim(3);
            }
        }
        pool.trim(0);
    }
}
