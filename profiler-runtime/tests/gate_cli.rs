//! `profiler baseline save` and `profiler compare` end to end, on real runs of the
//! `gate_workload` example (separate processes, profiles written through `PROFILER_OUTPUT`).
//! Exit codes: 0 clean, 1 regression, 2 error.
//!
//! `cargo test` builds the examples before running this; with `--test gate_cli` alone it does
//! not, so build them first (`cargo build -p profiler-runtime --features cli,enable --examples`).
//!
//! No assertion depends on how long anything takes: regressions here are call-count changes
//! (exact) and budgets far from the measured values.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn profiler() -> Command {
    Command::new(env!("CARGO_BIN_EXE_profiler"))
}

fn workload() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_profiler"));
    let path = bin
        .parent()
        .unwrap()
        .join("examples")
        .join(format!("gate_workload{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: build the examples first (cargo build -p profiler-runtime --features cli,enable --examples)",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("profiler-gate-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the workload once with `args`, writing its profile to `dir/name.json`.
fn run_workload(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let status = Command::new(workload())
        .args(["--scale", "0.05"])
        .args(args)
        .env("PROFILER_OUTPUT", dir.join(name))
        .env("PROFILER_FORMATS", "json")
        .status()
        .unwrap();
    assert!(status.success());
    dir.join(format!("{name}.json"))
}

/// A generous threshold: these tests are about exit codes and reports, not about timing.
const LOOSE: [&str; 2] = ["--threshold", "50"];

#[test]
fn alternating_runs_exit_0_when_unchanged_and_1_on_more_calls() {
    let w = workload();
    let same = profiler()
        .args(["compare", "--runs", "3", "--warmup", "0"])
        .args(LOOSE)
        .args(["--", &w, "--scale", "0.05", "--", &w, "--scale", "0.05"])
        .output()
        .unwrap();
    assert_eq!(
        code(&same),
        0,
        "{}{}",
        text(&same.stdout),
        text(&same.stderr)
    );
    assert!(text(&same.stdout).contains("result: ok"));

    let more = profiler()
        .args([
            "compare", "--runs", "3", "--warmup", "0", "--format", "json",
        ])
        .args(LOOSE)
        .args(["--", &w, "--scale", "0.05", "--", &w, "--scale", "0.05"])
        .args(["--extra-calls", "lookup=2"])
        .output()
        .unwrap();
    assert_eq!(code(&more), 1, "{}", text(&more.stderr));
    let report: serde_json::Value = serde_json::from_slice(&more.stdout).unwrap();
    let regressions = report["regressions"].as_array().unwrap();
    assert!(
        regressions
            .iter()
            .any(|r| r["kind"] == "call-count" && r["function"] == "lookup" && r["new"] == 420),
        "{regressions:?}"
    );
}

#[test]
fn saved_baseline_then_compare_files() {
    let dir = temp_dir("files");
    let base: Vec<PathBuf> = (0..3)
        .map(|i| run_workload(&dir, &format!("base-{i}"), &[]))
        .collect();
    let base_file = dir.join("base.baseline.json");
    let saving = profiler()
        .args(["baseline", "save"])
        .arg(&base_file)
        .args(&base)
        .args(["--workload", "gate"])
        .output()
        .unwrap();
    assert_eq!(code(&saving), 0, "{}", text(&saving.stderr));
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&base_file).unwrap()).unwrap();
    assert_eq!(saved["schema"], "profiler-baseline");
    assert_eq!(saved["runs"], 3);
    assert_eq!(saved["fingerprint"]["workload"], "gate");

    let same: Vec<PathBuf> = (0..2)
        .map(|i| run_workload(&dir, &format!("same-{i}"), &[]))
        .collect();
    let more: Vec<PathBuf> = (0..2)
        .map(|i| run_workload(&dir, &format!("more-{i}"), &["--extra-calls", "render=1"]))
        .collect();

    let summary = dir.join("summary.md");
    let ok = profiler()
        .arg("compare")
        .arg(&base_file)
        .args(&same)
        .args(LOOSE)
        // The baseline was saved under this name.
        .args(["--workload", "gate"])
        .arg("--markdown")
        .arg(&summary)
        .output()
        .unwrap();
    assert_eq!(code(&ok), 0, "{}{}", text(&ok.stdout), text(&ok.stderr));
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.contains("### Performance gate: ✅ no regression"),
        "{md}"
    );
    assert!(md.contains("| checksum |"), "{md}");
    assert!(!md.contains("warning"), "{md}");

    let bad = profiler()
        .arg("compare")
        .arg(&base_file)
        .args(&more)
        .args(LOOSE)
        .output()
        .unwrap();
    assert_eq!(code(&bad), 1, "{}", text(&bad.stderr));
    let out = text(&bad.stdout);
    assert!(
        out.contains("REGRESSION render: 30 calls per run, baseline 20"),
        "{out}"
    );
}

