//! Baselines and the regression gate: file errors, detection on synthetic runs with known
//! effects (seeded lognormal noise), call counts, budgets, the alert hook, and one real profile.

use std::path::{Path, PathBuf};

use profiler_runtime::baseline::{
    compare, Alert, Baseline, BaselineError, Budget, Budgets, CompareOptions, Fingerprint, Metric,
    Regression, Run, RunFunction, SkipReason, Statistic, Verdict,
};
use profiler_runtime::{profile, profile_scope};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("profiler-baseline-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A standard normal draw (Box-Muller) from a seeded generator.
fn normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = rng.f64().max(f64::MIN_POSITIVE);
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `runs` runs of `functions` functions: function `i` takes `(i + 1) * 10 us` per call, 100
/// calls per run, with lognormal run-to-run noise of `sigma`; `slow` multiplies one function.
fn synthetic_runs(
    rng: &mut fastrand::Rng,
    runs: usize,
    functions: usize,
    sigma: f64,
    slow: Option<(usize, f64)>,
) -> Vec<Run> {
    (0..runs)
        .map(|_| {
            Run::new(
                (0..functions)
                    .map(|i| {
                        let factor = slow.filter(|s| s.0 == i).map_or(1.0, |s| s.1);
                        let call_ns =
                            (i as f64 + 1.0) * 10_000.0 * factor * (sigma * normal(rng)).exp();
                        RunFunction::from_totals(&format!("f{i:02}"), 100, (call_ns * 100.0) as u64)
                    })
                    .collect(),
            )
        })
        .collect()
}

fn baseline(runs: &[Run]) -> Baseline {
    Baseline::from_runs(Fingerprint::current("synthetic"), runs).unwrap()
}

fn time_regressions(base: &Baseline, new: &Baseline, options: &CompareOptions) -> Vec<String> {
    compare(base, new, options)
        .regressions
        .iter()
        .filter(|r| matches!(r, Regression::Time { .. }))
        .map(|r| r.function().to_owned())
        .collect()
}

#[test]
fn catches_a_ten_percent_slowdown_among_twenty_functions() {
    let options = CompareOptions::default();
    for seed in 0..50 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let base = baseline(&synthetic_runs(&mut rng, 10, 20, 0.01, None));
        let new = baseline(&synthetic_runs(&mut rng, 10, 20, 0.01, Some((7, 1.10))));
        assert_eq!(
            time_regressions(&base, &new, &options),
            ["f07"],
            "seed {seed}"
        );
    }
}

#[test]
fn does_not_flag_identical_distributions() {
    let options = CompareOptions::default();
    let mut alarms = 0;
    for seed in 0..200 {
        let mut rng = fastrand::Rng::with_seed(1000 + seed);
        let base = baseline(&synthetic_runs(&mut rng, 10, 20, 0.03, None));
        let new = baseline(&synthetic_runs(&mut rng, 10, 20, 0.03, None));
        if !compare(&base, &new, &options).regressions.is_empty() {
            alarms += 1;
        }
    }
    // Holm at alpha = 1% bounds the chance of any false alarm per comparison; with the 2%
    // threshold on top the expected count over 200 comparisons is well below 2.
    assert!(alarms <= 2, "{alarms} false alarms in 200 A/A comparisons");
}

#[test]
fn noise_raises_the_threshold() {
    // 8% run-to-run noise: a 5% slowdown is within the noise and must not be flagged, and the
    // threshold reported is the noise, not the user's 2%.
    let mut rng = fastrand::Rng::with_seed(7);
    let base = baseline(&synthetic_runs(&mut rng, 10, 1, 0.08, None));
    let new = baseline(&synthetic_runs(&mut rng, 10, 1, 0.08, Some((0, 1.05))));
    let c = compare(&base, &new, &CompareOptions::default());
    let t = c.functions[0].time.as_ref().unwrap();
    assert!(t.threshold > 0.04, "threshold {}", t.threshold);
    assert!((t.threshold - t.noise).abs() < 1e-12);
    assert!(!t.regression);
    assert!(t.min_detectable > t.threshold);
}

