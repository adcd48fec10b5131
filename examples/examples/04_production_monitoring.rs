//! Tutorial 04: monitor a service in production: head sampling, tail capture of slow requests,
//! an SLA alert, always-on latency histograms, a Prometheus `/metrics` endpoint, and a
//! flight-recorder dump.
//!
//! Run: `cargo run --release -p profiler-examples --example 04_production_monitoring [DIR]`
//! Writes into `DIR` (or `$PROFILER_OUTPUT`, or a temporary folder): `metrics.txt` (what
//! Prometheus scrapes), `flight.trace.json` / `flight.speedscope.json` (the slow requests),
//! `incident.*.json` (dumped by the first alert), and `sampled.trace.json` (the sampled and kept
//! requests of the regular timeline).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use profiler_runtime::export::{export_profile, Format};
use profiler_runtime::{
    production::aggregate, production::alert, production::prometheus, production::sampling,
    profile_scope, ProfileContext,
};

const WORKERS: usize = 4;
const REQUESTS_PER_WORKER: u64 = 200;

fn output_dir() -> PathBuf {
    std::env::args_os()
        .nth(1)
        .or_else(|| std::env::var_os("PROFILER_OUTPUT"))
        .map_or_else(
            || std::env::temp_dir().join(format!("production-monitoring-{}", std::process::id())),
            PathBuf::from,
        )
}

// ANCHOR: service
/// One request of the simulated service: parse, a few queries, render. Every 40th request hits a
/// slow query.
#[allow(clippy::manual_is_multiple_of)] // `is_multiple_of` needs Rust 1.87; the MSRV is 1.85
fn handle_request(id: u64) -> u64 {
    let mut request = ProfileContext::request("api_request");
    let input = parse(id);
    let mut rows = 0;
    for table in 0..3 {
        rows += query(input + table, id % 40 == 0 && table == 1);
    }
    if id % 97 == 0 {
        // A failed request: the tail mode keeps it whatever its duration.
        request.mark_error();
    }
    render(rows)
}

fn parse(id: u64) -> u64 {
    profile_scope!("service::parse");
    (0..200).fold(id, |acc, i| acc.rotate_left(5) ^ i)
}

fn query(key: u64, slow: bool) -> u64 {
    profile_scope!("service::query");
    if slow {
        // A lock convoy, a cold cache: this request breaks the 25 ms SLA.
        std::thread::sleep(Duration::from_millis(30));
    }
    (0..500).fold(key, |acc, i| {
        acc.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i)
    }) % 100
}

fn render(rows: u64) -> u64 {
    profile_scope!("service::render");
    (0..100).fold(rows, |acc, i| acc ^ (i << 3))
}
// ANCHOR_END: service

