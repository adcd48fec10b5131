//! Speedscope files (<https://www.speedscope.app/file-format-schema.json>) read back into a
//! timeline: ours (one `evented` profile per thread, see
//! [`write_speedscope`](crate::export::write_speedscope)) and other tools' `evented` or `sampled`
//! profiles.
//!
//! Each profile is a thread. Ours are named `<thread> (tid N)`, with `, K events dropped` when
//! the thread lost events, and give back the thread's name, id and drops; other names are kept
//! whole and the thread numbered by its position. The shared frames are the functions, every
//! one of them, called or not, as in the profile written; the format has no kind of function, so
//! every frame is a function (an `async fn`'s polls come back as plain spans, its lifetime is not
//! in the file) and the module path is derived from the name. A sampled profile's consecutive
//! samples that share a stack prefix make one span per frame of that prefix, as Speedscope draws
//! them. Times in any time unit become nanoseconds; weights in bytes or without a unit are
//! refused, being no times. So are values that cannot be times, named in the error rather than
//! clamped: negative, not finite or past a `u64` of nanoseconds, a close before its open, a frame
//! left open past `endValue`, a negative weight.

use serde::Deserialize;

use super::{nest, Functions, RawSpan};
use crate::analyze::report::ReadErrorKind;
use crate::collect::profile::{ClockInfo, Profile, SpanFlags, ThreadTimeline};
use crate::record::clock::ClockKind;
use crate::record::registry::FunctionKind;

/// The schema URL that marks a Speedscope file (the one our exporter writes).
pub(crate) use crate::analyze::report::SPEEDSCOPE_SCHEMA as SCHEMA;

#[derive(Deserialize)]
pub(super) struct File {
    #[serde(default)]
    name: String,
    shared: Shared,
    profiles: Vec<ProfileDoc>,
}

#[derive(Deserialize)]
struct Shared {
    frames: Vec<Frame>,
}

#[derive(Deserialize)]
struct Frame {
    name: String,
    file: Option<String>,
    line: Option<u32>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ProfileDoc {
    Evented {
        #[serde(flatten)]
        header: Header,
        events: Vec<OpenClose>,
    },
    Sampled {
        #[serde(flatten)]
        header: Header,
        samples: Vec<Vec<usize>>,
        weights: Vec<f64>,
    },
}

#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    name: String,
    unit: String,
    #[serde(rename = "startValue")]
    start_value: f64,
    #[serde(rename = "endValue")]
    end_value: f64,
}

#[derive(Deserialize)]
struct OpenClose {
    #[serde(rename = "type")]
    kind: String,
    at: f64,
    frame: usize,
}

impl File {
    /// The timeline of every profile in the file.
    pub(super) fn into_profile(self) -> Result<Profile, ReadErrorKind> {
        let mut functions = Functions::default();
        let frames: Vec<u32> = self
            .shared
            .frames
            .iter()
            .map(|f| {
                let file = f.file.as_deref().unwrap_or("");
                let line = f.line.unwrap_or(0);
                functions.intern(&f.name, FunctionKind::Function, file, line, None)
            })
            .collect();
        let mut threads = Vec::with_capacity(self.profiles.len());
        let (mut start_ns, mut end_ns) = (u64::MAX, 0);
        for (index, doc) in self.profiles.into_iter().enumerate() {
            let (header, raw) = match doc {
                ProfileDoc::Evented { header, events } => {
                    let raw = evented(&header, &events, &frames)
                        .map_err(|e| invalid(index, &header, &e))?;
                    (header, raw)
                }
                ProfileDoc::Sampled {
                    header,
                    samples,
                    weights,
                } => {
                    let raw = sampled(&header, &samples, &weights, &frames)
                        .map_err(|e| invalid(index, &header, &e))?;
                    (header, raw)
                }
            };
            let scale = unit_ns(&header.unit).map_err(|e| invalid(index, &header, &e))?;
            let bound = |value: f64, field: &str| {
                ns(value, scale).ok_or_else(|| invalid(index, &header, &not_a_time(field, value)))
            };
            start_ns = start_ns.min(bound(header.start_value, "`startValue`")?);
            end_ns = end_ns.max(bound(header.end_value, "`endValue`")?);
            for &(_, start, end, _, _) in &raw {
                start_ns = start_ns.min(start);
                end_ns = end_ns.max(end);
            }
            let (name, tid, dropped_events) = thread_of(&header.name, index);
            threads.push(ThreadTimeline {
                tid,
                name,
                spans: nest(raw),
                dropped_events,
                exited: false,
            });
        }
        threads.sort_by_key(|t| t.tid);
        let start_ns = start_ns.min(end_ns);
        Ok(Profile {
            functions: functions.entries,
            dropped_events: crate::analyze::stats::saturating_sum(
                threads.iter().map(|t| t.dropped_events),
            ),
            threads,
            async_spans: Vec::new(),
            start_ns,
            end_ns,
            epoch_unix_ns: 0,
            clock: ClockInfo {
                kind: ClockKind::Monotonic,
                ticks_per_second: 1e9,
            },
            process_name: self.name,
            pid: 0,
            build: None,
        })
    }
}

