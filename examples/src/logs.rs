//! A web-server access-log analysis: generate a day of synthetic traffic, parse it on several
//! threads, aggregate latency per endpoint, and report percentiles.

use std::collections::HashMap;
use std::fmt::Write as _;

use profiler_runtime::{profile, profile_scope};

/// One parsed log line.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// HTTP method.
    pub method: String,
    /// The path with numeric segments replaced by `{id}`.
    pub endpoint: String,
    /// HTTP status.
    pub status: u16,
    /// Latency in milliseconds.
    pub latency_ms: f64,
}

/// A small deterministic pseudo-random generator (xorshift64*), so runs are comparable.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

const PATHS: &[&str] = &[
    "/api/users/{}",
    "/api/users/{}/orders",
    "/api/orders/{}",
    "/api/search",
    "/static/app.js",
    "/api/cart/{}/items/{}",
    "/health",
];
const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "PUT", "DELETE"];

/// Generates `lines` log lines.
#[profile]
pub fn generate_log(seed: u64, lines: usize) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(lines);
    for i in 0..lines {
        let template = PATHS[rng.below(PATHS.len() as u64) as usize];
        let mut path = String::with_capacity(32);
        for (n, part) in template.split("{}").enumerate() {
            if n > 0 {
                let _ = write!(path, "{}", rng.below(100_000));
            }
            path.push_str(part);
        }
        let status = match rng.below(100) {
            0..=2 => 500,
            3..=9 => 404,
            _ => 200,
        };
        // Log-normal-ish latency: mostly fast, a long tail.
        let base = (rng.below(1000) as f64 / 100.0).exp() / 10.0;
        out.push(format!(
            "2026-11-25T10:{:02}:{:02}Z {} {} {} {:.3}ms ua=\"bench/1.0\"",
            (i / 60) % 60,
            i % 60,
            METHODS[rng.below(METHODS.len() as u64) as usize],
            path,
            status,
            base
        ));
    }
    out
}

// ANCHOR: parse
/// Parses one line; `None` for a malformed one.
#[profile]
pub fn parse_line(line: &str) -> Option<Record> {
    let mut fields = line.split(' ');
    let _timestamp = fields.next()?;
    let method = fields.next()?;
    let path = fields.next()?;
    let status = fields.next()?.parse().ok()?;
    let latency_ms = fields.next()?.strip_suffix("ms")?.parse().ok()?;
    Some(Record {
        method: method.to_owned(),
        endpoint: normalize_path(path),
        status,
        latency_ms,
    })
}

/// Replaces numeric path segments with `{id}`: `/api/users/42` becomes `/api/users/{id}`.
#[profile]
pub fn normalize_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
                "{id}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

// ANCHOR_END: parse
/// Latencies per endpoint, and error counts.
#[derive(Clone, Debug, Default)]
pub struct EndpointStats {
    /// `METHOD endpoint` to latencies in ms.
    pub latencies: HashMap<String, Vec<f64>>,
    /// Responses with status >= 500.
    pub errors: u64,
    /// Lines that did not parse.
    pub malformed: u64,
}

// ANCHOR: impl_block
#[profile]
impl EndpointStats {
    /// Adds one record.
    pub fn add(&mut self, record: &Record) {
        if record.status >= 500 {
            self.errors += 1;
        }
        let key = format!("{} {}", record.method, record.endpoint);
        self.latencies
            .entry(key)
            .or_default()
            .push(record.latency_ms);
    }

    /// Merges another thread's statistics into these.
    pub fn merge(&mut self, other: EndpointStats) {
        self.errors += other.errors;
        self.malformed += other.malformed;
        for (key, mut values) in other.latencies {
            self.latencies.entry(key).or_default().append(&mut values);
        }
    }
}

// ANCHOR_END: impl_block
/// Parses a chunk of lines into statistics (one worker thread's share).
#[profile]
pub fn analyze_chunk(lines: &[String]) -> EndpointStats {
    let mut stats = EndpointStats::default();
    for line in lines {
        match parse_line(line) {
            Some(record) => stats.add(&record),
            None => stats.malformed += 1,
        }
    }
    stats
}

/// Sorts in place with a recursive merge sort (switching to the standard sort below 4096
/// elements), so the profile shows recursion.
#[profile]
pub fn merge_sort(values: &mut [f64]) {
    if values.len() <= 4096 {
        values.sort_by(f64::total_cmp);
        return;
    }
    let mid = values.len() / 2;
    merge_sort(&mut values[..mid]);
    merge_sort(&mut values[mid..]);
    let mut merged = Vec::with_capacity(values.len());
    let (mut i, mut j) = (0, mid);
    while i < mid && j < values.len() {
        if values[i] <= values[j] {
            merged.push(values[i]);
            i += 1;
        } else {
            merged.push(values[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&values[i..mid]);
    merged.extend_from_slice(&values[j..]);
    values.copy_from_slice(&merged);
}

/// p50, p90, p99 of sorted values.
#[profile]
pub fn percentiles(sorted: &[f64]) -> [f64; 3] {
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    [at(0.5), at(0.9), at(0.99)]
}

// ANCHOR: run_analysis
/// Runs the whole analysis on `threads` named worker threads; returns the report text.
#[profile]
pub fn run_analysis(lines: usize, threads: usize) -> String {
    let log = generate_log(7, lines);
    let chunk = log.len().div_ceil(threads.max(1));
    let mut total = EndpointStats::default();
    std::thread::scope(|scope| {
        let workers: Vec<_> = log
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                std::thread::Builder::new()
                    .name(format!("parser-{n}"))
                    .spawn_scoped(scope, move || analyze_chunk(part))
                    .expect("spawn a parser thread")
            })
            .collect();
        for worker in workers {
            total.merge(worker.join().expect("parser thread"));
        }
    });
    report(total)
}

// ANCHOR_END: run_analysis
/// Sorts each endpoint's latencies and renders a table.
#[profile]
pub fn report(mut stats: EndpointStats) -> String {
    profile_scope!("sort latencies");
    let mut rows: Vec<(String, usize, [f64; 3])> = stats
        .latencies
        .iter_mut()
        .map(|(key, values)| {
            merge_sort(values);
            (key.clone(), values.len(), percentiles(values))
        })
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut out = format!(
        "{:<32} {:>8} {:>9} {:>9} {:>9}\n",
        "endpoint", "requests", "p50 ms", "p90 ms", "p99 ms"
    );
    for (key, count, [p50, p90, p99]) in rows.iter().take(8) {
        let _ = writeln!(out, "{key:<32} {count:>8} {p50:>9.2} {p90:>9.2} {p99:>9.2}");
    }
    let _ = writeln!(
        out,
        "errors: {}, malformed lines: {}",
        stats.errors, stats.malformed
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalizes() {
        let r = parse_line("2026-11-25T10:00:00Z GET /api/users/42/orders 200 1.500ms ua=\"x\"")
            .unwrap();
        assert_eq!(r.endpoint, "/api/users/{id}/orders");
        assert_eq!(r.status, 200);
        assert!((r.latency_ms - 1.5).abs() < 1e-9);
        assert!(parse_line("garbage").is_none());
    }

    #[test]
    fn merge_sort_sorts() {
        let mut rng = Rng::new(3);
        let mut v: Vec<f64> = (0..20_000).map(|_| rng.below(1000) as f64).collect();
        let mut expected = v.clone();
        expected.sort_by(f64::total_cmp);
        merge_sort(&mut v);
        assert_eq!(v, expected);
    }
}
