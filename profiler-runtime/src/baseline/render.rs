//! A [`Comparison`] as an aligned table for people, Markdown for a CI job summary, or JSON for
//! tools.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::detect::{Comparison, FunctionVerdict, Regression, SkipReason, TimeResult, Verdict};

/// How [`Comparison::write`] formats a comparison.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// An aligned plain-text table.
    #[default]
    Table,
    /// GitHub-flavoured Markdown (e.g. for `$GITHUB_STEP_SUMMARY`).
    Markdown,
    /// The whole [`Comparison`] as JSON.
    Json,
}

impl OutputFormat {
    /// Parses `table`, `markdown` (`md`) or `json`.
    pub fn parse(s: &str) -> Option<OutputFormat> {
        match s {
            "table" | "text" => Some(OutputFormat::Table),
            "markdown" | "md" => Some(OutputFormat::Markdown),
            "json" => Some(OutputFormat::Json),
            _ => None,
        }
    }
}

fn ns(value: f64) -> String {
    if value >= 1e9 {
        format!("{:.2}s", value / 1e9)
    } else if value >= 1e6 {
        format!("{:.2}ms", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.2}us", value / 1e3)
    } else {
        format!("{value:.0}ns")
    }
}

fn pct(fraction: f64) -> String {
    format!("{:+.1}%", fraction * 100.0)
}

/// The largest detectable slowdown written as it is: +1000%, an elevenfold time. Past it the
/// figure only says that no realistic slowdown can be seen (with two runs a side, `t` at the
/// strictest level is in the hundreds and `exp(t * se)` reaches millions of percent), so the cell
/// shows the cap, `>+1000.0%`, and the findings say why.
const DETECTABLE_CAP: f64 = 10.0;

/// Whether a function's runs are too few or too noisy to flag any realistic slowdown.
fn undetectable(t: &TimeResult) -> bool {
    !t.min_detectable.is_finite() || t.min_detectable > DETECTABLE_CAP
}

fn detectable_cell(t: &TimeResult) -> String {
    if undetectable(t) {
        format!(">{}", pct(DETECTABLE_CAP))
    } else {
        pct(t.min_detectable)
    }
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::MoreCalls => "MORE CALLS",
        Verdict::Slower => "SLOWER",
        Verdict::Faster => "faster",
        Verdict::Unchanged => "ok",
        Verdict::Missing => "MISSING",
        Verdict::Skipped => "skipped",
    }
}

fn skip_text(reason: &SkipReason) -> String {
    match reason {
        SkipReason::TooShort { call_ns, run_ns } => format!(
            "too short to measure ({} per call, {} per run)",
            ns(*call_ns),
            ns(*run_ns)
        ),
        SkipReason::NotCalled => "not called".to_owned(),
        SkipReason::NotInBaseline => "new: not in the baseline".to_owned(),
        SkipReason::NotInNew => "not in the new runs".to_owned(),
        SkipReason::TooFewRuns => "one run on each side: no variance".to_owned(),
    }
}

/// The cells of one function's row: name, verdict, calls, baseline, new, change, bound,
/// threshold, detectable, note.
fn row(f: &FunctionVerdict) -> [String; 10] {
    let calls = f.calls.as_ref().map_or_else(String::new, |c| {
        let mark = if c.deterministic { "" } else { " (varies)" };
        if c.baseline == c.new {
            format!("{}{mark}", c.new)
        } else {
            format!("{} -> {}{mark}", c.baseline, c.new)
        }
    });
    let (base, new, change, bound, threshold, detectable) = match &f.time {
        Some(t) => (
            ns(t.baseline_ns),
            ns(t.new_ns),
            pct(t.ratio - 1.0),
            pct(t.lower - 1.0),
            pct(t.threshold),
            detectable_cell(t),
        ),
        None => Default::default(),
    };
    let note = f.skipped.as_ref().map(skip_text).unwrap_or_default();
    [
        f.name.clone(),
        verdict_name(f.verdict).to_owned(),
        calls,
        base,
        new,
        change,
        bound,
        threshold,
        detectable,
        note,
    ]
}

