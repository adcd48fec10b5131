//! `profiler baseline save` and `profiler compare`: the regression gate on the command line.
//!
//! Exit codes: 0 when the comparison is clean, 1 when the gate fails (a regression, a budget
//! violation, a function of the baseline missing from the new runs, new runs that recorded
//! nothing), 2 on an error (bad arguments, unreadable files, a run that failed or hung).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use clap::{Args, Subcommand, ValueEnum};
use profiler_runtime::baseline::{
    compare, run_alternately, run_repeatedly, Alert, Baseline, Budgets, CompareOptions, Comparison,
    Correction, Fingerprint, Metric, OutputFormat, Run, RunCommand, Statistic,
};

/// `profiler baseline ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum BaselineCommand {
    /// Save a baseline from saved profiles (one per run), or by running a command N times.
    ///
    /// profiler baseline save base.json run-*.json
    /// profiler baseline save base.json --runs 10 -- ./target/release/my-bench
    Save(SaveArgs),
}

/// Arguments of `profiler baseline save`.
#[derive(Debug, Args)]
pub(crate) struct SaveArgs {
    /// The baseline file to write.
    output: PathBuf,
    /// Profiles of the runs: profile JSON or Chrome trace files, one per run.
    profiles: Vec<PathBuf>,
    /// Run the command after `--` this many times instead of reading profiles.
    #[arg(long)]
    runs: Option<usize>,
    /// Runs made and discarded before the measured ones.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// With --runs: the longest one run may take, in seconds; a run still going then is killed
    /// with the processes it started, and the command fails. 0: no limit.
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
    run_timeout: f64,
    /// The workload's name in the fingerprint (default: the name of the program that wrote the
    /// profiles; with --runs, the program the command runs, past `env VAR=value`).
    #[arg(long)]
    workload: Option<String>,
    /// The command to run (with --runs).
    #[arg(last = true)]
    command: Vec<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    /// An aligned table.
    Table,
    /// Markdown (for a CI job summary).
    Markdown,
    /// JSON.
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum CorrectionArg {
    /// Holm's step-down (family-wise error rate).
    Holm,
    /// Benjamini-Hochberg (false discovery rate).
    Bh,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MetricArg {
    /// Median inclusive time of a call per run (robust to interruptions).
    Median,
    /// Mean inclusive time per call.
    Total,
    /// Exclusive time per call.
    #[value(name = "self")]
    SelfTime,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StatisticArg {
    /// Median call.
    P50,
    /// 99th percentile.
    P99,
    /// Mean call.
    Mean,
}

/// Arguments of `profiler compare`.
#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// The baseline: a baseline file, or profiles (one per run). Not used with --runs.
    base: Option<PathBuf>,
    /// The new runs: a baseline file, or profiles (one per run).
    new: Vec<PathBuf>,
    /// Run the two commands after `--` alternately (A B B A ...), N times each:
    /// `profiler compare --runs 10 -- ./old-bench -- ./new-bench`.
    #[arg(long)]
    runs: Option<usize>,
    /// With --runs: runs of each command made and discarded first.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// With --runs: the longest one run may take, in seconds; a run still going then is killed
    /// with the processes it started, and the command fails. 0: no limit.
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
    run_timeout: f64,
    /// With --runs: also save command A's runs as a baseline file.
    #[arg(long)]
    save_baseline: Option<PathBuf>,
    /// Slowdown tolerated, in percent; raised per function to its measured noise.
    #[arg(long, default_value_t = 2.0)]
    threshold: f64,
    /// False-alarm level of the whole comparison.
    #[arg(long, default_value_t = 0.01)]
    alpha: f64,
    /// Control of false alarms across functions.
    #[arg(long, value_enum, default_value_t = CorrectionArg::Holm)]
    correction: CorrectionArg,
    /// Which time per call is compared.
    #[arg(long, value_enum, default_value_t = MetricArg::Median)]
    metric: MetricArg,
    /// Skip functions whose mean call is shorter (ns).
    #[arg(long, default_value_t = 100.0)]
    min_call_ns: f64,
    /// Skip functions whose time per run is shorter (ns).
    #[arg(long, default_value_t = 50_000.0)]
    min_run_ns: f64,
    /// A function (its full name, exactly) that may be called in the baseline and in none of the
    /// new runs; repeat for several. Any other function gone missing fails the gate.
    #[arg(long, value_name = "FUNCTION")]
    allow_missing: Vec<String>,
    /// A budgets file (`FUNCTION LIMIT [p50|p99|mean]` per line).
    #[arg(long)]
    budgets: Option<PathBuf>,
    /// The statistic for budgets that do not name one.
    #[arg(long, value_enum, default_value_t = StatisticArg::P99)]
    budget_statistic: StatisticArg,
    /// Output on stdout.
    #[arg(long, value_enum, default_value_t = FormatArg::Table)]
    format: FormatArg,
    /// Also append the Markdown report to this file (e.g. $GITHUB_STEP_SUMMARY).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Also write the JSON report to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run this shell command once per regression and budget violation, with the alert as JSON
    /// on its standard input.
    #[arg(long)]
    alert_command: Option<String>,
    /// The workload's name in the fingerprint of the new runs, when they are profiles (default:
    /// their program's name). A baseline of another workload gives a warning.
    #[arg(long)]
    workload: Option<String>,
    /// The commands (with --runs): CMD_A... -- CMD_B...
    #[arg(last = true)]
    commands: Vec<String>,
}

fn fail(message: &str) -> ExitCode {
    eprintln!("profiler: {message}");
    ExitCode::from(2)
}

/// Runs `profiler baseline ...`.
pub(crate) fn baseline(command: BaselineCommand) -> ExitCode {
    match command {
        BaselineCommand::Save(args) => match save(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => fail(&message),
        },
    }
}

fn save(args: SaveArgs) -> Result<(), String> {
    let baseline = if let Some(runs) = args.runs {
        if !args.profiles.is_empty() {
            return Err("give either profiles or --runs with a command, not both".into());
        }
        let command = RunCommand::from_words(&args.command)
            .ok_or("--runs needs a command after `--`")?
            .with_timeout(run_timeout(args.run_timeout)?);
        let dir = scratch_dir()?;
        let result = run_repeatedly(&command, runs, args.warmup, &dir, &mut load_run);
        let _ = std::fs::remove_dir_all(&dir);
        let all = result.map_err(|e| e.to_string())?;
        let workload = args.workload.unwrap_or_else(|| workload_of(&all, &command));
        Baseline::from_runs(Fingerprint::for_runs(&workload, &all), &all)
            .map_err(|e| e.to_string())?
    } else {
        if args.profiles.is_empty() {
            return Err("give the profiles of the runs, or --runs N -- COMMAND".into());
        }
        load_side(&args.profiles, args.workload.as_deref())?
    };
    baseline.save(&args.output).map_err(|e| e.to_string())?;
    eprintln!(
        "profiler: saved {} runs of {} functions to {}",
        baseline.runs,
        baseline.functions.len(),
        args.output.display()
    );
    Ok(())
}

/// Runs `profiler compare`.
pub(crate) fn compare_command(args: &CompareArgs) -> ExitCode {
    match compare_inner(args) {
        Ok(failed) => {
            if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(message) => fail(&message),
    }
}

fn compare_inner(args: &CompareArgs) -> Result<bool, String> {
    let options = options(args)?;
    let (base, new) = if let Some(runs) = args.runs {
        alternate(args, runs)?
    } else {
        let Some(base_path) = &args.base else {
            return Err("give BASE and NEW files, or --runs N -- CMD_A -- CMD_B".into());
        };
        if args.new.is_empty() {
            return Err("give the new runs: a baseline file or profiles".into());
        }
        let base = load_side(std::slice::from_ref(base_path), None)?;
        // The new runs are named after their own program, as `baseline save` names the
        // baseline's, so that a baseline of another workload shows as a fingerprint difference
        // instead of being renamed to match.
        let new = load_side(&args.new, args.workload.as_deref())?;
        (base, new)
    };
    let comparison = compare(&base, &new, &options);
    report(args, &comparison)?;
    Ok(comparison.fails())
}

fn options(args: &CompareArgs) -> Result<CompareOptions, String> {
    if !(args.threshold >= 0.0 && args.threshold < 1000.0) {
        return Err(format!(
            "--threshold {} is not a percentage",
            args.threshold
        ));
    }
    if !(args.alpha > 0.0 && args.alpha < 1.0) {
        return Err(format!("--alpha {} must be between 0 and 1", args.alpha));
    }
    let default_statistic = match args.budget_statistic {
        StatisticArg::P50 => Statistic::P50,
        StatisticArg::P99 => Statistic::P99,
        StatisticArg::Mean => Statistic::Mean,
    };
    let mut budgets = Budgets::new();
    if let Some(path) = &args.budgets {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        // Lines without a statistic take --budget-statistic.
        let text = text
            .lines()
            .map(|line| {
                let code = line.split('#').next().unwrap_or("");
                if code.split_whitespace().count() == 2 {
                    format!("{} {}", code.trim(), default_statistic.name())
                } else {
                    line.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        budgets = Budgets::parse(&text, path).map_err(|e| e.to_string())?;
    }
    Ok(CompareOptions {
        threshold: args.threshold / 100.0,
        alpha: args.alpha,
        correction: match args.correction {
            CorrectionArg::Holm => Correction::Holm,
            CorrectionArg::Bh => Correction::BenjaminiHochberg,
        },
        metric: match args.metric {
            MetricArg::Median => Metric::Median,
            MetricArg::Total => Metric::Total,
            MetricArg::SelfTime => Metric::SelfTime,
        },
        min_call_ns: args.min_call_ns,
        min_run_ns: args.min_run_ns,
        budgets,
        // `#[profile(budget = "...")]` budgets travel in the profiles; same statistic.
        attribute_budget_statistic: default_statistic,
        allow_missing: args.allow_missing.clone(),
    })
}

/// The limit of `--run-timeout SECONDS`: `None` for 0.
fn run_timeout(seconds: f64) -> Result<Option<std::time::Duration>, String> {
    if seconds == 0.0 {
        return Ok(None);
    }
    std::time::Duration::try_from_secs_f64(seconds)
        .map(Some)
        .map_err(|_| format!("--run-timeout {seconds} is not a number of seconds"))
}

/// `--runs N -- CMD_A -- CMD_B`: both builds, alternately, in this job.
fn alternate(args: &CompareArgs, runs: usize) -> Result<(Baseline, Baseline), String> {
    if args.base.is_some() {
        return Err("with --runs, give the two commands after `--`, not files".into());
    }
    if runs < 2 {
        return Err("--runs must be at least 2".into());
    }
    let mut parts = args.commands.split(|w| w == "--");
    let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("--runs needs two commands: `-- CMD_A ... -- CMD_B ...`".into());
    };
    let timeout = run_timeout(args.run_timeout)?;
    let a = RunCommand::from_words(a)
        .ok_or("command A is empty")?
        .with_timeout(timeout);
    let b = RunCommand::from_words(b)
        .ok_or("command B is empty")?
        .with_timeout(timeout);
    let dir = scratch_dir()?;
    let result = run_alternately(&a, &b, runs, args.warmup, &dir, &mut load_run);
    let _ = std::fs::remove_dir_all(&dir);
    let both = result.map_err(|e| e.to_string())?;
    // Both sides carry the new build's name: the two commands are compared because the user
    // said so, and a baseline kept with --save-baseline is later compared with that program.
    let workload = args
        .workload
        .clone()
        .unwrap_or_else(|| workload_of(&both.b, &b));
    let base = Baseline::from_runs(Fingerprint::for_runs(&workload, &both.a), &both.a)
        .map_err(|e| e.to_string())?;
    let new = Baseline::from_runs(Fingerprint::for_runs(&workload, &both.b), &both.b)
        .map_err(|e| e.to_string())?;
    if let Some(path) = &args.save_baseline {
        base.save(path).map_err(|e| e.to_string())?;
    }
    Ok((base, new))
}

/// Prints the report, writes the extra files, runs the alert command.
fn report(args: &CompareArgs, comparison: &Comparison) -> Result<(), String> {
    let format = match args.format {
        FormatArg::Table => OutputFormat::Table,
        FormatArg::Markdown => OutputFormat::Markdown,
        FormatArg::Json => OutputFormat::Json,
    };
    let stdout = io::stdout();
    comparison
        .write(format, stdout.lock())
        .map_err(|e| format!("stdout: {e}"))?;
    if let Some(path) = &args.markdown {
        // Appended in place, not replaced whole like the other outputs: the file gathers the
        // summaries of several steps ($GITHUB_STEP_SUMMARY), and a failed append leaves the
        // earlier ones intact.
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        file.write_all(comparison.markdown().as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.json {
        profiler_runtime::atomic_file::write(path, |out| comparison.write(OutputFormat::Json, out))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(command) = &args.alert_command {
        let mut hook_error = None;
        comparison.notify(&mut |alert: Alert<'_>| {
            let json = match alert {
                Alert::Regression(r) => serde_json::to_string(r),
                Alert::Budget(b) => serde_json::to_string(b),
            }
            .unwrap_or_default();
            if let Err(e) = run_alert_command(command, &json) {
                hook_error.get_or_insert(e);
            }
        });
        if let Some(e) = hook_error {
            return Err(format!("--alert-command: {e}"));
        }
    }
    Ok(())
}

/// Runs the hook with `json` on its standard input and reports its own exit status.
fn run_alert_command(command: &str, json: &str) -> Result<(), String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `sh -c {command}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook need not read the alert (`curl -X POST $URL` with a fixed body, say); one that
        // exits before the write gives EPIPE, which says nothing about the hook, so it is not an
        // error. The pipe closes when `stdin` drops, before the wait, so a hook that reads to
        // the end sees it.
        match stdin.write_all(json.as_bytes()) {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{command}`: writing the alert to its input: {e}"));
            }
            _ => {}
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("`{command}`: waiting for it: {e}"))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(format!("`{command}` exited with status {code}")),
        None => Err(format!("`{command}` did not exit normally ({status})")),
    }
}

/// One baseline file, or one or more profiles (one per run).
fn load_side(paths: &[PathBuf], workload: Option<&str>) -> Result<Baseline, String> {
    let mut runs = Vec::with_capacity(paths.len());
    let mut process_name = None;
    for path in paths {
        match saved_kind(path)? {
            SavedKind::Baseline if paths.len() == 1 => {
                return Baseline::load(path).map_err(|e| e.to_string());
            }
            SavedKind::Baseline => {
                return Err(format!(
                    "{}: a baseline file stands for all the runs of one side: give it alone, not with other files",
                    path.display()
                ));
            }
            SavedKind::Profile => {}
        }
        let saved = profiler_runtime::import::load_saved(path).map_err(|e| e.to_string())?;
        let report = saved.to_report();
        process_name.get_or_insert_with(|| report.run.process_name.clone());
        runs.push(Run::from_report(&report));
    }
    let workload = workload
        .map(str::to_owned)
        .or(process_name)
        .unwrap_or_default();
    Baseline::from_runs(Fingerprint::for_runs(&workload, &runs), &runs).map_err(|e| e.to_string())
}

/// What a file given to `compare` or `baseline save` holds.
enum SavedKind {
    /// A baseline file (`"schema": "profiler-baseline"`).
    Baseline,
    /// Anything the profile reader takes (profile JSON, Chrome trace, Speedscope), or something
    /// it rejects with its own clear error (not JSON, truncated, no schema).
    Profile,
}

/// The header fields that tell a baseline from a profile. serde skips every other field without
/// building it, so this costs one scan of the file, whatever the order of its keys.
#[derive(serde::Deserialize)]
struct Header {
    schema: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

/// Tells the file's kind by its `schema` field. A `schema` that is neither the baseline's nor the
/// profile's is an error here: the profile reader's "not a profile of this tool" would hide that
/// the file may be a baseline of another format.
fn saved_kind(path: &Path) -> Result<SavedKind, String> {
    use profiler_runtime::analyze::report::{PROFILE_SCHEMA, PROFILE_VERSION};
    use profiler_runtime::baseline::{BASELINE_SCHEMA, BASELINE_VERSION};
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let Ok(header) = serde_json::from_slice::<Header>(&bytes) else {
        // Damaged JSON that names the baseline schema anywhere is most likely a cut or corrupt
        // baseline: its reader says "baseline file is truncated" rather than the profile
        // reader's generic words. Anything else that is not a JSON object (Chrome traces may be
        // arrays) goes to the profile reader.
        let quoted = format!("\"{BASELINE_SCHEMA}\"");
        let names_baseline = bytes.windows(quoted.len()).any(|w| w == quoted.as_bytes());
        return Ok(if names_baseline {
            SavedKind::Baseline
        } else {
            SavedKind::Profile
        });
    };
    match header.schema {
        None => Ok(SavedKind::Profile),
        Some(serde_json::Value::String(s)) if s == BASELINE_SCHEMA => Ok(SavedKind::Baseline),
        Some(serde_json::Value::String(s)) if s == PROFILE_SCHEMA => Ok(SavedKind::Profile),
        Some(schema) => {
            let version = header
                .version
                .map_or_else(|| "missing".to_owned(), |v| v.to_string());
            Err(format!(
                "{}: schema {schema} version {version}, expected {BASELINE_SCHEMA:?} version {BASELINE_VERSION} (a baseline) or {PROFILE_SCHEMA:?} version {PROFILE_VERSION} (a profile)",
                path.display()
            ))
        }
    }
}

fn load_run(path: &Path) -> Result<Run, String> {
    Run::load(path).map_err(|e| e.to_string())
}

/// The workload's default name: the program named in the runs' profiles (the program itself,
/// whatever ran it: `env`, `sh -c`, `taskset`), else the program the command runs.
fn workload_of(runs: &[Run], command: &RunCommand) -> String {
    runs.iter()
        .find_map(|r| r.process_name.clone())
        .unwrap_or_else(|| program_name(command))
}

/// The program `command` runs: its first word, or past `env`, its options and its
/// `NAME=value` assignments, the program `env` runs; without its directory.
fn program_name(command: &RunCommand) -> String {
    let base = |word: &str| {
        Path::new(word)
            .file_name()
            .map_or_else(|| word.to_owned(), |n| n.to_string_lossy().into_owned())
    };
    if base(&command.program) != "env" {
        return base(&command.program);
    }
    let mut words = command.args.iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            // The options of `env` that take the next word as their value.
            "-u" | "--unset" | "-C" | "--chdir" => {
                words.next();
            }
            w if w.starts_with('-') || w.contains('=') => {}
            w => return base(w),
        }
    }
    base(&command.program)
}

fn scratch_dir() -> Result<PathBuf, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("profiler-compare-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(words: &[&str]) -> String {
        let words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        program_name(&RunCommand::from_words(&words).unwrap())
    }

    #[test]
    fn program_name_looks_past_env_and_its_assignments() {
        assert_eq!(name(&["./target/release/bench", "--quick"]), "bench");
        assert_eq!(
            name(&["env", "RUST_LOG=off", "A=1", "./bench", "x=y"]),
            "bench"
        );
        assert_eq!(
            name(&["/usr/bin/env", "-i", "-u", "HOME", "bench"]),
            "bench"
        );
        assert_eq!(name(&["env", "A=1"]), "env");
    }
}
