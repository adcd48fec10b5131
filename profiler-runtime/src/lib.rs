//! An instrumentation profiler cheap enough to leave in: annotate functions with
//! [`#[profile]`](macro@profile), turn on the `enable` cargo feature, and get a timeline of every
//! thread that opens in Perfetto, `chrome://tracing` and Speedscope.
//!
//! # Quick start
//!
//! ```toml
//! [dependencies]
//! # Not on crates.io yet: a path (or git) dependency; "0.1" once published.
//! profiler-runtime = { path = "../profiler/profiler-runtime" }
//!
//! [features]
//! profile = ["profiler-runtime/enable"]
//! ```
//!
//! ```
//! use profiler_runtime::{profile, profile_scope};
//!
//! #[profile]
//! fn parse(input: &str) -> usize {
//!     input.split(',').count()
//! }
//!
//! #[profile]
//! fn run() -> usize {
//!     profile_scope!("warm-up");
//!     (0..100).map(|_| parse("a,b,c")).sum()
//! }
//!
//! // Writes profile.trace.json and profile.speedscope.json when `_profiler` is dropped
//! // (the path comes from `Config::output`, or from PROFILER_OUTPUT).
//! let dir = std::env::temp_dir().join("profiler-doc");
//! let _profiler = profiler_runtime::Config::new().output(dir.join("quick-start")).init();
//! assert_eq!(run(), 300);
//! ```
//!
//! Or take the merged profile in code and write it where you like:
//!
//! ```
//! # use profiler_runtime::profile;
//! # #[profile] fn work() {}
//! work();
//! let profile = profiler_runtime::flush();
//! let mut json = Vec::new();
//! profiler_runtime::export::write_chrome_trace(&profile, &mut json)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Cost
//!
//! - Feature `enable` off: `#[profile]` returns the function exactly as written, and
//!   [`profile_scope!`] expands to a compile-time check of its name. Zero cost, and a library
//!   that depends on this crate without features compiles nine small crates (no serde).
//! - Compiled in, switched off with [`disable`]: one relaxed atomic load and a branch per call.
//! - Recording: two timestamp reads (`rdtsc` on x86-64) and two 16-byte stores into the calling
//!   thread's own ring buffer per call. No lock, no allocation after the thread's first event, no
//!   read-modify-write atomic. See `benches/README.md` for measurements against other profilers.
//!
//! # Buffers
//!
//! Each thread records into its own bounded ring ([`DEFAULT_BUFFER_EVENTS`] events of 16 bytes by
//! default; [`set_buffer_capacity`] or `PROFILER_BUFFER_EVENTS` changes it), made of blocks of
//! 4096 events. [`drain`] (every 10 ms on the background collector [`Config::init`] starts) takes
//! the blocks threads have filled, without copying them, and gives the rings spare blocks instead;
//! [`flush`] does the same and merges everything taken since the last flush. When a ring is full
//! anyway, new calls are dropped whole (enter and exit) and counted: the timeline stays well
//! formed, and the Chrome, Speedscope, profile JSON and SVG exports report the count. Events of threads that have exited are kept until
//! the next flush.
//!
//! # Regression gate
//!
//! With the `baseline` feature, `baseline` saves several runs' per-function results with the
//! machine and build they came from, and compares new runs with them: call counts exactly, times
//! with confidence bounds over runs, budgets from `#[profile(budget = "2ms")]` or a budgets
//! file. The `profiler compare --runs N -- OLD -- NEW` command (feature `cli`) runs two builds
//! alternately and exits 1 on a regression. See `docs/regression-gate.md`.
//!
//! # Environment variables
//!
//! | variable | effect |
//! |---|---|
//! | `PROFILER_OUTPUT` | path prefix of the files the [`ProfilerGuard`] writes (overrides [`Config::output`]) |
//! | `PROFILER_FORMATS` | comma-separated formats the guard writes: `chrome`, `speedscope`, `json`, `csv`, `folded` (and `flamegraph`, `icicle` with the `flamegraph` feature); an unknown name is an error (see [`Config::init`]) |
//! | `PROFILER_QUIET` | `1`/`true`/`on`/`yes`: the guard says nothing on stderr at exit unless a file could not be written (overrides [`Config::quiet`]) |
//! | `PROFILER_ENABLED` | `0`/`false`/`off`/`no` starts with recording switched off (read by [`Config::init`]) |
//! | `PROFILER_BUFFER_EVENTS` | ring capacity in events for each thread |
//! | `PROFILER_COLLECT_INTERVAL_MS` | how often the background collector drains the rings (default 10; `0`: no collector thread) |
//! | `PROFILER_MAX_BUFFERED_EVENTS` | the most events the collector holds between two flushes |
//! | `PROFILER_SAMPLE_RATE`, `PROFILER_TAIL_THRESHOLD`, `PROFILER_SLA`, `PROFILER_AGGREGATE` | production modes per request root: see [`sampling`](production::sampling) |
//!
//! # Layout
//!
//! The modules follow the data, bottom to top, and each uses only those below it: the record
//! layer (clock, rings, recorder, the registry of sites and threads; private), the collector
//! (drain and merge into a [`Profile`]; its functions are at the root), `analyze` (statistics,
//! call tree, report; feature `analysis`), [`export`] and `import`, then [`production`] and
//! the gate (`baseline`). Every environment variable: the book's reference.
//!
//! # In production
//!
//! Requests begun with [`ProfileContext::request`] follow a per-root policy: head sampling and
//! tail (slow-request) profiling ([`sampling`](production::sampling)), with a flight recorder of the last slow
//! requests; always-on per-root and per-function latency histograms ([`aggregate`](production::aggregate)); SLA alerts
//! on a background thread ([`alert`](production::alert)); and Prometheus metrics, served on `/metrics` with the
//! `metrics-server` feature ([`prometheus`](production::prometheus)). `docs/production.md` has the measured overheads.
#![warn(missing_docs)]
// docs.rs builds with `--cfg docsrs` (see Cargo.toml): each item then shows the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

