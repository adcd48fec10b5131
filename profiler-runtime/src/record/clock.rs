//! Timestamps: a raw tick counter on the hot path, converted to nanoseconds at flush time.
//!
//! On x86-64 the tick counter is the time-stamp counter (`rdtsc`): about 8 ns to read on current
//! hardware, against 20-40 ns for `clock_gettime`. With an *invariant* TSC (constant rate,
//! running in every power state, synchronised across cores: every x86-64 CPU of the last decade)
//! readings are comparable across threads. Elsewhere, and under Miri, ticks are nanoseconds of a
//! monotonic clock ([`Instant`]).
//!
//! Ticks become nanoseconds through [`Timebase`]: anchors pair a tick reading with a monotonic
//! clock reading. The first is taken lazily when the first thread starts recording (not at
//! process start); each flush adds one after draining the buffers. Conversion interpolates between
//! anchors, so the frequency is calibrated over the whole run and re-anchored at every flush: TSC
//! drift against the monotonic clock cannot accumulate.
#![allow(unsafe_code)]

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Which clock produced the timestamps of a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockKind {
    /// The x86-64 time-stamp counter, calibrated against the monotonic clock.
    Tsc {
        /// Whether the CPU reports an invariant TSC (CPUID 0x8000_0007, EDX bit 8). Without it,
        /// times measured across frequency changes or cores may be off.
        invariant: bool,
    },
    /// The operating system's monotonic clock ([`std::time::Instant`]).
    Monotonic,
}

impl ClockKind {
    /// A short name for traces and reports: `"tsc"`, `"tsc (not invariant)"` or `"monotonic"`.
    pub fn name(self) -> &'static str {
        match self {
            ClockKind::Tsc { invariant: true } => "tsc",
            ClockKind::Tsc { invariant: false } => "tsc (not invariant)",
            ClockKind::Monotonic => "monotonic",
        }
    }
}

/// Reads the tick counter. This is the only clock read on the hot path.
#[inline(always)]
pub(crate) fn now() -> u64 {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        // SAFETY: `rdtsc` has no preconditions on x86-64; it reads a counter and has no effect on
        // memory.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    {
        epoch().instant.elapsed().as_nanos() as u64
    }
}

/// The clock in use on this machine.
pub(crate) fn kind() -> ClockKind {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        use core::arch::x86_64::__cpuid;
        let max_extended = __cpuid(0x8000_0000).eax;
        let invariant = max_extended >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0;
        ClockKind::Tsc { invariant }
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    {
        ClockKind::Monotonic
    }
}

/// The process's time origin: nanosecond values in profiles count from here.
#[derive(Debug)]
struct Epoch {
    instant: Instant,
    unix_ns: u64,
}

fn epoch() -> &'static Epoch {
    static EPOCH: OnceLock<Epoch> = OnceLock::new();
    EPOCH.get_or_init(|| Epoch {
        instant: Instant::now(),
        // Miri isolates the program from the wall clock; the value is metadata only.
        unix_ns: if cfg!(miri) {
            0
        } else {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        },
    })
}

/// Wall-clock time of the epoch, in nanoseconds since the Unix epoch (for metadata only).
pub(crate) fn epoch_unix_ns() -> u64 {
    epoch().unix_ns
}

/// A tick reading paired with a monotonic-clock reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub(crate) ticks: u64,
    /// Nanoseconds since the epoch.
    pub(crate) ns: u64,
}

/// Takes an anchor: of three attempts, the one whose two tick reads bracket the clock read most
/// tightly, with the ticks at the bracket's midpoint.
pub(crate) fn anchor() -> Anchor {
    let start = epoch().instant;
    let mut best: Option<(u64, Anchor)> = None;
    for _ in 0..3 {
        let before = now();
        let ns = start.elapsed().as_nanos() as u64;
        let after = now();
        let width = after.wrapping_sub(before);
        let candidate = Anchor {
            ticks: before + width / 2,
            ns,
        };
        if best.is_none_or(|(w, _)| width < w) {
            best = Some((width, candidate));
        }
    }
    best.map_or(Anchor { ticks: 0, ns: 0 }, |(_, a)| a)
}

