//! Chrome Tracing (Trace Event Format), JSON object form.
//!
//! Each span's `args` carry its function's source `file`, `line` and `module_path`, so that the
//! trace can be read back ([`import`](crate::import)) with all that a profile knows of it.
//! Spans are complete (`X`) events with `ts`/`dur` in microseconds carrying three decimals, so
//! nanoseconds survive exactly; `displayTimeUnit` is `ns` so that `chrome://tracing` nests at that
//! precision too. Where boundaries of a thread share a nanosecond (calls back to back, a child
//! ending with its parent, zero-length calls), their `ts`/`dur` move by a few ulps, far below a
//! nanosecond, so that Speedscope, which adds `ts + dur` in `f64`, sees them in the order they
//! happened ([`ordering`] says how and why). Async spans are `b`/`e` pairs sharing a
//! process-scoped id (`id2.local`), so that viewers put them under our process rather than with
//! global events. Threads get `thread_name` and `thread_sort_index` metadata, the process
//! `process_name`. Dropped events appear in `otherData`, in each thread's metadata `args`, and as
//! an instant event at the end of each thread that lost any, so they are visible in the viewer.

mod ordering;

use std::io::{self, Write};

use super::json::{quoted, write_str, write_u64, write_us};
use super::EXPORTER;
use crate::collect::profile::{Profile, ThreadTimeline};

