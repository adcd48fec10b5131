//! A text summary of a [`Report`] for a terminal: the run, the top functions as an aligned
//! table, and the hottest paths of the call tree. What `profiler summary` prints.
//!
//! Every text taken from the profile (function, thread and process names, the host, the tool) is
//! printed with its control characters escaped as Rust writes them (`\u{1b}`, `\n`, `\t`), and
//! so are the characters that reorder text (bidirectional overrides such as `\u{202e}`): a trace
//! of another tool may hold terminal escape sequences, which would otherwise reach the terminal.

use std::fmt;
use std::io::{self, Write};

use crate::analyze::report::Report;
use crate::analyze::stats::FunctionStats;

/// The column the function table is sorted by, largest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SortKey {
    /// Exclusive time (the default).
    #[default]
    SelfTime,
    /// Inclusive time.
    Total,
    /// Number of calls.
    Calls,
    /// Mean duration of a call.
    Mean,
    /// 99th percentile of call durations.
    P99,
}

impl SortKey {
    /// The name used on the command line: `self`, `total`, `count`, `mean`, `p99`.
    pub fn name(self) -> &'static str {
        match self {
            SortKey::SelfTime => "self",
            SortKey::Total => "total",
            SortKey::Calls => "count",
            SortKey::Mean => "mean",
            SortKey::P99 => "p99",
        }
    }

    fn value(self, f: &FunctionStats) -> f64 {
        match self {
            SortKey::SelfTime => f.self_ns as f64,
            SortKey::Total => f.total_ns as f64,
            SortKey::Calls => f.calls as f64,
            SortKey::Mean => f.mean_ns,
            SortKey::P99 => f.p99_ns as f64,
        }
    }
}

/// What [`write_summary`] shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryOptions {
    /// Rows of the function table.
    pub top: usize,
    /// The column the table is sorted by.
    pub sort: SortKey,
    /// Rows of the hottest-paths list; 0 leaves the list out.
    pub paths: usize,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        SummaryOptions {
            top: 20,
            sort: SortKey::SelfTime,
            paths: 10,
        }
    }
}

/// Writes the summary of `report` to `out`.
///
/// # Errors
///
/// Any error of `out`.
///
/// # Examples
///
/// ```
/// use profiler_runtime::analyze::report::Report;
/// use profiler_runtime::analyze::summary::{write_summary, SummaryOptions};
/// let report = Report::new(&profiler_runtime::flush());
/// let mut text = Vec::new();
/// write_summary(&report, &SummaryOptions::default(), &mut text)?;
/// assert!(String::from_utf8(text).unwrap().contains("top functions by self time"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_summary<W: Write + ?Sized>(
    report: &Report,
    options: &SummaryOptions,
    out: &mut W,
) -> io::Result<()> {
    let run = &report.run;
    let host = run
        .host
        .as_deref()
        .map(|h| format!(" on {}", Escaped(h)))
        .unwrap_or_default();
    writeln!(
        out,
        "{} (pid {}){host}: started {}, lasted {}, clock {}, {}",
        Escaped(&run.process_name),
        run.pid,
        Escaped(&run.started),
        Nanos(run.duration_ns),
        Escaped(&run.clock.kind),
        Escaped(&run.tool)
    )?;
    let threads: Vec<String> = run
        .threads
        .iter()
        .map(|t| {
            let dropped = if t.dropped_events > 0 {
                format!(", {} events dropped", t.dropped_events)
            } else {
                String::new()
            };
            format!(
                "{} (tid {}, {} spans{dropped})",
                Escaped(&t.name),
                t.tid,
                t.spans
            )
        })
        .collect();
    writeln!(
        out,
        "threads: {}",
        if threads.is_empty() {
            "none".to_owned()
        } else {
            threads.join(", ")
        }
    )?;
    if run.dropped_events > 0 {
        writeln!(
            out,
            "warning: {} events were dropped (buffers full): times are lower bounds",
            run.dropped_events
        )?;
    }

    write_function_table(report, options, out)?;
    write_hottest_paths(report, options, out)
}

/// The top functions as an aligned table.
fn write_function_table<W: Write + ?Sized>(
    report: &Report,
    options: &SummaryOptions,
    out: &mut W,
) -> io::Result<()> {
    let mut order: Vec<&FunctionStats> = report.functions.iter().collect();
    order.sort_by(|a, b| {
        options
            .sort
            .value(b)
            .total_cmp(&options.sort.value(a))
            .then_with(|| a.name.cmp(&b.name))
    });
    let shown = options.top.min(order.len());
    writeln!(
        out,
        "\ntop functions by {} ({shown} of {}):",
        match options.sort {
            SortKey::SelfTime => "self time",
            SortKey::Total => "total time",
            SortKey::Calls => "call count",
            SortKey::Mean => "mean time",
            SortKey::P99 => "p99 time",
        },
        order.len()
    )?;
    writeln!(
        out,
        "{:>11} {:>6} {:>11} {:>6} {:>9} {:>11} {:>11}  function",
        "self", "self%", "total", "total%", "calls", "mean", "p99"
    )?;
    for f in &order[..shown] {
        let marker = if f.async_stats.is_some() {
            " (async: wall per call, busy total)"
        } else {
            ""
        };
        writeln!(
            out,
            "{:>11} {:>6} {:>11} {:>6} {:>9} {:>11} {:>11}  {}{marker}",
            Nanos(f.self_ns).to_string(),
            Percent(f.self_share).to_string(),
            Nanos(f.total_ns).to_string(),
            Percent(f.total_share).to_string(),
            f.calls,
            Nanos(f.mean_ns.round() as u64).to_string(),
            Nanos(f.p99_ns).to_string(),
            Escaped(&f.name)
        )?;
    }
    let never = report
        .functions
        .iter()
        .filter(|f| f.calls == 0 && f.total_ns == 0)
        .count();
    if never > 0 {
        let (noun, verb) = if never == 1 {
            ("function", "was")
        } else {
            ("functions", "were")
        };
        writeln!(out, "({never} registered {noun} {verb} never called)")?;
    }
    Ok(())
}

