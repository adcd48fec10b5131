//! Baselines and the regression gate: save the results of several whole runs of a workload,
//! compare new runs with them, and fail a CI job when a function got slower or is called more
//! often, or when it breaks a budget.
//!
//! The gate sits on top, beside production mode: it reads profiles through [`import`](crate::import)
//! and analyses them with [`analyze`](crate::analyze); nothing below uses it (feature `baseline`).
//!
//! The unit of replication is a *run* (one process), not a call: calls within one process share
//! its caches, its frequency and its neighbours, so treating them as independent samples makes
//! 2% noise look "significant". A [`Baseline`] keeps every run's per-function results, and
//! [`compare`] tests new runs against them:
//!
//! 1. **Call counts.** Exact for a deterministic workload: more calls than in every baseline run
//!    is a regression with certainty. Functions whose count varies between baseline runs are
//!    marked non-deterministic and skip this check.
//! 2. **Time.** Per run, the mean time per call. A function is flagged only when the lower
//!    confidence bound of new/baseline (Welch's t on log-times, over runs) is above
//!    `1 + threshold`, the threshold being the larger of the user's and the function's own
//!    run-to-run noise in the baseline. Holm's (default) or Benjamini-Hochberg's procedure keeps
//!    false alarms in check across functions. Functions too short to measure are skipped, and
//!    listed as such.
//! 3. **Budgets.** Absolute limits per function ([`Budgets`]), from `#[profile(budget = "2ms")]`
//!    or a budgets file kept apart from the baseline, checked on p50, p99 or the mean.
//! 4. **Presence.** A function called in the baseline and in none of the new runs fails the gate
//!    (unless [`CompareOptions::allow_missing`] names it), and so do new runs that called no
//!    function at all (a build without `enable`): a gate that tests nothing must not pass.
//!
//! # Examples
//!
//! ```
//! use profiler_runtime::baseline::{compare, Baseline, CompareOptions, Fingerprint, Run, RunFunction};
//!
//! let run = |ns: u64, calls: u64| Run::new(vec![RunFunction::from_totals("parse", calls, ns * calls)]);
//! let fingerprint = Fingerprint::current("doc");
//! let base = Baseline::from_runs(fingerprint.clone(), &[run(1000, 50), run(1010, 50), run(990, 50)])?;
//! let new = Baseline::from_runs(fingerprint, &[run(1000, 80), run(1005, 80), run(995, 80)])?;
//! let result = compare(&base, &new, &CompareOptions::default());
//! assert!(result.has_regressions()); // 50 calls became 80
//! # Ok::<(), profiler_runtime::baseline::BaselineError>(())
//! ```
//!
//! # The baseline file, version 1
//!
//! ```text
//! {
//!   "schema": "profiler-baseline",           always this string
//!   "version": 1,                            bumped on any change a version-1 reader cannot skip
//!   "created_unix_s": 1795595063,
//!   "fingerprint": { "tool", "workload", "machine": {cpu_model, cores, memory_mib, os},
//!                    "build": {rustc, target, profile, features}, "source": {commit, dirty} },
//!   "runs": 10,
//!   "functions": [ { "name": "app::parse", "kind": "function",
//!                    "calls": [..], "total_ns": [..], "self_ns": [..],
//!                    "mean_ns": [..], "p50_ns": [..], "p99_ns": [..] } ]   one value per run
//! }
//! ```
//!
//! Every run's values are kept, so the statistics can be recomputed with other options later.
//! Budgets are not stored here: regenerating a baseline must never erase them.

mod abba;
mod budget;
mod detect;
mod fingerprint;
mod render;

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::analyze::report::{ReadError, Report};
use crate::analyze::stats::{function_stats, FunctionStats};
use crate::collect::profile::Profile;
use crate::import::load_saved;

