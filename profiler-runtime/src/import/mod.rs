//! Reading saved files back: the profile JSON ([`Report`]), and the Chrome traces and
//! Speedscope files written by this crate, which hold the whole timeline and are turned back into
//! a [`Profile`].
//!
//! Import sits beside export, above collect and analyze: it builds the same [`Profile`] and
//! [`Report`] the layers below define, and uses nothing above it (feature `analysis`).
//!
//! A Chrome trace is rebuilt from its complete (`X`) events (name, category, file and line,
//! thread, start and duration, the `incomplete`/`continued` flags), its begin/end (`B`/`E`) pairs,
//! its `thread_name` and `process_name` metadata, its async `b`/`e` pairs and its `otherData`
//! (clock, profile bounds, dropped events). Both forms of the Trace Event Format are read: the
//! object (`{"traceEvents": [...]}`) and the bare array of events (`[{...}, ...]`), which may
//! lack its closing `]` (the format allows it, for a program that stopped while writing) as long
//! as it ends between two events; one cut inside an event is truncated. Traces of
//! other tools load too; what they lack (source locations, the profile's bounds) is left empty or
//! taken from the events. An `E` event closes the latest open `B` of its process and thread; a `B`
//! still open at the end of the trace becomes an incomplete span that ends with the trace's last
//! event.
//!
//! What cannot be read is an error naming the event (its index in `traceEvents`, its name and
//! phase), never a silently altered profile: a time that is negative, not finite or past what a
//! `u64` of nanoseconds holds (about 584 years), an `E` without a `B`, an end before its begin.
//! A trace that yields no span at all is an error too (a trace of another tool whose events are
//! all of kinds this reader skips would otherwise load as an empty profile), except a file of
//! this crate, which says the profile was empty in its `otherData`.
//!
//! Counts that add up past `u64::MAX` (dropped events over threads) saturate at `u64::MAX`.
//!
//! Files are read as a stream: a Chrome trace's events are rebuilt one at a time as they are
//! parsed, so memory follows the size of the profile, not of the JSON text. Reading stops with an
//! error at [`DEFAULT_MAX_INPUT_SIZE`] bytes, or the limit given to [`load_saved_limited`], and
//! only regular files are opened (a named pipe with no writer would block, a device such as
//! `/dev/zero` never ends): read streams with [`read_saved`].
//!
//! A function's
//! module path comes from its events' `args` (our traces write it); when they have none (traces
//! of other tools, or of versions before it was written), it is derived from the name: the path
//! before the function and its type, `app::db` for `app::db::Pool::get`, empty for a name without
//! one.
//!
//! A Speedscope file ([`read_speedscope`]) keeps less than a Chrome trace, but enough for the
//! statistics and the call tree. Each of its profiles is a thread: ours, named `<thread> (tid N)`,
//! give back the thread's name, id and dropped events. Each frame is a function, called or not,
//! with its module path derived from its name; the format has no kinds, so an `async fn`'s polls
//! come back as a plain function's calls, and its lifetime is lost. The profile's bounds are the
//! profiles' `startValue` and `endValue`; its start time, process id and clock are unknown.
//! Sampled profiles (other tools') become spans as Speedscope draws them: a frame's span lasts as
//! long as consecutive samples keep it at the same place in their stacks.

mod document;
#[cfg(feature = "stream")]
mod perfetto;
mod speedscope;

#[cfg(feature = "stream")]
pub use perfetto::{read_perfetto, summarize_perfetto};

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use crate::analyze::report::{ReadError, ReadErrorKind, Report};
use crate::analyze::stats::kind_name;
use crate::collect::profile::{
    AsyncSpan, ClockInfo, FunctionEntry, Profile, Span, SpanFlags, ThreadTimeline,
};
use crate::record::clock::ClockKind;
use crate::record::registry::FunctionKind;

/// The most bytes [`load_saved`] and the `profiler` tool read from one input: 1 GiB. Far above
/// any profile this crate writes in practice, it turns an endless input (a device, a stream that
/// never closes) into an error instead of a process that grows until it is killed. Raise it with
/// [`load_saved_limited`] (the tool's `--max-input-size`).
pub const DEFAULT_MAX_INPUT_SIZE: u64 = 1 << 30;

/// A saved profile, as found in a file.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // read once per file
pub enum SavedFile {
    /// A profile JSON: statistics and call tree, no timeline.
    Report(Report),
    /// A Chrome trace or a Speedscope file: the whole timeline.
    Timeline(Profile),
}