// The layers, bottom to top: record -> collect -> analyze -> export, import -> production and
// baseline (the gate). A module uses only its own layer and those below it (see each layer's
// module docs; `python3 tools/module_graph.py` checks it).
#[cfg(feature = "analysis")]
pub mod analyze;
// Writes a file whole or not at all; used by the exporters, the gate and the `profiler` binary.
#[doc(hidden)]
pub mod atomic_file;
#[cfg(feature = "baseline")]
pub mod baseline;
mod collect;
mod exit_report;
pub mod export;
#[cfg(feature = "analysis")]
pub mod import;
pub mod production;
mod record;
#[cfg(feature = "stream")]
mod stream;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use collect::build_info::BuildInfo;
pub use collect::profile::{
    AsyncSpan, ClockInfo, FunctionEntry, Profile, Span, SpanFlags, ThreadTimeline,
};
pub use collect::{
    buffered_events, drain, flush, max_buffered_events, set_max_buffered_events,
    DEFAULT_MAX_BUFFERED_EVENTS,
};
pub use export::export_profile;
pub use production::context::ProfileContext;
pub use record::clock::ClockKind;
pub use record::recorder::{disable, enable, is_enabled};
pub use record::registry::FunctionKind;

/// Every instrumented function, scope and context of the program (all linked crates), called
/// or not, in no particular order: the same descriptions a [`Profile`]'s `functions` hold.
///
/// # Examples
///
/// ```
/// for function in profiler_runtime::registered_functions() {
///     println!("{} at {}:{}", function.name, function.file, function.line);
/// }
/// ```
pub fn registered_functions() -> impl Iterator<Item = FunctionEntry> {
    record::registry::registered_sites().map(FunctionEntry::of_site)
}
pub use record::threads::{buffer_capacity, set_buffer_capacity, DEFAULT_BUFFER_EVENTS};

/// Instruments a function, a method, every method of an `impl` block, or an `async fn`.
///
/// See the crate documentation of `profiler-runtime-macros` re-exported here, and the book's
/// reference.
/// With the `enable` feature off, the item is returned exactly as written.
pub use profiler_runtime_macros::profile;

use export::{ExportError, Format};

/// Records the rest of the enclosing block as a span named by the literal.
///
/// ```
/// use profiler_runtime::profile_scope;
/// fn load() {
///     profile_scope!("load config");
///     // ... recorded until the end of the block
/// }
/// # load();
/// ```
///
/// The name must be a non-empty string literal, with the feature on or off: the same checks run
/// on both paths, so turning the feature on never reveals a new error.
///
/// With the `enable` feature off it expands to those checks only (a constant, evaluated by the
/// compiler): no code runs.
#[cfg(feature = "enable")]
// Not "available on `enable` only": without the feature, the definition below expands to nothing.
#[cfg_attr(docsrs, doc(auto_cfg = false))]
#[macro_export]
macro_rules! profile_scope {
    ($name:literal) => {
        let __profiler_scope_guard = {
            static __PROFILER_SITE: $crate::__private::FunctionInfo =
                $crate::__private::FunctionInfo::new(
                    $crate::__private::scope_name($name),
                    ::core::module_path!(),
                    ::core::file!(),
                    ::core::line!(),
                    $crate::__private::FunctionKind::Scope,
                );
            $crate::__private::inventory::submit! {
                $crate::__private::Registration(&__PROFILER_SITE)
            }
            $crate::__private::enter(&__PROFILER_SITE)
        };
    };
}

/// Records the rest of the enclosing block as a span named by the literal.
///
/// ```
/// use profiler_runtime::profile_scope;
/// fn load() {
///     profile_scope!("load config");
///     // ... recorded until the end of the block
/// }
/// # load();
/// ```
///
/// The name must be a non-empty string literal, with the feature on or off: the same checks run
/// on both paths, so turning the feature on never reveals a new error.
///
/// With the `enable` feature off (as now) it expands to those checks only (a constant, evaluated
/// by the compiler): no code runs.
#[cfg(not(feature = "enable"))]
#[macro_export]
macro_rules! profile_scope {
    ($name:literal) => {
        const _: &str = $crate::__private::scope_name($name);
    };
}