pub use abba::{
    run_alternately, run_repeatedly, AbbaError, AbbaProblem, AlternatingRuns, RunCommand,
    OUTPUT_ENV,
};
pub use budget::{parse_duration, Budget, BudgetError, Budgets, Statistic};
pub use detect::{
    compare, Alert, AlertHook, BudgetViolation, CallCountChange, CompareOptions, Comparison,
    Correction, FunctionVerdict, Metric, Regression, SkipReason, TimeResult, Verdict,
};
pub use fingerprint::{Fingerprint, FingerprintDifference, MachineInfo, SourceInfo};
pub use render::OutputFormat;

/// The value of the `schema` field of a baseline file.
pub const BASELINE_SCHEMA: &str = "profiler-baseline";

/// The newest baseline file version this crate writes and reads.
pub const BASELINE_VERSION: u32 = 1;

/// The tool named in fingerprints: `profiler-runtime <version>`.
pub const TOOL: &str = concat!("profiler-runtime ", env!("CARGO_PKG_VERSION"));

/// One function's results in one run: the input of [`Baseline::from_runs`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunFunction {
    /// The function's full name.
    pub name: String,
    /// `function`, `async`, `scope` or `context`.
    pub kind: String,
    /// Calls in the run.
    pub calls: u64,
    /// Inclusive time in the run, ns.
    pub total_ns: u64,
    /// Exclusive time in the run, ns.
    pub self_ns: u64,
    /// Mean duration of a call, ns.
    pub mean_ns: f64,
    /// Median duration of a call, ns.
    pub p50_ns: u64,
    /// 99th percentile of call durations, ns.
    pub p99_ns: u64,
    /// The budget of `#[profile(budget = "...")]`, ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_ns: Option<u64>,
}

impl RunFunction {
    /// One function's statistics in one run.
    pub fn from_stats(stats: &FunctionStats) -> RunFunction {
        RunFunction {
            name: stats.name.clone(),
            kind: stats.kind.as_str().to_owned(),
            calls: stats.calls,
            total_ns: stats.total_ns,
            self_ns: stats.self_ns,
            mean_ns: stats.mean_ns,
            p50_ns: stats.p50_ns,
            p99_ns: stats.p99_ns,
            budget_ns: stats.budget_ns,
        }
    }

    /// A function known only by its count and total time (self time = total, percentiles =
    /// mean); for tests and hand-made data.
    pub fn from_totals(name: &str, calls: u64, total_ns: u64) -> RunFunction {
        let mean = if calls == 0 {
            0.0
        } else {
            total_ns as f64 / calls as f64
        };
        RunFunction {
            name: name.to_owned(),
            kind: "function".to_owned(),
            calls,
            total_ns,
            self_ns: total_ns,
            mean_ns: mean,
            p50_ns: mean.round() as u64,
            p99_ns: mean.round() as u64,
            budget_ns: None,
        }
    }
}

/// The per-function results of one whole run (one process) of the workload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// One entry per function, called or not.
    pub functions: Vec<RunFunction>,
    /// How the run's program was built, when its profile says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<crate::BuildInfo>,
    /// The name of the program that ran, when its profile says so: what the `profiler` tool
    /// names the workload by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_name: Option<String>,
}

impl Run {
    /// A run with these functions.
    pub fn new(functions: Vec<RunFunction>) -> Run {
        Run {
            functions,
            build: None,
            process_name: None,
        }
    }

    /// The functions of an analysed profile (e.g. one read back from a profile JSON).
    pub fn from_report(report: &Report) -> Run {
        Run {
            build: report.run.build.clone(),
            process_name: Some(report.run.process_name.clone()).filter(|n| !n.is_empty()),
            ..Run::from_stats(&report.functions)
        }
    }

    /// The functions of a merged profile, e.g. `Run::from_profile(&profiler_runtime::flush())`
    /// at the end of one run.
    pub fn from_profile(profile: &Profile) -> Run {
        Run {
            build: profile.build.clone(),
            process_name: Some(profile.process_name.clone()).filter(|n| !n.is_empty()),
            ..Run::from_stats(&function_stats(profile))
        }
    }