impl SavedFile {
    /// The statistics and call tree, computed from the timeline when needed. A trace does not
    /// record the host it was taken on, so a report made from one has no host.
    pub fn to_report(&self) -> Report {
        match self {
            SavedFile::Report(report) => report.clone(),
            SavedFile::Timeline(profile) => {
                let mut report = Report::new(profile);
                report.run.host = None;
                report
            }
        }
    }
}

/// Reads the profile JSON, Chrome trace or Speedscope file at `path`, telling them apart by
/// their content; at most [`DEFAULT_MAX_INPUT_SIZE`] bytes.
///
/// # Errors
///
/// [`ReadError`] naming the file: it cannot be read, is not a regular file, is larger than the
/// limit, is truncated or not JSON, is JSON of another kind, is of a newer version, or does not
/// match its schema.
pub fn load_saved(path: impl AsRef<Path>) -> Result<SavedFile, ReadError> {
    load_saved_limited(path, DEFAULT_MAX_INPUT_SIZE)
}

/// [`load_saved`] with another limit on the size of the file, in bytes.
///
/// Only regular files are read: opening a named pipe blocks until something writes to it, and a
/// device such as `/dev/zero` never ends, so both are refused before they are opened. Read those
/// with [`read_saved`].
///
/// # Errors
///
/// As [`load_saved`]; [`ReadErrorKind::TooLarge`] when the file holds more than `max_bytes`,
/// [`ReadErrorKind::NotAFile`] when it is not a regular file.
pub fn load_saved_limited(path: impl AsRef<Path>, max_bytes: u64) -> Result<SavedFile, ReadError> {
    let path = path.as_ref();
    let file = open_regular(path, max_bytes)?;
    read_saved(file, max_bytes).map_err(|e| e.at(path))
}

/// The statistics and call tree of the saved file at `path` (at most `max_bytes` bytes): what
/// `profiler summary` and `profiler flamegraph` need. A streamed Perfetto trace is summarised as
/// it is read, without holding its spans ([`summarize_perfetto`]), so that a trace of any length
/// is summarised in bounded memory; other files are read whole ([`load_saved_limited`]).
///
/// # Errors
///
/// As [`load_saved_limited`].
pub fn load_report_limited(path: impl AsRef<Path>, max_bytes: u64) -> Result<Report, ReadError> {
    let path = path.as_ref();
    let file = open_regular(path, max_bytes)?;
    read_report(file, max_bytes).map_err(|e| e.at(path))
}

/// [`load_report_limited`] from `reader` (standard input, a pipe).
///
/// # Errors
///
/// As [`read_saved`].
pub fn read_report(reader: impl Read, max_bytes: u64) -> Result<Report, ReadError> {
    #[cfg_attr(not(feature = "stream"), allow(unused_mut))]
    let mut reader = std::io::BufReader::new(reader);
    #[cfg(feature = "stream")]
    {
        use std::io::BufRead as _;
        let first = reader
            .fill_buf()
            .map_err(|e| ReadError::new(ReadErrorKind::Io(e)))?
            .first()
            .copied();
        if first.is_some_and(perfetto::is_perfetto_start) {
            return summarize_perfetto(reader, max_bytes);
        }
    }
    Ok(read_saved(reader, max_bytes)?.to_report())
}

/// Opens `path` if it is a regular file of at most `max_bytes` bytes.
fn open_regular(path: &Path, max_bytes: u64) -> Result<File, ReadError> {
    let at = |kind| ReadError::new(kind).at(path);
    // `metadata` follows symbolic links and opens nothing, so a fifo cannot block here.
    let metadata = fs::metadata(path).map_err(|e| at(ReadErrorKind::Io(e)))?;
    if !metadata.is_file() {
        return Err(at(ReadErrorKind::NotAFile {
            kind: file_kind(metadata.file_type()),
        }));
    }
    if metadata.len() > max_bytes {
        return Err(at(ReadErrorKind::TooLarge { limit: max_bytes }));
    }
    File::open(path).map_err(|e| at(ReadErrorKind::Io(e)))
}

