//! The merged profile: every thread's spans on one timeline, in nanoseconds.

use std::fmt::Write as _;

use crate::record::clock::ClockKind;
use crate::record::registry::{FunctionInfo, FunctionKind};

/// One function, scope or context known to a profile. Spans refer to it by index into
/// [`Profile::functions`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionEntry {
    /// The full name, e.g. `my_crate::db::Pool::get`.
    pub name: String,
    /// The module it is defined in.
    pub module_path: String,
    /// The source file.
    pub file: String,
    /// The source line.
    pub line: u32,
    /// Function, async function, scope or context.
    pub kind: FunctionKind,
    /// The time budget given with `#[profile(budget = "...")]`, ns.
    pub budget_ns: Option<u64>,
}

impl FunctionEntry {
    /// The description of an instrumented site.
    pub(crate) fn of_site(info: &FunctionInfo) -> FunctionEntry {
        FunctionEntry {
            name: info.name().into_owned(),
            module_path: info.module_path().to_owned(),
            file: info.file().to_owned(),
            line: info.line(),
            kind: info.kind(),
            budget_ns: info.budget_ns(),
        }
    }
}

/// Flags of a [`Span`] or [`AsyncSpan`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpanFlags {
    /// Still open at the flush: it ends when the flush drained its thread, and continues from
    /// there in the next profile.
    pub incomplete: bool,
    /// Began before this profile (it was incomplete in the previous one): it starts where the
    /// previous part ended, and its call was counted in the profile where it began.
    pub continued: bool,
}

/// One call on one thread (or one poll of an async function).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Index into [`Profile::functions`].
    pub function: u32,
    /// Start, in nanoseconds since the profiler's epoch.
    pub start_ns: u64,
    /// End, in nanoseconds since the profiler's epoch; `end_ns >= start_ns`.
    pub end_ns: u64,
    /// Nesting depth on its thread: 0 for a root.
    pub depth: u32,
    /// Index of the enclosing span in the same thread's [`ThreadTimeline::spans`].
    pub parent: Option<u32>,
    /// Incomplete or continued.
    pub flags: SpanFlags,
}

impl Span {
    /// `end_ns - start_ns`.
    pub fn duration_ns(&self) -> u64 {
        self.end_ns - self.start_ns
    }
}

/// One thread's spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadTimeline {
    /// The profiler's thread id: small, unique in the process, stable across flushes.
    pub tid: u32,
    /// The thread's name (`std::thread::Builder::name`), or `thread-<tid>`.
    pub name: String,
    /// Spans in pre-order (a parent before its children, siblings by start time). On one thread
    /// they nest properly: a child lies within its parent.
    pub spans: Vec<Span>,
    /// Events this thread could not record because its buffer was full (an enter and its exit
    /// count as two).
    pub dropped_events: u64,
    /// Whether the thread had exited by the flush.
    pub exited: bool,
}

/// The whole life of one `async fn` call, from its first poll to its completion or cancellation,
/// possibly across threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsyncSpan {
    /// Index into [`Profile::functions`].
    pub function: u32,
    /// Unique id of the future in the process.
    pub id: u64,
    /// First poll, ns since the epoch.
    pub start_ns: u64,
    /// Completion or drop, ns since the epoch.
    pub end_ns: u64,
    /// The thread of the first poll.
    pub start_tid: u32,
    /// The thread of the completion or drop.
    pub end_tid: u32,
    /// The future was dropped before it completed.
    pub cancelled: bool,
    /// Incomplete or continued, as for [`Span`].
    pub flags: SpanFlags,
}

/// The clock a profile was measured with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockInfo {
    /// Which clock.
    pub kind: ClockKind,
    /// Its calibrated frequency (1e9 for the monotonic clock).
    pub ticks_per_second: f64,
}