const HEADERS: [&str; 10] = [
    "function",
    "verdict",
    "calls",
    "baseline",
    "new",
    "change",
    "lower bound",
    "threshold",
    "detectable",
    "note",
];

/// Functions registered but called on neither side: counted in the findings, not given a row.
fn never_called(f: &FunctionVerdict) -> bool {
    matches!(f.skipped, Some(SkipReason::NotCalled))
        && f.calls
            .as_ref()
            .is_some_and(|c| c.baseline == 0 && c.new == 0)
}

/// What the fingerprints' differences mean for the comparison.
fn fingerprint_lines(c: &Comparison, lines: &mut Vec<String>) {
    for d in &c.fingerprint_differences {
        // Another workload is not a matter of noisy times but of comparing other code: said
        // in its own words.
        if d.field == "workload" {
            lines.push(format!(
                "warning: the baseline is of workload `{}` and the new runs of `{}`: functions of different programs are not comparable (if it is the same program renamed, name the new runs with --workload {})",
                d.baseline, d.new, d.baseline
            ));
            continue;
        }
        let what = if d.affects_times {
            "warning: fingerprints differ"
        } else {
            "note"
        };
        lines.push(format!(
            "{what}: {} is `{}` in the baseline and `{}` now",
            d.field, d.baseline, d.new
        ));
    }
    let other_machine_or_build = c
        .fingerprint_differences
        .iter()
        .any(|d| d.affects_times && d.field != "workload");
    if other_machine_or_build {
        lines.push(
            "warning: times from another machine or build are not comparable; prefer `profiler compare --runs N -- OLD -- NEW` in one job"
                .to_owned(),
        );
    }
}

fn summary_lines(c: &Comparison) -> Vec<String> {
    let mut lines = Vec::new();
    lines.push(format!(
        "{} baseline runs, {} new runs; threshold {}, alpha {} ({:?}), metric {:?} time per call",
        c.baseline_runs,
        c.new_runs,
        pct(c.options.threshold),
        c.options.alpha,
        c.options.correction,
        c.options.metric
    ));
    fingerprint_lines(c, &mut lines);
    for r in &c.regressions {
        lines.push(match r {
            Regression::CallCount {
                function,
                baseline,
                new,
            } => format!("REGRESSION {function}: {new} calls per run, baseline {baseline}"),
            Regression::Time {
                function,
                ratio,
                lower,
                threshold,
            } => format!(
                "REGRESSION {function}: {} slower (at least {} with confidence; threshold {})",
                pct(ratio - 1.0),
                pct(lower - 1.0),
                pct(*threshold)
            ),
        });
    }
    for b in &c.budget_violations {
        lines.push(format!(
            "BUDGET {}: {} {} exceeds {} ({})",
            b.function,
            b.statistic,
            ns(b.value_ns as f64),
            ns(b.limit_ns as f64),
            b.source
        ));
    }
    presence_lines(c, &mut lines);
    for f in &c.budgets_unchecked {
        lines.push(format!(
            "note: budget of {f} not checked: not called in the new runs"
        ));
    }
    let skipped_short = c
        .functions
        .iter()
        .filter(|f| matches!(f.skipped, Some(SkipReason::TooShort { .. })))
        .count();
    if skipped_short > 0 {
        lines.push(format!(
            "note: {skipped_short} function(s) too short to measure reliably were not tested for time"
        ));
    }
    let blind = c
        .functions
        .iter()
        .filter(|f| f.time.as_ref().is_some_and(undetectable))
        .count();
    if blind > 0 {
        lines.push(format!(
            "note: {blind} function(s) could only be flagged for a slowdown above {} (detectable >{}): too few runs for their run-to-run noise; add runs (--runs N) or reduce the noise",
            pct(DETECTABLE_CAP),
            pct(DETECTABLE_CAP)
        ));
    }
    let idle = c.functions.iter().filter(|f| never_called(f)).count();
    if idle > 0 {
        lines.push(format!(
            "note: {idle} registered function(s) not called in either set are not listed"
        ));
    }
    lines.push(result_line(c));
    lines
}