/// What a path that is not a regular file is, in words.
fn file_kind(file_type: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a named pipe";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Reads a profile JSON, Chrome trace or Speedscope file from `reader` (a file, standard input, a
/// pipe), telling them apart by their content, and stops with an error after `max_bytes` bytes.
/// A Chrome trace is rebuilt event by event as it is parsed. Errors carry no file name.
///
/// # Errors
///
/// [`ReadError`] when the input cannot be read, holds more than `max_bytes`, is truncated or not
/// JSON, is JSON of another kind, is of a newer version, or does not match its schema.
///
/// # Examples
///
/// ```
/// use profiler_runtime::import::{read_saved, SavedFile, DEFAULT_MAX_INPUT_SIZE};
/// let trace = br#"[{"ph":"B","name":"load","pid":1,"tid":1,"ts":0},
///                  {"ph":"E","pid":1,"tid":1,"ts":2.5}]"#;
/// let SavedFile::Timeline(profile) = read_saved(&trace[..], DEFAULT_MAX_INPUT_SIZE)? else {
///     unreachable!("a Chrome trace has a timeline")
/// };
/// assert_eq!(profile.threads[0].spans[0].duration_ns(), 2_500);
/// # Ok::<(), profiler_runtime::analyze::report::ReadError>(())
/// ```
pub fn read_saved(reader: impl Read, max_bytes: u64) -> Result<SavedFile, ReadError> {
    #[cfg_attr(not(feature = "stream"), allow(unused_mut))]
    let mut reader = std::io::BufReader::new(reader);
    #[cfg(feature = "stream")]
    {
        use std::io::BufRead as _;
        let first = reader
            .fill_buf()
            .map_err(|e| ReadError::new(ReadErrorKind::Io(e)))?
            .first()
            .copied();
        if first.is_some_and(perfetto::is_perfetto_start) {
            return read_perfetto(reader, max_bytes).map(SavedFile::Timeline);
        }
    }
    document::read(reader, max_bytes)
        .map(document::Found::into_saved)
        .map_err(ReadError::new)
}

/// Reads a Chrome trace from `bytes`, in the object form (`{"traceEvents": [...]}`) or the array
/// form (`[{...}, ...]`), and rebuilds its timeline (see the [module docs](self)).
///
/// # Errors
///
/// [`ReadError`] when it is not JSON, truncated, not a Chrome trace, has an event that cannot be
/// read (named in the message), or holds no span.
pub fn read_chrome_trace(bytes: &[u8]) -> Result<Profile, ReadError> {
    match document::read(bytes, u64::MAX).map_err(ReadError::new)? {
        document::Found::Chrome(profile) => Ok(profile),
        document::Found::Report(_) | document::Found::Speedscope(_) => {
            Err(ReadError::new(ReadErrorKind::WrongSchema { found: None }))
        }
    }
}

/// Reads a Speedscope file from `bytes` and rebuilds its timeline: one thread per profile, one
/// function per frame (see the [module docs](self)).
///
/// # Errors
///
/// [`ReadError`] when it is not JSON, truncated, not a Speedscope file, or inconsistent (a close
/// event without its open, a frame that does not exist, values that are not times).
///
/// # Examples
///
/// ```
/// # use profiler_runtime::{export::write_speedscope, import::read_speedscope};
/// let profile = profiler_runtime::flush();
/// let mut file = Vec::new();
/// write_speedscope(&profile, &mut file)?;
/// let back = read_speedscope(&file)?;
/// assert_eq!(back.span_count(), profile.span_count());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_speedscope(bytes: &[u8]) -> Result<Profile, ReadError> {
    #[derive(Deserialize)]
    struct Sniff {
        schema: Option<String>,
        #[serde(rename = "$schema")]
        dollar_schema: Option<String>,
    }
    let sniff: Sniff = serde_json::from_slice(bytes)
        .map_err(|e| ReadError::new(crate::analyze::report::json_error_kind(e)))?;
    if sniff.dollar_schema.as_deref() != Some(speedscope::SCHEMA) {
        return Err(ReadError::new(ReadErrorKind::WrongSchema {
            found: sniff.dollar_schema.or(sniff.schema),
        }));
    }
    let file: speedscope::File = serde_json::from_slice(bytes)
        .map_err(|e| ReadError::new(ReadErrorKind::Invalid(e.to_string())))?;
    file.into_profile().map_err(ReadError::new)
}