/// Converts ticks to nanoseconds since the epoch by piecewise-linear interpolation between
/// anchors (extrapolating with the nearest segment outside them).
#[derive(Clone, Debug)]
pub(crate) struct Timebase {
    /// Increasing in both `ticks` and `ns`; at least one.
    anchors: Vec<Anchor>,
}

impl Timebase {
    pub(crate) fn new(first: Anchor) -> Self {
        Timebase {
            anchors: vec![first],
        }
    }

    /// Adds a later anchor (ignored unless both readings moved forward) and forgets the anchors
    /// that no future event can need: events still to be drained were recorded after the previous
    /// drain, which came after the anchor before the last.
    pub(crate) fn push(&mut self, anchor: Anchor) {
        self.push_keeping(anchor);
        self.prune();
    }

    /// Adds a later anchor and forgets none: events kept in memory across drains (a stream that
    /// keeps them for the flush) are converted at the flush with the anchors of their own drain,
    /// as the stream converted them.
    pub(crate) fn push_keeping(&mut self, anchor: Anchor) {
        let last = *self.anchors.last().expect("a timebase has an anchor");
        if anchor.ticks > last.ticks && anchor.ns > last.ns {
            self.anchors.push(anchor);
        }
    }

    /// Forgets the anchors that no event still to be converted can need (see [`Self::push`]).
    pub(crate) fn prune(&mut self) {
        let excess = self.anchors.len().saturating_sub(4);
        self.anchors.drain(..excess);
    }

    /// The latest anchor.
    pub(crate) fn last(&self) -> Anchor {
        *self.anchors.last().expect("a timebase has an anchor")
    }

    /// Ticks per second over the whole span of anchors (1e9 for the monotonic clock).
    pub(crate) fn ticks_per_second(&self) -> f64 {
        let (first, last) = (self.anchors[0], self.last());
        if last.ns == first.ns {
            return 1e9;
        }
        (last.ticks - first.ticks) as f64 * 1e9 / (last.ns - first.ns) as f64
    }

    /// A converter for a batch of events.
    pub(crate) fn converter(&self) -> Converter {
        let anchors = &self.anchors;
        let segments = if anchors.len() == 1 {
            // Not calibrated yet (no flush since the first event): ticks taken as nanoseconds.
            vec![Segment::new(0, u64::MAX, anchors[0], 1.0)]
        } else {
            let last = anchors.len() - 2;
            anchors
                .windows(2)
                .enumerate()
                .map(|(i, w)| {
                    // The first and last segments extend to either end.
                    let from = if i == 0 { 0 } else { w[0].ticks };
                    let to = if i == last { u64::MAX } else { w[1].ticks };
                    let slope = (w[1].ns - w[0].ns) as f64 / (w[1].ticks - w[0].ticks) as f64;
                    Segment::new(from, to, w[0], slope)
                })
                .collect()
        };
        Converter {
            current: segments[segments.len() - 1],
            segments,
        }
    }
}

/// One linear piece of the tick-to-nanosecond mapping, for ticks in `from..to`, in fixed point:
/// `ns = base_ns ± round(|ticks - base_ticks| * scale / 2^SCALE_SHIFT)`. Integer arithmetic (one
/// 64x64->128 multiply) instead of `f64`: the saturating float-to-integer conversion alone cost
/// more than the rest of the merge of an event.
#[derive(Clone, Copy, Debug)]
struct Segment {
    from: u64,
    to: u64,
    base_ticks: u64,
    base_ns: u64,
    /// Nanoseconds per tick, times 2^SCALE_SHIFT.
    scale: u64,
    /// The fast path's reach: ticks with `ticks - base_ticks < fast_len` (unsigned, so not before
    /// `base_ticks`) lie in this segment and convert without overflow, so they need no range
    /// check, no sign test and no saturation.
    fast_len: u64,
}

/// Fraction bits of [`Segment::scale`]: 2^-48 ns per tick of resolution, so a segment 10^12 ticks
/// long (minutes between flushes) is off by a hundredth of a nanosecond before rounding; slopes up
/// to 2^16 ns per tick (clocks of at least 16 kHz) fit.
const SCALE_SHIFT: u32 = 48;

/// One half in [`Segment::scale`]'s fixed point: added before the shift to round to nearest.
const HALF: u128 = 1 << (SCALE_SHIFT - 1);

