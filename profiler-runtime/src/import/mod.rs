//! Reading saved files back: the profile JSON ([`Report`]), and the Chrome traces and
//! Speedscope files written by this crate, which hold the whole timeline and are turned back into
//! a [`Profile`].
//!
//! Import sits beside export, above collect and analyze: it builds the same [`Profile`] and
//! [`Report`] the layers below define, and uses nothing above it (feature `analysis`).
//!
//! A Chrome trace is rebuilt from its complete (`X`) events (name, category, file and line,
//! thread, start and duration, the `incomplete`/`continued` flags), its `thread_name` and
//! `process_name` metadata, its async `b`/`e` pairs and its `otherData` (clock, profile bounds,
//! dropped events). Traces of other tools load too when they use `X` events; what they lack
//! (source locations, the profile's bounds) is left empty or taken from the events. A function's
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

mod speedscope;

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::analyze::report::{json_error_kind, ReadError, ReadErrorKind, Report, PROFILE_SCHEMA};
use crate::analyze::stats::kind_name;
use crate::collect::profile::{
    AsyncSpan, ClockInfo, FunctionEntry, Profile, Span, SpanFlags, ThreadTimeline,
};
use crate::record::clock::ClockKind;
use crate::record::registry::FunctionKind;

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
/// their content.
///
/// # Errors
///
/// [`ReadError`] naming the file: it cannot be read, is truncated or not JSON, is JSON of another
/// kind, is of a newer version, or does not match its schema.
pub fn load_saved(path: impl AsRef<Path>) -> Result<SavedFile, ReadError> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|e| ReadError::new(ReadErrorKind::Io(e)).at(path))?;
    read_saved(&bytes).map_err(|e| ReadError::new(e).at(path))
}

/// Just enough of a document to tell what it is.
#[derive(Deserialize)]
struct Sniff {
    schema: Option<String>,
    #[serde(rename = "$schema")]
    dollar_schema: Option<String>,
    #[serde(rename = "traceEvents")]
    trace_events: Option<IgnoredAny>,
}

fn read_saved(bytes: &[u8]) -> Result<SavedFile, ReadErrorKind> {
    let sniff: Sniff = serde_json::from_slice(bytes).map_err(|e| match json_error_kind(e) {
        // Valid JSON, but not an object.
        ReadErrorKind::Malformed { .. } if serde_json::from_slice::<IgnoredAny>(bytes).is_ok() => {
            ReadErrorKind::WrongSchema { found: None }
        }
        kind => kind,
    })?;
    if sniff.schema.as_deref() == Some(PROFILE_SCHEMA) {
        let value = serde_json::from_slice(bytes).map_err(json_error_kind)?;
        return Report::from_value(value).map(SavedFile::Report);
    }
    if sniff.trace_events.is_some() && sniff.schema.is_none() {
        let trace: Trace =
            serde_json::from_slice(bytes).map_err(|e| ReadErrorKind::Invalid(e.to_string()))?;
        return Ok(SavedFile::Timeline(trace.into_profile()?));
    }
    if sniff.dollar_schema.as_deref() == Some(speedscope::SCHEMA) {
        let file: speedscope::File =
            serde_json::from_slice(bytes).map_err(|e| ReadErrorKind::Invalid(e.to_string()))?;
        return Ok(SavedFile::Timeline(file.into_profile()?));
    }
    Err(ReadErrorKind::WrongSchema {
        found: sniff.schema.or(sniff.dollar_schema),
    })
}

/// Reads a Chrome trace (JSON object form) from `bytes` and rebuilds its timeline.
///
/// # Errors
///
/// [`ReadError`] when it is not JSON, truncated, or has no `traceEvents`.
pub fn read_chrome_trace(bytes: &[u8]) -> Result<Profile, ReadError> {
    let trace: Trace =
        serde_json::from_slice(bytes).map_err(|e| ReadError::new(json_error_kind(e)))?;
    trace.into_profile().map_err(ReadError::new)
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
    let sniff: Sniff =
        serde_json::from_slice(bytes).map_err(|e| ReadError::new(json_error_kind(e)))?;
    if sniff.dollar_schema.as_deref() != Some(speedscope::SCHEMA) {
        return Err(ReadError::new(ReadErrorKind::WrongSchema {
            found: sniff.dollar_schema.or(sniff.schema),
        }));
    }
    let file: speedscope::File = serde_json::from_slice(bytes)
        .map_err(|e| ReadError::new(ReadErrorKind::Invalid(e.to_string())))?;
    file.into_profile().map_err(ReadError::new)
}

