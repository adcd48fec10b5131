//! The analysed profile: run metadata, per-function statistics and the merged call tree. It is
//! what the profile JSON holds ([`Format::Json`](crate::export::Format::Json)), and what is read
//! back from it with [`Report::load`].
//!
//! # The profile JSON, version 1
//!
//! ```text
//! {
//!   "schema": "profiler-profile",      always this string
//!   "version": 1,                      bumped on any change a version-1 reader cannot skip
//!   "run": {
//!     "tool": "profiler-runtime 0.1.0",
//!     "process_name": "my_app", "pid": 4242, "host": "build-7",    host may be null
//!     "started": "2026-11-25T08:24:23.123456789Z",                  UTC, RFC 3339
//!     "start_unix_ns": 1795595063123456789, "duration_ns": 1500000,
//!     "start_ns": 0, "end_ns": 1500000, "epoch_unix_ns": ...,     on the profiler's clock
//!     "clock": { "kind": "tsc", "ticks_per_second": 2999999000.0 },
//!     "dropped_events": 0,
//!     "threads": [ { "tid": 1, "name": "main", "dropped_events": 0, "exited": false, "spans": 12 } ]
//!   },
//!   "functions": [ FunctionStats, ... ],   see `stats::FunctionStats`; index = function id
//!   "call_tree": { "nodes": [ CallNode, ... ] }   see `tree::CallNode`; pre-order, `function` indexes `functions`
//! }
//! ```
//!
//! All times are integer nanoseconds; shares are fractions in `0..=1`. Readers ignore fields they
//! do not know, so later versions may add fields without bumping `version`.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analyze::stats::{function_stats, FunctionStats};
use crate::analyze::tree::CallTree;
use crate::collect::build_info::EXPORTER;
use crate::collect::profile::Profile;

pub(crate) use crate::collect::build_info::SPEEDSCOPE_SCHEMA;

/// The value of the `schema` field of the profile JSON.
pub const PROFILE_SCHEMA: &str = "profiler-profile";

/// The newest version of the profile JSON this crate writes and reads.
pub const PROFILE_VERSION: u32 = 1;

/// A profile reduced to what analysis needs: run metadata, statistics and the call tree.
///
/// # Examples
///
/// ```
/// use profiler_runtime::analyze::report::Report;
/// let report = Report::new(&profiler_runtime::flush());
/// let mut json = Vec::new();
/// profiler_runtime::export::write_profile_json(&report, &mut json)?;
/// let back = Report::read(&json[..])?;
/// assert_eq!(back, report);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Where and when the profile was taken.
    pub run: RunInfo,
    /// One entry per function, scope or context, called or not; the index is the function id
    /// that [`CallTree`] nodes use.
    pub functions: Vec<FunctionStats>,
    /// The merged call tree.
    pub call_tree: CallTree,
}

/// Metadata of the profiled run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The tool and version that wrote the profile, e.g. `profiler-runtime 0.1.0`.
    pub tool: String,
    /// Name of the profiled program.
    pub process_name: String,
    /// Its process id.
    pub pid: u32,
    /// The machine's host name, when known.
    pub host: Option<String>,
    /// Wall-clock start of the profile in UTC, RFC 3339 with nanoseconds.
    pub started: String,
    /// Wall-clock start of the profile, ns since 1970-01-01 UTC.
    pub start_unix_ns: u64,
    /// Length of the profile in nanoseconds.
    pub duration_ns: u64,
    /// Start of the profile on the profiler's clock (ns since its epoch).
    pub start_ns: u64,
    /// End of the profile on the profiler's clock.
    pub end_ns: u64,
    /// Wall-clock time of the profiler's epoch, ns since 1970-01-01 UTC.
    pub epoch_unix_ns: u64,
    /// The clock the times were measured with.
    pub clock: ClockRecord,
    /// Events lost on all threads.
    pub dropped_events: u64,
    /// The threads that recorded.
    pub threads: Vec<ThreadInfo>,
    /// How the profiled program was built, when known (absent in files of other tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<crate::BuildInfo>,
}

/// The clock of a run, as saved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClockRecord {
    /// `tsc`, `tsc (not invariant)` or `monotonic` (see [`ClockKind::name`](crate::ClockKind::name)).
    pub kind: String,
    /// Calibrated ticks per second.
    pub ticks_per_second: f64,
}

/// One thread of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadInfo {
    /// The profiler's thread id.
    pub tid: u32,
    /// The thread's name.
    pub name: String,
    /// Events it lost because its buffer was full.
    pub dropped_events: u64,
    /// Whether it had exited by the flush.
    pub exited: bool,
    /// Spans it recorded.
    pub spans: u64,
}

impl Report {
    /// Analyses `profile`. The host name is this machine's (the profile is assumed to be taken
    /// here); set [`RunInfo::host`] otherwise.
    pub fn new(profile: &Profile) -> Report {
        Report {
            run: Report::run_info(profile),
            functions: function_stats(profile),
            call_tree: CallTree::new(profile),
        }
    }

