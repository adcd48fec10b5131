//! The regression gate: call counts, then time with confidence bounds over runs, then budgets.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::budget::{Budget, Budgets, Statistic};
use super::fingerprint::FingerprintDifference;
use super::{Baseline, FunctionRuns};

/// Which time per call is compared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Median inclusive time of a call in each run: robust to calls interrupted by other work
    /// on a shared machine (preemption, page faults), at the price of missing a slowdown of a
    /// minority of calls.
    #[default]
    Median,
    /// Mean inclusive time of a call in each run (total / calls): sees every call, including
    /// the interrupted ones. A slower callee makes its callers slower too.
    Total,
    /// Exclusive (self) time per call: flags the function where the time is spent.
    #[serde(rename = "self")]
    SelfTime,
}

/// How false alarms are controlled across the functions tested.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Correction {
    /// Holm's step-down: the chance of any false alarm in the suite is at most `alpha`.
    #[default]
    Holm,
    /// Benjamini-Hochberg: the expected share of false alarms among the flagged is at most
    /// `alpha`; more sensitive with many functions, weaker guarantee.
    BenjaminiHochberg,
}

/// Options of [`compare`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareOptions {
    /// The slowdown tolerated, as a fraction (0.02 = 2%). Raised per function to its noise.
    pub threshold: f64,
    /// The false-alarm level of the whole comparison (0.01 = 1%).
    pub alpha: f64,
    /// Holm or Benjamini-Hochberg.
    pub correction: Correction,
    /// Inclusive or exclusive time per call.
    pub metric: Metric,
    /// Functions whose baseline mean call is shorter than this (ns) are skipped.
    pub min_call_ns: f64,
    /// Functions whose baseline time per run is shorter than this (ns) are skipped.
    pub min_run_ns: f64,
    /// Absolute limits checked on the new runs. Budgets given with `#[profile(budget = "...")]`
    /// (carried in the runs) are checked too, on [`attribute_budget_statistic`](Self::attribute_budget_statistic),
    /// except for functions that have a budget here, which replaces the attribute's.
    pub budgets: Budgets,
    /// The statistic on which attribute budgets are checked.
    #[serde(default = "default_attribute_statistic")]
    pub attribute_budget_statistic: Statistic,
    /// Functions (full names, exactly) that may be called in the baseline and in none of the
    /// new runs without failing the gate: removed or renamed on purpose.
    #[serde(default)]
    pub allow_missing: Vec<String>,
}

fn default_attribute_statistic() -> Statistic {
    Statistic::P99
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            threshold: 0.02,
            alpha: 0.01,
            correction: Correction::Holm,
            metric: Metric::Median,
            min_call_ns: 100.0,
            min_run_ns: 50_000.0,
            budgets: Budgets::new(),
            attribute_budget_statistic: default_attribute_statistic(),
            allow_missing: Vec::new(),
        }
    }
}

/// How a function's call count changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCountChange {
    /// Calls per run in the baseline (its median when not deterministic).
    pub baseline: u64,
    /// Calls per run in the new runs (their median).
    pub new: u64,
    /// Whether the baseline's count was the same in every run; if not, counts are not checked.
    pub deterministic: bool,
    /// Whether this is a regression: a deterministic count exceeded in every new run.
    pub regression: bool,
}

/// The time comparison of one function.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeResult {
    /// Baseline time per call, ns (geometric mean over runs).
    pub baseline_ns: f64,
    /// New time per call, ns (geometric mean over runs).
    pub new_ns: f64,
    /// Estimated new/baseline.
    pub ratio: f64,
    /// Lower confidence bound of new/baseline, at the level this function was tested at.
    pub lower: f64,
    /// Upper confidence bound of new/baseline.
    pub upper: f64,
    /// Run-to-run noise of the baseline (standard deviation of log-times).
    pub noise: f64,
    /// The threshold applied: max(user's, noise).
    pub threshold: f64,
    /// One-sided p-value of "slower by more than the threshold".
    pub p_value: f64,
    /// The smallest slowdown (fraction) that these runs' noise lets the gate flag, at the
    /// strictest level of the correction.
    pub min_detectable: f64,
    /// Flagged after the correction.
    pub regression: bool,
    /// Faster: the upper bound is below `1 / (1 + threshold)` (not corrected; for information).
    pub faster: bool,
}

