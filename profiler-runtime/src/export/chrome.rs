//! Chrome Tracing (Trace Event Format), JSON object form.
//!
//! Each span's `args` carry its function's source `file`, `line` and `module_path`, so that the
//! trace can be read back ([`import`](crate::import)) with all that a profile knows of it.
//! Spans are complete (`X`) events with `ts`/`dur` in microseconds carrying three decimals, so
//! nanoseconds survive exactly; `displayTimeUnit` is `ns` so that `chrome://tracing` nests at that
//! precision too. Readers such as Speedscope compute an `X` event's end as `ts + dur` in `f64`
//! (after subtracting the thread's first `ts`), so a child ending at exactly its parent's end can
//! come out one ulp later and be dropped; such a child's `dur` is shortened by a few ulps, far
//! below a nanosecond (see [`write_dur`]). Async spans are `b`/`e` pairs sharing an id. Threads get `thread_name` and
//! `thread_sort_index` metadata, the process `process_name`. Dropped events appear in
//! `otherData`, in each thread's metadata `args`, and as an instant event at the end of each
//! thread that lost any, so they are visible in the viewer.

use std::io::{self, Write};

use super::json::{quoted, write_str, write_u64, write_us};
use super::EXPORTER;
use crate::collect::profile::{Profile, Span, ThreadTimeline};

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

    let same_end = same_end_counts(&thread.spans);
    for (span, &same_end) in thread.spans.iter().zip(&same_end) {
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
        write_us(out, span.start_ns)?;
        out.write_all(b",\"dur\":")?;
        write_dur(out, span.start_ns, span.end_ns, same_end)?;
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

/// Async spans as `b`/`e` pairs sharing an id.
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
                ",\"cat\":\"async\",\"id\":\"0x{:x}\",\"pid\":",
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

/// For each span (in pre-order), how many enclosing spans end at exactly the same nanosecond.
fn same_end_counts(spans: &[Span]) -> Vec<u32> {
    let mut counts: Vec<u32> = Vec::with_capacity(spans.len());
    for span in spans {
        let k = span.parent.map_or(0, |p| {
            if spans[p as usize].end_ns == span.end_ns {
                counts[p as usize] + 1
            } else {
                0
            }
        });
        counts.push(k);
    }
    counts
}

/// Ulps of the end by which each level of "ends with its parent" is shortened. A reader's `f64`
/// arithmetic (`ts - first_ts + dur`) is off by at most about two ulps of the end, so four keep
/// a child's end strictly before its parent's.
const ULPS_PER_LEVEL: u64 = 4;

/// Writes the `dur` of a span from `start_ns` to `end_ns` in microseconds. `same_end` counts the
/// enclosing spans that end at the same nanosecond: 0 writes the exact three-decimal duration;
/// otherwise the end is moved `ULPS_PER_LEVEL * same_end` ulps earlier in `f64`, so that however
/// a reader adds `ts + dur`, the child ends before its parent. The change is a tiny fraction of a
/// nanosecond: readers that round to nanoseconds (Perfetto) still get the exact duration.
fn write_dur<W: Write + ?Sized>(
    out: &mut W,
    start_ns: u64,
    end_ns: u64,
    same_end: u32,
) -> io::Result<()> {
    if same_end == 0 || end_ns == start_ns {
        return write_us(out, end_ns - start_ns);
    }
    // Integer ns up to 2^53 convert exactly and the division rounds correctly: these are the
    // f64s a reader gets by parsing the three-decimal text. Positive f64s are ordered like their
    // bit patterns.
    let ts = start_ns as f64 / 1000.0;
    let end = end_ns as f64 / 1000.0;
    let earlier = f64::from_bits(
        end.to_bits()
            .saturating_sub(ULPS_PER_LEVEL * u64::from(same_end)),
    );
    let dur = (earlier - ts).max(0.0);
    write!(out, "{dur}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(start_ns: u64, end_ns: u64, same_end: u32) -> String {
        let mut v = Vec::new();
        write_dur(&mut v, start_ns, end_ns, same_end).unwrap();
        String::from_utf8(v).unwrap()
    }

    /// Speedscope's Chrome importer: `ts` rebased on the thread's first `ts`, plus `dur`.
    fn speedscope_end(first_ns: u64, start_ns: u64, end_ns: u64, same_end: u32) -> f64 {
        let parse = |ns: u64| {
            let mut v = Vec::new();
            write_us(&mut v, ns).unwrap();
            String::from_utf8(v).unwrap().parse::<f64>().unwrap()
        };
        (parse(start_ns) - parse(first_ns))
            + text(start_ns, end_ns, same_end).parse::<f64>().unwrap()
    }

    /// Found by loading the viewer fixture's Chrome trace into Speedscope: a scope still open at
    /// the flush ended, after Speedscope's arithmetic, one ulp after the context enclosing it
    /// (`ts=256574.89299999998: Tried to end "fixture "main" request" when "spawn workers" was
    /// on the top of the stack`), so Speedscope dropped the end of both.
    #[test]
    fn a_child_ending_with_its_parent_ends_first_in_f64() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut exact_sums_misordered = 0;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let first = x % 1_000_000;
            let parent = first + (x >> 8) % 100_000_000_000;
            let child = parent + (x >> 12) % 1_000_000_000;
            let grandchild = child + (x >> 3) % 1_000_000;
            let end = grandchild + (x >> 40) % 10_000_000 + 1;
            let p = speedscope_end(first, parent, end, 0);
            let c = speedscope_end(first, child, end, 1);
            let g = speedscope_end(first, grandchild, end, 2);
            assert!(
                g < c && c < p,
                "{first} {parent} {child} {grandchild} {end}: {g} {c} {p}"
            );
            // Perfetto rounds `dur * 1000` to the nanosecond.
            for (start, k) in [(child, 1), (grandchild, 2)] {
                let dur: f64 = text(start, end, k).parse().unwrap();
                assert_eq!((dur * 1000.0).round() as u64, end - start, "{start} {end}");
            }
            if speedscope_end(first, child, end, 0) > p {
                exact_sums_misordered += 1;
            }
        }
        assert!(
            exact_sums_misordered > 0,
            "the exact durations never misorder: the test covers nothing"
        );
    }

    #[test]
    fn other_durations_are_exact_decimals() {
        assert_eq!(text(1_000, 2_234_567, 0), "2233.567");
        assert_eq!(text(5, 5, 3), "0.000");
    }
}