    /// Reads one run from a saved profile: a profile JSON or a Chrome trace.
    ///
    /// # Errors
    ///
    /// The reader's error, naming the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Run, ReadError> {
        Ok(Run::from_report(&load_saved(path)?.to_report()))
    }

    fn from_stats(stats: &[FunctionStats]) -> Run {
        Run::new(stats.iter().map(RunFunction::from_stats).collect())
    }
}

/// One function across the runs of a [`Baseline`]: one value per run in each vector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionRuns {
    /// The function's full name.
    pub name: String,
    /// `function`, `async`, `scope` or `context`.
    pub kind: String,
    /// Calls per run (0 in a run where it was not seen).
    pub calls: Vec<u64>,
    /// Inclusive time per run, ns.
    pub total_ns: Vec<u64>,
    /// Exclusive time per run, ns.
    pub self_ns: Vec<u64>,
    /// Mean call duration per run, ns.
    pub mean_ns: Vec<f64>,
    /// Median call duration per run, ns.
    pub p50_ns: Vec<u64>,
    /// 99th percentile of call durations per run, ns.
    pub p99_ns: Vec<u64>,
    /// The budget of `#[profile(budget = "...")]` in the runs, ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_ns: Option<u64>,
}

impl FunctionRuns {
    /// Whether the call count was the same in every run.
    pub fn deterministic_calls(&self) -> bool {
        self.calls.windows(2).all(|w| w[0] == w[1])
    }
}

/// The results of several runs of one workload, with what is needed to judge whether other runs
/// are comparable. Saved as JSON ([module docs](self)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// When the baseline was made, seconds since 1970-01-01 UTC.
    pub created_unix_s: u64,
    /// Machine, build, source and workload.
    pub fingerprint: Fingerprint,
    /// Number of runs.
    pub runs: usize,
    /// Every function seen in any run, sorted by name.
    pub functions: Vec<FunctionRuns>,
}