/// Configures the profiler and the files written at the end of the program.
///
/// # Examples
///
/// ```
/// use profiler_runtime::{export::Format, Config};
/// let dir = std::env::temp_dir().join("profiler-doc-config");
/// let guard = Config::new()
///     .output(dir.join("run"))
///     .formats(&[Format::ChromeTrace])
///     .buffer_events(1 << 16)
///     .init();
/// // ... run the workload ...
/// let written = guard.finish()?;
/// assert_eq!(written, vec![dir.join("run.trace.json")]);
/// # Ok::<(), profiler_runtime::export::ExportFilesError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    output: PathBuf,
    formats: Vec<Format>,
    buffer_events: Option<usize>,
    enabled: Option<bool>,
    collect_interval: Option<Duration>,
    quiet: bool,
    stream: Stream,
    signals: bool,
    stream_keep: bool,
}

/// What [`Config::init`] did about streaming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StreamStart {
    /// This guard streams: it completes the file when it ends.
    Owned,
    /// Another guard's stream was open: this guard's calls go to it.
    #[cfg_attr(not(feature = "stream"), allow(dead_code))]
    Joined,
    /// No streaming: the run stays in memory.
    No,
}

/// Where the streamed trace goes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Stream {
    /// `<output>.perfetto-trace`.
    Beside,
    /// A path of its own.
    To(PathBuf),
    /// No streaming: the profile stays in memory until the flush.
    Off,
}