#[test]
fn flags_call_count_increases_only_when_deterministic() {
    let fp = Fingerprint::current("counts");
    let run = |calls: u64| {
        Run::new(vec![RunFunction::from_totals(
            "query",
            calls,
            calls * 10_000,
        )])
    };
    let base = Baseline::from_runs(fp.clone(), &[run(10), run(10), run(10)]).unwrap();
    let new = Baseline::from_runs(fp.clone(), &[run(11), run(11), run(11)]).unwrap();
    let c = compare(&base, &new, &CompareOptions::default());
    assert_eq!(
        c.regressions,
        [Regression::CallCount {
            function: "query".into(),
            baseline: 10,
            new: 11
        }]
    );
    assert_eq!(c.functions[0].verdict, Verdict::MoreCalls);

    // Counts that vary between baseline runs are not checked.
    let varying = Baseline::from_runs(fp.clone(), &[run(9), run(10), run(11)]).unwrap();
    let c = compare(&varying, &new, &CompareOptions::default());
    assert!(!c.functions[0].calls.as_ref().unwrap().deterministic);
    assert!(!c
        .regressions
        .iter()
        .any(|r| matches!(r, Regression::CallCount { .. })));

    // Fewer calls are not a regression.
    let fewer = Baseline::from_runs(fp, &[run(9), run(9)]).unwrap();
    assert!(compare(&base, &fewer, &CompareOptions::default())
        .regressions
        .is_empty());
}

#[test]
fn skips_functions_too_short_to_measure_and_says_so() {
    let fp = Fingerprint::current("short");
    let run = |ns: u64| {
        Run::new(vec![
            RunFunction::from_totals("tiny", 1000, 1000 * ns),
            RunFunction::from_totals("rare", 1, 20_000),
        ])
    };
    let base = Baseline::from_runs(fp.clone(), &[run(40), run(40)]).unwrap();
    let new = Baseline::from_runs(fp, &[run(80), run(80)]).unwrap();
    let c = compare(&base, &new, &CompareOptions::default());
    for f in &c.functions {
        assert!(
            matches!(f.skipped, Some(SkipReason::TooShort { .. })),
            "{}: {:?}",
            f.name,
            f.skipped
        );
    }
    assert!(c.regressions.is_empty());
    assert!(c.table().contains("too short to measure"));
}

#[test]
fn budgets_are_checked_on_the_chosen_statistic() {
    let fp = Fingerprint::current("budgets");
    let mut f = RunFunction::from_totals("query", 100, 100 * 1_000_000);
    f.p50_ns = 900_000;
    f.p99_ns = 3_000_000;
    let new = Baseline::from_runs(fp, &[Run::new(vec![f.clone()]), Run::new(vec![f])]).unwrap();
    let check = |statistic| {
        let mut budgets = Budgets::new();
        budgets.insert(Budget {
            function: "query".into(),
            limit_ns: 2_000_000,
            statistic,
            source: "test".into(),
        });
        let options = CompareOptions {
            budgets,
            ..CompareOptions::default()
        };
        compare(&new, &new, &options).budget_violations
    };
    assert!(check(Statistic::P50).is_empty());
    assert!(check(Statistic::Mean).is_empty());
    let v = check(Statistic::P99);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].value_ns, 3_000_000);
    assert_eq!(v[0].limit_ns, 2_000_000);
}

#[test]
fn budgets_file_survives_baseline_regeneration() {
    // Budgets live in their own file: saving a new baseline over the old one leaves them alone.
    let dir = temp_dir("budgets");
    let budgets_path = dir.join("budgets.txt");
    std::fs::write(&budgets_path, "query 2ms p99\n").unwrap();
    let base_path = dir.join("base.json");
    let run = Run::new(vec![RunFunction::from_totals("query", 1, 5_000_000)]);
    for _ in 0..2 {
        baseline(&[run.clone(), run.clone()])
            .save(&base_path)
            .unwrap();
    }
    let budgets = Budgets::load(&budgets_path).unwrap();
    let options = CompareOptions {
        budgets,
        ..CompareOptions::default()
    };
    let base = Baseline::load(&base_path).unwrap();
    assert_eq!(compare(&base, &base, &options).budget_violations.len(), 1);
}