/// The tree nodes with the most self time, each with its path from the root.
fn write_hottest_paths<W: Write + ?Sized>(
    report: &Report,
    options: &SummaryOptions,
    out: &mut W,
) -> io::Result<()> {
    // No rows asked for: no header either, rather than an empty list that reads as "no time".
    if options.paths == 0 {
        return Ok(());
    }
    let tree = &report.call_tree;
    let recorded = crate::analyze::stats::saturating_sum(tree.nodes.iter().map(|n| n.self_ns));
    let mut hottest: Vec<usize> = (0..tree.nodes.len())
        .filter(|&i| tree.nodes[i].self_ns > 0)
        .collect();
    hottest.sort_by_key(|&i| (std::cmp::Reverse(tree.nodes[i].self_ns), i));
    hottest.truncate(options.paths);
    writeln!(out, "\nhottest paths by self time:")?;
    if hottest.is_empty() {
        writeln!(out, "  (no time recorded)")?;
    }
    for i in hottest {
        let node = &tree.nodes[i];
        let names = tree
            .path(i)
            .into_iter()
            .map(|n| report.function(tree.nodes[n].function).name.as_str());
        let path = collapse_recursion(names);
        let share = if recorded == 0 {
            0.0
        } else {
            node.self_ns as f64 / recorded as f64
        };
        writeln!(
            out,
            "{:>11} {:>6} {:>9}  {}",
            Nanos(node.self_ns).to_string(),
            Percent(share).to_string(),
            format!("{}x", node.calls),
            path
        )?;
    }
    Ok(())
}

/// Joins a call path with ` > `, writing a run of the same function (recursion) once with its
/// depth: `main > eval (x9) > leaf`.
fn collapse_recursion<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut runs: Vec<(&str, usize)> = Vec::new();
    for name in names {
        match runs.last_mut() {
            Some((last, count)) if *last == name => *count += 1,
            _ => runs.push((name, 1)),
        }
    }
    runs.iter()
        .map(|&(name, count)| {
            if count == 1 {
                Escaped(name).to_string()
            } else {
                format!("{} (x{count})", Escaped(name))
            }
        })
        .collect::<Vec<_>>()
        .join(" > ")
}

/// Text from a profile, safe to print on a terminal: control characters and the characters
/// that reorder text are written as Rust escapes (`\u{1b}`, `\n`), the rest as it is.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unsafe_char = |c: char| {
            c.is_control()
                || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        };
        let mut rest = self.0;
        while let Some(i) = rest.find(unsafe_char) {
            f.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().expect("found at i");
            write!(f, "{}", c.escape_default())?;
            rest = &rest[i + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// Nanoseconds in the largest unit that keeps them above 1: `850 ns`, `12.345 ms`.
#[derive(Clone, Copy, Debug)]
pub struct Nanos(pub u64);

impl fmt::Display for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        let (value, unit) = match ns {
            0..1_000 => return write!(f, "{ns} ns"),
            1_000..1_000_000 => (ns as f64 / 1e3, "µs"),
            1_000_000..1_000_000_000 => (ns as f64 / 1e6, "ms"),
            _ => (ns as f64 / 1e9, "s"),
        };
        write!(f, "{value:.3} {unit}")
    }
}

/// A fraction as a percentage with one decimal.
struct Percent(f64);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1}%", self.0 * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{collapse_recursion, Escaped, Nanos};

    #[test]
    fn text_from_profiles_is_escaped_for_terminals() {
        let escaped = |s: &str| Escaped(s).to_string();
        assert_eq!(escaped("plain <K, V>::get ünï"), "plain <K, V>::get ünï");
        assert_eq!(
            escaped("\u{1b}[31mred\u{1b}[0m"),
            "\\u{1b}[31mred\\u{1b}[0m"
        );
        assert_eq!(escaped("a\nb\tc\u{7f}\u{9b}"), "a\\nb\\tc\\u{7f}\\u{9b}");
        assert_eq!(escaped("abc\u{202e}fed"), "abc\\u{202e}fed");
    }

    #[test]
    fn recursion_is_written_once_with_its_depth() {
        let path = ["main", "eval", "eval", "eval", "leaf", "eval"];
        assert_eq!(
            collapse_recursion(path.into_iter()),
            "main > eval (x3) > leaf > eval"
        );
        assert_eq!(collapse_recursion(std::iter::empty()), "");
    }

    #[test]
    fn durations_pick_a_unit() {
        assert_eq!(Nanos(0).to_string(), "0 ns");
        assert_eq!(Nanos(999).to_string(), "999 ns");
        assert_eq!(Nanos(1_500).to_string(), "1.500 µs");
        assert_eq!(Nanos(12_345_678).to_string(), "12.346 ms");
        assert_eq!(Nanos(2_000_000_000).to_string(), "2.000 s");
    }
}