#[derive(Deserialize, Default)]
struct OtherData {
    /// `profiler-runtime <version>` in our traces.
    exporter: Option<String>,
    clock: Option<String>,
    ticks_per_second: Option<f64>,
    start_ns: Option<u64>,
    end_ns: Option<u64>,
    epoch_unix_ns: Option<u64>,
    dropped_events: Option<u64>,
    build: Option<crate::BuildInfo>,
}

#[derive(Deserialize)]
struct Event {
    ph: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    cat: String,
    #[serde(default)]
    pid: u32,
    #[serde(default)]
    tid: u32,
    ts: Option<f64>,
    dur: Option<f64>,
    id: Option<serde_json::Value>,
    id2: Option<Id2>,
    #[serde(default)]
    args: Args,
}

/// The scoped id of an async event: `local` to its process (what this crate writes), or
/// `global`.
#[derive(Deserialize)]
struct Id2 {
    local: Option<serde_json::Value>,
    global: Option<serde_json::Value>,
}

impl Event {
    /// What pairs an async `b` with its `e`: the id with its scope, so that a local and a global
    /// id of the same value stay apart (a plain `id` is global, as in traces before `id2`).
    fn async_key(&self) -> String {
        match (&self.id2, &self.id) {
            (
                Some(Id2 {
                    local: Some(id), ..
                }),
                _,
            ) => format!("local {id}"),
            (
                Some(Id2 {
                    global: Some(id), ..
                }),
                _,
            )
            | (_, Some(id)) => format!("global {id}"),
            _ => String::new(),
        }
    }
}

#[derive(Deserialize, Default)]
struct Args {
    file: Option<String>,
    line: Option<u32>,
    module_path: Option<String>,
    name: Option<String>,
    dropped_events: Option<u64>,
    #[serde(default)]
    incomplete: bool,
    #[serde(default)]
    continued: bool,
    #[serde(default)]
    cancelled: bool,
}

/// The functions of a trace, one per name, kind and source location.
#[derive(Default)]
struct Functions {
    entries: Vec<FunctionEntry>,
    ids: HashMap<(String, FunctionKind, String, u32), u32>,
}

impl Functions {
    /// The function of this name, kind and location; a new one gets `module_path`, or the module
    /// path its name implies.
    fn intern(
        &mut self,
        name: &str,
        kind: FunctionKind,
        file: &str,
        line: u32,
        module_path: Option<&str>,
    ) -> u32 {
        let entries = &mut self.entries;
        *self
            .ids
            .entry((name.to_owned(), kind, file.to_owned(), line))
            .or_insert_with(|| {
                entries.push(FunctionEntry {
                    name: name.to_owned(),
                    module_path: module_path
                        .filter(|m| !m.is_empty())
                        .map_or_else(|| module_of(name), str::to_owned),
                    file: file.to_owned(),
                    line,
                    kind,
                    budget_ns: None,
                });
                (entries.len() - 1) as u32
            })
    }
}

/// The module path a function's full name implies, for files that do not say: the `::`-separated
/// segments (outside `<...>`) before the function's own, less the trailing ones that name a type
/// (capitalised, or a `<T as Trait>` path). `app::db::Pool::get` gives `app::db`; a name without
/// a path (`load config`, `HashMap<K, V>::get`) or a qualified one (`<app::Pool as Source>::get`,
/// whose impl may be in any module) gives an empty string.
fn module_of(name: &str) -> String {
    let mut segments = Vec::new();
    let (mut depth, mut start) = (0_usize, 0);
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => depth += 1,
            b'>' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                segments.push(&name[start..i]);
                start = i + 2;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    // The last segment is the function's own name, and is not part of the module path.
    let is_type = |s: &&str| s.starts_with('<') || s.starts_with(|c: char| c.is_uppercase());
    if segments.first().is_some_and(is_type) {
        return String::new();
    }
    while segments.last().is_some_and(is_type) {
        segments.pop();
    }
    segments.join("::")
}

/// The largest time a `u64` of nanoseconds holds, in nanoseconds, as a float: 2^64, excluded.
const NS_LIMIT: f64 = 18_446_744_073_709_551_616.0;

/// An event's time field (`ts` or `dur`, microseconds with three decimals) in nanoseconds; an
/// error naming the event when it is negative, not finite, or past what a `u64` of nanoseconds
/// holds (clamping would quietly give a profile that was never recorded).
fn event_ns(position: usize, event: &Event, field: &str, us: f64) -> Result<u64, ReadErrorKind> {
    let ns = (us * 1000.0).round();
    if us.is_finite() && (0.0..NS_LIMIT).contains(&ns) {
        return Ok(ns as u64);
    }
    Err(ReadErrorKind::Invalid(format!(
        "trace event {position} ({:?}, phase {:?}): `{field}` is {us:?} µs; expected a time from 0 to {:.0} µs",
        event.name,
        event.ph,
        NS_LIMIT / 1000.0
    )))
}