    /// What `profile` says of its run (the host: this machine's).
    pub(crate) fn run_info(profile: &Profile) -> RunInfo {
        let start_unix_ns = profile.epoch_unix_ns.saturating_add(profile.start_ns);
        RunInfo {
            tool: EXPORTER.to_owned(),
            process_name: profile.process_name.clone(),
            pid: profile.pid,
            host: host_name(),
            started: rfc3339(start_unix_ns),
            start_unix_ns,
            duration_ns: profile.end_ns.saturating_sub(profile.start_ns),
            start_ns: profile.start_ns,
            end_ns: profile.end_ns,
            epoch_unix_ns: profile.epoch_unix_ns,
            clock: ClockRecord {
                kind: profile.clock.kind.name().to_owned(),
                ticks_per_second: profile.clock.ticks_per_second,
            },
            dropped_events: profile.dropped_events,
            threads: profile
                .threads
                .iter()
                .map(|t| ThreadInfo {
                    tid: t.tid,
                    name: t.name.clone(),
                    dropped_events: t.dropped_events,
                    exited: t.exited,
                    spans: t.spans.len() as u64,
                })
                .collect(),
            build: profile.build.clone(),
        }
    }

    /// Reads a profile JSON (see the [module docs](self)) from `reader`. Errors carry no file
    /// name; [`load`](Self::load) adds it.
    ///
    /// # Errors
    ///
    /// [`ReadError`] of kind [`Truncated`](ReadErrorKind::Truncated),
    /// [`Malformed`](ReadErrorKind::Malformed), [`WrongSchema`](ReadErrorKind::WrongSchema),
    /// [`NewerVersion`](ReadErrorKind::NewerVersion), [`Invalid`](ReadErrorKind::Invalid) or
    /// [`Io`](ReadErrorKind::Io).
    pub fn read(reader: impl Read) -> Result<Report, ReadError> {
        let value: serde_json::Value =
            serde_json::from_reader(reader).map_err(|e| ReadError::new(json_error_kind(e)))?;
        Report::from_value(value).map_err(ReadError::new)
    }

    /// Reads the profile JSON file at `path`.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read), with the file named; [`ReadErrorKind::Io`] when it cannot be
    /// opened.
    pub fn load(path: impl AsRef<Path>) -> Result<Report, ReadError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| ReadError::new(ReadErrorKind::Io(e)).at(path))?;
        Report::read(BufReader::new(file)).map_err(|e| e.at(path))
    }

    /// Checks the header and decodes a parsed document.
    pub(crate) fn from_value(value: serde_json::Value) -> Result<Report, ReadErrorKind> {
        let schema = value.get("schema").and_then(serde_json::Value::as_str);
        if schema != Some(PROFILE_SCHEMA) {
            return Err(ReadErrorKind::WrongSchema {
                found: schema.map(str::to_owned),
            });
        }
        let version = value
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| {
                ReadErrorKind::Invalid("`version` is missing or not a whole number".to_owned())
            })?;
        if version > u64::from(PROFILE_VERSION) {
            return Err(ReadErrorKind::NewerVersion {
                found: version,
                supported: PROFILE_VERSION,
            });
        }
        if version == 0 {
            return Err(ReadErrorKind::Invalid(
                "`version` 0 does not exist".to_owned(),
            ));
        }
        let report: Report =
            serde_json::from_value(value).map_err(|e| ReadErrorKind::Invalid(e.to_string()))?;
        report
            .call_tree
            .validate(report.functions.len())
            .map_err(ReadErrorKind::Invalid)?;
        Ok(report)
    }

    /// The statistics of the function a tree node refers to.
    ///
    /// # Panics
    ///
    /// If `function` is out of range.
    pub fn function(&self, function: u32) -> &FunctionStats {
        &self.functions[function as usize]
    }
}

/// What went wrong reading a saved profile, and in which file.
#[derive(Debug)]
pub struct ReadError {
    path: Option<PathBuf>,
    kind: ReadErrorKind,
}

