//! The `ts` and `dur` of spans whose start or end falls on the same nanosecond as another
//! boundary of their thread, chosen so that Speedscope orders them as they happened.
//!
//! Speedscope's Trace Event importer (`src/import/trace-event.ts` in jlfwong/speedscope, 1.25)
//! does this with one thread's complete (`X`) events, in `f64`:
//! 1. subtracts the thread's smallest `ts` from every `ts` (the "rebased" value);
//! 2. sorts the events by that value, the longer `dur` first on a tie, else in file order;
//! 3. turns each into an open at `ts` and a close at `ts + dur`, and sorts the opens and the
//!    closes (stably) by value;
//! 4. replays them as a stack, taking whichever front is smaller. On a tie it takes the close,
//!    unless the open has the close's name and args, then the open (meant for zero-length
//!    events). A close whose name is not the top of the stack is ignored with a warning.
//!
//! Written as exact decimals, boundaries that share a nanosecond go wrong there: `ts + dur`
//! rounds, so a call can end an ulp after its next sibling starts (the sibling opens inside it,
//! and its end is then dropped: "Tried to end X when Y was on the top of the stack"), or after
//! the parent it ends with. Even an exact tie is wrong for two calls of one function back to
//! back, which rule 4 opens before it closes.
//!
//! So on each nanosecond where two or more boundaries meet, this module gives every boundary its
//! own value in Speedscope's arithmetic, in the order the calls happened: the ends that come
//! before the first start just below that start, innermost first; each later boundary just above
//! the one before (a zero-length call, and what follows it), except that a child starting with its
//! parent shares the parent's start (rule 2 puts the longer, enclosing one first). Ends move
//! through `dur`, starts through `ts`, both by a few ulps, far below a nanosecond: every number
//! still rounds to its exact nanosecond (`llround(us * 1000)`, as Perfetto reads it; this is
//! checked, and a boundary is left exact where it would not hold). Perfetto and catapult, which
//! work in whole nanoseconds, see the same trace as before.
//!
//! Boundaries on a nanosecond of their own keep the exact three-decimal text: the rounding of
//! `ts + dur` is a few ulps, and the next boundary is at least a nanosecond away, which is
//! thousands of ulps in a thread's first hour and still 65 a day into it.

use crate::collect::profile::Span;

/// The `ts` and `dur` (microseconds) that replace the exact decimals of some spans of one thread,
/// each list sorted by span index.
#[derive(Debug, Default)]
pub(super) struct Nudges {
    /// Spans whose start is written as this `ts`.
    pub(super) starts: Vec<(u32, f64)>,
    /// Spans whose duration is written as this `dur`.
    pub(super) durations: Vec<(u32, f64)>,
}

/// The nudges of one thread's `spans` (pre-order, nested properly, as in a
/// [`ThreadTimeline`](crate::collect::profile::ThreadTimeline)).
pub(super) fn plan(spans: &[Span]) -> Nudges {
    // In pre-order, the first span starts first: its `ts` is the one Speedscope subtracts.
    let Some(first_ns) = spans.first().map(|s| s.start_ns) else {
        return Nudges::default();
    };
    let mut planner = Planner {
        spans,
        origin: us(first_ns),
        nudges: Nudges::default(),
        open: Vec::new(),
        group: Vec::new(),
        group_ns: first_ns,
    };
    // Replay the thread's boundaries in the order they happened: before each start, the ends of
    // the open spans that are not its ancestors, innermost first.
    for (index, span) in spans.iter().enumerate() {
        while planner
            .open
            .last()
            .is_some_and(|top| Some(top.index) != span.parent)
        {
            planner.end_top();
        }
        planner.at(span.start_ns);
        planner.group.push(Boundary::Start(index as u32));
        planner.open.push(Open {
            index: index as u32,
            end_ns: span.end_ns,
            ts: None,
        });
    }
    while !planner.open.is_empty() {
        planner.end_top();
    }
    planner.at(u64::MAX);
    planner
        .nudges
        .durations
        .sort_unstable_by_key(|&(index, _)| index);
    planner.nudges
}

/// The start or end of the span at an index; an end carries the `ts` its span's start was moved
/// to, if that was decided before the end was seen.
#[derive(Clone, Copy, Debug)]
enum Boundary {
    Start(u32),
    End(u32, Option<f64>),
}

/// A span whose end is still to come.
#[derive(Debug)]
struct Open {
    index: u32,
    end_ns: u64,
    /// The `ts` its start was moved to, if it was.
    ts: Option<f64>,
}

#[derive(Debug)]
struct Planner<'a> {
    spans: &'a [Span],
    /// The thread's smallest `ts` as a reader parses it: what Speedscope subtracts.
    origin: f64,
    nudges: Nudges,
    /// The spans started and not yet ended, outermost first.
    open: Vec<Open>,
    /// The boundaries seen so far on `group_ns`, in order.
    group: Vec<Boundary>,
    group_ns: u64,
}