#[test]
fn alert_hook_receives_each_regression_and_violation() {
    let fp = Fingerprint::current("alerts");
    let run = |calls: u64| {
        Run::new(vec![
            RunFunction::from_totals("a", calls, calls * 100_000),
            RunFunction::from_totals("b", calls, calls * 100_000),
        ])
    };
    let base = Baseline::from_runs(fp.clone(), &[run(5), run(5)]).unwrap();
    let new = Baseline::from_runs(fp, &[run(6), run(6)]).unwrap();
    let mut budgets = Budgets::new();
    budgets.insert(Budget {
        function: "a".into(),
        limit_ns: 1_000,
        statistic: Statistic::Mean,
        source: "test".into(),
    });
    let options = CompareOptions {
        budgets,
        ..CompareOptions::default()
    };
    let c = compare(&base, &new, &options);
    let mut seen = Vec::new();
    let n = c.notify(&mut |alert: Alert<'_>| {
        seen.push(match alert {
            Alert::Regression(r) => format!("regression {}", r.function()),
            Alert::Budget(b) => format!("budget {}", b.function),
        });
    });
    assert_eq!(seen, ["regression a", "regression b", "budget a"]);
    assert_eq!(n, 3);
}

#[test]
fn fingerprint_differences_are_reported() {
    let runs = [Run::new(vec![RunFunction::from_totals("f", 1, 1_000_000)])];
    let base = baseline(&runs);
    let mut new = baseline(&runs);
    new.fingerprint.machine.cpu_model = "Some Other CPU".into();
    let c = compare(&base, &new, &CompareOptions::default());
    assert!(c.incomparable());
    assert!(c
        .table()
        .contains("warning: fingerprints differ: machine.cpu_model"));
}

#[test]
fn outputs_parse_back() {
    let mut rng = fastrand::Rng::with_seed(3);
    let base = baseline(&synthetic_runs(&mut rng, 5, 3, 0.01, None));
    let new = baseline(&synthetic_runs(&mut rng, 5, 3, 0.01, Some((1, 1.5))));
    let c = compare(&base, &new, &CompareOptions::default());
    let mut json = Vec::new();
    c.write(profiler_runtime::baseline::OutputFormat::Json, &mut json)
        .unwrap();
    let back: profiler_runtime::baseline::Comparison = serde_json::from_slice(&json).unwrap();
    assert_eq!(back.regressions, c.regressions);
    let md = c.markdown();
    assert!(md.contains("| f01 | SLOWER |"), "{md}");
    let table = c.table();
    assert!(table.lines().next().unwrap().starts_with("function"));
}

// ---- files ---------------------------------------------------------------------------------

fn saved(name: &str) -> PathBuf {
    let path = temp_dir("files").join(name);
    baseline(&[Run::new(vec![RunFunction::from_totals("f", 3, 3_000_000)])])
        .save(&path)
        .unwrap();
    path
}

fn load_error(path: &Path) -> String {
    let err = Baseline::load(path).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "error does not name the file: {text}"
    );
    text
}

#[test]
fn truncated_file_is_reported_as_truncated() {
    let path = saved("truncated.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    assert!(matches!(
        Baseline::load(&path),
        Err(BaselineError::Truncated { .. })
    ));
    assert!(load_error(&path).contains("truncated"));
}

#[test]
fn corrupt_file_is_reported_as_malformed() {
    let path = saved("corrupt.json");
    std::fs::write(
        &path,
        "{\"schema\": \"profiler-baseline\", \"version\": 1, \"runs\": oops}",
    )
    .unwrap();
    assert!(matches!(
        Baseline::load(&path),
        Err(BaselineError::Malformed { .. })
    ));
    load_error(&path);
}

#[test]
fn future_version_is_refused_with_the_version() {
    let path = saved("future.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"version\": 1", "\"version\": 9", 1)).unwrap();
    assert!(matches!(
        Baseline::load(&path),
        Err(BaselineError::NewerVersion { found: 9, .. })
    ));
    assert!(load_error(&path).contains("version 9"));
}

#[test]
fn other_json_is_not_a_baseline() {
    let path = temp_dir("files").join("profile.json");
    std::fs::write(&path, "{\"schema\": \"profiler-profile\", \"version\": 1}").unwrap();
    assert!(matches!(
        Baseline::load(&path),
        Err(BaselineError::WrongSchema { .. })
    ));
    assert!(load_error(&path).contains("profiler-profile"));
}

