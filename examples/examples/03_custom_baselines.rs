//! Tutorial 03: baselines and the regression gate in code. Record a few runs of a workload, save
//! them as a baseline, then check a "new build" against it: a function called more often, a
//! function made slower, a budget, and an alert hook that receives each finding.
//!
//! Run: `cargo run --release -p profiler-examples --example 03_custom_baselines`
//! Writes `target/profiles/03_custom_baselines.baseline.json` and `.budgets.txt` (or under
//! `$PROFILER_OUTPUT`). In CI, prefer the `profiler compare` command, which runs each build as
//! separate processes; this example records its runs in one process to stay short.

use std::hint::black_box;
use std::path::PathBuf;

use profiler_examples::output_prefix;
use profiler_runtime::baseline::{
    compare, Alert, Baseline, Budgets, CompareOptions, Fingerprint, Run, Statistic,
};
use profiler_runtime::profile;

/// How the "build" behaves: the new build calls `lookup` once more per request and makes
/// `checksum` do 30% more work.
#[derive(Clone, Copy)]
struct Build {
    extra_lookups: u64,
    checksum_work: f64,
}

fn spin(iterations: f64, seed: u64) -> u64 {
    let mut x = seed | 1;
    for i in 0..iterations as u64 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
        x ^= x >> 29;
    }
    black_box(x)
}

// A budget in the attribute (deliberately tight here, to show a violation).
#[profile(budget = "1us")]
fn lookup(seed: u64) -> u64 {
    spin(3_000.0, seed)
}

#[profile]
fn checksum(build: Build, seed: u64) -> u64 {
    spin(40_000.0 * build.checksum_work, seed)
}

#[profile]
fn handle_request(build: Build, seed: u64) -> u64 {
    let mut acc = seed;
    for i in 0..3 + build.extra_lookups {
        acc ^= lookup(acc.wrapping_add(i));
    }
    acc ^ checksum(build, acc)
}

// ANCHOR: runs
/// One run of the workload, reduced to per-function results.
fn one_run(build: Build) -> Run {
    let _ = profiler_runtime::flush(); // start from an empty profile
    let mut acc = 0_u64;
    for request in 0..40 {
        acc ^= handle_request(build, acc.wrapping_add(request));
    }
    black_box(acc);
    Run::from_profile(&profiler_runtime::flush())
}

fn runs(build: Build, count: usize) -> Vec<Run> {
    one_run(build); // warm-up, discarded
    (0..count).map(|_| one_run(build)).collect()
}
// ANCHOR_END: runs

fn path(suffix: &str) -> PathBuf {
    let mut name = output_prefix("03_custom_baselines").into_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    profiler_runtime::enable();
    let old = Build {
        extra_lookups: 0,
        checksum_work: 1.0,
    };
    let new = Build {
        extra_lookups: 1,
        checksum_work: 1.3,
    };

    // ANCHOR: save
    // 1. A baseline: ten runs of the current build, with the machine and build fingerprint.
    let fingerprint = Fingerprint::current("03_custom_baselines");
    let baseline = Baseline::from_runs(fingerprint.clone(), &runs(old, 10))?;
    let baseline_path = path(".baseline.json");
    baseline.save(&baseline_path)?;
    println!("saved {}", baseline_path.display());
    // ANCHOR_END: save

    // ANCHOR: budgets
    // 2. Budgets: those of `#[profile(budget = "...")]`, checked here on the median call, plus
    //    a budgets file kept apart from the baseline, so regenerating the baseline never erases
    //    them. The file wins where both name a function.
    let budgets_path = path(".budgets.txt");
    std::fs::write(
        &budgets_path,
        "# function                           limit  statistic\n\
         03_custom_baselines::handle_request  10s    p99\n",
    )?;
    let mut budgets = Budgets::from_registered_functions(Statistic::P50);
    budgets.extend(Budgets::load(&budgets_path)?);
    // ANCHOR_END: budgets

    // ANCHOR: compare
    // 3. The new build: load the baseline back and compare ten runs of it.
    let baseline = Baseline::load(&baseline_path)?;
    let current = Baseline::from_runs(fingerprint, &runs(new, 10))?;
    let options = CompareOptions {
        threshold: 0.05, // tolerate 5%, or the function's own noise if larger
        budgets,
        ..CompareOptions::default()
    };
    let comparison = compare(&baseline, &current, &options);
    print!("{}", comparison.table());
    // ANCHOR_END: compare

    // ANCHOR: alerts
    // 4. The alert hook: called once per regression and per budget violation.
    let mut alerts = Vec::new();
    comparison.notify(&mut |alert: Alert<'_>| match alert {
        Alert::Regression(r) => alerts.push(format!("regression in {}", r.function())),
        Alert::Budget(b) => alerts.push(format!(
            "{} over budget: {} {} ns > {} ns",
            b.function, b.statistic, b.value_ns, b.limit_ns
        )),
    });
    for alert in &alerts {
        println!("alert: {alert}");
    }
    // ANCHOR_END: alerts

    // The extra call per request is exact, so it is always found.
    assert!(alerts
        .iter()
        .any(|a| a == "regression in 03_custom_baselines::lookup"));
    Ok(())
}
