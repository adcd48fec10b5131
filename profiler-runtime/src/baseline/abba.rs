//! Runs the baseline build and the new build alternately, A B B A A B B A ..., in the same job:
//! slow drifts of a shared machine (other tenants, thermal state, frequency) then touch both
//! builds alike instead of looking like a regression.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::Run;

/// The variable that tells each run where to write its profile: a path prefix.
pub const OUTPUT_ENV: &str = "PROFILER_OUTPUT";

/// A command to run: the program, its arguments, and how long one run may take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunCommand {
    /// The program (looked up on `PATH` when it has no `/`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The longest a run may take; past it the run is killed, with the processes it started,
    /// and is an error ([`AbbaProblem::TimedOut`]). `None`: no limit.
    pub timeout: Option<Duration>,
}

impl RunCommand {
    /// A command from its words: the program, then the arguments; no time limit. `None` when
    /// `words` is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use profiler_runtime::baseline::RunCommand;
    ///
    /// let words = ["./bench".to_owned(), "--quick".to_owned()];
    /// let command = RunCommand::from_words(&words)
    ///     .unwrap()
    ///     .with_timeout(Some(Duration::from_secs(60)));
    /// assert_eq!(command.to_string(), "./bench --quick");
    /// ```
    pub fn from_words(words: &[String]) -> Option<RunCommand> {
        let (program, args) = words.split_first()?;
        Some(RunCommand {
            program: program.clone(),
            args: args.to_vec(),
            timeout: None,
        })
    }

    /// The same command with this time limit per run (`None`: none).
    #[must_use]
    pub fn with_timeout(self, timeout: Option<Duration>) -> RunCommand {
        RunCommand { timeout, ..self }
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
/// - `PROFILER_STREAM` to `0`: the gate needs only the profile JSON, and a collector encoding and
///   writing a trace beside the workload would take CPU from it on a small machine,
///
/// and after the process exits with status 0, reads the one `.json` file it left in that
/// directory: a profile JSON. A program that keeps a [`ProfilerGuard`](crate::ProfilerGuard)
/// alive in `main` (`let _profiler = profiler_runtime::init();`) does this by itself, writing
/// `$PROFILER_OUTPUT.json` at exit. Any other program may write the file itself. A non-zero exit
/// status, or no file, is an error: the comparison is not made. So is a run that outlives its
/// command's [`timeout`](RunCommand::timeout): it is killed, with every process it started that
/// is still below it (found through `/proc` on Linux; elsewhere only the run's own process).
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
    let mut child = Command::new(&command.program)
        .args(&command.args)
        .env(OUTPUT_ENV, dir.join("profile"))
        .env("PROFILER_FORMATS", "json")
        .env("PROFILER_QUIET", "1")
        .env("PROFILER_STREAM", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(AbbaProblem::Spawn(e)))?;
    // Standard error is read on a thread while the run goes on: a run that fills the pipe would
    // otherwise block, and look hung.
    let mut stderr = child.stderr.take();
    let reader = std::thread::Builder::new()
        .name("profiler-run-stderr".to_owned())
        .spawn(move || {
            let mut bytes = Vec::new();
            if let Some(stderr) = stderr.as_mut() {
                let _ = stderr.read_to_end(&mut bytes);
            }
            bytes
        })
        .map_err(|e| err(AbbaProblem::Io(e)))?;
    let Some(status) = wait(&mut child, command.timeout).map_err(|e| err(AbbaProblem::Io(e)))?
    else {
        kill_tree(&mut child);
        // The reader is left to finish on its own: a process that escaped the kill may still
        // hold the pipe open, and the run has failed anyway.
        return Err(err(AbbaProblem::TimedOut {
            limit: command.timeout.unwrap_or_default(),
        }));
    };
    if !status.success() {
        let stderr = reader.join().unwrap_or_default();
        let stderr = String::from_utf8_lossy(&stderr);
        let tail: String = stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
        return Err(err(AbbaProblem::Failed {
            status: status.to_string(),
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

/// Waits for `child`, at most `timeout`; `None` when it is still running then.
fn wait(child: &mut Child, timeout: Option<Duration>) -> std::io::Result<Option<ExitStatus>> {
    let Some(timeout) = timeout else {
        return child.wait().map(Some);
    };
    let deadline = Instant::now() + timeout;
    // std has no wait with a timeout: poll, at first often (most runs of a benchmark are short
    // and a late poll adds to every one), then at most every 50 ms.
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Kills `child` and every process it started that is still its descendant (a shell's
/// children, a test harness's workers), then reaps it.
///
/// The run stays in the profiler's process group, so that Ctrl-C in a terminal still stops it;
/// its descendants are found instead through `/proc` (Linux) and killed with `kill -KILL`. Where
/// `/proc` is missing only the child itself is killed.
fn kill_tree(child: &mut Child) {
    let tree = process_tree(child.id());
    if tree.len() > 1 {
        // One `kill` for the whole tree, listed from the top: a parent killed by an earlier call
        // could have its children reparented, or start new ones, before the next.
        let _ = Command::new("kill")
            .arg("-KILL")
            .args(tree.iter().map(u32::to_string))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `root` and the processes below it, parents before children, read from `/proc/<pid>/stat`;
/// only `root` where there is no `/proc`.
fn process_tree(root: u32) -> Vec<u32> {
    let mut tree = vec![root];
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return tree;
    };
    let parents: Vec<(u32, u32)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parent_pid(&stat)?))
        })
        .collect();
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|&&(_, ppid)| ppid == parent)
                .map(|&(pid, _)| pid),
        );
        i += 1;
    }
    tree
}

/// The parent's pid in a `/proc/<pid>/stat` line: `pid (comm) state ppid ...`, where `comm` may
/// hold spaces and parentheses, hence the search from the last `)`.
fn parent_pid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
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
    /// It ran longer than its [`RunCommand::timeout`] and was killed.
    TimedOut {
        /// The limit it exceeded.
        limit: Duration,
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
            AbbaProblem::TimedOut { limit } => write!(
                f,
                "run `{}` did not finish within {}s: killed it and the processes it started",
                self.dir.file_name().unwrap_or_default().to_string_lossy(),
                limit.as_secs_f64()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_pid_skips_a_command_name_with_spaces_and_parentheses() {
        assert_eq!(parent_pid("42 (sh) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parent_pid("43 (my (odd) prog) R 42 43 1 0"), Some(42));
        assert_eq!(parent_pid("garbage"), None);
    }
}