/// A span being rebuilt: function, start, end, flags, position in the file.
type RawSpan = (u32, u64, u64, SpanFlags, usize);

/// A `B` event waiting for its `E`: function, start, flags, position in the file.
type OpenSpan = (u32, u64, SpanFlags, usize);

/// The state of a trace being rebuilt, event by event.
#[derive(Default)]
struct Rebuild {
    functions: Functions,
    threads: HashMap<u32, RawThread>,
    /// `B` events waiting for their `E`, a stack per process and thread.
    open: HashMap<(u32, u32), Vec<OpenSpan>>,
    /// Async `b` events waiting for their `e`, by id: name, start, thread.
    async_open: HashMap<String, (String, u64, u32)>,
    /// Async lifetimes with their function's name, resolved once every span is known.
    async_named: Vec<(String, AsyncSpan)>,
    process_name: String,
    pid: u32,
    /// Earliest start of any span, and latest end of any span or start of a `B` (where the
    /// spans still open at the end of the trace end).
    first_ns: Option<u64>,
    last_ns: u64,
    /// Events read, and the phases of those that give no span (for the error on a trace with no
    /// span at all).
    events: usize,
    skipped: BTreeSet<String>,
}

impl Rebuild {
    /// The function an `X` or `B` event names.
    fn function_of(&mut self, event: &Event) -> u32 {
        let kind = kind_name::parse(&event.cat).unwrap_or(FunctionKind::Function);
        let file = event.args.file.as_deref().unwrap_or("");
        let line = event.args.line.unwrap_or(0);
        let module_path = event.args.module_path.as_deref();
        self.functions
            .intern(&event.name, kind, file, line, module_path)
    }

    /// The required `ts` of an event, in nanoseconds.
    fn ts(position: usize, event: &Event) -> Result<u64, ReadErrorKind> {
        let ts = event.ts.ok_or_else(|| {
            ReadErrorKind::Invalid(format!(
                "trace event {position} ({:?}, phase {:?}): no `ts`",
                event.name, event.ph
            ))
        })?;
        event_ns(position, event, "ts", ts)
    }

    fn span(&mut self, tid: u32, span: RawSpan) {
        let (_, start, end, _, _) = span;
        self.first_ns = Some(self.first_ns.map_or(start, |f| f.min(start)));
        self.last_ns = self.last_ns.max(end);
        thread(&mut self.threads, tid).2.push(span);
    }

    /// A `B` event: a span opens on its process and thread.
    fn begin(
        &mut self,
        position: usize,
        event: &Event,
        flags: SpanFlags,
    ) -> Result<(), ReadErrorKind> {
        let tid = event.tid;
        let start = Self::ts(position, event)?;
        let function = self.function_of(event);
        self.last_ns = self.last_ns.max(start);
        // The thread exists from its first event, even if its span never ends.
        thread(&mut self.threads, tid);
        self.open
            .entry((event.pid, tid))
            .or_default()
            .push((function, start, flags, position));
        Ok(())
    }

    /// An `E` event: the latest span open on its process and thread ends.
    fn end(&mut self, position: usize, event: &Event) -> Result<(), ReadErrorKind> {
        let tid = event.tid;
        let end = Self::ts(position, event)?;
        let Some((function, start, flags, begun)) =
            self.open.get_mut(&(event.pid, tid)).and_then(Vec::pop)
        else {
            return Err(ReadErrorKind::Invalid(format!(
                "trace event {position} ({:?}, phase \"E\"): an end without a begin (B) on thread {tid} of process {}",
                event.name, event.pid
            )));
        };
        if end < start {
            return Err(ReadErrorKind::Invalid(format!(
                "trace event {position} ({:?}, phase \"E\"): ends at {:?} µs, before its begin (event {begun}, {:?}) at {:?} µs",
                event.name,
                event.ts.unwrap_or_default(),
                self.functions.entries[function as usize].name,
                start as f64 / 1000.0
            )));
        }
        self.span(tid, (function, start, end, flags, begun));
        Ok(())
    }

