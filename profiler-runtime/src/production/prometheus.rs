//! The aggregates in the Prometheus text exposition format (version 0.0.4), and, with the cargo
//! feature `metrics-server`, a `/metrics` HTTP endpoint.
//!
//! The format is written by hand: it is a few lines per metric, and our histograms are already
//! aggregated in our own log-linear buckets, which Prometheus client crates (`prometheus`,
//! `prometheus-client`) cannot take as they are: they observe values one by one into their own
//! fixed buckets. Feeding them would mean a second histogram on the hot path, or a custom collector
//! as long as this writer. The output is checked with `promtool check metrics` and scraped by a
//! real Prometheus server in the tests.
//!
//! # Metrics
//!
//! | name | type | labels |
//! |---|---|---|
//! | `profiler_request_duration_seconds` | histogram | `root`; the root's SLA threshold is one of the bucket bounds |
//! | `profiler_request_errors_total` | counter | `root` |
//! | `profiler_sla_violations_total` | counter | `root` |
//! | `profiler_sla_threshold_seconds` | gauge | `root` (roots with an SLA) |
//! | `profiler_requests_recorded_total` | counter | `root`, `outcome` = `sampled`, `tail_kept`, `discarded`, `truncated` |
//! | `profiler_function_calls_total` | counter | `function` |
//! | `profiler_function_duration_seconds` | histogram | `function` |
//! | `profiler_dropped_events_total` | counter | |
//! | `profiler_probes_total` | counter | |
//! | `profiler_probe_cost_seconds` | gauge | |
//! | `profiler_overhead_seconds_total` | counter | estimated time spent in the profiler's probes |
//! | `profiler_alerts_total` | counter | `outcome` = `delivered`, `suppressed` |
//!
//! Bucket counts come from the log-linear histograms: exact at their own bounds, interpolated
//! within one bucket (1/32 of its value) elsewhere; the SLA bound's count is the exact number of
//! requests within the SLA.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::production::aggregate::{self, Histogram, Snapshot};
use crate::production::alert;

/// The content type of the text format, for an HTTP response.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Default histogram bounds in seconds (before the SLA thresholds are added).
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.000_001, 0.000_01, 0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Renders [`aggregate::snapshot`] and the alert counters.
///
/// # Examples
///
/// ```
/// use profiler_runtime::{production::prometheus, ProfileContext};
/// drop(ProfileContext::request("doc_metrics"));
/// let text = prometheus::render();
/// assert!(text.contains("profiler_request_duration_seconds_count{root=\"doc_metrics\"} 1"));
/// ```
pub fn render() -> String {
    render_snapshot(&aggregate::snapshot(), alert::stats())
}

/// Writes [`render`]'s text to `out`.
///
/// # Errors
///
/// Any error of `out`.
pub fn write_metrics<W: Write + ?Sized>(out: &mut W) -> io::Result<()> {
    out.write_all(render().as_bytes())
}