#[test]
fn inconsistent_file_is_invalid() {
    let path = saved("inconsistent.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"runs\": 1", "\"runs\": 2", 1)).unwrap();
    assert!(matches!(
        Baseline::load(&path),
        Err(BaselineError::Invalid { .. })
    ));
    load_error(&path);
}

#[test]
fn missing_file_names_it() {
    load_error(&temp_dir("files").join("does-not-exist.json"));
}

// ---- the real pipeline ---------------------------------------------------------------------

fn spin(n: u64) -> u64 {
    (0..n).fold(1_u64, |x, i| {
        std::hint::black_box(x.wrapping_mul(31).wrapping_add(i))
    })
}

fn workload(extra: u64) {
    profile_scope!("gate::outer");
    for _ in 0..3 + extra {
        profile_scope!("gate::inner");
        spin(1000);
    }
}

#[test]
fn runs_from_real_profiles_flag_an_extra_call() {
    let run = |extra| {
        let profile = profiler_tests::record(|| workload(extra));
        Run::from_profile(&profile)
    };
    let base = baseline(&[run(0), run(0), run(0)]);
    let same = baseline(&[run(0), run(0)]);
    let more = baseline(&[run(1), run(1)]);
    let inner = base.function("gate::inner").unwrap();
    assert_eq!(inner.calls, [3, 3, 3]);
    let options = CompareOptions {
        metric: Metric::Median,
        ..CompareOptions::default()
    };
    let counts = |new: &Baseline| -> Vec<String> {
        compare(&base, new, &options)
            .regressions
            .iter()
            .filter(|r| matches!(r, Regression::CallCount { .. }))
            .map(|r| r.function().to_owned())
            .collect()
    };
    assert!(counts(&same).is_empty());
    assert_eq!(counts(&more), ["gate::inner"]);
}

/// Far over its budget: 200k dependent multiply-adds take well over a microsecond anywhere.
#[profile(budget = "1us")]
fn over_budget() -> u64 {
    spin(200_000)
}

/// Far under its budget.
#[profile(budget = "10s")]
fn under_budget() -> u64 {
    spin(10)
}

#[test]
fn attribute_budgets_are_collected_and_checked() {
    let budgets = Budgets::from_registered_functions(Statistic::P50);
    let limits: Vec<(String, u64)> = budgets
        .iter()
        .map(|b| (b.function.clone(), b.limit_ns))
        .collect();
    assert!(
        limits.contains(&("baseline::over_budget".to_owned(), 1_000)),
        "{limits:?}"
    );
    assert!(
        limits.contains(&("baseline::under_budget".to_owned(), 10_000_000_000)),
        "{limits:?}"
    );
    let run = || {
        Run::from_profile(&profiler_tests::record(|| {
            over_budget();
            under_budget();
        }))
    };
    let runs = baseline(&[run(), run()]);
    let options = CompareOptions {
        budgets,
        ..CompareOptions::default()
    };
    let violations: Vec<String> = compare(&runs, &runs, &options)
        .budget_violations
        .into_iter()
        .map(|v| v.function)
        .collect();
    assert_eq!(violations, ["baseline::over_budget"]);
}

/// The attribute's budget travels in the saved profile JSON, so a gate run on files (the
/// `profiler compare` command) checks it without being told.
#[test]
fn attribute_budgets_travel_in_saved_profiles() {
    let dir = temp_dir("attribute-budgets");
    let mut runs = Vec::new();
    for i in 0..2 {
        let profile = profiler_tests::record(|| {
            over_budget();
            under_budget();
        });
        let path = dir.join(format!("run{i}.json"));
        profiler_runtime::export::export_profile(
            &profile,
            &path,
            Some(profiler_runtime::export::Format::Json),
        )
        .unwrap();
        runs.push(Run::load(&path).unwrap());
    }
    let over = runs[0]
        .functions
        .iter()
        .find(|f| f.name == "baseline::over_budget")
        .unwrap();
    assert_eq!(over.budget_ns, Some(1_000));
    let base = baseline(&runs);
    // No budgets passed in the options: the attribute's alone is checked.
    let violations: Vec<(String, String)> = compare(&base, &base, &CompareOptions::default())
        .budget_violations
        .into_iter()
        .map(|v| (v.function, v.statistic.name().to_owned()))
        .collect();
    assert_eq!(
        violations,
        [("baseline::over_budget".to_owned(), "p99".to_owned())]
    );
}
