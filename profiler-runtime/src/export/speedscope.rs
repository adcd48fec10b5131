//! Speedscope's file format (<https://www.speedscope.app/file-format-schema.json>).
//!
//! One `evented` profile per thread, in nanoseconds, over frames shared by all threads (name,
//! file, line). Open and close events are written in time order and properly nested, which is
//! what the format requires. Async lifetimes have no equivalent there: their polls appear as
//! ordinary spans of the threads that polled them.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::json::{quoted, write_str, write_u64};
use super::EXPORTER;
use crate::collect::profile::Profile;

/// The schema URL Speedscope recognises.
use crate::collect::build_info::SPEEDSCOPE_SCHEMA as SCHEMA;

/// Writes `profile` as a Speedscope file to `out` (unbuffered writers should be wrapped in a
/// [`std::io::BufWriter`]).
///
/// # Errors
///
/// Any error of `out`.
pub fn write_speedscope<W: Write + ?Sized>(profile: &Profile, out: &mut W) -> io::Result<()> {
    out.write_all(b"{\"$schema\":")?;
    write_str(out, SCHEMA)?;
    out.write_all(b",\"exporter\":")?;
    write_str(out, EXPORTER)?;
    out.write_all(b",\"name\":")?;
    write_str(out, &profile.process_name)?;
    out.write_all(b",\"activeProfileIndex\":0,\"shared\":{\"frames\":[")?;
    for (i, f) in profile.functions.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(b"\n{\"name\":")?;
        write_str(out, &f.name)?;
        if !f.file.is_empty() {
            out.write_all(b",\"file\":")?;
            write_str(out, &f.file)?;
            out.write_all(b",\"line\":")?;
            write_u64(out, u64::from(f.line))?;
        }
        out.write_all(b"}")?;
    }
    out.write_all(b"]},\"profiles\":[")?;
    // Frame indices as text, formatted once.
    let frames: Vec<Vec<u8>> = (0..profile.functions.len())
        .map(|i| itoa::Buffer::new().format(i).as_bytes().to_vec())
        .collect();
    for (n, thread) in profile.threads.iter().enumerate() {
        if n > 0 {
            out.write_all(b",")?;
        }
        let mut name = format!("{} (tid {})", thread.name, thread.tid);
        if thread.dropped_events > 0 {
            let _ = write!(name, ", {} events dropped", thread.dropped_events);
        }
        out.write_all(b"\n{\"type\":\"evented\",\"name\":")?;
        out.write_all(&quoted(&name))?;
        out.write_all(b",\"unit\":\"nanoseconds\",\"startValue\":")?;
        write_u64(out, profile.start_ns)?;
        out.write_all(b",\"endValue\":")?;
        write_u64(out, profile.end_ns)?;
        out.write_all(b",\"events\":[")?;
        let mut first = true;
        let mut event = |out: &mut W, open: bool, frame: u32, at: u64| -> io::Result<()> {
            out.write_all(if first { b"\n" } else { b",\n" })?;
            first = false;
            out.write_all(if open {
                b"{\"type\":\"O\",\"frame\":"
            } else {
                b"{\"type\":\"C\",\"frame\":"
            })?;
            out.write_all(&frames[frame as usize])?;
            out.write_all(b",\"at\":")?;
            write_u64(out, at)?;
            out.write_all(b"}")
        };
        // Spans are in pre-order with parent links: before opening a span, close every open span
        // that is not its parent.
        let mut stack: Vec<u32> = Vec::new();
        for (i, span) in thread.spans.iter().enumerate() {
            while let Some(&top) = stack.last() {
                if Some(top) == span.parent {
                    break;
                }
                let s = &thread.spans[top as usize];
                event(out, false, s.function, s.end_ns)?;
                stack.pop();
            }
            event(out, true, span.function, span.start_ns)?;
            stack.push(i as u32);
        }
        while let Some(top) = stack.pop() {
            let s = &thread.spans[top as usize];
            event(out, false, s.function, s.end_ns)?;
        }
        out.write_all(b"]}")?;
    }
    out.write_all(b"]}\n")
}