/// Renders a snapshot and alert counters in the text exposition format.
#[allow(clippy::too_many_lines)] // a flat list of metrics
pub fn render_snapshot(snapshot: &Snapshot, alerts: alert::AlertStats) -> String {
    let mut out = String::with_capacity(4096);
    header(
        &mut out,
        "profiler_request_duration_seconds",
        "histogram",
        "Duration of requests, per request root.",
    );
    for root in &snapshot.roots {
        let mut bounds = DEFAULT_BUCKETS.to_vec();
        let sla = root.sla_threshold_ns.map(|ns| ns as f64 / 1e9);
        if let Some(sla) = sla {
            bounds.push(sla);
            bounds.sort_by(f64::total_cmp);
            bounds.dedup();
        }
        let within_sla = root.requests.saturating_sub(root.sla_violations);
        histogram(
            &mut out,
            "profiler_request_duration_seconds",
            &[("root", &root.name)],
            &root.histogram,
            &bounds,
            sla.map(|s| (s, within_sla)),
        );
    }
    let per_root = |out: &mut String,
                    name: &str,
                    kind: &str,
                    help: &str,
                    value: &dyn Fn(&aggregate::RootStats) -> Option<String>| {
        header(out, name, kind, help);
        for root in &snapshot.roots {
            if let Some(v) = value(root) {
                sample(out, name, &[("root", &root.name)], &v);
            }
        }
    };
    per_root(
        &mut out,
        "profiler_request_errors_total",
        "counter",
        "Requests that ended in an error or a panic.",
        &|r| Some(r.errors.to_string()),
    );
    per_root(
        &mut out,
        "profiler_sla_violations_total",
        "counter",
        "Requests slower than their root's SLA threshold.",
        &|r| Some(r.sla_violations.to_string()),
    );
    per_root(
        &mut out,
        "profiler_sla_threshold_seconds",
        "gauge",
        "The SLA threshold of each root that has one.",
        &|r| r.sla_threshold_ns.map(|ns| float(ns as f64 / 1e9)),
    );
    header(
        &mut out,
        "profiler_requests_recorded_total",
        "counter",
        "Requests by what the sampling modes did with their trace.",
    );
    for root in &snapshot.roots {
        for (outcome, n) in [
            ("sampled", root.sampled),
            ("tail_kept", root.tail_kept),
            ("discarded", root.discarded),
            ("truncated", root.truncated),
        ] {
            sample(
                &mut out,
                "profiler_requests_recorded_total",
                &[("root", &root.name), ("outcome", outcome)],
                &n.to_string(),
            );
        }
    }
    header(
        &mut out,
        "profiler_function_calls_total",
        "counter",
        "Calls of each profiled function inside aggregated requests.",
    );
    for f in &snapshot.functions {
        sample(
            &mut out,
            "profiler_function_calls_total",
            &[("function", &f.name)],
            &f.calls.to_string(),
        );
    }
    header(
        &mut out,
        "profiler_function_duration_seconds",
        "histogram",
        "Duration of calls of each profiled function, callees included.",
    );
    for f in &snapshot.functions {
        histogram(
            &mut out,
            "profiler_function_duration_seconds",
            &[("function", &f.name)],
            &f.histogram,
            DEFAULT_BUCKETS,
            None,
        );
    }
    let single = |out: &mut String, name: &str, kind: &str, help: &str, value: String| {
        header(out, name, kind, help);
        sample(out, name, &[], &value);
    };
    single(
        &mut out,
        "profiler_dropped_events_total",
        "counter",
        "Events lost inside aggregated requests because a buffer was full.",
        snapshot.dropped_events.to_string(),
    );
    single(
        &mut out,
        "profiler_probes_total",
        "counter",
        "Profiled calls and requests timed by the production modes.",
        snapshot.probes.to_string(),
    );
    single(
        &mut out,
        "profiler_probe_cost_seconds",
        "gauge",
        "Measured cost of one probe (enter and exit).",
        float(snapshot.probe_cost_ns / 1e9),
    );
    single(
        &mut out,
        "profiler_overhead_seconds_total",
        "counter",
        "Estimated time spent in the profiler's probes: probes times probe cost.",
        float(snapshot.estimated_overhead_seconds()),
    );
    header(
        &mut out,
        "profiler_alerts_total",
        "counter",
        "SLA alerts delivered to the callback, and suppressed.",
    );
    sample(
        &mut out,
        "profiler_alerts_total",
        &[("outcome", "delivered")],
        &alerts.delivered.to_string(),
    );
    sample(
        &mut out,
        "profiler_alerts_total",
        &[("outcome", "suppressed")],
        &alerts.suppressed.to_string(),
    );
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A float as Prometheus reads it (Rust's shortest round-trip form; never an exponent).
fn float(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if v.is_nan() {
        "NaN".to_owned()
    } else {
        format!("{v}")
    }
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: &str) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Writes `_bucket`, `_sum` and `_count` lines. `exact` pins the cumulative count at one bound.
fn histogram(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    h: &Histogram,
    bounds: &[f64],
    exact: Option<(f64, u64)>,
) {
    let count = h.count();
    let mut cumulative: Vec<u64> = bounds
        .iter()
        .map(|&b| (h.count_at_most(b * 1e9).round() as u64).min(count))
        .collect();
    if let Some((bound, n)) = exact {
        if let Some(i) = bounds.iter().position(|&b| b.to_bits() == bound.to_bits()) {
            cumulative[i] = n.min(count);
            for j in 0..i {
                cumulative[j] = cumulative[j].min(cumulative[i]);
            }
            for j in i + 1..cumulative.len() {
                cumulative[j] = cumulative[j].max(cumulative[i]);
            }
        }
    }
    let bucket = format!("{name}_bucket");
    for (&bound, &n) in bounds.iter().zip(&cumulative) {
        let le = float(bound);
        let mut with_le = labels.to_vec();
        with_le.push(("le", &le));
        sample(out, &bucket, &with_le, &n.to_string());
    }
    let mut with_le = labels.to_vec();
    with_le.push(("le", "+Inf"));
    sample(out, &bucket, &with_le, &count.to_string());
    sample(
        out,
        &format!("{name}_sum"),
        labels,
        &float(h.sum_ns() / 1e9),
    );
    sample(out, &format!("{name}_count"), labels, &count.to_string());
}

#[cfg(feature = "metrics-server")]
pub use server::{
    serve_metrics, serve_metrics_on_port, MetricsServer, MAX_CONNECTIONS, MAX_REQUEST_HEAD_BYTES,
    REQUEST_DEADLINE, RESPONSE_DEADLINE,
};

#[cfg(feature = "metrics-server")]
mod server;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(0.000_001), "0.000001");
        assert_eq!(float(2.5), "2.5");
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_pin_the_sla_bound() {
        let mut h = Histogram::new();
        for ms in 1..=100u64 {
            h.record_ticks(ms * 1_000_000);
        }
        let mut out = String::new();
        histogram(
            &mut out,
            "x",
            &[("root", "r")],
            &h,
            &[0.01, 0.05, 0.1],
            Some((0.05, 49)),
        );
        let counts: Vec<u64> = out
            .lines()
            .filter(|l| l.starts_with("x_bucket"))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        // 10 ms and 100 ms fall inside buckets: interpolated within one bucket (1/32) there.
        assert!((9..=10).contains(&counts[0]), "{counts:?}");
        assert_eq!(counts[1], 49, "the SLA bound is exact");
        assert!((99..=100).contains(&counts[2]), "{counts:?}");
        assert_eq!(counts[3], 100);
        assert!(out.contains("x_count{root=\"r\"} 100"));
        assert!(out.contains("x_sum{root=\"r\"} 5.05"));
    }
}