#[derive(Deserialize)]
struct Trace {
    #[serde(rename = "traceEvents")]
    trace_events: Vec<Event>,
    #[serde(rename = "otherData", default)]
    other: OtherData,
}

#[derive(Deserialize, Default)]
struct OtherData {
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

/// Microseconds with three decimals to nanoseconds.
fn ns(us: f64) -> u64 {
    (us * 1000.0).round().max(0.0) as u64
}

/// A span being rebuilt: function, start, end, flags, position in the file.
type RawSpan = (u32, u64, u64, SpanFlags, usize);

/// The state of a trace being rebuilt, event by event.
#[derive(Default)]
struct Rebuild {
    functions: Functions,
    threads: HashMap<u32, RawThread>,
    /// Async `b` events waiting for their `e`, by id: name, start, thread.
    async_open: HashMap<String, (String, u64, u32)>,
    /// Async lifetimes with their function's name, resolved once every span is known.
    async_named: Vec<(String, AsyncSpan)>,
    process_name: String,
    pid: u32,
    /// Earliest start and latest end of any span.
    first_ns: Option<u64>,
    last_ns: u64,
}

impl Rebuild {
    fn event(&mut self, position: usize, event: Event) -> Result<(), ReadErrorKind> {
        self.pid = event.pid;
        let tid = event.tid;
        match event.ph.as_str() {
            "X" => {
                let (Some(ts), Some(dur)) = (event.ts, event.dur) else {
                    return Err(ReadErrorKind::Invalid(format!(
                        "trace event {position}: complete event without ts or dur"
                    )));
                };
                let kind = kind_name::parse(&event.cat).unwrap_or(FunctionKind::Function);
                let file = event.args.file.as_deref().unwrap_or("");
                let line = event.args.line.unwrap_or(0);
                let module_path = event.args.module_path.as_deref();
                let function = self
                    .functions
                    .intern(&event.name, kind, file, line, module_path);
                let (start, end) = (ns(ts), ns(ts).saturating_add(ns(dur)));
                self.first_ns = Some(self.first_ns.map_or(start, |f| f.min(start)));
                self.last_ns = self.last_ns.max(end);
                let flags = SpanFlags {
                    incomplete: event.args.incomplete,
                    continued: event.args.continued,
                };
                thread(&mut self.threads, tid)
                    .2
                    .push((function, start, end, flags, position));
            }
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
                let at = ns(event.ts.unwrap_or(0.0));
                self.async_open.insert(id, (event.name, at, tid));
            }
            "e" => {
                let id = event.async_key();
                let at = ns(event.ts.unwrap_or(0.0));
                if let Some((name, start_ns, start_tid)) = self.async_open.remove(&id) {
                    let span = AsyncSpan {
                        function: 0,
                        id: self.async_named.len() as u64 + 1,
                        start_ns,
                        end_ns: at.max(start_ns),
                        start_tid,
                        end_tid: tid,
                        cancelled: event.args.cancelled,
                        flags: SpanFlags {
                            incomplete: event.args.incomplete,
                            continued: event.args.continued,
                        },
                    };
                    self.async_named.push((name, span));
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(mut self, other: &OtherData) -> Profile {
        let async_spans = resolve_async(&mut self.functions, self.async_named);
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
        let dropped_events = other
            .dropped_events
            .unwrap_or_else(|| threads.iter().map(|t| t.dropped_events).sum());
        Profile {
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
        }
    }
}

impl Trace {
    fn into_profile(self) -> Result<Profile, ReadErrorKind> {
        let mut rebuild = Rebuild::default();
        for (position, event) in self.trace_events.into_iter().enumerate() {
            rebuild.event(position, event)?;
        }
        Ok(rebuild.finish(&self.other))
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
