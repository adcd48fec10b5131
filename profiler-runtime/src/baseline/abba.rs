//! Runs the baseline build and the new build alternately, A B B A A B B A ..., in the same job:
//! slow drifts of a shared machine (other tenants, thermal state, frequency) then touch both
//! builds alike instead of looking like a regression.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Run;

/// The variable that tells each run where to write its profile: a path prefix.
pub const OUTPUT_ENV: &str = "PROFILER_OUTPUT";

/// A command to run: the program and its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunCommand {
    /// The program (looked up on `PATH` when it has no `/`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl RunCommand {
    /// A command from its words: the program, then the arguments. `None` when `words` is empty.
    pub fn from_words(words: &[String]) -> Option<RunCommand> {
        let (program, args) = words.split_first()?;
        Some(RunCommand {
            program: program.clone(),
            args: args.to_vec(),
        })
    }
}

impl fmt::Display for RunCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.program)?;
        for a in &self.args {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

/// The runs of both commands, in the order each command ran.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlternatingRuns {
    /// Runs of command A (the baseline build).
    pub a: Vec<Run>,
    /// Runs of command B (the new build).
    pub b: Vec<Run>,
}

/// Runs `a` and `b` `runs` times each, alternately (A B, B A, A B, ...), after `warmup` discarded
/// runs of each. Each run's profile is written under `dir` (see below) and turned into
/// a [`Run`] by `load`.
///
/// # Errors
///
/// [`AbbaError`] naming the command and the run that failed.
///
/// # The protocol
///
/// Each run is one process of a command. The runner sets
///
/// - `PROFILER_OUTPUT` ([`OUTPUT_ENV`]) to a path prefix in a fresh, empty directory of its own,
/// - `PROFILER_FORMATS` to `json`,
/// - `PROFILER_QUIET` to `1`, so that the guard's message at exit does not bury the last lines of
///   a failed run's stderr, which the error quotes,
///
/// and after the process exits with status 0, reads the one `.json` file it left in that
/// directory: a profile JSON. A program that keeps a [`ProfilerGuard`](crate::ProfilerGuard)
/// alive in `main` (`let _profiler = profiler_runtime::init();`) does this by itself, writing
/// `$PROFILER_OUTPUT.json` at exit. Any other program may write the file itself. A non-zero exit
/// status, or no file, is an error: the comparison is not made.
pub fn run_alternately(
    a: &RunCommand,
    b: &RunCommand,
    runs: usize,
    warmup: usize,
    dir: &Path,
    load: &mut dyn FnMut(&Path) -> Result<Run, String>,
) -> Result<AlternatingRuns, AbbaError> {
    let mut out = AlternatingRuns::default();
    for i in 0..warmup {
        run_once(a, &dir.join(format!("warmup-a-{i}")), load)?;
        run_once(b, &dir.join(format!("warmup-b-{i}")), load)?;
    }
    for i in 0..runs {
        let run_a = |load: &mut dyn FnMut(&Path) -> Result<Run, String>| {
            run_once(a, &dir.join(format!("a-{i}")), load)
        };
        let run_b = |load: &mut dyn FnMut(&Path) -> Result<Run, String>| {
            run_once(b, &dir.join(format!("b-{i}")), load)
        };
        if i % 2 == 0 {
            out.a.push(run_a(load)?);
            out.b.push(run_b(load)?);
        } else {
            out.b.push(run_b(load)?);
            out.a.push(run_a(load)?);
        }
    }
    Ok(out)
}

/// Runs `command` `runs` times after `warmup` discarded runs, as [`run_alternately`] does for
/// one command: for a baseline made without a second build.
///
/// # Errors
///
/// [`AbbaError`] naming the run that failed.
pub fn run_repeatedly(
    command: &RunCommand,
    runs: usize,
    warmup: usize,
    dir: &Path,
    load: &mut dyn FnMut(&Path) -> Result<Run, String>,
) -> Result<Vec<Run>, AbbaError> {
    for i in 0..warmup {
        run_once(command, &dir.join(format!("warmup-{i}")), load)?;
    }
    (0..runs)
        .map(|i| run_once(command, &dir.join(format!("run-{i}")), load))
        .collect()
}

fn run_once(
    command: &RunCommand,
    dir: &Path,
    load: &mut dyn FnMut(&Path) -> Result<Run, String>,
) -> Result<Run, AbbaError> {
    let err = |problem: AbbaProblem| AbbaError {
        command: command.to_string(),
        dir: dir.to_owned(),
        problem,
    };
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| err(AbbaProblem::Io(e)))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| err(AbbaProblem::Io(e)))?;
    let output = Command::new(&command.program)
        .args(&command.args)
        .env(OUTPUT_ENV, dir.join("profile"))
        .env("PROFILER_FORMATS", "json")
        .env("PROFILER_QUIET", "1")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| err(AbbaProblem::Spawn(e)))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
        return Err(err(AbbaProblem::Failed {
            status: output.status.to_string(),
            stderr_tail: tail,
        }));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| err(AbbaProblem::Io(e)))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let [file] = files.as_slice() else {
        return Err(err(AbbaProblem::NoProfile { found: files.len() }));
    };
    load(file).map_err(|message| err(AbbaProblem::Load(message)))
}

/// A run of [`run_alternately`] that failed.
#[derive(Debug)]
pub struct AbbaError {
    /// The command.
    pub command: String,
    /// The run's directory.
    pub dir: PathBuf,
    /// What went wrong.
    pub problem: AbbaProblem,
}

/// What went wrong in one run.
#[derive(Debug)]
#[non_exhaustive]
pub enum AbbaProblem {
    /// The command could not be started.
    Spawn(std::io::Error),
    /// It exited with a failure status.
    Failed {
        /// The status.
        status: String,
        /// The last lines of its standard error.
        stderr_tail: String,
    },
    /// It did not leave exactly one `.json` file.
    NoProfile {
        /// How many it left.
        found: usize,
    },
    /// Its profile could not be read.
    Load(String),
    /// The run's directory could not be prepared or listed.
    Io(std::io::Error),
}

impl fmt::Display for AbbaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: ", self.command)?;
        match &self.problem {
            AbbaProblem::Spawn(e) => write!(f, "cannot start: {e}"),
            AbbaProblem::Failed {
                status,
                stderr_tail,
            } => write!(f, "failed ({status}): {stderr_tail}"),
            AbbaProblem::NoProfile { found } => write!(
                f,
                "expected one profile JSON in {} (written at ${OUTPUT_ENV}.json), found {found} .json files",
                self.dir.display()
            ),
            AbbaProblem::Load(message) => write!(f, "{message}"),
            AbbaProblem::Io(e) => write!(f, "{}: {e}", self.dir.display()),
        }
    }
}

impl std::error::Error for AbbaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.problem {
            AbbaProblem::Spawn(e) | AbbaProblem::Io(e) => Some(e),
            _ => None,
        }
    }
}