    fn event(&mut self, position: usize, event: Event) -> Result<(), ReadErrorKind> {
        self.events += 1;
        self.pid = event.pid;
        let tid = event.tid;
        let flags = SpanFlags {
            incomplete: event.args.incomplete,
            continued: event.args.continued,
        };
        match event.ph.as_str() {
            "X" => {
                let (Some(ts), Some(dur)) = (event.ts, event.dur) else {
                    return Err(ReadErrorKind::Invalid(format!(
                        "trace event {position} ({:?}): complete event without ts or dur",
                        event.name
                    )));
                };
                let start = event_ns(position, &event, "ts", ts)?;
                let end = start
                    .checked_add(event_ns(position, &event, "dur", dur)?)
                    .ok_or_else(|| {
                        ReadErrorKind::Invalid(format!(
                            "trace event {position} ({:?}, phase \"X\"): `ts` {ts:?} µs plus `dur` {dur:?} µs is past the largest time, {:.0} µs",
                            event.name,
                            NS_LIMIT / 1000.0
                        ))
                    })?;
                let function = self.function_of(&event);
                self.span(tid, (function, start, end, flags, position));
            }
            "B" => self.begin(position, &event, flags)?,
            "E" => self.end(position, &event)?,
            "M" if event.name == "thread_name" => {
                let entry = thread(&mut self.threads, tid);
                if let Some(name) = event.args.name {
                    entry.0 = name;
                }
                entry.1 = event.args.dropped_events.unwrap_or(0);
            }
            "M" if event.name == "process_name" => {
                self.process_name = event.args.name.unwrap_or_default();
            }
            "b" => {
                let id = event.async_key();
                let at = event
                    .ts
                    .map_or(Ok(0), |ts| event_ns(position, &event, "ts", ts))?;
                self.async_open.insert(id, (event.name, at, tid));
            }
            "e" => {
                let id = event.async_key();
                let at = event
                    .ts
                    .map_or(Ok(0), |ts| event_ns(position, &event, "ts", ts))?;
                if let Some((name, start_ns, start_tid)) = self.async_open.remove(&id) {
                    if at < start_ns {
                        return Err(ReadErrorKind::Invalid(format!(
                            "trace event {position} ({name:?}, phase \"e\"): ends at {:?} µs, before its begin at {:?} µs",
                            event.ts.unwrap_or_default(),
                            start_ns as f64 / 1000.0
                        )));
                    }
                    let span = AsyncSpan {
                        function: 0,
                        id: self.async_named.len() as u64 + 1,
                        start_ns,
                        end_ns: at,
                        start_tid,
                        end_tid: tid,
                        cancelled: event.args.cancelled,
                        flags,
                    };
                    self.async_named.push((name, span));
                }
            }
            "M" => {}
            other => {
                if !self.skipped.contains(other) {
                    self.skipped.insert(other.to_owned());
                }
            }
        }
        Ok(())
    }

    fn finish(mut self, other: &OtherData) -> Result<Profile, ReadErrorKind> {
        // A `B` never ended: the span lasts to the end of the trace, like an incomplete span of
        // ours (the program was stopped, or the trace cut, while it ran).
        let last_ns = self.last_ns;
        for ((_, tid), open) in std::mem::take(&mut self.open) {
            for (function, start, mut flags, position) in open {
                flags.incomplete = true;
                self.span(tid, (function, start, last_ns.max(start), flags, position));
            }
        }
        let async_spans = resolve_async(&mut self.functions, self.async_named);
        let span_count: usize = self.threads.values().map(|t| t.2.len()).sum();
        let ours = other
            .exporter
            .as_deref()
            .is_some_and(|e| e.starts_with("profiler-runtime"));
        if span_count == 0 && async_spans.is_empty() && !ours {
            let skipped = if self.skipped.is_empty() {
                String::new()
            } else {
                let phases: Vec<String> = self.skipped.iter().map(|p| format!("{p:?}")).collect();
                format!(" (phases {})", phases.join(", "))
            };
            return Err(ReadErrorKind::Invalid(format!(
                "no span in {} trace event{}{skipped}: spans come from complete (X), begin/end (B/E) and async (b/e) events",
                self.events,
                if self.events == 1 { "" } else { "s" }
            )));
        }
        let mut threads: Vec<ThreadTimeline> = self
            .threads
            .into_iter()
            .map(|(tid, (name, dropped_events, raw))| ThreadTimeline {
                tid,
                name,
                spans: nest(raw),
                dropped_events,
                exited: false,
            })
            .collect();
        threads.sort_by_key(|t| t.tid);
        let start_ns = other.start_ns.or(self.first_ns).unwrap_or(0);
        let end_ns = other.end_ns.unwrap_or(self.last_ns).max(start_ns);
        let kind = match other.clock.as_deref() {
            Some("tsc") => ClockKind::Tsc { invariant: true },
            Some("tsc (not invariant)") => ClockKind::Tsc { invariant: false },
            _ => ClockKind::Monotonic,
        };
        // Saturating: counts from a file can add up past u64 (and would wrap, or panic in debug).
        let dropped_events = other.dropped_events.unwrap_or_else(|| {
            crate::analyze::stats::saturating_sum(threads.iter().map(|t| t.dropped_events))
        });
        Ok(Profile {
            functions: self.functions.entries,
            threads,
            async_spans,
            start_ns,
            end_ns,
            epoch_unix_ns: other.epoch_unix_ns.unwrap_or(0),
            clock: ClockInfo {
                kind,
                ticks_per_second: other.ticks_per_second.unwrap_or(1e9),
            },
            dropped_events,
            process_name: self.process_name,
            pid: self.pid,
            build: other.build.clone(),
        })
    }
}