/// How often the background collector started by [`Config::init`] drains the rings, by default.
pub const DEFAULT_COLLECT_INTERVAL: Duration = Duration::from_millis(10);

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Config {
    /// Output prefix `profile` (in the working directory), Chrome and Speedscope formats.
    pub fn new() -> Self {
        Config {
            output: PathBuf::from("profile"),
            formats: vec![Format::ChromeTrace, Format::Speedscope],
            buffer_events: None,
            enabled: None,
            collect_interval: Some(DEFAULT_COLLECT_INTERVAL),
            quiet: false,
            stream: Stream::Beside,
            signals: true,
            stream_keep: false,
        }
    }

    /// The path prefix of the output files: `out/run` gives `out/run.trace.json` and
    /// `out/run.speedscope.json`. Missing directories are created. `PROFILER_OUTPUT` overrides it.
    #[must_use]
    pub fn output(mut self, prefix: impl AsRef<Path>) -> Self {
        prefix.as_ref().clone_into(&mut self.output);
        self
    }

    /// The formats to write. `PROFILER_FORMATS` overrides it.
    #[must_use]
    pub fn formats(mut self, formats: &[Format]) -> Self {
        self.formats = formats.to_vec();
        self
    }

    /// Ring capacity in events for threads that start recording after [`init`](Self::init).
    #[must_use]
    pub fn buffer_events(mut self, events: usize) -> Self {
        self.buffer_events = Some(events);
        self
    }

    /// Whether recording starts switched on (default: on, unless `PROFILER_ENABLED` says off).
    #[must_use]
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// How often a background thread (`profiler-collector`) moves what the threads recorded out
    /// of their rings with [`drain`], so that a long run loses no calls to full rings; `None`
    /// starts no thread (events then stay in the rings until the flush, and a thread that records
    /// more than its ring holds drops calls). Default [`DEFAULT_COLLECT_INTERVAL`];
    /// `PROFILER_COLLECT_INTERVAL_MS` overrides it (`0`: no thread). What the thread holds is
    /// capped by [`set_max_buffered_events`].
    #[must_use]
    pub fn collect_interval(mut self, interval: Option<Duration>) -> Self {
        self.collect_interval = interval.filter(|i| !i.is_zero());
        self
    }

    /// Whether the guard keeps quiet at exit. By default, when it is dropped it says on stderr
    /// which files it wrote, how many spans they hold and how many events were dropped (with the
    /// setting that avoids drops); quiet, it says nothing unless a file could not be written.
    /// `PROFILER_QUIET` overrides it. [`ProfilerGuard::finish`] never prints: it returns the paths.
    #[must_use]
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// Whether the background collector streams what it drains to a native Perfetto trace while
    /// the program runs (default: on, to `<output>.perfetto-trace`). Streaming keeps memory
    /// bounded by the rings however long the run, and the file usable however the run ends: a
    /// clean exit, a panic, `process::exit`, SIGINT, SIGTERM or SIGHUP complete it; an `abort` or
    /// `SIGKILL` loses at most the last collect interval. The formats of
    /// [`formats`](Self::formats) are still written at a clean exit, converted from the stream.
    /// Off, the run is kept in memory until the flush, as [`flush`] returns it.
    /// One stream per process: a guard made while another guard's stream is open does not stream
    /// (its calls go to the open stream, and its own files hold no spans).
    /// `PROFILER_STREAM` overrides it: `0`/`off` turns it off, `1`/`on` on, anything else is the
    /// path of the file. Streaming needs the background collector: with
    /// [`collect_interval`](Self::collect_interval) `None` it uses the default interval.
    #[must_use]
    pub fn stream(mut self, on: bool) -> Self {
        self.stream = if on { Stream::Beside } else { Stream::Off };
        self
    }

    /// Streams to `path` instead of `<output>.perfetto-trace` (and turns streaming on).
    #[must_use]
    pub fn stream_to(mut self, path: impl AsRef<Path>) -> Self {
        self.stream = Stream::To(path.as_ref().to_owned());
        self
    }

    /// Streams *and* keeps every drained event in memory, as without streaming, for
    /// [`flush`]: the stream's check against the in-memory path (tests), or a small run that
    /// wants both. Memory then grows with the run, which streaming is there to avoid. The guard
    /// does not flush at its end: the events stay for the caller's `flush()` after
    /// [`ProfilerGuard::finish`] (or the drop), and the formats are made from the streamed file.
    #[doc(hidden)]
    #[must_use]
    pub fn stream_keep_in_memory(mut self, keep: bool) -> Self {
        self.stream_keep = keep;
        self
    }

    /// Whether SIGINT, SIGTERM and SIGHUP complete the streamed file before the signal takes its
    /// ordinary course (default: on). A program that handles these signals itself can opt out
    /// (a handler installed before [`init`](Self::init) is called after ours anyway, and then the
    /// program decides whether to end). `PROFILER_SIGNALS=0` overrides it.
    #[must_use]
    pub fn signals(mut self, on: bool) -> Self {
        self.signals = on;
        self
    }

    /// The streamed trace's path, `None` when streaming is off (or profiling is compiled out).
    pub fn stream_path(&self) -> Option<PathBuf> {
        if !cfg!(feature = "enable") {
            return None;
        }
        match &self.stream {
            Stream::Off => None,
            Stream::To(path) => Some(path.clone()),
            Stream::Beside => {
                let mut name = self.output.clone().into_os_string();
                name.push(".perfetto-trace");
                Some(PathBuf::from(name))
            }
        }
    }

    /// Applies the configuration and the environment, starts the background collector, and
    /// returns the guard that writes the files when dropped (or when [`ProfilerGuard::finish`] is
    /// called).
    ///
    /// A variable whose value names nothing valid (`PROFILER_FORMATS=bogus`) is reported on
    /// stderr, naming the valid values, and the configured setting is kept: the program still
    /// writes its profile, in the formats of [`formats`](Self::formats) (a typo in the environment
    /// should neither cost a run its profile nor stop a program, which may be a service). The
    /// message at exit then lists the files actually written. To fail instead, use
    /// [`try_init`](Self::try_init).
    pub fn init(mut self) -> ProfilerGuard {
        if let Err(e) = self.apply_environment() {
            let kept: Vec<&str> = self.formats.iter().map(|f| f.name()).collect();
            // The one error of the set-up that has no caller to go to: `init` returns a guard.
            eprintln!("profiler: {e}; writing {} instead", kept.join(", "));
        }
        self.start()
    }

    /// As [`init`](Self::init), but a variable of the environment that names nothing valid is an
    /// error, and then nothing is started.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownFormat`] when `PROFILER_FORMATS` names a format that does not exist
    /// (or that needs a feature this build lacks).
    ///
    /// # Examples
    ///
    /// ```
    /// # use profiler_runtime::Config;
    /// # let dir = std::env::temp_dir().join("profiler-doc-try-init");
    /// let guard = Config::new().output(dir.join("run")).try_init()?;
    /// # drop(guard);
    /// # Ok::<(), profiler_runtime::ConfigError>(())
    /// ```
    pub fn try_init(mut self) -> Result<ProfilerGuard, ConfigError> {
        self.apply_environment()?;
        Ok(self.start())
    }

    /// Overrides the configuration with the environment. Every valid variable is applied; the
    /// first invalid one is returned, its setting left as configured.
    fn apply_environment(&mut self) -> Result<(), ConfigError> {
        if let Some(prefix) = std::env::var_os("PROFILER_OUTPUT").filter(|v| !v.is_empty()) {
            self.output = PathBuf::from(prefix);
        }
        if let Ok(ms) = std::env::var("PROFILER_COLLECT_INTERVAL_MS") {
            if let Ok(ms) = ms.trim().parse::<u64>() {
                self.collect_interval = Some(Duration::from_millis(ms)).filter(|i| !i.is_zero());
            }
        }
        if let Some(quiet) = env_flag("PROFILER_QUIET") {
            self.quiet = quiet;
        }
        if let Some(value) = std::env::var_os("PROFILER_STREAM").filter(|v| !v.is_empty()) {
            let text = value.to_string_lossy().trim().to_ascii_lowercase();
            self.stream = match text.as_str() {
                "0" | "off" | "false" | "no" => Stream::Off,
                "1" | "on" | "true" | "yes" => Stream::Beside,
                _ => Stream::To(PathBuf::from(value)),
            };
        }
        if let Some(signals) = env_flag("PROFILER_SIGNALS") {
            self.signals = signals;
        }
        // Last, being the one that can fail: the others are applied whatever becomes of it.
        if let Ok(list) = std::env::var("PROFILER_FORMATS") {
            if let Some(formats) = parse_formats(&list)? {
                self.formats = formats;
            }
        }
        Ok(())
    }

    /// Starts recording as configured: buffer size, the switch, the background collector.
    fn start(self) -> ProfilerGuard {
        if let Some(events) = self.buffer_events {
            set_buffer_capacity(events);
        }
        if self
            .enabled
            .or(env_flag("PROFILER_ENABLED"))
            .unwrap_or(true)
        {
            enable();
        } else {
            disable();
        }
        let stream = self.start_stream();
        let streaming = stream == StreamStart::Owned;
        // With profiling compiled out nothing records, so there is nothing to drain. Streaming
        // needs the collector whatever the interval setting; a guard whose calls go to another
        // guard's stream leaves the draining to that guard's collector.
        let interval = match stream {
            StreamStart::Owned => Some(self.collect_interval.unwrap_or(DEFAULT_COLLECT_INTERVAL)),
            StreamStart::Joined => None,
            StreamStart::No => self.collect_interval,
        };
        let collector = interval
            .filter(|_| cfg!(feature = "enable"))
            .and_then(|i| BackgroundCollector::start(i, streaming));
        // The signals are handled only once a collector is there to complete the file: a handler
        // with no collector would swallow Ctrl-C.
        #[cfg(feature = "stream")]
        if streaming && collector.is_some() && self.signals {
            stream::endings::install_signals();
        }
        ProfilerGuard {
            config: self,
            finished: false,
            collector,
            streaming,
        }
    }

    /// Opens the streamed file, if streaming, with its exit and signal hooks. A file that cannot
    /// be created is reported and the run is kept in memory instead.
    #[cfg(feature = "stream")]
    fn start_stream(&self) -> StreamStart {
        let Some(path) = self.stream_path() else {
            return StreamStart::No;
        };
        stream::reset();
        if stream::is_active() {
            // Another guard's stream is open: one stream per process, and this guard's calls go
            // to it (its own files then hold no spans).
            return StreamStart::Joined;
        }
        match stream::start(&path, self.stream_keep) {
            Ok(()) => {
                stream::endings::install_at_exit();
                STREAM_QUIET.store(self.quiet, std::sync::atomic::Ordering::Relaxed);
                StreamStart::Owned
            }
            Err(e) => {
                eprintln!(
                    "profiler: cannot stream to {}: {e}; keeping the run in memory until the flush",
                    path.display()
                );
                StreamStart::No
            }
        }
    }

    #[cfg(not(feature = "stream"))]
    #[allow(clippy::unused_self)] // the same signature as the streaming build's
    fn start_stream(&self) -> StreamStart {
        StreamStart::No
    }

    /// The files this configuration writes, one per format.
    pub fn output_paths(&self) -> Vec<PathBuf> {
        self.formats
            .iter()
            .map(|f| {
                let mut name = self.output.clone().into_os_string();
                name.push(f.extensions()[0]);
                PathBuf::from(name)
            })
            .collect()
    }

    /// Each file with its format.
    fn files(&self) -> impl Iterator<Item = (PathBuf, Format)> + '_ {
        self.output_paths()
            .into_iter()
            .zip(self.formats.iter().copied())
    }
}