#[test]
fn budgets_file_fails_the_gate() {
    let dir = temp_dir("budgets");
    let runs: Vec<PathBuf> = (0..2)
        .map(|i| run_workload(&dir, &format!("run-{i}"), &[]))
        .collect();
    let base_file = dir.join("base.json");
    assert_eq!(
        code(
            &profiler()
                .args(["baseline", "save"])
                .arg(&base_file)
                .args(&runs)
                .output()
                .unwrap()
        ),
        0
    );
    // `lookup` takes microseconds: 1 ns is always exceeded, 100 s never.
    let budgets = dir.join("budgets.txt");
    std::fs::write(
        &budgets,
        "# tight and loose\nlookup 1ns p50\nchecksum 100s\n",
    )
    .unwrap();
    let out = profiler()
        .arg("compare")
        .arg(&base_file)
        .arg(&base_file)
        .arg("--budgets")
        .arg(&budgets)
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("BUDGET lookup: p50"), "{stdout}");
    assert!(!stdout.contains("BUDGET checksum"), "{stdout}");
}

#[test]
fn alert_command_receives_each_alert() {
    let dir = temp_dir("alerts");
    let base = run_workload(&dir, "base", &[]);
    let more = run_workload(&dir, "more", &["--extra-calls", "checksum=1"]);
    let log = dir.join("alerts.log");
    let out = profiler()
        .arg("compare")
        .arg(&base)
        .arg(&more)
        .args(LOOSE)
        .arg("--alert-command")
        .arg(format!(
            "cat >> '{}'; echo >> '{}'",
            log.display(),
            log.display()
        ))
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let alerts: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        alerts
            .iter()
            .any(|a| a["kind"] == "call-count" && a["function"] == "checksum"),
        "{alerts:?}"
    );
    assert!(
        alerts.iter().all(|a| a["kind"] == "call-count"),
        "{alerts:?}"
    );
}

