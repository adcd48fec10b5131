//! Run-time conversion of tick differences to nanoseconds, and the measured cost of one probe.
//!
//! Durations on the production paths (aggregation, tail thresholds, SLA checks) are tick
//! differences. They are converted with one cached factor, nanoseconds per tick, measured against
//! the monotonic clock: first over at least a millisecond (on first use), then over the whole run
//! each time [`refresh`] is called (every aggregate snapshot and every alert). The collector's
//! piecewise timebase stays the reference for timelines; this factor is for durations only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::record::clock::{self, Anchor, ClockKind};
use crate::record::recorder::{Event, EventKind};
use crate::record::registry::{FunctionInfo, FunctionKind};
use crate::record::ring::{Producer, Ring};

/// `f64` bits of the nanoseconds per tick; 0 until first measured.
static NS_PER_TICK: AtomicU64 = AtomicU64::new(0);

/// `f64` bits of the measured cost of one recorded call (enter + exit), in nanoseconds.
static PROBE_NS: AtomicU64 = AtomicU64::new(0);

fn first_anchor() -> Anchor {
    static FIRST: OnceLock<Anchor> = OnceLock::new();
    *FIRST.get_or_init(clock::anchor)
}

/// Nanoseconds per tick. The first call may take about a millisecond (it measures).
pub(crate) fn ns_per_tick() -> f64 {
    match NS_PER_TICK.load(Ordering::Relaxed) {
        0 => refresh(),
        bits => f64::from_bits(bits),
    }
}

/// Converts a tick difference to nanoseconds.
pub(crate) fn ticks_to_ns(ticks: u64) -> u64 {
    (ticks as f64 * ns_per_tick()) as u64
}

/// Converts nanoseconds to ticks (rounded up, so `ticks >= ns_to_ticks(t)` means at least `t`).
pub(crate) fn ns_to_ticks(ns: u64) -> u64 {
    (ns as f64 / ns_per_tick()).ceil() as u64
}

/// Measures the factor again, over the whole run so far (at least a millisecond), and returns it.
pub(crate) fn refresh() -> f64 {
    if clock::kind() == ClockKind::Monotonic {
        NS_PER_TICK.store(1f64.to_bits(), Ordering::Relaxed);
        return 1.0;
    }
    let first = first_anchor();
    let mut last = clock::anchor();
    let started = Instant::now();
    while last.ns < first.ns + 1_000_000 && started.elapsed() < Duration::from_millis(5) {
        std::hint::spin_loop();
        last = clock::anchor();
    }
    let factor = if last.ticks > first.ticks && last.ns > first.ns {
        (last.ns - first.ns) as f64 / (last.ticks - first.ticks) as f64
    } else {
        1.0
    };
    NS_PER_TICK.store(factor.to_bits(), Ordering::Relaxed);
    factor
}

/// A converter of tick readings to nanoseconds since the profiler's epoch, anchored now at the
/// calibrated rate.
pub(crate) fn tick_to_epoch() -> clock::Converter {
    clock::Converter::linear(clock::anchor(), ns_per_tick())
}

/// The measured cost of one recorded call, enter plus exit, in nanoseconds: two clock reads and
/// two ring writes, timed over a private ring (the median of a few batches). Measured once.
pub(crate) fn probe_ns() -> f64 {
    match PROBE_NS.load(Ordering::Relaxed) {
        0 => {
            let ns = measure_probe();
            PROBE_NS.store(ns.to_bits(), Ordering::Relaxed);
            ns
        }
        bits => f64::from_bits(bits),
    }
}

fn measure_probe() -> f64 {
    static SITE: FunctionInfo = FunctionInfo::new(
        "probe calibration",
        module_path!(),
        file!(),
        line!(),
        FunctionKind::Scope,
    );
    const CALLS: u64 = 256;
    let ring = Ring::<Event>::leak(2 * CALLS as usize);
    let producer = Producer::new();
    if !producer.attach(ring) {
        return 0.0;
    }
    let mut batches = Vec::with_capacity(9);
    for _ in 0..9 {
        producer.hold();
        let start = clock::now();
        for _ in 0..CALLS {
            // As the recorder does: the fast path, and the full one at the end of a block.
            let entered = producer
                .push_reserving_with(|| Event::new(EventKind::Enter, clock::now(), &SITE))
                || producer.push_reserving(Event::new(EventKind::Enter, clock::now(), &SITE));
            std::hint::black_box(entered);
            producer.push_reserved(Event::new(EventKind::Exit, clock::now(), &SITE));
        }
        let ticks = clock::now() - start;
        producer.rewind();
        batches.push(ticks);
    }
    producer.detach();
    batches.sort_unstable();
    batches[batches.len() / 2] as f64 * ns_per_tick() / CALLS as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_is_positive_and_round_trips() {
        let factor = refresh();
        assert!(factor > 0.0 && factor.is_finite());
        let ticks = ns_to_ticks(1_000_000);
        let back = ticks_to_ns(ticks);
        assert!(back.abs_diff(1_000_000) <= 2, "{back}");
    }

    #[test]
    fn probe_cost_is_measured() {
        let ns = probe_ns();
        assert!(ns > 0.0 && ns.is_finite(), "{ns}");
    }
}