fn main() {
    let dir = output_dir();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }

    // ANCHOR: configure
    // Record 5% of requests whole; record every request, but keep only those slower than 20 ms
    // (or failed); alert on requests slower than 25 ms, at most 3 times in 30 s; aggregate
    // every function's latency, timing the calls of 1 request in 16.
    sampling::set_sample_rate("api_request", 0.05);
    sampling::set_tail_threshold("api_request", Some(Duration::from_millis(20)));
    sampling::set_sla("api_request", Some(Duration::from_millis(25)));
    aggregate::set_per_function(true);
    alert::set_rate_limit(3, Duration::from_secs(30));
    alert::dump_on_alert(Some(dir.join("incident")));
    let alerts = AtomicU64::new(0);
    let alerts: &'static AtomicU64 = Box::leak(Box::new(alerts));
    alert::on_sla_violation(move |v| {
        alerts.fetch_add(1, Ordering::Relaxed);
        let spans = v
            .trace
            .as_ref()
            .map_or(0, profiler_runtime::Profile::span_count);
        println!(
            "ALERT {} took {:.1} ms (SLA {} ms) on {}; trace with {spans} spans; {} suppressed before",
            v.root,
            v.duration.as_secs_f64() * 1e3,
            v.threshold.as_millis(),
            v.thread,
            v.suppressed_before
        );
    });
    // The endpoint Prometheus scrapes (PROFILER_METRICS_ADDR, default any free local port).
    let address =
        std::env::var("PROFILER_METRICS_ADDR").unwrap_or_else(|_| "127.0.0.1:0".to_owned());
    let server = match prometheus::serve_metrics(address.as_str()) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: cannot serve metrics on {address}: {e}");
            std::process::exit(1);
        }
    };
    println!("metrics on http://{}/metrics", server.local_addr());
    // ANCHOR_END: configure

    let workers: Vec<_> = (0..WORKERS as u64)
        .map(|w| {
            std::thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || {
                    (0..REQUESTS_PER_WORKER)
                        .map(|i| handle_request(w * REQUESTS_PER_WORKER + i))
                        .fold(0, u64::wrapping_add)
                })
                .expect("spawn a worker")
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    alert::wait_delivered(Duration::from_secs(5));

    // What Prometheus would scrape.
    let metrics = scrape(&server.local_addr().to_string()).unwrap_or_else(|e| {
        eprintln!("error: scraping our own endpoint: {e}");
        std::process::exit(1);
    });
    write(&dir.join("metrics.txt"), &metrics);
    server.stop();

    report();

    // The flight recorder (the last kept requests) and the regular timeline.
    let written = sampling::dump_flight_recorder(
        dir.join("flight"),
        &[Format::ChromeTrace, Format::Speedscope],
    )
    .map_err(|e| e.to_string());
    let timeline = export_profile(
        &profiler_runtime::flush(),
        dir.join("sampled.trace.json"),
        None,
    )
    .map_err(|e| e.to_string());
    match (written, timeline) {
        (Ok(paths), Ok(())) => {
            for path in paths {
                println!("wrote {}", path.display());
            }
            println!("wrote {}", dir.join("sampled.trace.json").display());
            println!("wrote {}", dir.join("metrics.txt").display());
        }
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
    if alerts.load(Ordering::Relaxed) == 0 {
        eprintln!("error: the SLA alert never fired");
        std::process::exit(1);
    }
}

/// Prints what the aggregates, the self-overhead estimate and the alert counters say.
fn report() {
    // ANCHOR: report
    let snapshot = aggregate::snapshot();
    if let Some(root) = snapshot.root("api_request") {
        let h = &root.histogram;
        println!(
            "api_request: {} requests, {} sampled, {} kept by the tail mode ({} errors), {} discarded, {} over the SLA",
            root.requests, root.sampled, root.tail_kept, root.errors, root.discarded, root.sla_violations
        );
        println!(
            "  latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            h.quantile(0.5).unwrap_or(0.0) / 1e6,
            h.quantile(0.99).unwrap_or(0.0) / 1e6,
            h.max_ns() / 1e6
        );
    }
    for f in &snapshot.functions {
        println!(
            "  {:<16} {:>5} calls ({} timed), p50 {:.1} us",
            f.name,
            f.calls,
            f.histogram.count(),
            f.histogram.quantile(0.5).unwrap_or(0.0) / 1e3
        );
    }
    println!(
        "profiler self-overhead estimate: {:.3} ms ({} probes x {:.1} ns)",
        snapshot.estimated_overhead_seconds() * 1e3,
        snapshot.probes,
        snapshot.probe_cost_ns
    );
    let stats = alert::stats();
    println!(
        "alerts: {} delivered, {} suppressed by the rate limit",
        stats.delivered, stats.suppressed
    );
    // ANCHOR_END: report
}

fn scrape(address: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(address)?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map_or(response.clone(), |(_, body)| body.to_owned()))
}

fn write(path: &std::path::Path, text: &str) {
    if let Err(e) = std::fs::write(path, text) {
        eprintln!("error: cannot write {}: {e}", path.display());
        std::process::exit(1);
    }
}
