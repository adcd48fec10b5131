//! A benchmark of the regression gate itself (not of the profiler): how often does
//! `profiler compare --runs N -- A -- B` catch a function made 5% or 10% slower, or called more
//! often, and how often does it cry wolf when A and B are the same build?
//!
//! Every trial is one real gate invocation: the `profiler` binary runs `gate_workload` as
//! separate processes, A B B A ..., and its exit code and JSON report are tallied. A detection
//! counts when the gate exits 1 and flags the function that was changed; a false alarm is an
//! exit code 1 on an A/A trial.
//!
//! ```text
//! cargo build --release -p profiler-runtime --features cli,enable --bin profiler --examples
//! target/release/examples/gate_benchmark [--trials-aa 200] [--trials 40] [--runs 20] [--scale 1]
//! ```
//!
//! Prints a Markdown table. `--smoke` runs two trials of each kind (for CI) and exits 1 unless
//! every call-count change was caught (the one outcome that does not depend on timing).

use std::path::{Path, PathBuf};
use std::process::Command;

use profiler_runtime::baseline::{Comparison, Regression};

/// The functions of `gate_workload` that are slowed in turn, and the one they are called from.
const TARGETS: [&str; 4] = ["checksum", "parse_records", "render", "lookup"];
const PARENT: &str = "batch";

/// What a scenario changes in trial `i`: build B's extra arguments, the function changed, and
/// whether the change is in call counts (else in time). `None`: nothing (A/A).
type Change = Box<dyn Fn(usize) -> Option<(Vec<String>, &'static str, bool)>>;

struct Options {
    smoke: bool,
    trials_aa: usize,
    trials: usize,
    runs: usize,
    scale: String,
    profiler: PathBuf,
    workload: PathBuf,
}

#[derive(Default)]
struct Tally {
    trials: usize,
    /// Gate failed and flagged the changed function.
    detected: usize,
    /// Gate failed on a function that was not changed (nor the caller of the changed one).
    wrong: usize,
}

fn parse_options() -> Result<Options, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let examples = exe.parent().unwrap_or(Path::new("."));
    let mut o = Options {
        smoke: false,
        trials_aa: 200,
        trials: 40,
        runs: 20,
        scale: "1".to_owned(),
        profiler: examples.parent().unwrap_or(examples).join("profiler"),
        workload: examples.join("gate_workload"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--smoke" {
            o.smoke = true;
            o.trials_aa = 2;
            o.trials = 2;
            o.runs = 6;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("bad {flag} `{value}`"))
        };
        match flag.as_str() {
            "--trials-aa" => o.trials_aa = number()?,
            "--trials" => o.trials = number()?,
            "--runs" => o.runs = number()?,
            "--scale" => o.scale.clone_from(&value),
            "--profiler" => o.profiler = PathBuf::from(&value),
            "--workload" => o.workload = PathBuf::from(&value),
            _ => return Err(format!("unknown argument `{flag}`")),
        }
    }
    Ok(o)
}

/// One gate invocation: returns the exit code and the parsed report.
fn gate(o: &Options, b_args: &[String]) -> Result<(i32, Comparison), String> {
    let w = o.workload.to_string_lossy().into_owned();
    let mut cmd = Command::new(&o.profiler);
    cmd.args(["compare", "--format", "json", "--runs", &o.runs.to_string()])
        .args(["--", &w, "--scale", &o.scale, "--", &w, "--scale", &o.scale])
        .args(b_args);
    let out = cmd
        .output()
        .map_err(|e| format!("{}: {e}", o.profiler.display()))?;
    let code = out.status.code().unwrap_or(-1);
    if code != 0 && code != 1 {
        return Err(format!(
            "gate exited {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let report: Comparison = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    Ok((code, report))
}

fn flagged(report: &Comparison) -> Vec<&str> {
    report
        .regressions
        .iter()
        .map(Regression::function)
        .collect()
}

fn run_scenario(
    o: &Options,
    trials: usize,
    change: impl Fn(usize) -> Option<(Vec<String>, &'static str, bool)>,
) -> Result<Tally, String> {
    let mut t = Tally::default();
    for i in 0..trials {
        let (args, target, by_count) = change(i).unwrap_or_default();
        let (code, report) = gate(o, &args)?;
        t.trials += 1;
        let hit = report.regressions.iter().any(|r| match r {
            Regression::CallCount { function, .. } => by_count && function == target,
            Regression::Time { function, .. } => !by_count && function == target,
        });
        if code == 1 && hit {
            t.detected += 1;
        }
        if flagged(&report)
            .iter()
            .any(|f| *f != target && (target.is_empty() || *f != PARENT))
        {
            t.wrong += 1;
        }
    }
    Ok(t)
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}% ({n}/{d})", 100.0 * n as f64 / d as f64)
    }
}

fn main() {
    let o = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gate_benchmark: {e}");
            std::process::exit(2);
        }
    };
    let started = std::time::Instant::now();
    let slow = |factor: &'static str| {
        move |i: usize| {
            let target = TARGETS[i % TARGETS.len()];
            Some((
                vec!["--slow".to_owned(), format!("{target}={factor}")],
                target,
                false,
            ))
        }
    };
    let scenarios: Vec<(&str, usize, Change)> = vec![
        ("A/A (same build)", o.trials_aa, Box::new(|_| None)),
        ("one function 5% slower", o.trials, Box::new(slow("1.05"))),
        ("one function 10% slower", o.trials, Box::new(slow("1.10"))),
        (
            "one function called once more per batch",
            o.trials,
            Box::new(|i: usize| {
                let target = TARGETS[i % TARGETS.len()];
                Some((
                    vec!["--extra-calls".to_owned(), format!("{target}=1")],
                    target,
                    true,
                ))
            }),
        ),
    ];
    println!(
        "| scenario | trials | gate failed on the changed function | false alarms (other functions flagged) |"
    );
    println!("|---|---:|---:|---:|");
    let mut failed = false;
    let mut counts_missed = false;
    for (name, trials, change) in &scenarios {
        match run_scenario(&o, *trials, change) {
            Ok(t) => {
                if name.contains("called once more") && t.detected < t.trials {
                    counts_missed = true;
                }
                let detected = if name.starts_with("A/A") {
                    "-".to_owned()
                } else {
                    pct(t.detected, t.trials)
                };
                println!(
                    "| {name} | {} | {detected} | {} |",
                    t.trials,
                    pct(t.wrong, t.trials)
                );
            }
            Err(e) => {
                eprintln!("gate_benchmark: {name}: {e}");
                failed = true;
            }
        }
    }
    println!(
        "\n{} runs of each build per trial, scale {}, {:.0} s in all.",
        o.runs,
        o.scale,
        started.elapsed().as_secs_f64()
    );
    if failed {
        std::process::exit(2);
    }
    if o.smoke && counts_missed {
        eprintln!("gate_benchmark: a call-count change was missed");
        std::process::exit(1);
    }
}