/// Functions of the baseline that the new runs did not call, or new runs that called nothing.
fn presence_lines(c: &Comparison, lines: &mut Vec<String>) {
    if c.nothing_recorded {
        // One line, not one per function: every function is missing for the same reason.
        lines.push(
            "FAIL: the new runs recorded no function: was `enable` on? (a build without the `enable` feature, a run that did no work, or profiles of another program)"
                .to_owned(),
        );
        return;
    }
    for f in &c.missing {
        lines.push(format!(
            "missing: {f} (in the baseline, not in any new run)"
        ));
    }
    for f in &c.allowed_missing {
        lines.push(format!(
            "note: {f} is in the baseline and not in any new run: allowed to disappear"
        ));
    }
    // A misspelt name would otherwise allow nothing, silently.
    for name in &c.options.allow_missing {
        if c.functions
            .binary_search_by(|f| f.name.as_str().cmp(name))
            .is_err()
        {
            lines.push(format!(
                "note: allowed to disappear, {name} is no function of the baseline or the new runs"
            ));
        }
    }
}

fn result_line(c: &Comparison) -> String {
    if c.nothing_recorded {
        return "result: FAIL (the new runs recorded no function)".to_owned();
    }
    if !c.fails() {
        return "result: ok".to_owned();
    }
    let missing = if c.missing.is_empty() {
        String::new()
    } else {
        format!(", {} missing function(s)", c.missing.len())
    };
    format!(
        "result: FAIL ({} regression(s), {} budget violation(s){missing})",
        c.regressions.len(),
        c.budget_violations.len()
    )
}

impl Comparison {
    /// Writes the comparison in `format`.
    ///
    /// # Errors
    ///
    /// The writer's error.
    pub fn write(&self, format: OutputFormat, mut out: impl Write) -> io::Result<()> {
        match format {
            OutputFormat::Json => {
                serde_json::to_writer_pretty(&mut out, self).map_err(io::Error::from)?;
                writeln!(out)
            }
            OutputFormat::Table => out.write_all(self.table().as_bytes()),
            OutputFormat::Markdown => out.write_all(self.markdown().as_bytes()),
        }
    }

    /// The aligned plain-text table, followed by the findings.
    pub fn table(&self) -> String {
        let rows: Vec<[String; 10]> = self
            .functions
            .iter()
            .filter(|f| !never_called(f))
            .map(row)
            .collect();
        let mut widths = HEADERS.map(str::len);
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let mut text = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                let pad = w.saturating_sub(cell.chars().count());
                if i == 0 || i == 1 || i == 9 {
                    let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
                } else {
                    let _ = write!(text, "{}{cell}  ", " ".repeat(pad));
                }
            }
            let _ = writeln!(out, "{}", text.trim_end());
        };
        line(&HEADERS.map(str::to_owned));
        for r in &rows {
            line(r);
        }
        out.push('\n');
        for l in summary_lines(self) {
            out.push_str(&l);
            out.push('\n');
        }
        out
    }

    /// Markdown: the findings as a list, then the table.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let status = if self.nothing_recorded {
            "❌ nothing recorded"
        } else if self.has_regressions() {
            "❌ regressions found"
        } else if self.fails() {
            "❌ functions missing"
        } else {
            "✅ no regression"
        };
        let _ = writeln!(out, "### Performance gate: {status}\n");
        for l in summary_lines(self) {
            let _ = writeln!(out, "- {}", l.replace('|', "\\|"));
        }
        out.push('\n');
        let _ = writeln!(out, "| {} |", HEADERS.join(" | "));
        let _ = writeln!(
            out,
            "|{}",
            HEADERS
                .iter()
                .enumerate()
                .map(|(i, _)| if i <= 1 || i == 9 { "---|" } else { "---:|" })
                .collect::<String>()
        );
        for f in self.functions.iter().filter(|f| !never_called(f)) {
            let cells = row(f).map(|c| c.replace('|', "\\|"));
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out
    }
}