/// Why a function's time was not tested.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum SkipReason {
    /// Too short to measure reliably.
    TooShort {
        /// Baseline mean time per call, ns.
        call_ns: f64,
        /// Baseline time per run, ns.
        run_ns: f64,
    },
    /// Not called in the baseline or in the new runs.
    NotCalled,
    /// Only in the new runs (a new function).
    NotInBaseline,
    /// Only in the baseline (removed or renamed).
    NotInNew,
    /// One run on each side: no variance to judge by.
    TooFewRuns,
}

/// The outcome for one function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Called more often than in every baseline run.
    MoreCalls,
    /// Slower beyond the threshold.
    Slower,
    /// Faster beyond the threshold.
    Faster,
    /// No change the gate can see.
    Unchanged,
    /// Called in the baseline, in none of the new runs, and not allowed to disappear
    /// ([`CompareOptions::allow_missing`]): the gate fails.
    Missing,
    /// Not tested (see the skip reason).
    Skipped,
}

/// One function's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionVerdict {
    /// The function's full name.
    pub name: String,
    /// The outcome.
    pub verdict: Verdict,
    /// Its call counts.
    pub calls: Option<CallCountChange>,
    /// Its time comparison, when tested.
    pub time: Option<TimeResult>,
    /// Why the time was not tested.
    pub skipped: Option<SkipReason>,
}

/// A regression found by [`compare`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Regression {
    /// A deterministic call count went up.
    CallCount {
        /// The function.
        function: String,
        /// Calls per run in the baseline.
        baseline: u64,
        /// Calls per run now (median).
        new: u64,
    },
    /// Time per call went up beyond the threshold.
    Time {
        /// The function.
        function: String,
        /// Estimated new/baseline.
        ratio: f64,
        /// Its lower confidence bound.
        lower: f64,
        /// The threshold applied.
        threshold: f64,
    },
}

impl Regression {
    /// The function concerned.
    pub fn function(&self) -> &str {
        match self {
            Regression::CallCount { function, .. } | Regression::Time { function, .. } => function,
        }
    }
}

/// A budget the new runs exceed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetViolation {
    /// The function.
    pub function: String,
    /// The statistic limited.
    pub statistic: Statistic,
    /// The limit, ns.
    pub limit_ns: u64,
    /// The median over the new runs of the statistic, ns.
    pub value_ns: u64,
    /// Where the budget comes from.
    pub source: String,
}