impl Baseline {
    /// Gathers `runs` (each a whole process run of the workload). A function missing from a run
    /// counts as 0 calls and 0 time there.
    ///
    /// # Errors
    ///
    /// [`BaselineError::NoRuns`] when `runs` is empty, [`BaselineError::DuplicateFunction`] when
    /// a run names a function twice.
    pub fn from_runs(fingerprint: Fingerprint, runs: &[Run]) -> Result<Baseline, BaselineError> {
        if runs.is_empty() {
            return Err(BaselineError::NoRuns);
        }
        let n = runs.len();
        let mut functions: std::collections::BTreeMap<&str, FunctionRuns> =
            std::collections::BTreeMap::new();
        for (i, run) in runs.iter().enumerate() {
            for f in &run.functions {
                let entry = functions.entry(&f.name).or_insert_with(|| FunctionRuns {
                    name: f.name.clone(),
                    kind: f.kind.clone(),
                    calls: vec![0; n],
                    total_ns: vec![0; n],
                    self_ns: vec![0; n],
                    mean_ns: vec![0.0; n],
                    p50_ns: vec![0; n],
                    p99_ns: vec![0; n],
                    budget_ns: None,
                });
                if f.budget_ns.is_some() {
                    entry.budget_ns = f.budget_ns;
                }
                if entry.calls[i] != 0 || entry.total_ns[i] != 0 {
                    return Err(BaselineError::DuplicateFunction {
                        run: i,
                        name: f.name.clone(),
                    });
                }
                entry.calls[i] = f.calls;
                entry.total_ns[i] = f.total_ns;
                entry.self_ns[i] = f.self_ns;
                entry.mean_ns[i] = f.mean_ns;
                entry.p50_ns[i] = f.p50_ns;
                entry.p99_ns[i] = f.p99_ns;
            }
        }
        let created_unix_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Baseline {
            created_unix_s,
            fingerprint,
            runs: n,
            functions: functions.into_values().collect(),
        })
    }

    /// The function named `name`.
    pub fn function(&self, name: &str) -> Option<&FunctionRuns> {
        self.functions
            .binary_search_by(|f| f.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.functions[i])
    }

    /// Writes the baseline as JSON to `out`.
    ///
    /// # Errors
    ///
    /// The writer's error.
    pub fn write(&self, out: impl Write) -> io::Result<()> {
        let file = BaselineFile {
            schema: BASELINE_SCHEMA.to_owned(),
            version: BASELINE_VERSION,
            baseline: self.clone(),
        };
        serde_json::to_writer_pretty(out, &file).map_err(io::Error::from)
    }

    /// Writes the baseline to the file at `path` (missing directories are created). A baseline
    /// already there is replaced only once the new one is complete and on disk: if the save
    /// fails (a full disk), the old baseline is intact.
    ///
    /// # Errors
    ///
    /// [`BaselineError::Io`] naming the file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), BaselineError> {
        let path = path.as_ref();
        let io_err = |source| BaselineError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        crate::atomic_file::write(path, |out| self.write(out)).map_err(io_err)
    }

    /// Reads a baseline from `reader`; `path` only names the source in errors.
    ///
    /// # Errors
    ///
    /// [`BaselineError::Io`], [`Truncated`](BaselineError::Truncated),
    /// [`Malformed`](BaselineError::Malformed), [`WrongSchema`](BaselineError::WrongSchema),
    /// [`NewerVersion`](BaselineError::NewerVersion) or [`Invalid`](BaselineError::Invalid).
    pub fn read(reader: impl Read, path: &Path) -> Result<Baseline, BaselineError> {
        let value: serde_json::Value =
            serde_json::from_reader(reader).map_err(|e| match e.classify() {
                serde_json::error::Category::Eof => BaselineError::Truncated {
                    path: path.to_owned(),
                },
                serde_json::error::Category::Io => BaselineError::Io {
                    path: path.to_owned(),
                    source: e.into(),
                },
                _ => BaselineError::Malformed {
                    path: path.to_owned(),
                    message: e.to_string(),
                },
            })?;
        let schema = value.get("schema").and_then(serde_json::Value::as_str);
        if schema != Some(BASELINE_SCHEMA) {
            return Err(BaselineError::WrongSchema {
                path: path.to_owned(),
                found: schema.map(str::to_owned),
            });
        }
        let version = value.get("version").and_then(serde_json::Value::as_u64);
        match version {
            Some(v) if v > u64::from(BASELINE_VERSION) => {
                return Err(BaselineError::NewerVersion {
                    path: path.to_owned(),
                    found: v,
                })
            }
            Some(v) if v >= 1 => {}
            _ => {
                return Err(BaselineError::Malformed {
                    path: path.to_owned(),
                    message: "missing or invalid `version`".to_owned(),
                })
            }
        }
        let file: BaselineFile =
            serde_json::from_value(value).map_err(|e| BaselineError::Malformed {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        let baseline = file.baseline;
        baseline.check().map_err(|message| BaselineError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(baseline)
    }

    /// Reads the baseline file at `path`.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read); every error names the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Baseline, BaselineError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| BaselineError::Io {
            path: path.to_owned(),
            source,
        })?;
        Baseline::read(BufReader::new(file), path)
    }

    /// Checks what serde cannot: one value per run everywhere, sorted unique names.
    fn check(&self) -> Result<(), String> {
        if self.runs == 0 {
            return Err("`runs` is 0".to_owned());
        }
        for f in &self.functions {
            let lens = [
                f.calls.len(),
                f.total_ns.len(),
                f.self_ns.len(),
                f.mean_ns.len(),
                f.p50_ns.len(),
                f.p99_ns.len(),
            ];
            if lens.iter().any(|&l| l != self.runs) {
                return Err(format!(
                    "function `{}` has {lens:?} values but the baseline has {} runs",
                    f.name, self.runs
                ));
            }
        }
        if let Some(w) = self.functions.windows(2).find(|w| w[0].name >= w[1].name) {
            return Err(format!(
                "functions are not sorted and unique at `{}`",
                w[1].name
            ));
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct BaselineFile {
    schema: String,
    version: u32,
    #[serde(flatten)]
    baseline: Baseline,
}

/// Why a baseline could not be made, written or read.
#[derive(Debug)]
#[non_exhaustive]
pub enum BaselineError {
    /// [`Baseline::from_runs`] was given no run.
    NoRuns,
    /// A run named a function twice.
    DuplicateFunction {
        /// Index of the run.
        run: usize,
        /// The function.
        name: String,
    },
    /// The file could not be opened, read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file ends before the JSON document does.
    Truncated {
        /// The file.
        path: PathBuf,
    },
    /// The file is not valid JSON, or not a baseline of the expected shape.
    Malformed {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// The file is JSON but not a baseline (another `schema`, e.g. a profile).
    WrongSchema {
        /// The file.
        path: PathBuf,
        /// The `schema` found, if any.
        found: Option<String>,
    },
    /// The file was written by a newer version of the tool.
    NewerVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u64,
    },
    /// The file parses but contradicts itself.
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl fmt::Display for BaselineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BaselineError::NoRuns => write!(f, "a baseline needs at least one run"),
            BaselineError::DuplicateFunction { run, name } => {
                write!(f, "run {run} lists function `{name}` twice")
            }
            BaselineError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            BaselineError::Truncated { path } => write!(
                f,
                "{}: baseline file is truncated (the JSON document ends early)",
                path.display()
            ),
            BaselineError::Malformed { path, message } => {
                write!(f, "{}: not a valid baseline file: {message}", path.display())
            }
            BaselineError::WrongSchema { path, found } => match found {
                Some(s) => write!(
                    f,
                    "{}: not a baseline file (schema `{s}`, expected `{BASELINE_SCHEMA}`)",
                    path.display()
                ),
                None => write!(
                    f,
                    "{}: not a baseline file (no `schema` field, expected `{BASELINE_SCHEMA}`)",
                    path.display()
                ),
            },
            BaselineError::NewerVersion { path, found } => write!(
                f,
                "{}: baseline file version {found} is newer than this tool reads (up to {BASELINE_VERSION}); upgrade the profiler",
                path.display()
            ),
            BaselineError::Invalid { path, message } => {
                write!(f, "{}: invalid baseline: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for BaselineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BaselineError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Baseline {
        let runs = [
            Run::new(vec![
                RunFunction::from_totals("b", 2, 200),
                RunFunction::from_totals("a", 1, 100),
            ]),
            Run::new(vec![RunFunction::from_totals("a", 1, 110)]),
        ];
        Baseline::from_runs(Fingerprint::current("t"), &runs).unwrap()
    }

    #[test]
    fn from_runs_aligns_functions_by_name() {
        let b = sample();
        assert_eq!(b.runs, 2);
        let names: Vec<&str> = b.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(b.function("a").unwrap().total_ns, [100, 110]);
        assert_eq!(b.function("b").unwrap().calls, [2, 0]);
        assert!(b.function("a").unwrap().deterministic_calls());
        assert!(!b.function("b").unwrap().deterministic_calls());
    }

    #[test]
    fn round_trips_through_json() {
        let b = sample();
        let mut json = Vec::new();
        b.write(&mut json).unwrap();
        let back = Baseline::read(&json[..], Path::new("x.json")).unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn rejects_empty_and_duplicates() {
        let fp = Fingerprint::current("t");
        assert!(matches!(
            Baseline::from_runs(fp.clone(), &[]),
            Err(BaselineError::NoRuns)
        ));
        let run = Run::new(vec![
            RunFunction::from_totals("a", 1, 1),
            RunFunction::from_totals("a", 1, 1),
        ]);
        assert!(matches!(
            Baseline::from_runs(fp, &[run]),
            Err(BaselineError::DuplicateFunction { run: 0, .. })
        ));
    }
}