/// An error in the profile at `index`, named as a reader would find it.
fn invalid(index: usize, header: &Header, problem: &str) -> ReadErrorKind {
    ReadErrorKind::Invalid(format!(
        "Speedscope profile {index} ({:?}): {problem}",
        header.name
    ))
}

/// Nanoseconds per unit of a profile's values.
fn unit_ns(unit: &str) -> Result<f64, String> {
    match unit {
        "nanoseconds" => Ok(1.0),
        "microseconds" => Ok(1e3),
        "milliseconds" => Ok(1e6),
        "seconds" => Ok(1e9),
        other => Err(format!(
            "its values are in {other:?}, not a unit of time (nanoseconds, microseconds, milliseconds or seconds)"
        )),
    }
}

/// `value` in nanoseconds, `None` when it is negative, not finite or past a `u64` of them
/// (clamping would quietly give a profile that was never recorded).
fn ns(value: f64, scale: f64) -> Option<u64> {
    let ns = (value * scale).round();
    // 2^64, the first value a u64 does not hold.
    (value.is_finite() && (0.0..18_446_744_073_709_551_616.0).contains(&ns)).then_some(ns as u64)
}

/// The error for a field that is not a time.
fn not_a_time(field: &str, value: f64) -> String {
    format!("{field} is {value:?}; expected a time from 0 to 2^64 ns")
}

/// The function of frame `frame`.
fn frame_function(frames: &[u32], frame: usize) -> Result<u32, String> {
    frames
        .get(frame)
        .copied()
        .ok_or_else(|| format!("frame {frame} does not exist ({} frames)", frames.len()))
}

/// An evented profile's spans: each open event with its close. Spans still open at the end end
/// with the profile, marked incomplete.
fn evented(header: &Header, events: &[OpenClose], frames: &[u32]) -> Result<Vec<RawSpan>, String> {
    let scale = unit_ns(&header.unit)?;
    let mut raw = Vec::with_capacity(events.len() / 2);
    let mut open: Vec<(usize, u64, usize)> = Vec::new();
    for (position, event) in events.iter().enumerate() {
        let at = ns(event.at, scale)
            .ok_or_else(|| not_a_time(&format!("event {position}'s `at`"), event.at))?;
        match event.kind.as_str() {
            "O" => open.push((event.frame, at, position)),
            "C" => match open.pop() {
                Some((frame, start, opened)) if frame == event.frame => {
                    let function = frame_function(frames, frame)?;
                    if at < start {
                        return Err(format!(
                            "event {position} closes frame {frame} at {:?}, before it opened (event {opened})",
                            event.at
                        ));
                    }
                    raw.push((function, start, at, SpanFlags::default(), opened));
                }
                Some((frame, ..)) => {
                    return Err(format!(
                        "event {position} closes frame {} while frame {frame} is open",
                        event.frame
                    ))
                }
                None => {
                    return Err(format!(
                        "event {position} closes frame {} while no frame is open",
                        event.frame
                    ))
                }
            },
            other => return Err(format!("event {position} has type {other:?}, not O or C")),
        }
    }
    let end =
        ns(header.end_value, scale).ok_or_else(|| not_a_time("`endValue`", header.end_value))?;
    for (frame, start, opened) in open {
        if end < start {
            return Err(format!(
                "frame {frame} opened (event {opened}) after `endValue` {:?} and never closed",
                header.end_value
            ));
        }
        let flags = SpanFlags {
            incomplete: true,
            continued: false,
        };
        raw.push((frame_function(frames, frame)?, start, end, flags, opened));
    }
    Ok(raw)
}