impl Segment {
    fn new(from: u64, to: u64, base: Anchor, slope: f64) -> Self {
        // `as` saturates; slopes are positive and far below 2^16.
        let scale = (slope * (1u64 << SCALE_SHIFT) as f64).round() as u64;
        // The largest delta whose rounded product still fits in the nanoseconds left above
        // `base.ns`: `(delta * scale + HALF) >> SCALE_SHIFT <= u64::MAX - base.ns`.
        let room = (u128::from(u64::MAX - base.ns) + 1) << SCALE_SHIFT;
        let max_delta = match scale {
            0 => u64::MAX,
            _ => u64::try_from((room - HALF - 1) / u128::from(scale)).unwrap_or(u64::MAX),
        };
        Segment {
            from,
            to,
            base_ticks: base.ticks,
            base_ns: base.ns,
            scale,
            fast_len: to
                .saturating_sub(base.ticks)
                .min(max_delta.saturating_add(1)),
        }
    }

    /// [`Segment::apply`] for `ticks - base_ticks < fast_len`: one multiply-add, nothing to check.
    #[inline(always)]
    fn apply_fast(&self, delta: u64) -> u64 {
        let product = u128::from(delta) * u128::from(self.scale) + HALF;
        // Cannot overflow or truncate: `fast_len` bounds `delta`.
        self.base_ns + (product >> SCALE_SHIFT) as u64
    }

    #[inline(always)]
    fn apply(&self, ticks: u64) -> u64 {
        if ticks >= self.base_ticks {
            self.base_ns
                .saturating_add(Self::scaled(ticks - self.base_ticks, self.scale))
        } else {
            // Before the first anchor (extrapolated backwards); saturates at the epoch.
            self.base_ns
                .saturating_sub(Self::scaled(self.base_ticks - ticks, self.scale))
        }
    }

    #[inline(always)]
    fn scaled(delta: u64, scale: u64) -> u64 {
        let product = u128::from(delta) * u128::from(scale) + HALF;
        u64::try_from(product >> SCALE_SHIFT).unwrap_or(u64::MAX)
    }
}

/// Converts ticks with a cached segment (events of one thread arrive in order, nearly always
/// within one segment, so a conversion is one range check and one multiply-add).
#[derive(Debug)]
pub(crate) struct Converter {
    /// Contiguous and increasing, covering all of `u64`.
    segments: Vec<Segment>,
    current: Segment,
}

impl Converter {
    /// A converter of one straight line through `anchor` at `ns_per_tick`, for every tick.
    pub(crate) fn linear(anchor: Anchor, ns_per_tick: f64) -> Converter {
        let segment = Segment::new(0, u64::MAX, anchor, ns_per_tick);
        Converter {
            segments: vec![segment],
            current: segment,
        }
    }

    #[inline]
    pub(crate) fn convert(&mut self, ticks: u64) -> u64 {
        let delta = ticks.wrapping_sub(self.current.base_ticks);
        if delta < self.current.fast_len {
            return self.current.apply_fast(delta);
        }
        self.convert_slow(ticks)
    }