/// The problem found in a saved profile.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadErrorKind {
    /// The file could not be opened or read.
    Io(io::Error),
    /// The JSON ends before it is complete (a file cut off while being written or copied).
    Truncated,
    /// The file is not JSON.
    Malformed {
        /// Line of the first error (1-based).
        line: usize,
        /// Column of the first error (1-based).
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The JSON is none of the files this tool reads (a profile JSON, a Chrome trace, a Speedscope
    /// file); its `schema` or `$schema` field, if any, is shown.
    WrongSchema {
        /// The `schema` value found, if there was one.
        found: Option<String>,
    },
    /// The file was written by a newer version of the tool.
    NewerVersion {
        /// The version in the file.
        found: u64,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The JSON has the right header but its content does not match the schema.
    Invalid(String),
    /// The input holds more bytes than the limit it was read with (see
    /// [`DEFAULT_MAX_INPUT_SIZE`](crate::import::DEFAULT_MAX_INPUT_SIZE)).
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The path is not a regular file (a named pipe, a device, a directory), which
    /// [`load_saved`](crate::import::load_saved) does not open.
    NotAFile {
        /// What it is, e.g. `a named pipe`.
        kind: &'static str,
    },
}

impl ReadError {
    pub(crate) fn new(kind: ReadErrorKind) -> ReadError {
        ReadError { path: None, kind }
    }

    /// Names the file the error is about.
    #[must_use]
    pub(crate) fn at(mut self, path: &Path) -> ReadError {
        self.path = Some(path.to_owned());
        self
    }

    /// The file, when the profile was read from one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The problem.
    pub fn kind(&self) -> &ReadErrorKind {
        &self.kind
    }
}

/// The files the tool reads back, as the errors name them.
struct Readable;

impl fmt::Display for Readable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected a profile JSON (\"schema\": {PROFILE_SCHEMA:?}), a Chrome trace (\"traceEvents\") or a Speedscope file (\"$schema\": {SPEEDSCOPE_SCHEMA:?})"
        )
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{}: ", path.display())?;
        }
        match &self.kind {
            ReadErrorKind::Io(e) => write!(f, "cannot read: {e}"),
            ReadErrorKind::Truncated => f.write_str("truncated: the JSON ends before it is complete"),
            ReadErrorKind::Malformed { line, column, message } => {
                write!(f, "not valid JSON (line {line}, column {column}): {message}")
            }
            ReadErrorKind::WrongSchema { found: Some(found) } => write!(
                f,
                "not a profile of this tool: schema is {found:?}; {Readable}"
            ),
            ReadErrorKind::WrongSchema { found: None } => {
                write!(f, "not a profile of this tool: no schema; {Readable}")
            }
            ReadErrorKind::NewerVersion { found, supported } => write!(
                f,
                "written by a newer profiler (format version {found}; this build reads up to version {supported}): upgrade the profiler"
            ),
            ReadErrorKind::Invalid(message) => write!(f, "not a valid profile: {message}"),
            ReadErrorKind::TooLarge { limit } => write!(
                f,
                "larger than the input limit of {} ({limit} bytes)",
                ByteSize(*limit)
            ),
            ReadErrorKind::NotAFile { kind } => {
                write!(f, "not a regular file ({kind}), so it is not opened")
            }
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ReadErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// A number of bytes in the largest binary unit that keeps it whole, or with one decimal:
/// `1 GiB`, `1.5 MiB`, `100 bytes`.
struct ByteSize(u64);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = ["TiB", "GiB", "MiB", "KiB"];
        for (i, unit) in units.iter().enumerate() {
            let size = 1_u64 << (10 * (4 - i));
            if self.0 >= size {
                return if self.0 % size == 0 {
                    write!(f, "{} {unit}", self.0 / size)
                } else {
                    write!(f, "{:.1} {unit}", self.0 as f64 / size as f64)
                };
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

/// Sorts a `serde_json` parse error into truncated, malformed or I/O.
pub(crate) fn json_error_kind(e: serde_json::Error) -> ReadErrorKind {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => ReadErrorKind::Truncated,
        Category::Io => ReadErrorKind::Io(e.into()),
        Category::Syntax | Category::Data => {
            let (line, column) = (e.line(), e.column());
            let text = e.to_string();
            // serde_json appends " at line L column C"; the position is shown on its own.
            let message = text
                .rfind(" at line ")
                .map_or(text.as_str(), |i| &text[..i])
                .to_owned();
            ReadErrorKind::Malformed {
                line,
                column,
                message,
            }
        }
    }
}

/// This machine's host name: `/proc/sys/kernel/hostname` on Linux, else `HOSTNAME` or
/// `COMPUTERNAME` from the environment.
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// `unix_ns` as an RFC 3339 UTC timestamp with nanoseconds, e.g. `2026-11-25T06:24:23.000000001Z`.
pub(crate) fn rfc3339(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let nanos = unix_ns % 1_000_000_000;
    // Below 2^49 for any u64 of nanoseconds, so the conversion cannot fail.
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(
            rfc3339(1_795_595_063_123_456_789),
            "2026-11-25T08:24:23.123456789Z"
        );
        assert_eq!(
            rfc3339(4_102_444_799_000_000_000),
            "2099-12-31T23:59:59.000000000Z"
        );
    }

    #[test]
    fn header_checks() {
        let kind = |text: &str| Report::read(text.as_bytes()).unwrap_err().kind;
        assert!(matches!(
            kind(r#"{"schema":"profiler-profile","#),
            ReadErrorKind::Truncated
        ));
        assert!(matches!(
            kind("{]"),
            ReadErrorKind::Malformed {
                line: 1,
                column: 2,
                ..
            }
        ));
        assert!(matches!(
            kind(r#"{"traceEvents":[]}"#),
            ReadErrorKind::WrongSchema { found: None }
        ));
        assert!(matches!(
            kind(r#"{"schema":"other","version":1}"#),
            ReadErrorKind::WrongSchema { found: Some(s) } if s == "other"
        ));
        assert!(matches!(
            kind(r#"{"schema":"profiler-profile","version":2}"#),
            ReadErrorKind::NewerVersion {
                found: 2,
                supported: 1
            }
        ));
        assert!(matches!(
            kind(r#"{"schema":"profiler-profile","version":1}"#),
            ReadErrorKind::Invalid(_)
        ));
    }
}
