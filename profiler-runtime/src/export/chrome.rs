//! Chrome Tracing (Trace Event Format), JSON object form.
//!
//! Spans are complete (`X`) events with `ts`/`dur` in microseconds carrying three decimals, so
//! nanoseconds survive exactly; `displayTimeUnit` is `ns` so that `chrome://tracing` nests at that
//! precision too. Async spans are `b`/`e` pairs sharing an id. Threads get `thread_name` and
//! `thread_sort_index` metadata, the process `process_name`. Dropped events appear in
//! `otherData`, in each thread's metadata `args`, and as an instant event at the end of each
//! thread that lost any, so they are visible in the viewer.

use std::io::{self, Write};

use super::json::{quoted, write_str, write_u64, write_us};
use super::EXPORTER;
use crate::profile::{Profile, ThreadTimeline};

/// Writes `profile` as a Chrome trace to `out` (unbuffered writers should be wrapped in a
/// [`std::io::BufWriter`]).
///
/// # Errors
///
/// Any error of `out`.
pub fn write_chrome_trace<W: Write + ?Sized>(profile: &Profile, out: &mut W) -> io::Result<()> {
    // Per-function prefix, escaped once: `"name":"...","cat":"...","args":{"file":...,"line":N`
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

    for span in &thread.spans {
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
        write_us(out, span.duration_ns())?;
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