    /// Another segment, a tick before the first anchor, or a product that needs saturating.
    #[cold]
    #[inline(never)]
    fn convert_slow(&mut self, ticks: u64) -> u64 {
        if ticks < self.current.from || ticks >= self.current.to {
            self.current = *self
                .segments
                .iter()
                .find(|s| ticks >= s.from && ticks < s.to)
                .unwrap_or(&self.segments[self.segments.len() - 1]);
        }
        self.current.apply(ticks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_and_extrapolates_monotonically() {
        let mut tb = Timebase::new(Anchor { ticks: 1000, ns: 0 });
        tb.push(Anchor {
            ticks: 4000,
            ns: 1000,
        });
        tb.push(Anchor {
            ticks: 10000,
            ns: 2000,
        });
        let mut c = tb.converter();
        assert_eq!(c.convert(1000), 0);
        assert_eq!(c.convert(2500), 500);
        assert_eq!(c.convert(4000), 1000);
        assert_eq!(c.convert(7000), 1500);
        assert_eq!(c.convert(13000), 2500, "extrapolates the last segment");
        assert_eq!(c.convert(700), 0, "clamps before the epoch");
        let mut last = 0;
        for t in (0..20000).step_by(37) {
            let ns = c.convert(t);
            assert!(ns >= last);
            last = ns;
        }
    }

    /// Fixed point keeps nanosecond accuracy over long segments at a realistic TSC rate.
    #[test]
    fn fixed_point_is_accurate_over_long_segments() {
        // 2.9 GHz over 10 minutes between anchors.
        let span_ns: u64 = 600_000_000_000;
        let span_ticks: u64 = span_ns * 29 / 10;
        let mut tb = Timebase::new(Anchor {
            ticks: 5_000,
            ns: 0,
        });
        tb.push(Anchor {
            ticks: 5_000 + span_ticks,
            ns: span_ns,
        });
        let mut c = tb.converter();
        for k in [
            0u64,
            1,
            7,
            1_000,
            123_456_789,
            span_ticks / 3,
            span_ticks - 1,
        ] {
            let exact = (u128::from(k) * u128::from(span_ns) / u128::from(span_ticks)) as u64;
            let got = c.convert(5_000 + k);
            assert!(
                got.abs_diff(exact) <= 1,
                "{k} ticks: {got} ns, exact {exact}"
            );
        }
        assert_eq!(c.convert(5_000 + span_ticks), span_ns);
        assert_eq!(
            c.convert(0),
            0,
            "before the first anchor saturates at the epoch"
        );
        assert!(
            c.convert(u64::MAX) > span_ns,
            "extrapolates forward without wrapping"
        );
    }

    /// The converter's unchecked fast path gives what the checked formula gives, up to where a
    /// product would overflow (far ends of the extrapolated segments, a base near `u64::MAX`).
    #[test]
    fn fast_path_agrees_with_the_checked_formula() {
        let cases = [
            (
                Anchor { ticks: 1000, ns: 0 },
                Anchor {
                    ticks: 4000,
                    ns: 1000,
                },
            ),
            (
                Anchor {
                    ticks: 1 << 40,
                    ns: 5,
                },
                Anchor {
                    ticks: (1 << 40) + 2_900_000,
                    ns: 1_000_005,
                },
            ),
            (
                Anchor {
                    ticks: 10,
                    ns: u64::MAX - 1_000,
                },
                Anchor {
                    ticks: 20,
                    ns: u64::MAX - 900,
                },
            ),
            (
                Anchor { ticks: 0, ns: 0 },
                Anchor {
                    ticks: 1,
                    ns: 60_000,
                },
            ),
        ];
        for (a, b) in cases {
            let mut tb = Timebase::new(a);
            tb.push(b);
            let mut c = tb.converter();
            let segment = c.current;
            let mut probes = vec![0, 1, u64::MAX, u64::MAX - 1, a.ticks, b.ticks];
            for edge in [
                segment.base_ticks.wrapping_add(segment.fast_len),
                a.ticks.wrapping_sub(1),
            ] {
                probes.extend([edge.wrapping_sub(1), edge, edge.wrapping_add(1)]);
            }
            probes.extend((0..64).map(|bit| 1u64 << bit));
            probes.extend((0..64).map(|bit| a.ticks.wrapping_add(1 << bit)));
            for ticks in probes {
                let checked = segment.apply(ticks);
                assert_eq!(c.convert(ticks), checked, "{a:?} {b:?}: {ticks} ticks");
            }
        }
    }

    #[test]
    fn ignores_backward_anchors_and_keeps_a_few() {
        let mut tb = Timebase::new(Anchor { ticks: 10, ns: 10 });
        tb.push(Anchor { ticks: 5, ns: 20 });
        assert_eq!(tb.anchors.len(), 1);
        for i in 2..10 {
            tb.push(Anchor {
                ticks: i * 10,
                ns: i * 10,
            });
        }
        assert_eq!(tb.anchors.len(), 4);
        assert!((tb.ticks_per_second() - 1e9).abs() < 1.0);
    }

    #[test]
    fn real_clock_is_monotonic_and_calibrates() {
        let first = anchor();
        let t0 = now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let t1 = now();
        assert!(t1 > t0);
        let mut tb = Timebase::new(first);
        tb.push(anchor());
        let mut c = tb.converter();
        let elapsed = c.convert(t1) - c.convert(t0);
        assert!(elapsed >= 4_000_000, "slept 5 ms, measured {elapsed} ns");
    }
}
