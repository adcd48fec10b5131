//! The floors of any timeline profiler: two timestamps per call, and two timestamps plus two
//! 16-byte stores into a thread-local ring (a minimal hand-written model with nothing else: no
//! enable switch, no full-buffer check, no consumer).
//!
//! `_rdtsc` is an `unsafe fn` in `core::arch`, hence the one allowance below; the runtime reads
//! the counter the same way in `profiler-runtime/src/clock.rs`.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::time::Instant;

use crate::work;

/// Reads the time-stamp counter (x86-64), or nanoseconds of [`Instant`] elsewhere.
// A floor must not pay for a call: inlined as the runtime's clock read is.
#[allow(clippy::inline_always)]
#[inline(always)]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` has no preconditions on x86-64 and does not touch memory.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Two counter reads around the work.
#[inline(never)]
pub fn two_rdtsc(x: u64) -> u64 {
    let start = ticks();
    let r = work(x);
    let end = ticks();
    std::hint::black_box((start, end));
    r
}

/// Two `Instant::now()` (`clock_gettime(CLOCK_MONOTONIC)` through the vDSO) around the work.
#[inline(never)]
pub fn two_instant(x: u64) -> u64 {
    let start = Instant::now();
    let r = work(x);
    let end = Instant::now();
    std::hint::black_box((start, end));
    r
}

const MODEL_SLOTS: usize = 4096;

thread_local! {
    /// The model ring: 4096 slots of 16 bytes, constant-initialised (no lazy-init check).
    static MODEL_RING: [Cell<(u64, u64)>; MODEL_SLOTS] =
        const { [const { Cell::new((0, 0)) }; MODEL_SLOTS] };
    static MODEL_HEAD: Cell<usize> = const { Cell::new(0) };
}

// Inlined like the runtime's push, for the same reason.
#[allow(clippy::inline_always)]
#[inline(always)]
fn model_store(word: u64, site: u64) {
    let head = MODEL_HEAD.get();
    MODEL_RING.with(|ring| ring[head % MODEL_SLOTS].set((word, site)));
    MODEL_HEAD.set(head.wrapping_add(1));
}

/// A checksum of this thread's model ring. Reading the ring somewhere keeps the compiler from
/// deleting the stores into it as dead (it did, before this existed).
#[inline(never)]
pub fn model_checksum() -> u64 {
    MODEL_RING.with(|ring| {
        ring.iter()
            .fold(0, |acc, slot| acc ^ slot.get().0 ^ slot.get().1)
    })
}

/// Two counter reads and two 16-byte thread-local ring stores around the work.
#[inline(never)]
pub fn two_rdtsc_two_stores(x: u64) -> u64 {
    static SITE: u8 = 0;
    let site = std::ptr::from_ref(&SITE) as u64;
    model_store(ticks(), site);
    let r = work(x);
    model_store(ticks() | 1 << 60, site);
    r
}