/// Everything recorded between two flushes, merged across threads into one timeline.
///
/// Obtained from [`flush`](crate::flush); written with [`export_profile`](crate::export::export_profile)
/// or the writers in [`export`](crate::export).
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// Every function that appears in a span, plus every registered function (called or not).
    pub functions: Vec<FunctionEntry>,
    /// One timeline per thread that recorded, sorted by tid.
    pub threads: Vec<ThreadTimeline>,
    /// Async spans, sorted by start.
    pub async_spans: Vec<AsyncSpan>,
    /// Start of the profile, ns since the epoch: the moment the previous flush drained its first
    /// thread (or the epoch). Events recorded while a flush is draining belong to the next
    /// profile, so consecutive profiles may overlap by the length of a drain; no event or span is
    /// in both.
    pub start_ns: u64,
    /// End of the profile (this flush), ns since the epoch.
    pub end_ns: u64,
    /// Wall-clock time of the epoch, ns since 1970-01-01 UTC.
    pub epoch_unix_ns: u64,
    /// The clock used.
    pub clock: ClockInfo,
    /// Events lost on all threads: full buffers plus threads that could not get one.
    pub dropped_events: u64,
    /// Name of the profiled program.
    pub process_name: String,
    /// Its process id.
    pub pid: u32,
    /// How the program was built (compiler, target, profile, features), when known: always for a
    /// profile of this process, and for a file written by this crate.
    pub build: Option<crate::BuildInfo>,
}

impl Profile {
    /// The entry a span refers to.
    ///
    /// # Panics
    ///
    /// If `index` is out of range (a span of another profile).
    pub fn function(&self, index: u32) -> &FunctionEntry {
        &self.functions[index as usize]
    }

    /// Number of spans on all threads.
    pub fn span_count(&self) -> usize {
        self.threads.iter().map(|t| t.spans.len()).sum()
    }

    /// The span tree of every thread as indented text, one `name` per line (two spaces per
    /// depth), under a `thread <name>` header; incomplete spans end in ` (incomplete)`. Meant for
    /// tests and quick looks.
    pub fn render_tree(&self) -> String {
        let mut out = String::new();
        for thread in &self.threads {
            let _ = writeln!(out, "thread {}", thread.name);
            for span in &thread.spans {
                let indent = "  ".repeat(span.depth as usize + 1);
                let marker = if span.flags.incomplete {
                    " (incomplete)"
                } else {
                    ""
                };
                let _ = writeln!(out, "{indent}{}{marker}", self.function(span.function).name);
            }
        }
        out
    }

    /// Checks that the timeline is well formed: spans nest on each thread, durations are not
    /// negative, parents and depths agree, everything lies within the profile. Returns the first
    /// violation found.
    ///
    /// # Errors
    ///
    /// A description of the first violation.
    pub fn validate(&self) -> Result<(), String> {
        for thread in &self.threads {
            let mut stack: Vec<usize> = Vec::new();
            for (i, span) in thread.spans.iter().enumerate() {
                let at = || format!("thread {} span {i}", thread.tid);
                if span.function as usize >= self.functions.len() {
                    return Err(format!("{}: unknown function {}", at(), span.function));
                }
                if span.end_ns < span.start_ns {
                    return Err(format!("{}: negative duration", at()));
                }
                if span.start_ns < self.start_ns || span.end_ns > self.end_ns {
                    return Err(format!("{}: outside the profile", at()));
                }
                while let Some(&top) = stack.last() {
                    if thread.spans[top].end_ns > span.start_ns
                        || (thread.spans[top].end_ns == span.start_ns
                            && span.parent == Some(top as u32))
                    {
                        break;
                    }
                    stack.pop();
                }
                let parent = stack.last().map(|&p| p as u32);
                if span.parent != parent || span.depth as usize != stack.len() {
                    return Err(format!(
                        "{}: parent {:?}/depth {} but nesting gives {parent:?}/{}",
                        at(),
                        span.parent,
                        span.depth,
                        stack.len()
                    ));
                }
                if let Some(p) = parent {
                    let p = &thread.spans[p as usize];
                    if span.start_ns < p.start_ns || span.end_ns > p.end_ns {
                        return Err(format!("{}: not within its parent", at()));
                    }
                }
                stack.push(i);
            }
        }
        for span in &self.async_spans {
            if span.end_ns < span.start_ns {
                return Err(format!("async span {}: negative duration", span.id));
            }
        }
        Ok(())
    }
}