/// A yes/no variable: `0`, `false`, `off` or `no` (any case) is no, anything else yes; unset or
/// empty, `None`.
fn env_flag(var: &str) -> Option<bool> {
    let value = std::env::var(var).ok()?;
    let value = value.trim().to_ascii_lowercase();
    if value.is_empty() {
        return None;
    }
    Some(!matches!(value.as_str(), "0" | "false" | "off" | "no"))
}

/// The formats of a `PROFILER_FORMATS` value: names separated by commas, any case, duplicates
/// written once. `None` when it names none (empty, or only commas): that counts as unset.
fn parse_formats(list: &str) -> Result<Option<Vec<Format>>, ConfigError> {
    let mut formats = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let format = Format::from_name(name).ok_or_else(|| ConfigError::UnknownFormat {
            value: list.to_owned(),
            name: name.to_owned(),
        })?;
        if !formats.contains(&format) {
            formats.push(format);
        }
    }
    Ok(Some(formats).filter(|f| !f.is_empty()))
}

/// Why [`Config::try_init`] refused the environment. [`Config::init`] prints it on stderr and
/// keeps the configured setting instead.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `PROFILER_FORMATS` names a format that does not exist, or that needs a feature this build
    /// lacks (`flamegraph`, `icicle`; `json`, `csv`, `folded` without `analysis`).
    UnknownFormat {
        /// The variable's whole value.
        value: String,
        /// The first name in it that is not a format.
        name: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownFormat { value, name } => {
                let valid: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                write!(f, "PROFILER_FORMATS={value:?}: unknown format `{name}`")?;
                match name.to_ascii_lowercase().as_str() {
                    "flamegraph" | "icicle" if cfg!(not(feature = "flamegraph")) => write!(
                        f,
                        " (it needs the `flamegraph` feature of profiler-runtime, off in this build)"
                    )?,
                    "json" | "csv" | "folded" if cfg!(not(feature = "analysis")) => write!(
                        f,
                        " (it needs the `analysis` feature of profiler-runtime, which `enable` \
                         turns on, off in this build)"
                    )?,
                    _ => {}
                }
                write!(
                    f,
                    "; valid formats, separated by commas: {}",
                    valid.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Writes the profile files when the program ends: returned by [`init`] and [`Config::init`].
/// Keep it alive in `main` (`let _profiler = profiler_runtime::init();`).
#[derive(Debug)]
#[must_use = "the files are written when the guard is dropped; bind it with `let _profiler = ...`"]
pub struct ProfilerGuard {
    config: Config,
    finished: bool,
    collector: Option<BackgroundCollector>,
    /// Whether this guard streams to `config.stream_path()`.
    #[cfg_attr(not(feature = "stream"), allow(dead_code))]
    streaming: bool,
}

/// Above this many streamed events the guard writes no other format at exit (a Chrome trace of
/// 50 M events is about 6 GB, beyond what a viewer opens): `profiler convert` makes them from the
/// streamed file, a part at a time if need be.
#[cfg(feature = "stream")]
const MAX_DERIVED_EVENTS: u64 = 50_000_000;

/// The thread that drains the rings every [`Config::collect_interval`] until its guard ends.
#[derive(Debug)]
struct BackgroundCollector {
    /// Dropped to stop the thread.
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
    /// Whether it streams to the file (and stops through `stream::endings::stop`).
    #[cfg_attr(not(feature = "stream"), allow(dead_code))]
    streaming: bool,
    /// Set to stop a streaming collector: its own, as two guards may each have one.
    #[cfg_attr(not(feature = "stream"), allow(dead_code))]
    stopping: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// The streaming collector: writes what the rings hold every interval until stopped; on a
/// signal, completes the file and lets the signal take its course.
#[cfg(feature = "stream")]
fn stream_loop(interval: Duration, stopping: &std::sync::atomic::AtomicBool) {
    use stream::endings::{self, Wake};
    loop {
        match endings::wait(interval, stopping) {
            Wake::Timeout => {
                stream::collect();
            }
            Wake::Stop => return,
            Wake::Signal(sig) => {
                if endings::ends_process(sig) {
                    if let Some(report) = stream::finish() {
                        print_stream_report(&report, Some(endings::signal_name(sig)));
                    }
                    endings::reraise(sig);
                } else {
                    stream::checkpoint();
                }
            }
        }
    }
}

/// Whether the guard keeps quiet, for the messages of the exit hooks.
#[cfg(feature = "stream")]
static STREAM_QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// What a completed stream wrote (nothing without the `stream` feature).
#[cfg(feature = "stream")]
type StreamEnd = stream::Report;
#[cfg(not(feature = "stream"))]
#[derive(Debug)]
enum StreamEnd {}

impl StreamEnd {
    #[cfg(feature = "stream")]
    fn exit_line(&self) -> exit_report::Streamed<'_> {
        exit_report::Streamed {
            path: &self.path,
            events: self.written.events,
            bytes: self.written.file_bytes,
            error: self.error.as_deref().map(|e| (e, self.unwritten)),
        }
    }

    #[cfg(not(feature = "stream"))]
    fn exit_line(&self) -> exit_report::Streamed<'_> {
        match *self {}
    }
}

/// What a stream completed outside the guard (a signal, `process::exit`) says on stderr.
#[cfg(feature = "stream")]
fn print_stream_report(report: &stream::Report, cause: Option<&str>) {
    if let Some(e) = &report.error {
        eprintln!(
            "profiler: writing {} failed ({e}): {} events not written",
            report.path.display(),
            report.unwritten
        );
    } else if !STREAM_QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        let cause = cause.map_or(String::new(), |c| format!(" at {c}"));
        eprintln!(
            "profiler: completed {}{cause} ({} events)",
            report.path.display(),
            report.written.events
        );
    }
}

/// The `atexit` hook: `process::exit` (or a return from `main` that skipped the guard) completes
/// the streamed file. Never unwinds.
#[cfg(feature = "stream")]
pub(crate) fn stream_exit_hook() {
    let _ = std::panic::catch_unwind(|| {
        if stream::is_active() {
            if let Some(report) = stream::finish() {
                print_stream_report(&report, Some("exit"));
            }
        }
    });
}

impl BackgroundCollector {
    fn start(interval: Duration, streaming: bool) -> Option<Self> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        #[cfg(feature = "stream")]
        let own = std::sync::Arc::clone(&stopping);
        let spawned = std::thread::Builder::new()
            .name("profiler-collector".into())
            .spawn(move || {
                #[cfg(feature = "stream")]
                if streaming {
                    return stream_loop(interval, &own);
                }
                let _ = streaming;
                // Wakes every interval until the sender is dropped (or sends).
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(interval)
                {
                    drain();
                }
            });
        match spawned {
            Ok(thread) => Some(BackgroundCollector {
                stop,
                thread,
                streaming,
                stopping,
            }),
            Err(e) => {
                eprintln!(
                    "profiler: no background collector ({e}); events stay in the rings until the flush"
                );
                None
            }
        }
    }

    fn stop(self) {
        #[cfg(feature = "stream")]
        if self.streaming {
            stream::endings::stop(&self.stopping);
        }
        drop(self.stop);
        // The thread only drains; it cannot panic short of a bug, and then the flush still works.
        let _ = self.thread.join();
    }
}