/// Writes `profile` as a Chrome trace to `out` (unbuffered writers should be wrapped in a
/// [`std::io::BufWriter`]).
///
/// # Errors
///
/// Any error of `out`.
pub fn write_chrome_trace<W: Write + ?Sized>(profile: &Profile, out: &mut W) -> io::Result<()> {
    // Per-function prefix, escaped once:
    // `"name":"...","cat":"...","args":{"file":...,"line":N,"module_path":...` (the module path
    // only when known; it is what lets the import give CSV and JSON conversions that column).
    let prefixes: Vec<Vec<u8>> = profile
        .functions
        .iter()
        .map(|f| {
            let mut v = b"\"name\":".to_vec();
            v.extend(quoted(&f.name));
            v.extend(b",\"cat\":");
            v.extend(quoted(f.kind.as_str()));
            v.extend(b",\"args\":{\"file\":");
            v.extend(quoted(&f.file));
            v.extend(b",\"line\":");
            v.extend(itoa::Buffer::new().format(f.line).as_bytes());
            if !f.module_path.is_empty() {
                v.extend(b",\"module_path\":");
                v.extend(quoted(&f.module_path));
            }
            v
        })
        .collect();
    let mut pid_buf = itoa::Buffer::new();
    let pid = pid_buf.format(profile.pid).as_bytes().to_vec();

    out.write_all(b"{\"displayTimeUnit\":\"ns\",\"otherData\":{\"exporter\":")?;
    write_str(out, EXPORTER)?;
    out.write_all(b",\"clock\":")?;
    write_str(out, profile.clock.kind.name())?;
    write!(
        out,
        ",\"ticks_per_second\":{:.0}",
        profile.clock.ticks_per_second
    )?;
    out.write_all(b",\"start_ns\":")?;
    write_u64(out, profile.start_ns)?;
    out.write_all(b",\"end_ns\":")?;
    write_u64(out, profile.end_ns)?;
    out.write_all(b",\"epoch_unix_ns\":")?;
    write_u64(out, profile.epoch_unix_ns)?;
    out.write_all(b",\"dropped_events\":")?;
    write_u64(out, profile.dropped_events)?;
    if let Some(build) = &profile.build {
        out.write_all(b",\"build\":{\"rustc\":")?;
        write_str(out, &build.rustc)?;
        out.write_all(b",\"target\":")?;
        write_str(out, &build.target)?;
        out.write_all(b",\"profile\":")?;
        write_str(out, &build.profile)?;
        out.write_all(b",\"features\":")?;
        write_str(out, &build.features)?;
        out.write_all(b"}")?;
    }
    out.write_all(b"},\"traceEvents\":[\n")?;

    out.write_all(b"{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":")?;
    out.write_all(&pid)?;
    out.write_all(b",\"tid\":0,\"args\":{\"name\":")?;
    write_str(out, &profile.process_name)?;
    out.write_all(b"}}")?;

    for thread in &profile.threads {
        write_thread(profile, thread, &prefixes, &pid, out)?;
    }
    write_async(profile, &pid, out)?;
    out.write_all(b"\n]}\n")
}

/// One thread: its metadata, its spans, and a marker for dropped events.
fn write_thread<W: Write + ?Sized>(
    profile: &Profile,
    thread: &ThreadTimeline,
    prefixes: &[Vec<u8>],
    pid: &[u8],
    out: &mut W,
) -> io::Result<()> {
    let mut tid_buf = itoa::Buffer::new();
    let tid = tid_buf.format(thread.tid).as_bytes();
    out.write_all(b",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":")?;
    out.write_all(pid)?;
    out.write_all(b",\"tid\":")?;
    out.write_all(tid)?;
    out.write_all(b",\"args\":{\"name\":")?;
    write_str(out, &thread.name)?;
    out.write_all(b",\"dropped_events\":")?;
    write_u64(out, thread.dropped_events)?;
    out.write_all(b"}},\n{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":")?;
    out.write_all(pid)?;
    out.write_all(b",\"tid\":")?;
    out.write_all(tid)?;
    out.write_all(b",\"args\":{\"sort_index\":")?;
    out.write_all(tid)?;
    out.write_all(b"}}")?;

    let nudges = ordering::plan(&thread.spans);
    let mut starts = nudges.starts.iter().peekable();
    let mut durations = nudges.durations.iter().peekable();
    for (index, span) in thread.spans.iter().enumerate() {
        let index = index as u32;
        out.write_all(b",\n{\"ph\":\"X\",")?;
        out.write_all(&prefixes[span.function as usize])?;
        if span.flags.incomplete {
            out.write_all(b",\"incomplete\":true")?;
        }
        if span.flags.continued {
            out.write_all(b",\"continued\":true")?;
        }
        out.write_all(b"},\"pid\":")?;
        out.write_all(pid)?;
        out.write_all(b",\"tid\":")?;
        out.write_all(tid)?;
        out.write_all(b",\"ts\":")?;
        match starts.next_if(|&&(i, _)| i == index) {
            Some(&(_, ts)) => write_f64(out, ts)?,
            None => write_us(out, span.start_ns)?,
        }
        out.write_all(b",\"dur\":")?;
        match durations.next_if(|&&(i, _)| i == index) {
            Some(&(_, dur)) => write_f64(out, dur)?,
            None => write_us(out, span.duration_ns())?,
        }
        out.write_all(b"}")?;
    }
    if thread.dropped_events > 0 {
        out.write_all(b",\n{\"ph\":\"i\",\"s\":\"t\",\"name\":")?;
        write_str(
            out,
            &format!(
                "profiler: {} events dropped (buffer full)",
                thread.dropped_events
            ),
        )?;
        out.write_all(b",\"cat\":\"profiler\",\"pid\":")?;
        out.write_all(pid)?;
        out.write_all(b",\"tid\":")?;
        out.write_all(tid)?;
        out.write_all(b",\"ts\":")?;
        write_us(out, profile.end_ns)?;
        out.write_all(b",\"args\":{\"dropped_events\":")?;
        write_u64(out, thread.dropped_events)?;
        out.write_all(b"}}")?;
    }
    Ok(())
}

/// Writes a non-negative `x` as the shortest text that parses back to exactly it (`Display` and
/// `LowerExp` of `f64` both are). Perfetto's JSON number parser (v52 at least) adds up the digits
/// after the point in 64-bit integers, which overflow past 18 digits and turn the number into
/// garbage; the plain form of a value below 0.01 can have more (a zero-length call's duration is
/// `0.00000000000000088...`), so those get an exponent (`8.881784197001252e-16`), whose mantissa
/// has at most 16 digits after the point. Larger values have at most 18 there in plain form.
fn write_f64<W: Write + ?Sized>(out: &mut W, x: f64) -> io::Result<()> {
    if x < 0.01 && x != 0.0 {
        write!(out, "{x:e}")
    } else {
        write!(out, "{x}")
    }
}

/// Async spans as `b`/`e` pairs sharing an id. The id is process-scoped (`id2.local`): Perfetto
/// files async events with a plain `id` or `id2.global` under "Global Legacy Events", away from
/// the process whose threads polled them, and catapult scopes a local id by process too.
fn write_async<W: Write + ?Sized>(profile: &Profile, pid: &[u8], out: &mut W) -> io::Result<()> {
    for span in &profile.async_spans {
        let f = profile.function(span.function);
        for (phase, tid, ts) in [
            (b"b", span.start_tid, span.start_ns),
            (b"e", span.end_tid, span.end_ns),
        ] {
            out.write_all(b",\n{\"ph\":\"")?;
            out.write_all(phase)?;
            out.write_all(b"\",\"name\":")?;
            write_str(out, &f.name)?;
            write!(
                out,
                ",\"cat\":\"async\",\"id2\":{{\"local\":\"0x{:x}\"}},\"pid\":",
                span.id
            )?;
            out.write_all(pid)?;
            out.write_all(b",\"tid\":")?;
            write_u64(out, u64::from(tid))?;
            out.write_all(b",\"ts\":")?;
            write_us(out, ts)?;
            if phase == b"e" {
                write!(
                    out,
                    ",\"args\":{{\"cancelled\":{},\"incomplete\":{},\"continued\":{}}}",
                    span.cancelled, span.flags.incomplete, span.flags.continued
                )?;
            }
            out.write_all(b"}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::profile::{ClockInfo, FunctionEntry, Span, SpanFlags};
    use crate::record::clock::ClockKind;
    use crate::record::registry::FunctionKind;
    use serde_json::Value;

    /// An `X` event as Speedscope's Trace Event importer holds it: `ts` and `dur` parsed from the
    /// text the way JavaScript parses numbers (correctly rounded, as Rust's `str::parse`).
    struct Complete {
        tid: u64,
        name: String,
        args: Value,
        ts: f64,
        dur: f64,
        /// `ts` and `dur` as Perfetto's parser reads their text (see [`perfetto_number`]).
        perfetto: (f64, f64),
    }

    /// A JSON number as Perfetto's own parser (`StringToDouble`, `src/trace_processor/util/
    /// json_parser.h`, v52) turns it into a double: integer part, plus the digits after the point
    /// summed in an `i64` over a `u64` power of ten (both wrap past 18 or 19 digits), times ten to
    /// the exponent.
    #[allow(clippy::cast_possible_wrap)]
    fn perfetto_number(text: &str) -> f64 {
        let (mantissa, exponent) = text.split_once(['e', 'E']).unwrap_or((text, "0"));
        let (int, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let int: i64 = int.parse().unwrap();
        let (mut digits, mut divisor) = (0_i64, 1_u64);
        for d in fraction.bytes() {
            digits = digits.wrapping_mul(10).wrapping_add(i64::from(d - b'0'));
            divisor = divisor.wrapping_mul(10);
        }
        let exponent: i32 = exponent.parse().unwrap();
        let value = int as f64 + digits as f64 / divisor as f64;
        if exponent < 0 {
            value / 10_f64.powi(-exponent)
        } else {
            value * 10_f64.powi(exponent)
        }
    }

    /// The `X` events of a trace written by [`write_chrome_trace`] (one event per line), with
    /// the numbers taken from the text itself, not from `serde_json`'s own float parsing.
    fn complete_events(trace: &[u8]) -> Vec<Complete> {
        let text = std::str::from_utf8(trace).unwrap();
        let number = |line: &str, key: &str| -> (f64, f64) {
            // A `"key":` inside a string would have its quotes escaped, so this is the field.
            let at = line.rfind(&format!("\"{key}\":")).unwrap() + key.len() + 3;
            let rest = &line[at..];
            let text = &rest[..rest.find([',', '}']).unwrap()];
            (text.parse().unwrap(), perfetto_number(text))
        };
        text.lines()
            .map(|line| line.trim_end_matches(','))
            .filter(|line| line.starts_with("{\"ph\":\"X\""))
            .map(|line| {
                let event: Value = serde_json::from_str(line).unwrap();
                let (ts, dur) = (number(line, "ts"), number(line, "dur"));
                Complete {
                    tid: event["tid"].as_u64().unwrap(),
                    name: event["name"].as_str().unwrap().to_owned(),
                    args: event["args"].clone(),
                    ts: ts.0,
                    dur: dur.0,
                    perfetto: (ts.1, dur.1),
                }
            })
            .collect()
    }

    /// What Speedscope makes of a thread: the calls it opens, as (name, depth) in order, and the
    /// warnings its importer prints.
    #[derive(Debug, Default, PartialEq)]
    struct Imported {
        calls: Vec<(String, usize)>,
        warnings: Vec<String>,
    }

    /// Speedscope 1.25's Trace Event importer (`src/import/trace-event.ts`, `eventListToProfile`)
    /// replayed on one thread's `X` events, in `f64` as it computes:
    /// - every `ts` is rebased on the thread's smallest `ts`;
    /// - events are sorted by `ts`, the longer `dur` first on a tie, otherwise in file order;
    /// - each becomes an open at `ts` and a close at `ts + dur`, and both lists are sorted
    ///   (stably) by that value;
    /// - the next event is the earlier of the two fronts; on a tie the open goes first only when
    ///   it has the close's name and args (meant for zero-length events), else the close;
    /// - before a close, a close of the same value that matches the top of the stack (by name and
    ///   args, then by name) is swapped to the front;
    /// - a close whose name differs from the top of the stack is ignored with a warning.
    #[allow(clippy::float_cmp)] // JavaScript's `===` on the same numbers, on purpose
    fn speedscope_import(events: &[&Complete]) -> Imported {
        let first = events.iter().map(|e| e.ts).fold(f64::INFINITY, f64::min);
        let mut sorted: Vec<(f64, &Complete)> = events.iter().map(|e| (e.ts - first, *e)).collect();
        sorted.sort_by(|a, b| {
            a.0.partial_cmp(&b.0)
                .unwrap()
                .then(b.1.dur.partial_cmp(&a.1.dur).unwrap())
        });
        let opens = sorted.clone();
        let mut closes: Vec<(f64, &Complete)> =
            sorted.iter().map(|&(ts, e)| (ts + e.dur, e)).collect();
        closes.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        let same_key = |a: &Complete, b: &Complete| a.name == b.name && a.args == b.args;

        let mut imported = Imported::default();
        let mut stack: Vec<&Complete> = Vec::new();
        let (mut o, mut c) = (0, 0);
        while o < opens.len() || c < closes.len() {
            let open_next = c == closes.len()
                || (o < opens.len()
                    && (opens[o].0 < closes[c].0
                        || (opens[o].0 == closes[c].0 && same_key(opens[o].1, closes[c].1))));
            if open_next {
                imported.calls.push((opens[o].1.name.clone(), stack.len()));
                stack.push(opens[o].1);
                o += 1;
                continue;
            }
            if let Some(top) = stack.last() {
                let at = closes[c].0;
                let tied = (c + 1..closes.len()).take_while(|&i| closes[i].0 <= at);
                let by_key = tied.clone().find(|&i| same_key(closes[i].1, top));
                if let Some(i) =
                    by_key.or_else(|| tied.clone().find(|&i| closes[i].1.name == top.name))
                {
                    closes.swap(c, i);
                }
            }
            let (at, close) = closes[c];
            c += 1;
            match stack.last() {
                None => imported.warnings.push(format!(
                    "Tried to end {:?}, but the stack was empty",
                    close.name
                )),
                Some(top) if top.name != close.name => imported.warnings.push(format!(
                    "ts={at}: Tried to end {:?} when {:?} was on the top of the stack",
                    close.name, top.name
                )),
                Some(top) => {
                    if top.args != close.args {
                        imported.warnings.push(format!(
                            "ts={at}: ended {:?} with the args of another call",
                            close.name
                        ));
                    }
                    stack.pop();
                }
            }
        }
        for open in stack {
            imported
                .warnings
                .push(format!("{:?} was still open at the end", open.name));
        }
        imported
    }

    fn entry(name: &str) -> FunctionEntry {
        FunctionEntry {
            name: name.to_owned(),
            module_path: "demo".to_owned(),
            file: "src/demo.rs".to_owned(),
            line: 7,
            kind: FunctionKind::Function,
            budget_ns: None,
        }
    }

    /// A profile of `threads` (each a list of spans in pre-order) and the functions `names`.
    fn profile_of(names: &[&str], threads: Vec<Vec<Span>>) -> Profile {
        let spans = || threads.iter().flatten();
        let profile = Profile {
            functions: names.iter().map(|n| entry(n)).collect(),
            start_ns: spans().map(|s| s.start_ns).min().unwrap_or(0),
            end_ns: spans().map(|s| s.end_ns).max().unwrap_or(0),
            threads: threads
                .into_iter()
                .enumerate()
                .map(|(i, spans)| ThreadTimeline {
                    tid: i as u32 + 1,
                    name: format!("thread-{}", i + 1),
                    spans,
                    dropped_events: 0,
                    exited: false,
                })
                .collect(),
            async_spans: Vec::new(),
            epoch_unix_ns: 0,
            clock: ClockInfo {
                kind: ClockKind::Monotonic,
                ticks_per_second: 1e9,
            },
            dropped_events: 0,
            process_name: "demo".to_owned(),
            pid: 42,
            build: None,
        };
        profile.validate().unwrap();
        profile
    }

    /// Writes `profile`, imports it as Speedscope does, and checks every thread: no warning, and
    /// the same calls at the same depths as the profile. Also checks that every `ts` and `dur`
    /// still rounds to its exact nanosecond as Perfetto reads them (its parser, then
    /// `llround(us * 1000)`).
    fn assert_speedscope_imports_exactly(profile: &Profile) {
        let mut trace = Vec::new();
        write_chrome_trace(profile, &mut trace).unwrap();
        let events = complete_events(&trace);
        for thread in &profile.threads {
            let mine: Vec<&Complete> = events
                .iter()
                .filter(|e| e.tid == u64::from(thread.tid))
                .collect();
            for (e, span) in mine.iter().zip(&thread.spans) {
                let (ts, dur) = e.perfetto;
                assert_eq!((ts * 1000.0).round() as u64, span.start_ns, "ts {}", e.ts);
                assert_eq!(
                    (dur * 1000.0).round() as u64,
                    span.duration_ns(),
                    "dur {}",
                    e.dur
                );
            }
            let expected = Imported {
                calls: thread
                    .spans
                    .iter()
                    .map(|s| (profile.function(s.function).name.clone(), s.depth as usize))
                    .collect(),
                warnings: Vec::new(),
            };
            let imported = speedscope_import(&mine);
            if imported != expected {
                let tree: Vec<String> = thread
                    .spans
                    .iter()
                    .zip(&mine)
                    .map(|(s, e)| {
                        format!(
                            "{}{} {}..{} ts={} dur={}",
                            "  ".repeat(s.depth as usize),
                            profile.function(s.function).name,
                            s.start_ns,
                            s.end_ns,
                            e.ts,
                            e.dur
                        )
                    })
                    .take(40)
                    .collect();
                panic!(
                    "Speedscope imports thread {} wrongly: {} warnings, first {:?}\n{}",
                    thread.name,
                    imported.warnings.len(),
                    imported.warnings.first(),
                    tree.join("\n")
                );
            }
        }
    }

    /// xorshift64: deterministic, so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        /// A gap between two boundaries: none half of the time (calls back to back, a child
        /// ending with its parent, zero-length calls), else 1 ns to 3 us.
        fn gap(&mut self) -> u64 {
            match self.below(4) {
                0 | 1 => 0,
                2 => 1 + self.below(3),
                _ => self.below(3_000),
            }
        }
    }

    /// Appends a call starting at `start` and its callees to `spans`; returns its end.
    fn random_call(rng: &mut Rng, spans: &mut Vec<Span>, parent: Option<u32>, start: u64) -> u64 {
        let depth = parent.map_or(0, |p| spans[p as usize].depth + 1);
        let index = spans.len() as u32;
        spans.push(Span {
            function: rng.below(3) as u32,
            start_ns: start,
            end_ns: start,
            depth,
            parent,
            flags: SpanFlags::default(),
        });
        let mut t = start + rng.gap();
        let callees = if depth < 6 { rng.below(4) } else { 0 };
        for _ in 0..callees {
            t = random_call(rng, spans, Some(index), t) + rng.gap();
        }
        spans[index as usize].end_ns = t;
        t
    }

    /// Found with the main example and a probe with many forms (issue 13): a call that ends at the
    /// nanosecond where its next sibling starts came out of Speedscope's `ts + dur` an ulp after
    /// that start, so Speedscope opened the sibling inside it and dropped the end ("Tried to end
    /// X when Y was on the top of the stack"). Ties of every kind, on a timeline that starts
    /// anywhere from 0 to a day after the epoch: calls back to back at every depth (of the same
    /// function and of others), children ending with their parents, zero-length calls, and
    /// mixtures of all three at one nanosecond.
    #[test]
    fn speedscope_imports_ties_of_every_kind_exactly() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut ties = 0;
        for round in 0..300 {
            let origin = match round % 4 {
                0 => 0,
                1 => rng.below(1_000_000_000),
                2 => 3_600_000_000_000 + rng.below(1 << 40),
                _ => 86_400_000_000_000 + rng.below(1 << 40),
            };
            let threads: Vec<Vec<Span>> = (0..3)
                .map(|_| {
                    let mut spans = Vec::new();
                    let mut t = origin + rng.below(1_000);
                    for _ in 0..=rng.below(6) {
                        t = random_call(&mut rng, &mut spans, None, t) + rng.gap();
                    }
                    spans
                })
                .collect();
            for spans in &threads {
                let starts: std::collections::HashSet<u64> =
                    spans.iter().map(|s| s.start_ns).collect();
                ties += spans
                    .iter()
                    .filter(|s| s.end_ns > s.start_ns && starts.contains(&s.end_ns))
                    .count();
            }
            assert_speedscope_imports_exactly(&profile_of(&["a", "b", "c"], threads));
        }
        assert!(
            ties > 5_000,
            "only {ties} calls end where another starts: the test covers little"
        );
    }

    /// The nudges are the exception: a timeline without shared nanoseconds is written in exact
    /// three-decimal microseconds, as before; in one with a shared nanosecond, only the spans
    /// that end or start there move.
    #[test]
    fn boundaries_on_a_nanosecond_of_their_own_are_exact_decimals() {
        let span = |function, start_ns, end_ns, depth, parent| Span {
            function,
            start_ns,
            end_ns,
            depth,
            parent,
            flags: SpanFlags::default(),
        };
        let numbers = |profile: &Profile| -> Vec<String> {
            let mut trace = Vec::new();
            write_chrome_trace(profile, &mut trace).unwrap();
            String::from_utf8(trace)
                .unwrap()
                .lines()
                .filter(|line| line.starts_with("{\"ph\":\"X\""))
                .map(|line| {
                    line[line.rfind("\"ts\":").unwrap()..]
                        .trim_end_matches(',')
                        .to_owned()
                })
                .collect()
        };
        let mut spans = vec![
            span(0, 1_000, 2_234_567, 0, None),
            span(1, 1_001, 1_500, 1, Some(0)),
            span(1, 2_000, 2_000_000, 1, Some(0)),
            span(2, 3_000_000, 3_000_001, 0, None),
        ];
        let apart = profile_of(&["main", "parse", "emit"], vec![spans.clone()]);
        assert_eq!(
            numbers(&apart),
            [
                "\"ts\":1.000,\"dur\":2233.567}",
                "\"ts\":1.001,\"dur\":0.499}",
                "\"ts\":2.000,\"dur\":1998.000}",
                "\"ts\":3000.000,\"dur\":0.001}",
            ]
        );

        // The second `parse` now ends with `main`.
        spans[2].end_ns = 2_234_567;
        let shared = numbers(&profile_of(&["main", "parse", "emit"], vec![spans]));
        assert_eq!(shared[1], "\"ts\":1.001,\"dur\":0.499}");
        assert_eq!(shared[3], "\"ts\":3000.000,\"dur\":0.001}");
        assert_ne!(shared[0], "\"ts\":1.000,\"dur\":2233.567}");
        assert_ne!(shared[2], "\"ts\":2.000,\"dur\":2232.567}");
    }
}
