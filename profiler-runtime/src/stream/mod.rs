//! Streaming to disk: while the program runs, the background collector writes what it drains to a
//! native Perfetto trace (`<output>.perfetto-trace`), so that memory stays bounded by the rings
//! and a write buffer however long the run, and a run that is killed keeps what was written.
//!
//! Stream sits above collect (it takes drained events through [`crate::collect::drain_to`]) and
//! below everything that reads files back: `import::perfetto` reads what it writes.
//!
//! # The file
//!
//! A Perfetto trace is a sequence of `TracePacket`s, each written as field 1 of `Trace`; the file
//! is valid at every packet boundary, so a file cut anywhere loads everything before the cut.
//! Packets are gathered into batches of at most 256 KiB, and each batch is written, deflate
//! (zlib) compressed, as one `compressed_packets` packet: at least once per collect interval, so
//! an `abort` or `SIGKILL` loses at most the last interval, as long as the collector keeps up
//! (it has no priority over the threads it drains: when they record faster than it writes, it
//! lags by up to a ring's worth of events, and rings that fill drop calls, counted).
//!
//! Inside, in the order written:
//! - Sequence 1 (the process): the process track (uuid 1: pid, process name); a clock snapshot
//!   relating the trace's clock (BOOTTIME, here nanoseconds since the profiler's epoch) to
//!   REALTIME; the instant event `profiler run` with the run's metadata as debug annotations
//!   (exporter, clock, build); one interned-data packet per function at first sight, whose iid
//!   is the function's id: `event_names` (its name), `source_locations` (file, module path as
//!   `function_name`, line) and `event_categories` (its kind, `function`, `async`, `scope` or
//!   `context`, followed by ` budget_ns=N` when it has a budget); async spans as slices on lane
//!   tracks (uuid `2<<32 | n`, a child of the process track; spans of one function that do not
//!   overlap share a lane), with the future's id as the annotation `id` on the begin and
//!   `cancelled` on the end of a dropped future; at the end, the instant `profiler run end` with
//!   the totals (dropped events, ticks per second).
//! - One sequence per recording thread: its thread track (uuid `1<<32 | tid`, pid, the
//!   profiler's tid, the thread's name) with defaults (that track, the sequence's incremental
//!   clock 64) and a clock snapshot; then one packet per enter (`TYPE_SLICE_BEGIN` with the
//!   function's `name_iid`, the name interned on the sequence at first use) and per exit
//!   (`TYPE_SLICE_END`), timestamps as deltas in nanoseconds; a counter track `dropped events`
//!   (uuid `3<<32 | tid`) when the thread's ring drops events. A slice whose exit was lost, or
//!   still open when the file was completed, ends with the annotation `incomplete`.

pub(crate) mod endings;
pub(crate) mod proto;
pub(crate) mod writer;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::collect::{self, build_info};
use crate::record::registry;
use writer::{annotation, RunInfo, Value, Writer, Written};

/// The compression level of the streamed batches (deflate, 0-9): level 1 is the fastest, and on
/// these packets (small, alike) nearly as small as the best.
const LEVEL: u32 = 1;

#[derive(Debug)]
struct Active {
    writer: Writer,
    path: PathBuf,
    /// Keep the events for `flush` as well (tests, small runs).
    keep: bool,
    /// The file was completed: nothing more is written.
    done: Option<Report>,
}

static STREAM: Mutex<Option<Active>> = Mutex::new(None);

/// Nothing panics while the lock is held short of a bug; the writer is still consistent then.
fn stream() -> MutexGuard<'static, Option<Active>> {
    STREAM.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a completed stream wrote.
#[derive(Clone, Debug)]
pub(crate) struct Report {
    pub(crate) path: PathBuf,
    pub(crate) written: Written,
    /// The write error that stopped the stream, as text.
    pub(crate) error: Option<String>,
    /// Events lost to that error.
    pub(crate) unwritten: u64,
}