/// A sampled profile's spans: a frame's span lasts as long as consecutive samples keep it at the
/// same place in their stacks.
fn sampled(
    header: &Header,
    samples: &[Vec<usize>],
    weights: &[f64],
    frames: &[u32],
) -> Result<Vec<RawSpan>, String> {
    if samples.len() != weights.len() {
        return Err(format!(
            "{} samples but {} weights",
            samples.len(),
            weights.len()
        ));
    }
    let scale = unit_ns(&header.unit)?;
    let mut raw = Vec::new();
    // The open stack: frame, start (in the profile's unit, summed without rounding), position.
    let mut open: Vec<(usize, f64, usize)> = Vec::new();
    let mut at = header.start_value;
    let mut close = |open: &mut Vec<(usize, f64, usize)>, keep: usize, at: f64| {
        while open.len() > keep {
            let (frame, start, position) = open.pop().expect("longer than keep");
            let function = frame_function(frames, frame)?;
            let time = |value| {
                ns(value, scale).ok_or_else(|| not_a_time("the samples' summed weights", value))
            };
            raw.push((
                function,
                time(start)?,
                time(at)?,
                SpanFlags::default(),
                position,
            ));
        }
        Ok::<(), String>(())
    };
    for (position, (stack, &weight)) in samples.iter().zip(weights).enumerate() {
        let shared = open
            .iter()
            .zip(stack)
            .take_while(|((open_frame, ..), &frame)| *open_frame == frame)
            .count();
        close(&mut open, shared, at)?;
        open.extend(stack[shared..].iter().map(|&frame| (frame, at, position)));
        if weight < 0.0 {
            return Err(format!(
                "sample {position} weighs {weight:?}; a weight is a duration, not negative"
            ));
        }
        at += weight;
    }
    close(&mut open, 0, at)?;
    Ok(raw)
}

/// The thread of the profile at `index`: ours are named `<thread> (tid N)[, K events dropped]`.
fn thread_of(profile_name: &str, index: usize) -> (String, u32, u64) {
    let fallback_tid = index as u32 + 1;
    let (rest, dropped) = match profile_name.rsplit_once(", ") {
        Some((rest, suffix)) => match suffix
            .strip_suffix(" events dropped")
            .and_then(|n| n.parse::<u64>().ok())
        {
            Some(n) => (rest, n),
            None => (profile_name, 0),
        },
        None => (profile_name, 0),
    };
    let ours = rest
        .strip_suffix(')')
        .and_then(|r| r.rsplit_once(" (tid "))
        .and_then(|(name, tid)| Some((name, tid.parse::<u32>().ok()?)));
    match ours {
        Some((name, tid)) => (name.to_owned(), tid, dropped),
        None if profile_name.is_empty() => (format!("thread-{fallback_tid}"), fallback_tid, 0),
        None => (profile_name.to_owned(), fallback_tid, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::thread_of;

    #[test]
    fn our_profile_names_give_the_thread_back() {
        assert_eq!(thread_of("main (tid 1)", 0), ("main".to_owned(), 1, 0));
        assert_eq!(
            thread_of("worker, \"two\" (tid 7), 40 events dropped", 0),
            ("worker, \"two\"".to_owned(), 7, 40)
        );
        assert_eq!(
            thread_of("CPU 0, busy", 2),
            ("CPU 0, busy".to_owned(), 3, 0)
        );
        assert_eq!(thread_of("", 0), ("thread-1".to_owned(), 1, 0));
    }
}