/// What an [`AlertHook`] receives.
#[derive(Clone, Copy, Debug)]
pub enum Alert<'a> {
    /// A regression.
    Regression(&'a Regression),
    /// A budget violation.
    Budget(&'a BudgetViolation),
}

/// Receives each regression and budget violation of a [`Comparison`] (see
/// [`Comparison::notify`]): post to a chat, open a ticket, write a CI annotation. Closures taking
/// an [`Alert`] implement it.
pub trait AlertHook {
    /// Called once per regression and per budget violation.
    fn alert(&mut self, alert: Alert<'_>);
}

impl<F: FnMut(Alert<'_>)> AlertHook for F {
    fn alert(&mut self, alert: Alert<'_>) {
        self(alert);
    }
}

/// The result of [`compare`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Options used (budgets included).
    pub options: CompareOptions,
    /// Runs in the baseline.
    pub baseline_runs: usize,
    /// New runs.
    pub new_runs: usize,
    /// How the fingerprints differ (machine, build, source).
    pub fingerprint_differences: Vec<FingerprintDifference>,
    /// Every function, sorted by name.
    pub functions: Vec<FunctionVerdict>,
    /// Regressions: call counts first, then times.
    pub regressions: Vec<Regression>,
    /// Budgets exceeded.
    pub budget_violations: Vec<BudgetViolation>,
    /// Budgets that could not be checked (the function was not called in the new runs).
    pub budgets_unchecked: Vec<String>,
    /// Functions called in the baseline and in none of the new runs, not allowed to disappear:
    /// each fails the gate. Sorted.
    #[serde(default)]
    pub missing: Vec<String>,
    /// Functions called in the baseline and in none of the new runs that
    /// [`CompareOptions::allow_missing`] lets go. Sorted.
    #[serde(default)]
    pub allowed_missing: Vec<String>,
    /// The new runs called no function at all: a build without the `enable` feature, a run that
    /// did nothing, or profiles of another program. The gate fails: nothing was tested.
    #[serde(default)]
    pub nothing_recorded: bool,
}

impl Comparison {
    /// Whether there is a regression or a budget violation. The gate's verdict is
    /// [`fails`](Self::fails), which also counts functions gone missing.
    pub fn has_regressions(&self) -> bool {
        !self.regressions.is_empty() || !self.budget_violations.is_empty()
    }

    /// Whether the gate fails: a regression, a budget violation, a function of the baseline
    /// that no new run called ([`missing`](Self::missing)), or new runs that called no function
    /// at all ([`nothing_recorded`](Self::nothing_recorded)).
    ///
    /// # Examples
    ///
    /// ```
    /// # use profiler_runtime::baseline::*;
    /// let run = |name| Run::new(vec![RunFunction::from_totals(name, 10, 10_000_000)]);
    /// let fp = Fingerprint::current("doc");
    /// let base = Baseline::from_runs(fp.clone(), &[run("old_name"), run("old_name")])?;
    /// let new = Baseline::from_runs(fp, &[run("new_name"), run("new_name")])?;
    /// let comparison = compare(&base, &new, &CompareOptions::default());
    /// assert!(!comparison.has_regressions());
    /// assert_eq!(comparison.missing, ["old_name"]);
    /// assert!(comparison.fails());
    ///
    /// let renamed = CompareOptions {
    ///     allow_missing: vec!["old_name".to_owned()],
    ///     ..CompareOptions::default()
    /// };
    /// assert!(!compare(&base, &new, &renamed).fails());
    /// # Ok::<(), BaselineError>(())
    /// ```
    pub fn fails(&self) -> bool {
        self.has_regressions() || !self.missing.is_empty() || self.nothing_recorded
    }

    /// Whether a fingerprint difference affects times (another machine, compiler or profile).
    pub fn incomparable(&self) -> bool {
        self.fingerprint_differences.iter().any(|d| d.affects_times)
    }

    /// Calls `hook` with each regression, then each budget violation; returns how many.
    ///
    /// # Examples
    ///
    /// ```
    /// # use profiler_runtime::baseline::*;
    /// # let run = |c| Run::new(vec![RunFunction::from_totals("f", c, c * 1000)]);
    /// # let fp = Fingerprint::current("doc");
    /// # let base = Baseline::from_runs(fp.clone(), &[run(1), run(1)])?;
    /// # let new = Baseline::from_runs(fp, &[run(2), run(2)])?;
    /// let comparison = compare(&base, &new, &CompareOptions::default());
    /// let mut messages = Vec::new();
    /// comparison.notify(&mut |alert: Alert<'_>| match alert {
    ///     Alert::Regression(r) => messages.push(format!("regression in {}", r.function())),
    ///     Alert::Budget(b) => messages.push(format!("{} over budget", b.function)),
    /// });
    /// assert_eq!(messages, ["regression in f"]);
    /// # Ok::<(), BaselineError>(())
    /// ```
    pub fn notify(&self, hook: &mut dyn AlertHook) -> usize {
        for r in &self.regressions {
            hook.alert(Alert::Regression(r));
        }
        for b in &self.budget_violations {
            hook.alert(Alert::Budget(b));
        }
        self.regressions.len() + self.budget_violations.len()
    }
}

/// Compares `new` runs with `baseline` runs: call counts, times and budgets
/// (described below). `new` is a [`Baseline`] too: the same structure, made from the runs
/// of the build under test.
///
/// # Time: the test
///
/// Per run and function, the value compared is the time of one call: by default the median
/// call of the run (inclusive), or the mean inclusive or exclusive time ([`Metric`]). With `x`
/// the logarithms of the baseline's values and `y` those of the
/// new runs, `d = mean(y) - mean(x)` estimates `ln(new/baseline)`, and Welch's
/// `se = sqrt(var(x)/n + var(y)/m)` with the Welch-Satterthwaite degrees of freedom gives its
/// uncertainty. Logarithms make the effect a ratio and tame the right skew of run times.
///
/// The null hypothesis of each function is "slower by at most the threshold":
/// `d <= ln(1 + threshold)`, with `threshold = max(user's, noise)`, where the noise is the
/// standard deviation of `x` (the function's run-to-run variation within the baseline, roughly
/// its coefficient of variation). Its one-sided p-value comes from Student's t. Holm's step-down
/// procedure (or Benjamini-Hochberg's) over the functions tested decides which are flagged; the
/// confidence bounds shown are at the level each function was tested at, so a flagged function's
/// lower bound of new/baseline is above `1 + threshold`.
///
/// With one run on one side, the other side's variance stands for both. Functions whose median (or mean)
/// call is shorter than [`CompareOptions::min_call_ns`], or whose time per run is below
/// [`CompareOptions::min_run_ns`], are skipped as too short to measure (the clock and the
/// instrumentation dominate them), and reported as skipped.
///
/// # Presence
///
/// A function called in at least one baseline run and in none of the new runs (absent, or listed
/// with 0 calls) is [`Verdict::Missing`] and listed in [`Comparison::missing`], unless
/// [`CompareOptions::allow_missing`] names it; new runs that called no function at all set
/// [`Comparison::nothing_recorded`]. Either makes [`Comparison::fails`] true.
pub fn compare(baseline: &Baseline, new: &Baseline, options: &CompareOptions) -> Comparison {
    let mut names: Vec<&str> = baseline
        .functions
        .iter()
        .chain(&new.functions)
        .map(|f| f.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();

    let mut functions = Vec::with_capacity(names.len());
    // Index into `functions` and raw test of every function whose time is tested.
    let mut tests: Vec<(usize, TimeTest)> = Vec::new();
    for name in names {
        let (b, n) = (baseline.function(name), new.function(name));
        let calls = match (b, n) {
            (Some(b), Some(n)) => Some(call_change(b, n)),
            _ => None,
        };
        let mut verdict = FunctionVerdict {
            name: name.to_owned(),
            verdict: Verdict::Skipped,
            calls,
            time: None,
            skipped: None,
        };
        match (b, n) {
            (None, _) => verdict.skipped = Some(SkipReason::NotInBaseline),
            (_, None) => verdict.skipped = Some(SkipReason::NotInNew),
            (Some(b), Some(n)) => match time_test(b, n, options) {
                Ok(test) => tests.push((functions.len(), test)),
                Err(reason) => verdict.skipped = Some(reason),
            },
        }
        functions.push(verdict);
    }

    let decisions = correct(&tests, options);
    for ((index, test), (regression, level)) in tests.iter().zip(decisions) {
        let m = tests.len().max(1) as f64;
        functions[*index].time = Some(test.result(regression, level, options.alpha / m));
    }

    let (missing, allowed_missing) = missing_functions(baseline, new, options);

    let mut regressions = Vec::new();
    for f in &mut functions {
        let more_calls = f.calls.as_ref().is_some_and(|c| c.regression);
        f.verdict = match &f.time {
            _ if missing.binary_search(&f.name).is_ok() => Verdict::Missing,
            _ if more_calls => Verdict::MoreCalls,
            Some(t) if t.regression => Verdict::Slower,
            Some(t) if t.faster => Verdict::Faster,
            Some(_) => Verdict::Unchanged,
            None => Verdict::Skipped,
        };
        if let Some(c) = f.calls.as_ref().filter(|c| c.regression) {
            regressions.push(Regression::CallCount {
                function: f.name.clone(),
                baseline: c.baseline,
                new: c.new,
            });
        }
    }
    for f in &functions {
        if let Some(t) = f.time.as_ref().filter(|t| t.regression) {
            regressions.push(Regression::Time {
                function: f.name.clone(),
                ratio: t.ratio,
                lower: t.lower,
                threshold: t.threshold,
            });
        }
    }

    let mut budgets = Budgets::new();
    for f in &new.functions {
        // A budget given explicitly for the function (from a budgets file, say) replaces the
        // attribute's, whatever its statistic.
        if options.budgets.iter().any(|b| b.function == f.name) {
            continue;
        }
        if let Some(limit_ns) = f.budget_ns {
            budgets.insert(Budget {
                function: f.name.clone(),
                limit_ns,
                statistic: options.attribute_budget_statistic,
                source: "#[profile]".to_owned(),
            });
        }
    }
    budgets.extend(options.budgets.clone());
    let (budget_violations, budgets_unchecked) = check_budgets(new, &budgets);
    Comparison {
        options: options.clone(),
        baseline_runs: baseline.runs,
        new_runs: new.runs,
        fingerprint_differences: baseline.fingerprint.differences(&new.fingerprint),
        functions,
        regressions,
        budget_violations,
        budgets_unchecked,
        missing,
        allowed_missing,
        nothing_recorded: !new.functions.iter().any(called),
    }
}

fn called(f: &FunctionRuns) -> bool {
    f.calls.iter().any(|&c| c > 0)
}

/// The functions the baseline called and no new run did, sorted: those not allowed to disappear,
/// then those allowed. Their code path is gone (or the build records nothing), which no time
/// test can see since there is nothing to time.
fn missing_functions(
    baseline: &Baseline,
    new: &Baseline,
    options: &CompareOptions,
) -> (Vec<String>, Vec<String>) {
    baseline
        .functions
        .iter()
        .filter(|f| called(f) && !new.function(&f.name).is_some_and(called))
        .map(|f| f.name.clone())
        .partition(|name| !options.allow_missing.contains(name))
}

fn call_change(b: &FunctionRuns, n: &FunctionRuns) -> CallCountChange {
    let deterministic = b.deterministic_calls();
    let baseline = median_u64(&b.calls);
    let new = median_u64(&n.calls);
    let fewest_new = n.calls.iter().copied().min().unwrap_or(0);
    CallCountChange {
        baseline,
        new,
        deterministic,
        regression: deterministic && fewest_new > baseline,
    }
}

/// The raw numbers of one function's time test, before the correction.
struct TimeTest {
    d: f64,
    se: f64,
    df: f64,
    noise: f64,
    threshold: f64,
    baseline_log_mean: f64,
    new_log_mean: f64,
    p_value: f64,
}

fn per_call(f: &FunctionRuns, metric: Metric) -> Vec<f64> {
    let time = match metric {
        Metric::Median => {
            return f
                .calls
                .iter()
                .zip(&f.p50_ns)
                .filter(|(&c, _)| c > 0)
                .map(|(_, &t)| t as f64)
                .collect()
        }
        Metric::Total => &f.total_ns,
        Metric::SelfTime => &f.self_ns,
    };
    f.calls
        .iter()
        .zip(time)
        .filter(|(&c, _)| c > 0)
        .map(|(&c, &t)| t as f64 / c as f64)
        .collect()
}

fn time_test(
    baseline_runs: &FunctionRuns,
    new_runs: &FunctionRuns,
    options: &CompareOptions,
) -> Result<TimeTest, SkipReason> {
    let base = per_call(baseline_runs, options.metric);
    let new = per_call(new_runs, options.metric);
    if base.is_empty() || new.is_empty() {
        return Err(SkipReason::NotCalled);
    }
    let call_ns = median_f64(&base);
    let run_ns = call_ns * median_u64(&baseline_runs.calls) as f64;
    if call_ns < options.min_call_ns || run_ns < options.min_run_ns {
        return Err(SkipReason::TooShort { call_ns, run_ns });
    }
    // Times of 0 ns (a clock tick too coarse) cannot be logged; they are below min_call_ns anyway
    // unless the user set it to 0, in which case they count as 1 ns.
    let base_logs: Vec<f64> = base.iter().map(|v| v.max(1.0).ln()).collect();
    let new_logs: Vec<f64> = new.iter().map(|v| v.max(1.0).ln()).collect();
    let (mx, vx) = mean_var(&base_logs);
    let (my, vy) = mean_var(&new_logs);
    let (nx, ny) = (base_logs.len() as f64, new_logs.len() as f64);
    let (se, df) = match (base_logs.len() >= 2, new_logs.len() >= 2) {
        (true, true) => {
            let (a, c) = (vx / nx, vy / ny);
            let se = (a + c).sqrt();
            let df = if a + c > 0.0 {
                (a + c).powi(2) / (a * a / (nx - 1.0) + c * c / (ny - 1.0))
            } else {
                nx + ny - 2.0
            };
            (se, df)
        }
        (true, false) => ((vx * (1.0 / nx + 1.0 / ny)).sqrt(), nx - 1.0),
        (false, true) => ((vy * (1.0 / nx + 1.0 / ny)).sqrt(), ny - 1.0),
        (false, false) => return Err(SkipReason::TooFewRuns),
    };
    let noise = vx.sqrt();
    let threshold = options.threshold.max(noise);
    let d = my - mx;
    let margin = d - threshold.ln_1p();
    let p_value = if se > 0.0 {
        1.0 - student_t(df).cdf(margin / se)
    } else if margin > 0.0 {
        0.0
    } else {
        1.0
    };
    Ok(TimeTest {
        d,
        se,
        df,
        noise,
        threshold,
        baseline_log_mean: mx,
        new_log_mean: my,
        p_value,
    })
}

impl TimeTest {
    /// The reported result, with bounds at `level` (one-sided) and the detectable slowdown at the
    /// strictest level `strictest`.
    fn result(&self, regression: bool, level: f64, strictest: f64) -> TimeResult {
        let t = student_t(self.df);
        let q = t.inverse_cdf(1.0 - level);
        let q_strict = t.inverse_cdf(1.0 - strictest);
        let faster = (self.d + q * self.se).exp() < 1.0 / (1.0 + self.threshold);
        TimeResult {
            baseline_ns: self.baseline_log_mean.exp(),
            new_ns: self.new_log_mean.exp(),
            ratio: self.d.exp(),
            lower: (self.d - q * self.se).exp(),
            upper: (self.d + q * self.se).exp(),
            noise: self.noise,
            threshold: self.threshold,
            p_value: self.p_value,
            min_detectable: (1.0 + self.threshold) * (q_strict * self.se).exp() - 1.0,
            regression,
            faster: faster && !regression,
        }
    }
}

/// For each test in order: whether it is flagged, and the one-sided level it was tested at.
fn correct(tests: &[(usize, TimeTest)], options: &CompareOptions) -> Vec<(bool, f64)> {
    let m = tests.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| tests[a].1.p_value.total_cmp(&tests[b].1.p_value));
    let mut out = vec![(false, options.alpha); m];
    let mf = m as f64;
    match options.correction {
        Correction::Holm => {
            let mut rejecting = true;
            for (rank, &i) in order.iter().enumerate() {
                let level = options.alpha / (mf - rank as f64);
                rejecting = rejecting && tests[i].1.p_value <= level;
                out[i] = (rejecting, level);
            }
        }
        Correction::BenjaminiHochberg => {
            let last = order
                .iter()
                .enumerate()
                .filter(|&(rank, &i)| {
                    tests[i].1.p_value <= options.alpha * (rank as f64 + 1.0) / mf
                })
                .map(|(rank, _)| rank)
                .next_back();
            for (rank, &i) in order.iter().enumerate() {
                let level = options.alpha * (rank as f64 + 1.0) / mf;
                out[i] = (last.is_some_and(|l| rank <= l), level);
            }
        }
    }
    out
}

fn check_budgets(new: &Baseline, budgets: &Budgets) -> (Vec<BudgetViolation>, Vec<String>) {
    let mut violations = Vec::new();
    let mut unchecked = Vec::new();
    for budget in budgets.iter() {
        let Some(f) = new.function(&budget.function) else {
            unchecked.push(budget.function.clone());
            continue;
        };
        let values: Vec<f64> = (0..f.calls.len())
            .filter(|&i| f.calls[i] > 0)
            .map(|i| match budget.statistic {
                Statistic::P50 => f.p50_ns[i] as f64,
                Statistic::P99 => f.p99_ns[i] as f64,
                Statistic::Mean => f.mean_ns[i],
            })
            .collect();
        if values.is_empty() {
            unchecked.push(budget.function.clone());
            continue;
        }
        let value_ns = median_f64(&values).round() as u64;
        if value_ns > budget.limit_ns {
            violations.push(BudgetViolation {
                function: budget.function.clone(),
                statistic: budget.statistic,
                limit_ns: budget.limit_ns,
                value_ns,
                source: budget.source.clone(),
            });
        }
    }
    (violations, unchecked)
}

fn student_t(df: f64) -> StudentsT {
    // The degrees of freedom are at least 1 here; clamp anyway so the distribution is valid.
    StudentsT::new(0.0, 1.0, df.max(1.0)).expect("location 0, scale 1 and df >= 1 are valid")
}

fn mean_var(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() < 2 {
        0.0
    } else {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    };
    (mean, var)
}

fn median_f64(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    }
}