/// Gives each async lifetime the async function of its name that has polls (the `b`/`e` events
/// carry only the name), or a new one; sorted by start.
fn resolve_async(functions: &mut Functions, named: Vec<(String, AsyncSpan)>) -> Vec<AsyncSpan> {
    let mut async_spans: Vec<AsyncSpan> = Vec::with_capacity(named.len());
    for (name, mut span) in named {
        span.function = match functions
            .entries
            .iter()
            .position(|f| f.kind == FunctionKind::AsyncFunction && f.name == name)
        {
            Some(i) => i as u32,
            None => functions.intern(&name, FunctionKind::AsyncFunction, "", 0, None),
        };
        async_spans.push(span);
    }
    async_spans.sort_by_key(|s| (s.start_ns, s.id));
    async_spans
}

/// A thread being rebuilt: name, dropped events, spans.
type RawThread = (String, u64, Vec<RawSpan>);

/// The thread `tid`, created with its default name on first sight.
fn thread(threads: &mut HashMap<u32, RawThread>, tid: u32) -> &mut RawThread {
    threads
        .entry(tid)
        .or_insert_with(|| (format!("thread-{tid}"), 0, Vec::new()))
}

/// Orders one thread's spans into pre-order and links each to its enclosing span. A span that
/// crosses its parent's end (only in foreign traces) is cut at that end.
fn nest(mut raw: Vec<RawSpan>) -> Vec<Span> {
    // By start, the longer (enclosing) span first, then file order.
    raw.sort_by_key(|&(_, start, end, _, position)| (start, std::cmp::Reverse(end), position));
    let mut spans: Vec<Span> = Vec::with_capacity(raw.len());
    let mut stack: Vec<u32> = Vec::new();
    for (function, start_ns, end_ns, flags, _) in raw {
        while let Some(&top) = stack.last() {
            let top_end = spans[top as usize].end_ns;
            // A zero-length span exactly at its parent's end still belongs to it.
            if top_end > start_ns || (top_end == start_ns && end_ns == start_ns) {
                break;
            }
            stack.pop();
        }
        let parent = stack.last().copied();
        let end_ns = parent.map_or(end_ns, |p| end_ns.min(spans[p as usize].end_ns));
        spans.push(Span {
            function,
            start_ns,
            end_ns,
            depth: stack.len() as u32,
            parent,
            flags,
        });
        stack.push((spans.len() - 1) as u32);
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::module_of;

    #[test]
    fn module_paths_are_derived_from_names() {
        for (name, module) in [
            ("app::db::query", "app::db"),
            ("app::db::Pool::get", "app::db"),
            ("app::parse<K, V>", "app"),
            ("app::Cache<K, V>::get", "app"),
            ("demo::<Pool as Source>::get", "demo"),
            ("app::Map<a::B, c::D>::insert", "app"),
            ("<app::Pool as Source>::get", ""),
            ("HashMap<K, V>::get", ""),
            ("load config", ""),
            ("main", ""),
        ] {
            assert_eq!(module_of(name), module, "{name}");
        }
    }
}
