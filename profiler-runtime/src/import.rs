//! Reading saved files back: the profile JSON ([`ProfileReport`]) and Chrome traces written by
//! this crate, which hold the whole timeline and are turned back into a [`Profile`].
//!
//! A Chrome trace is rebuilt from its complete (`X`) events (name, category, file and line,
//! thread, start and duration, the `incomplete`/`continued` flags), its `thread_name` and
//! `process_name` metadata, its async `b`/`e` pairs and its `otherData` (clock, profile bounds,
//! dropped events). Traces of other tools load too when they use `X` events; what they lack
//! (source locations, module paths, the profile's bounds) is left empty or taken from the events.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::clock::ClockKind;
use crate::profile::{
    AsyncSpan, ClockInfo, FunctionEntry, Profile, Span, SpanFlags, ThreadTimeline,
};
use crate::registry::FunctionKind;
use crate::report::{json_error_kind, ProfileReport, ReadError, ReadErrorKind, SCHEMA};
use crate::stats::kind_name;

/// A saved profile, as found in a file.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // read once per file
pub enum SavedProfile {
    /// A profile JSON: statistics and call tree, no timeline.
    Report(ProfileReport),
    /// A Chrome trace: the whole timeline.
    Timeline(Profile),
}

impl SavedProfile {
    /// The statistics and call tree, computed from the timeline when needed. A trace does not
    /// record the host it was taken on, so a report made from one has no host.
    pub fn to_report(&self) -> ProfileReport {
        match self {
            SavedProfile::Report(report) => report.clone(),
            SavedProfile::Timeline(profile) => {
                let mut report = ProfileReport::new(profile);
                report.run.host = None;
                report
            }
        }
    }
}

/// Reads the profile JSON or Chrome trace at `path`, telling them apart by their content.
///
/// # Errors
///
/// [`ReadError`] naming the file: it cannot be read, is truncated or not JSON, is JSON of another
/// kind (e.g. a Speedscope file), is of a newer version, or does not match its schema.
pub fn load_saved(path: impl AsRef<Path>) -> Result<SavedProfile, ReadError> {
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

fn read_saved(bytes: &[u8]) -> Result<SavedProfile, ReadErrorKind> {
    let sniff: Sniff = serde_json::from_slice(bytes).map_err(|e| match json_error_kind(e) {
        // Valid JSON, but not an object.
        ReadErrorKind::Malformed { .. } if serde_json::from_slice::<IgnoredAny>(bytes).is_ok() => {
            ReadErrorKind::WrongSchema { found: None }
        }
        kind => kind,
    })?;
    if sniff.schema.as_deref() == Some(SCHEMA) {
        let value = serde_json::from_slice(bytes).map_err(json_error_kind)?;
        return ProfileReport::from_value(value).map(SavedProfile::Report);
    }
    if sniff.trace_events.is_some() && sniff.schema.is_none() {
        let trace: Trace =
            serde_json::from_slice(bytes).map_err(|e| ReadErrorKind::Invalid(e.to_string()))?;
        return Ok(SavedProfile::Timeline(trace.into_profile()?));
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
    fn intern(&mut self, name: &str, kind: FunctionKind, file: &str, line: u32) -> u32 {
        let entries = &mut self.entries;
        *self
            .ids
            .entry((name.to_owned(), kind, file.to_owned(), line))
            .or_insert_with(|| {
                entries.push(FunctionEntry {
                    name: name.to_owned(),
                    module_path: String::new(),
                    file: file.to_owned(),
                    line,
                    kind,
                    budget_ns: None,
                });
                (entries.len() - 1) as u32
            })
    }
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
                let function = self.functions.intern(&event.name, kind, file, line);
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
            None => functions.intern(&name, FunctionKind::AsyncFunction, "", 0),
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