fn median_u64(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_with_p(p: f64) -> (usize, TimeTest) {
        (
            0,
            TimeTest {
                d: 0.0,
                se: 1.0,
                df: 10.0,
                noise: 0.0,
                threshold: 0.0,
                baseline_log_mean: 0.0,
                new_log_mean: 0.0,
                p_value: p,
            },
        )
    }

    #[test]
    fn holm_steps_down_and_stops_at_first_failure() {
        let options = CompareOptions {
            alpha: 0.05,
            ..CompareOptions::default()
        };
        // Levels 0.05/4, 0.05/3, 0.05/2, 0.05/1 for p sorted ascending.
        let tests: Vec<_> = [0.001, 0.04, 0.012, 0.02]
            .into_iter()
            .map(test_with_p)
            .collect();
        let flagged: Vec<bool> = correct(&tests, &options).iter().map(|d| d.0).collect();
        // 0.001 <= 0.0125 yes; 0.012 <= 0.0167 yes; 0.02 <= 0.025 yes; 0.04 <= 0.05 yes.
        assert_eq!(flagged, [true, true, true, true]);
        let tests: Vec<_> = [0.001, 0.04, 0.02, 0.02]
            .into_iter()
            .map(test_with_p)
            .collect();
        let flagged: Vec<bool> = correct(&tests, &options).iter().map(|d| d.0).collect();
        // 0.001 yes; 0.02 > 0.0167: stop, nothing after is flagged.
        assert_eq!(flagged, [true, false, false, false]);
    }

    #[test]
    fn benjamini_hochberg_takes_the_largest_passing_rank() {
        let options = CompareOptions {
            alpha: 0.05,
            correction: Correction::BenjaminiHochberg,
            ..CompareOptions::default()
        };
        // Sorted: 0.001 (<= .0125), 0.03 (> .025), 0.035 (<= .0375): ranks 1..3 flagged.
        let tests: Vec<_> = [0.035, 0.001, 0.03, 0.9]
            .into_iter()
            .map(test_with_p)
            .collect();
        let flagged: Vec<bool> = correct(&tests, &options).iter().map(|d| d.0).collect();
        assert_eq!(flagged, [true, true, true, false]);
    }

    #[test]
    fn missing_means_called_in_the_baseline_and_in_no_new_run() {
        use crate::baseline::{Fingerprint, Run, RunFunction};
        let fp = Fingerprint::current("t");
        let run = |gone: u64, idle: u64| {
            Run::new(vec![
                RunFunction::from_totals("kept", 10, 10_000_000),
                RunFunction::from_totals("gone", gone, gone * 1_000_000),
                RunFunction::from_totals("idle", idle, 0),
            ])
        };
        // `gone` is called in one baseline run only, and listed with 0 calls in the new runs;
        // `idle` is never called anywhere.
        let base = Baseline::from_runs(fp.clone(), &[run(0, 0), run(3, 0)]).unwrap();
        let new = Baseline::from_runs(fp, &[run(0, 0), run(0, 0)]).unwrap();
        let c = compare(&base, &new, &CompareOptions::default());
        assert_eq!(c.missing, ["gone"]);
        assert!(!c.nothing_recorded);
        assert!(c.fails() && !c.has_regressions());
        let verdict = |name: &str| c.functions.iter().find(|f| f.name == name).unwrap().verdict;
        assert_eq!(verdict("gone"), Verdict::Missing);
        assert_eq!(verdict("idle"), Verdict::Skipped);
    }

    #[test]
    fn medians() {
        assert!((median_f64(&[3.0, 1.0, 2.0]) - 2.0).abs() < 1e-12);
        assert!((median_f64(&[4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < 1e-12);
        assert_eq!(median_u64(&[5, 1, 9]), 5);
        assert_eq!(median_u64(&[5, 1, 9, 7]), 5);
    }

    #[test]
    fn student_t_quantile_matches_tables() {
        // t(0.975, 10) = 2.228, t(0.99, 5) = 3.365 from standard tables.
        assert!((student_t(10.0).inverse_cdf(0.975) - 2.228).abs() < 1e-3);
        assert!((student_t(5.0).inverse_cdf(0.99) - 3.365).abs() < 1e-3);
    }
}