#[test]
fn errors_exit_2_and_name_the_file() {
    let dir = temp_dir("errors");
    let good = run_workload(&dir, "good", &[]);
    let cases: [(&str, &str); 3] = [
        (
            "truncated.json",
            "{\"schema\": \"profiler-baseline\", \"version\": 1, \"runs\"",
        ),
        (
            "future.json",
            "{\"schema\": \"profiler-baseline\", \"version\": 7}",
        ),
        ("garbage.json", "not json at all"),
    ];
    for (name, content) in cases {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let out = profiler()
            .arg("compare")
            .arg(&path)
            .arg(&good)
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "{name}");
        let err = text(&out.stderr);
        assert!(err.contains(&path.display().to_string()), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
    }
    // A cut baseline is still told apart from a profile and said to be cut.
    let cut = profiler()
        .arg("compare")
        .arg(dir.join("truncated.json"))
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        text(&cut.stderr).contains("baseline file is truncated"),
        "{}",
        text(&cut.stderr)
    );
    let missing = profiler()
        .arg("compare")
        .arg(dir.join("missing.json"))
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(code(&missing), 2);
    let failing = profiler()
        .args(["compare", "--runs", "2", "--", "false", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(code(&failing), 2);
    assert!(
        text(&failing.stderr).contains("`false`"),
        "{}",
        text(&failing.stderr)
    );
    let usage = profiler()
        .args(["compare", "--threshold", "x"])
        .output()
        .unwrap();
    assert_eq!(code(&usage), 2);
}

#[test]
fn baseline_save_runs_the_command_and_compare_can_keep_build_a() {
    let dir = temp_dir("save-runs");
    let w = workload();
    let saved = dir.join("runs.json");
    let out = profiler()
        .args(["baseline", "save"])
        .arg(&saved)
        .args(["--runs", "2", "--warmup", "0", "--", &w, "--scale", "0.05"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(value["runs"], 2);
    assert_eq!(value["fingerprint"]["workload"], "gate_workload");
    let checksum = value["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "checksum")
        .expect("checksum in the baseline");
    assert_eq!(checksum["calls"], serde_json::json!([40, 40]));

    let kept = dir.join("kept.json");
    let out = profiler()
        .args(["compare", "--runs", "2", "--warmup", "0", "--save-baseline"])
        .arg(&kept)
        .args(LOOSE)
        .args(["--", &w, "--scale", "0.05", "--", &w, "--scale", "0.05"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let again = profiler()
        .arg("compare")
        .arg(&kept)
        .arg(&saved)
        .args(LOOSE)
        .output()
        .unwrap();
    assert_eq!(
        code(&again),
        0,
        "{}{}",
        text(&again.stdout),
        text(&again.stderr)
    );
}

/// A baseline file of `runs` runs of one function, `app::work`, 10 calls a run, with these
/// median times per call.
fn baseline_file(path: &Path, p50_ns: &[u64]) {
    let runs = p50_ns.len();
    let per_run = |f: &dyn Fn(u64) -> u64| -> Vec<u64> { p50_ns.iter().map(|&t| f(t)).collect() };
    let baseline = serde_json::json!({
        "schema": "profiler-baseline",
        "version": 1,
        "created_unix_s": 1_795_000_000,
        "fingerprint": {
            "tool": "profiler-runtime 0.1.0",
            "workload": "noisy",
            "machine": {"cpu_model": "cpu", "cores": 2, "memory_mib": 1024, "os": "linux x86_64"},
            "build": {"rustc": "rustc", "target": "x86_64-unknown-linux-gnu", "profile": "release", "features": "enable"},
            "source": {"commit": null, "dirty": null}
        },
        "runs": runs,
        "functions": [{
            "name": "app::work",
            "kind": "function",
            "calls": vec![10; runs],
            "total_ns": per_run(&|t| t * 10),
            "self_ns": per_run(&|t| t * 10),
            "mean_ns": per_run(&|t| t),
            "p50_ns": per_run(&|t| t),
            "p99_ns": per_run(&|t| t)
        }]
    });
    // serde_json writes the keys sorted, so `schema` comes after `fingerprint` and `functions`:
    // the file kind must not depend on where the key sits.
    std::fs::write(path, serde_json::to_string(&baseline).unwrap()).unwrap();
}

#[test]
fn detectable_slowdown_is_capped_and_explained_when_the_runs_cannot_see_one() {
    let dir = temp_dir("detectable");
    let (base, new) = (dir.join("base.json"), dir.join("new.json"));
    // Two runs a side, a threefold spread: nothing short of a huge slowdown could be flagged
    // (uncapped, the figure was +5640159993.7%).
    baseline_file(&base, &[100_000, 300_000]);
    baseline_file(&new, &[200_000, 210_000]);
    let out = profiler()
        .arg("compare")
        .arg(&base)
        .arg(&new)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let row = stdout.lines().find(|l| l.starts_with("app::work")).unwrap();
    assert!(row.ends_with(" >+1000.0%"), "{stdout}");
    assert!(
        stdout.contains(
            "note: 1 function(s) could only be flagged for a slowdown above +1000.0% (detectable >+1000.0%): too few runs for their run-to-run noise; add runs (--runs N)"
        ),
        "{stdout}"
    );
    // Steady runs: the figure itself.
    baseline_file(&base, &[100_000, 100_100, 99_900, 100_050, 99_950]);
    baseline_file(&new, &[100_000, 100_100, 99_900, 100_050, 99_950]);
    let out = profiler()
        .arg("compare")
        .arg(&base)
        .arg(&new)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    let row = stdout.lines().find(|l| l.starts_with("app::work")).unwrap();
    let detectable = row.split_whitespace().last().unwrap();
    let percent: f64 = detectable
        .trim_start_matches('+')
        .trim_end_matches('%')
        .parse()
        .unwrap_or_else(|_| panic!("a percentage: {row}"));
    assert!(percent > 0.0 && percent < 1000.0, "{stdout}");
    assert!(!stdout.contains("could only be flagged"), "{stdout}");
}

#[test]
fn baseline_whose_schema_key_comes_late_is_read_as_a_baseline() {
    let dir = temp_dir("late-schema");
    let (base, new) = (dir.join("base.json"), dir.join("new.json"));
    baseline_file(&base, &[100_000, 100_100, 99_900]);
    baseline_file(&new, &[100_000, 100_100, 99_900]);
    let text_of_base = std::fs::read_to_string(&base).unwrap();
    let at = text_of_base.find("\"schema\"").unwrap();
    assert!(at > 256, "the key should come late: {text_of_base}");
    let out = profiler()
        .arg("compare")
        .arg(&base)
        .arg(&new)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("3 baseline runs, 3 new runs"), "{stdout}");
    assert!(stdout.contains("result: ok"), "{stdout}");
}

#[test]
fn file_of_another_schema_names_its_schema_and_version() {
    let dir = temp_dir("other-schema");
    let good = run_workload(&dir, "good", &[]);
    let other = dir.join("other.json");
    for (schema, version) in [("profiler-baseline-ng", "3"), ("acme-bench", "1")] {
        std::fs::write(
            &other,
            format!(r#"{{"schema": "{schema}", "version": {version}, "runs": 2}}"#),
        )
        .unwrap();
        let out = profiler()
            .arg("compare")
            .arg(&other)
            .arg(&good)
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "{}", text(&out.stdout));
        assert_eq!(
            text(&out.stderr).trim_end(),
            format!(
                "profiler: {}: schema \"{schema}\" version {version}, expected \"profiler-baseline\" version 1 (a baseline) or \"profiler-profile\" version 1 (a profile)",
                other.display()
            ),
        );
    }
}

/// A profile whose every function breaks a 1 ns budget: one alert per function.
fn over_budget(dir: &Path) -> (PathBuf, PathBuf) {
    let run = run_workload(dir, "run", &[]);
    let budgets = dir.join("budgets.txt");
    std::fs::write(
        &budgets,
        "parse_records 1ns p50\nchecksum 1ns p50\nlookup 1ns p50\nrender 1ns p50\n",
    )
    .unwrap();
    (run, budgets)
}

#[test]
fn alert_command_that_does_not_read_its_input_is_no_error() {
    let dir = temp_dir("alert-no-read");
    let (run, budgets) = over_budget(&dir);
    // `true` exits at once, often before the alert is written: the write then meets a closed
    // pipe. 20 comparisons of 4 alerts each make that race certain to come up at least once.
    for attempt in 0..20 {
        let out = profiler()
            .arg("compare")
            .arg(&run)
            .arg(&run)
            .arg("--budgets")
            .arg(&budgets)
            .args(["--alert-command", "true"])
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(code(&out), 1, "attempt {attempt}: {stderr}");
        assert!(
            !stderr.contains("Broken pipe"),
            "attempt {attempt}: {stderr}"
        );
    }
}

#[test]
fn alert_command_failure_reports_the_hooks_exit_status() {
    let dir = temp_dir("alert-exit");
    let (run, budgets) = over_budget(&dir);
    let out = profiler()
        .arg("compare")
        .arg(&run)
        .arg(&run)
        .arg("--budgets")
        .arg(&budgets)
        .args(["--alert-command", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "profiler: --alert-command: `exit 3` exited with status 3",
    );
    // The report came out before the hooks ran.
    assert!(text(&out.stdout).contains("BUDGET lookup"));
}

/// Whether process `pid` is gone: no `/proc` entry, or a zombie waiting for its new parent to
/// reap it.
fn process_gone(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit(')')
            .next()
            .unwrap()
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn hung_run_is_killed_with_its_children_after_the_run_timeout() {
    let dir = temp_dir("timeout");
    let pid_file = dir.join("sleeper.pid");
    // A shell that starts a child and waits for it forever: both must be killed.
    let hang = format!("sleep 1000 & echo $! > '{}'; wait", pid_file.display());
    let w = workload();
    let out = profiler()
        .args([
            "compare",
            "--runs",
            "2",
            "--warmup",
            "0",
            "--run-timeout",
            "1",
        ])
        .args(["--", "sh", "-c", &hang, "--", &w, "--scale", "0.05"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "`sh -c {hang}`: run `a-0` did not finish within 1s: killed it and the processes it started"
        )),
        "{stderr}"
    );
    let sleeper = std::fs::read_to_string(&pid_file).unwrap();
    if Path::new("/proc").exists() {
        assert!(process_gone(sleeper.trim()), "sleep {sleeper} still runs");
    }
}

#[test]
fn baseline_of_another_workload_gives_a_warning() {
    let dir = temp_dir("workload");
    let runs: Vec<PathBuf> = (0..2)
        .map(|i| run_workload(&dir, &format!("run-{i}"), &[]))
        .collect();
    let base = dir.join("base.json");
    let saving = profiler()
        .args(["baseline", "save"])
        .arg(&base)
        .args(&runs)
        .args(["--workload", "checkout-service"])
        .output()
        .unwrap();
    assert_eq!(code(&saving), 0, "{}", text(&saving.stderr));
    let warning = "warning: the baseline is of workload `checkout-service` and the new runs of `gate_workload`";

    let json = dir.join("report.json");
    let other = profiler()
        .arg("compare")
        .arg(&base)
        .args(&runs)
        .args(LOOSE)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(code(&other), 0, "{}", text(&other.stderr));
    assert!(
        text(&other.stdout).contains(warning),
        "{}",
        text(&other.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(
        report["fingerprint_differences"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["field"] == "workload"
                && d["baseline"] == "checkout-service"
                && d["new"] == "gate_workload"),
        "{report}"
    );

    // The same program under the baseline's name: no warning.
    let named = profiler()
        .arg("compare")
        .arg(&base)
        .args(&runs)
        .args(LOOSE)
        .args(["--workload", "checkout-service"])
        .output()
        .unwrap();
    assert_eq!(code(&named), 0, "{}", text(&named.stderr));
    assert!(
        !text(&named.stdout).contains("workload"),
        "{}",
        text(&named.stdout)
    );
}

#[test]
fn baseline_save_names_the_program_run_through_env() {
    let dir = temp_dir("env-workload");
    let saved = dir.join("base.json");
    let w = workload();
    let out = profiler()
        .args(["baseline", "save"])
        .arg(&saved)
        .args(["--runs", "1", "--warmup", "0", "--"])
        .args(["env", "GATE_TEST_SETTING=1", &w, "--scale", "0.05"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(value["fingerprint"]["workload"], "gate_workload");
}

#[test]
fn new_runs_that_recorded_nothing_fail_the_gate() {
    let dir = temp_dir("nothing");
    let base = run_workload(&dir, "base", &[]);
    // Recording switched off: the profile lists the functions, none of them called, as a
    // build without `enable` records nothing.
    let status = Command::new(workload())
        .args(["--scale", "0.05"])
        .env("PROFILER_OUTPUT", dir.join("off"))
        .env("PROFILER_FORMATS", "json")
        .env("PROFILER_ENABLED", "0")
        .status()
        .unwrap();
    assert!(status.success());
    let off = dir.join("off.json");
    let json = dir.join("report.json");
    let out = profiler()
        .arg("compare")
        .arg(&base)
        .arg(&off)
        .arg("--json")
        .arg(&json)
        // Allowing a function to disappear does not excuse a run that recorded nothing.
        .args(["--allow-missing", "lookup"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}{}", text(&out.stdout), text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("FAIL: the new runs recorded no function: was `enable` on?"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("result: FAIL (the new runs recorded no function)\n"),
        "{stdout}"
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["nothing_recorded"], true, "{report}");
}

#[test]
fn functions_missing_from_the_new_runs_fail_unless_allowed() {
    let dir = temp_dir("missing");
    // The baseline knows one function, `app::work`; the new runs, from another program, call
    // five others.
    let base = dir.join("base.json");
    baseline_file(&base, &[100_000, 100_100, 99_900]);
    let foreign = run_workload(&dir, "foreign", &[]);
    let summary = dir.join("summary.md");
    let json = dir.join("report.json");
    let out = profiler()
        .arg("compare")
        .arg(&base)
        .arg(&foreign)
        .arg("--markdown")
        .arg(&summary)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}{}", text(&out.stdout), text(&out.stderr));
    let line = "missing: app::work (in the baseline, not in any new run)";
    let stdout = text(&out.stdout);
    assert!(stdout.contains(line), "{stdout}");
    assert!(
        stdout.contains(
            "result: FAIL (0 regression(s), 0 budget violation(s), 1 missing function(s))"
        ),
        "{stdout}"
    );
    let row = stdout.lines().find(|l| l.starts_with("app::work")).unwrap();
    assert!(row.contains("MISSING"), "{row}");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains(&format!("- {line}")), "{md}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(
        report["missing"],
        serde_json::json!(["app::work"]),
        "{report}"
    );

    let allowed = profiler()
        .arg("compare")
        .arg(&base)
        .arg(&foreign)
        .args([
            "--allow-missing",
            "app::work",
            "--allow-missing",
            "app::wrok",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(code(&allowed), 0, "{}", text(&allowed.stderr));
    let stdout = text(&allowed.stdout);
    assert!(
        stdout.contains(
            "note: app::work is in the baseline and not in any new run: allowed to disappear"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "note: allowed to disappear, app::wrok is no function of the baseline or the new runs"
        ),
        "{stdout}"
    );
    assert!(stdout.ends_with("result: ok\n"), "{stdout}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["missing"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["allowed_missing"],
        serde_json::json!(["app::work"]),
        "{report}"
    );
}