/// Opens `path` (folders created, an older file replaced only once the new one exists) and
/// writes the opening packets. With `keep`, drained events also stay for `flush`.
pub(crate) fn start(path: &Path, keep: bool) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)?;
    }
    // A new file under a temporary name, renamed over the old one once its opening is on disk:
    // a disk already full keeps the previous run's file whole, and a reader of that file keeps
    // it either way.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let file = File::create(&tmp)?;
    let mut writer = Writer::new(file, Some(LEVEL));
    let clock = collect::clock_info();
    let build = crate::BuildInfo::of_this_build();
    let anchor = crate::record::clock::anchor();
    writer.begin(
        RunInfo {
            process_name: collect::process_name(),
            start_ns: anchor.ns,
            epoch_unix_ns: crate::record::clock::epoch_unix_ns(),
            annotations: vec![
                ("exporter".into(), Value::Str(build_info::EXPORTER.into())),
                ("clock".into(), Value::Str(clock.kind.name().into())),
                ("pid".into(), Value::Uint(u64::from(std::process::id()))),
                ("rustc".into(), Value::Str(build.rustc)),
                ("target".into(), Value::Str(build.target)),
                ("profile".into(), Value::Str(build.profile)),
                ("features".into(), Value::Str(build.features)),
            ],
        },
        registry::registered_sites().chain(registry::run_time_sites()),
    );
    writer.sync();
    let opened = match writer.error.take() {
        Some(e) => Err(e),
        None => std::fs::rename(&tmp, path),
    };
    if let Err(e) = opened {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    collect::set_streaming(!keep);
    *stream() = Some(Active {
        writer,
        path: path.to_owned(),
        keep,
        done: None,
    });
    Ok(())
}

/// Whether a stream is open and not yet completed.
pub(crate) fn is_active() -> bool {
    stream().as_ref().is_some_and(|a| a.done.is_none())
}

/// Drains every ring into the file (the collector's tick). Returns the events written.
pub(crate) fn collect() -> usize {
    let mut guard = stream();
    let Some(active) = guard.as_mut().filter(|a| a.done.is_none()) else {
        return 0;
    };
    let (moved, _) = collect::drain_to(&mut active.writer, active.keep);
    active.writer.cut_batch();
    moved
}

/// Drains, writes and syncs what is gathered, leaving the stream open (a signal the program
/// handles itself: the file is complete up to now, and goes on).
pub(crate) fn checkpoint() {
    let mut guard = stream();
    if let Some(active) = guard.as_mut().filter(|a| a.done.is_none()) {
        collect::drain_to(&mut active.writer, active.keep);
        active.writer.sync();
    }
}

/// Completes the file: drains the rings a last time, ends what is open, writes the run's totals
/// and syncs. Later calls return the same report; `None` if no stream was started.
pub(crate) fn finish() -> Option<Report> {
    let mut guard = stream();
    let active = guard.as_mut()?;
    if let Some(report) = &active.done {
        return Some(report.clone());
    }
    let (_, end_ns) = collect::drain_to(&mut active.writer, active.keep);
    let clock = collect::clock_info();
    let dropped = active.writer.dropped_total() + collect::lost_events_total();
    let written = active.writer.written();
    active.writer.end(
        end_ns,
        vec![
            annotation("dropped_events", Value::Uint(dropped)),
            annotation("events", Value::Uint(written.events)),
            annotation("ticks_per_second", Value::Float(clock.ticks_per_second)),
        ],
    );
    active.writer.sync();
    let report = Report {
        path: active.path.clone(),
        written: active.writer.written(),
        error: active.writer.error.as_ref().map(ToString::to_string),
        unwritten: active.writer.unwritten,
    };
    active.done = Some(report.clone());
    collect::set_streaming(false);
    Some(report)
}

/// The stream's totals so far (or at its completion): events written, bytes in the file, events
/// dropped (rings full, or lost). `None` when no stream was started.
pub(crate) fn totals() -> Option<(u64, u64, u64)> {
    let guard = stream();
    let active = guard.as_ref()?;
    let written = active.writer.written();
    let dropped = active.writer.dropped_total() + collect::lost_events_total();
    Some((written.events, written.file_bytes, dropped))
}

/// Forgets a completed stream, so that a later `init` may start another.
pub(crate) fn reset() {
    let mut guard = stream();
    if guard.as_ref().is_some_and(|a| a.done.is_some()) {
        *guard = None;
    }
}