impl Planner<'_> {
    /// Moves on to the nanosecond `ns`: the boundaries of the one before are placed first, if
    /// two or more share it (most have it to themselves, and are left exact).
    fn at(&mut self, ns: u64) {
        if ns != self.group_ns {
            if self.group.len() > 1 {
                self.place_group();
            }
            self.group.clear();
            self.group_ns = ns;
        }
    }

    /// The end of the innermost open span.
    fn end_top(&mut self) {
        let Some(end_ns) = self.open.last().map(|top| top.end_ns) else {
            return;
        };
        // Placing the previous nanosecond may move the start of this very span.
        self.at(end_ns);
        if let Some(top) = self.open.pop() {
            self.group.push(Boundary::End(top.index, top.ts));
        }
    }

    /// Gives the boundaries on `group_ns` increasing values, in the order they came.
    fn place_group(&mut self) {
        let exact = us(self.group_ns) - self.origin;
        let group = std::mem::take(&mut self.group);
        let first_start = group
            .iter()
            .position(|b| matches!(b, Boundary::Start(_)))
            .unwrap_or(group.len());
        // The starts moved here, for the ends of zero-length spans and for the open stack.
        let mut moved: Vec<(u32, f64)> = Vec::new();

        // Ends before the first start, from the outermost (just below the start's exact value).
        let mut next = exact;
        for boundary in group[..first_start].iter().rev() {
            if let Boundary::End(span, ts) = *boundary {
                next = self.end_below(span, ts, next);
            }
        }
        // The first start keeps its exact value; what follows goes up from there.
        let mut value = exact;
        let mut start_ts: Option<f64> = None;
        let mut after_start = true;
        for &boundary in group.iter().skip(first_start + 1) {
            match boundary {
                Boundary::Start(span) if after_start => {
                    if let Some(ts) = start_ts {
                        moved.push((span, ts));
                    }
                }
                Boundary::Start(span) => {
                    if let Some((ts, v)) = self.start_above(value) {
                        moved.push((span, ts));
                        start_ts = Some(ts);
                        value = v;
                    } else {
                        start_ts = None;
                        value = exact;
                    }
                }
                Boundary::End(span, ts) => {
                    let here = moved.iter().rev().find(|&&(s, _)| s == span);
                    value = self.end_above(span, here.map(|&(_, ts)| ts).or(ts), value);
                }
            }
            after_start = matches!(boundary, Boundary::Start(_));
        }
        // Spans started here and still open are the innermost ones.
        for open in self.open.iter_mut().rev() {
            match moved.iter().find(|&&(s, _)| s == open.index) {
                Some(&(_, ts)) => open.ts = Some(ts),
                None if moved.first().is_some_and(|&(s, _)| open.index < s) => break,
                None => {}
            }
        }
        self.nudges.starts.extend(moved);
        self.group = group;
    }

    /// The value of a span's start in Speedscope's arithmetic, from its `ts` if that moved.
    fn start_value(&self, span: u32, ts: Option<f64>) -> f64 {
        ts.unwrap_or_else(|| us(self.spans[span as usize].start_ns)) - self.origin
    }

    /// Ends `span` at the largest value it can below `limit`; returns that value.
    fn end_below(&mut self, span: u32, ts: Option<f64>, limit: f64) -> f64 {
        let start = self.start_value(span, ts);
        let target = next_down(limit);
        if target < start {
            // Only with ulps wider than a nanosecond over its depth: nothing to do but keep it.
            return self.exact_end(span, start);
        }
        let mut dur = target - start;
        for _ in 0..8 {
            if start + dur <= target || dur == 0.0 {
                break;
            }
            dur = next_down(dur);
        }
        self.set_duration(span, start, dur)
    }

    /// Ends `span` at the smallest value it can above `floor`; returns that value.
    fn end_above(&mut self, span: u32, ts: Option<f64>, floor: f64) -> f64 {
        let start = self.start_value(span, ts);
        let target = next_up(floor);
        let mut dur = (target - start).max(0.0);
        for _ in 0..8 {
            if start + dur >= target {
                break;
            }
            dur = next_up(dur);
        }
        self.set_duration(span, start, dur)
    }

    /// Writes `dur` for `span` if it still rounds to the span's duration in nanoseconds; returns
    /// the end value a reader computes.
    fn set_duration(&mut self, span: u32, start: f64, dur: f64) -> f64 {
        if rounds_to(dur, self.spans[span as usize].duration_ns()) {
            self.nudges.durations.push((span, dur));
            start + dur
        } else {
            self.exact_end(span, start)
        }
    }

    /// The end value a reader computes from the exact decimal `dur`.
    fn exact_end(&self, span: u32, start: f64) -> f64 {
        start + us(self.spans[span as usize].duration_ns())
    }

    /// A `ts` on `group_ns` whose value is above `floor`, and that value; `None` if none rounds
    /// to `group_ns`.
    fn start_above(&self, floor: f64) -> Option<(f64, f64)> {
        let mut ts = next_up(floor) + self.origin;
        for _ in 0..8 {
            let value = ts - self.origin;
            if value > floor {
                return rounds_to(ts, self.group_ns).then_some((ts, value));
            }
            ts = next_up(ts);
        }
        None
    }
}

/// Nanoseconds as the `f64` a reader parses from their three-decimal text in microseconds: the
/// integer converts exactly (below 2^53) and the division rounds correctly, as parsing does.
fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// Whether a reader that rounds `us * 1000` to the nanosecond (Perfetto) gets `ns`.
fn rounds_to(us: f64, ns: u64) -> bool {
    (us * 1000.0).round() as u64 == ns
}

/// The next `f64` above `x`, for `x >= 0` (`f64::next_up` is newer than our MSRV).
fn next_up(x: f64) -> f64 {
    debug_assert!(x >= 0.0);
    f64::from_bits(x.to_bits() + 1)
}

/// The next `f64` below `x`, for `x > 0`; 0 stays 0.
fn next_down(x: f64) -> f64 {
    debug_assert!(x >= 0.0);
    if x == 0.0 {
        0.0
    } else {
        f64::from_bits(x.to_bits() - 1)
    }
}