impl ProfilerGuard {
    /// Flushes and writes the files now, returning their paths. Prints nothing (the message of
    /// [`Config::quiet`] is the guard's at exit, when there is no caller left to tell).
    ///
    /// Each file replaces the one of an earlier run only once it is complete and on disk, so a
    /// failure (a full disk, a read-only or missing folder) never leaves a partial file.
    ///
    /// # Errors
    ///
    /// [`ExportFilesError`](export::ExportFilesError) with every file that could not be written
    /// and the ones that were: every format is attempted.
    ///
    /// # A lost profile as a failing exit
    ///
    /// A guard dropped at exit reports a file it could not write on stderr, but the program
    /// still exits with 0: a `Drop` cannot change the exit code. Where a missing profile must fail
    /// the run (a CI job, a benchmark script), call `finish` at the end of `main` and exit
    /// non-zero on its error:
    ///
    /// ```no_run
    /// use std::process::ExitCode;
    ///
    /// fn main() -> ExitCode {
    ///     let profiler = profiler_runtime::init();
    ///     // ... the workload ...
    ///     match profiler.finish() {
    ///         Ok(_) => ExitCode::SUCCESS,
    ///         Err(e) => {
    ///             eprintln!("error: {e}"); // one line per file not written
    ///             ExitCode::FAILURE
    ///         }
    ///     }
    /// }
    /// ```
    ///
    /// `main` can also return the error (`fn main() -> Result<(), Box<dyn std::error::Error>>`
    /// and `profiler.finish()?;`); Rust then prints its `Debug` form and exits with 1.
    pub fn finish(mut self) -> Result<Vec<PathBuf>, export::ExportFilesError> {
        self.finished = true;
        if let Some(collector) = self.collector.take() {
            collector.stop();
        }
        let (profile, _, _) = self.final_profile();
        export::ExportFilesError::collect(write_files(&profile, self.config.files()))
    }

    /// The run's profile at its end: with streaming, the completed file read back (what the
    /// other formats are made from); without, the flush. With it, what was streamed, and notes
    /// on what could not be done.
    #[cfg_attr(not(feature = "stream"), allow(clippy::unused_self))]
    fn final_profile(&self) -> (Profile, Option<StreamEnd>, Vec<String>) {
        #[cfg_attr(not(feature = "stream"), allow(unused_mut))]
        let mut notes = Vec::new();
        #[cfg(feature = "stream")]
        if self.streaming {
            if let Some(report) = stream::finish() {
                let mut profile = None;
                let keep = self.config.stream_keep;
                if self.config.formats.is_empty() && !keep {
                } else if report.written.events > MAX_DERIVED_EVENTS {
                    notes.push(format!(
                        "{} events streamed: too many to write the other formats at exit; make \
                         them with `profiler convert {} OUT`",
                        report.written.events,
                        report.path.display()
                    ));
                } else {
                    match std::fs::File::open(&report.path)
                        .map_err(|e| e.to_string())
                        .and_then(|f| import::read_perfetto(f, u64::MAX).map_err(|e| e.to_string()))
                    {
                        Ok(p) => profile = Some(p),
                        Err(e) => notes.push(format!(
                            "cannot read back {} for the other formats: {e}",
                            report.path.display()
                        )),
                    }
                }
                // Kept in memory: what was streamed stays for the caller's flush.
                if keep {
                    if let Some(profile) = profile.take() {
                        return (profile, Some(report), notes);
                    }
                }
                // Whatever the rings still hold (nothing, short of a thread that recorded after
                // the last drain) goes to the flush.
                let flushed = flush();
                return (profile.unwrap_or(flushed), Some(report), notes);
            }
        }
        (flush(), None, notes)
    }

    /// The configuration in force (after the environment was applied).
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl Drop for ProfilerGuard {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let collector = self.collector.take();
        let collected = collector.is_some();
        if let Some(collector) = collector {
            collector.stop();
        }
        let (profile, stream_end, notes) = self.final_profile();
        let files = write_files(&profile, self.config.files());
        // At program exit there is no caller left to return the paths or the errors to: this is
        // the one place the library prints, in one block.
        let report = exit_report::ExitReport {
            files: &files,
            spans: profile.span_count(),
            threads: profile.threads.len(),
            dropped_events: profile.dropped_events,
            collected,
            buffer_events: buffer_capacity(),
            max_buffered_events: max_buffered_events(),
            quiet: self.config.quiet,
            streamed: stream_end.as_ref().map(StreamEnd::exit_line),
            notes: &notes,
        };
        let text = report.to_string();
        if !text.is_empty() {
            eprint!("{text}");
        }
    }
}

/// Writes `profile` to each file in its format, each whatever became of the others, creating
/// their folders first.
pub(crate) fn write_files(
    profile: &Profile,
    files: impl IntoIterator<Item = (PathBuf, Format)>,
) -> Vec<(PathBuf, Result<(), ExportError>)> {
    // The folder last created, and its error: the files of one set share their folder.
    let mut dir_created: Option<(PathBuf, Option<std::io::Error>)> = None;
    files
        .into_iter()
        .map(|(path, format)| {
            let dir = path.parent().unwrap_or(Path::new(""));
            if !dir.as_os_str().is_empty() && dir_created.as_ref().is_none_or(|(d, _)| d != dir) {
                dir_created = Some((dir.to_owned(), std::fs::create_dir_all(dir).err()));
            }
            let result = match &dir_created {
                // Each file gets the directory's error: creating it would only say "not found".
                Some((dir, Some(e))) if path.parent() == Some(dir.as_path()) => {
                    Err(ExportError::Io {
                        path: path.clone(),
                        source: std::io::Error::new(
                            e.kind(),
                            format!("cannot create the directory {}: {e}", dir.display()),
                        ),
                    })
                }
                _ => export::export_profile(profile, &path, Some(format)),
            };
            (path, result)
        })
        .collect()
}

/// [`Config::new`]`.init()`: writes `profile.trace.json` and `profile.speedscope.json` (or what
/// the environment says) when the returned guard is dropped.
pub fn init() -> ProfilerGuard {
    Config::new().init()
}

/// Not public API: what the code generated by `#[profile]` and the macros uses. Changes without
/// notice.
#[doc(hidden)]
pub mod __private {
    pub use crate::record::future::ProfiledFuture;
    pub use crate::record::recorder::SpanGuard;
    pub use crate::record::registry::{FunctionInfo, FunctionKind, Registration};
    pub use inventory;

    /// The streamed file's totals so far, or at its completion (benchmarks): events written,
    /// bytes in the file, events dropped. `None` when no stream was started.
    #[cfg(feature = "stream")]
    pub fn stream_totals() -> Option<(u64, u64, u64)> {
        crate::stream::totals()
    }

    /// The checks of `profile_scope!`'s name, at compile time on both sides of the `enable`
    /// feature: a `&str` (a number does not type-check), not empty.
    pub const fn scope_name(name: &'static str) -> &'static str {
        assert!(
            !name.is_empty(),
            "`profile_scope!` needs a name: the string must not be empty"
        );
        name
    }

    /// Enters a function or scope site.
    #[inline(always)]
    pub fn enter(site: &'static FunctionInfo) -> SpanGuard {
        crate::record::recorder::enter(site)
    }

    /// Enters a site that has a receiver type (`type_name` is `core::any::type_name::<Self>`):
    /// a trait's default method records under the receiver type's own site.
    #[inline(always)]
    pub fn enter_method(site: &'static FunctionInfo, type_name: fn() -> &'static str) -> SpanGuard {
        crate::record::recorder::enter_method(site, type_name)
    }

    /// Wraps an async body. `O` pins the body's output type to the declared return type.
    #[inline(always)]
    pub fn instrument<O, F: core::future::Future<Output = O>>(
        site: &'static FunctionInfo,
        future: F,
    ) -> ProfiledFuture<F> {
        ProfiledFuture::new(site, future)
    }

    /// Like [`instrument`], for a site that has a receiver type (see [`enter_method`]).
    #[inline(always)]
    pub fn instrument_method<O, F: core::future::Future<Output = O>>(
        site: &'static FunctionInfo,
        type_name: fn() -> &'static str,
        future: F,
    ) -> ProfiledFuture<F> {
        ProfiledFuture::new(site.for_receiver(type_name), future)
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_formats, ConfigError, Format};

    #[test]
    #[cfg(feature = "analysis")]
    fn format_lists_ignore_case_spaces_and_repeats() {
        assert_eq!(
            parse_formats(" CSV,json ,csv,").unwrap(),
            Some(vec![Format::Csv, Format::Json])
        );
        assert_eq!(parse_formats("").unwrap(), None);
        assert_eq!(parse_formats(" , ").unwrap(), None);
    }

    #[test]
    fn an_unknown_format_is_named_with_the_valid_ones() {
        let e = parse_formats("chrome,bogus,xml").unwrap_err();
        assert_eq!(
            e,
            ConfigError::UnknownFormat {
                value: "chrome,bogus,xml".to_owned(),
                name: "bogus".to_owned()
            }
        );
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(
            e.to_string(),
            format!(
                "PROFILER_FORMATS=\"chrome,bogus,xml\": unknown format `bogus`; valid formats, separated by commas: {}",
                names.join(", ")
            )
        );
    }

    #[cfg(not(feature = "flamegraph"))]
    #[test]
    fn a_format_of_a_missing_feature_names_the_feature() {
        let e = parse_formats("flamegraph").unwrap_err();
        assert!(
            e.to_string().contains("needs the `flamegraph` feature"),
            "{e}"
        );
    }
}
