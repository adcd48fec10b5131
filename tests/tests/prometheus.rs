//! Prometheus exposition: the text passes `promtool check metrics`, and a real Prometheus server
//! scrapes our `/metrics` endpoint and answers a query with the expected request count.
//!
//! The tools come from Debian's `prometheus` package. Without them the checks are skipped, unless
//! `CI` is set: then their absence fails the test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use profiler_runtime::{production::prometheus, production::sampling, ProfileContext};

/// The path of `tool` if installed; `None` (skip) only outside CI.
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    assert!(
        found.is_some() || std::env::var_os("CI").is_none(),
        "{name} is not installed, and CI is set: install Debian's `prometheus` package"
    );
    found
}

fn http_get(address: &str, path: &str) -> std::io::Result<(String, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((head.to_owned(), body.to_owned()))
}

fn handle_requests(root: &'static str, n: usize) {
    for _ in 0..n {
        let _request = ProfileContext::request(root);
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("profiler-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_endpoint_serves_metrics_that_promtool_accepts() {
    sampling::set_sla("prometheus_checked", Some(Duration::from_millis(42)));
    handle_requests("prometheus_checked", 3);
    let server = prometheus::serve_metrics("127.0.0.1:0").unwrap();
    let address = server.local_addr().to_string();
    let (head, body) = http_get(&address, "/metrics").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        body.contains("profiler_request_duration_seconds_count{root=\"prometheus_checked\"} 3\n")
    );
    // The SLA threshold is a bucket bound, and its count is exactly the requests within the SLA.
    let value = |prefix: &str| -> u64 {
        let line = body
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix}: {body}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let within =
        value("profiler_request_duration_seconds_bucket{root=\"prometheus_checked\",le=\"0.042\"}");
    let violations = value("profiler_sla_violations_total{root=\"prometheus_checked\"}");
    assert_eq!(within + violations, 3);
    assert!(body.contains("profiler_sla_threshold_seconds{root=\"prometheus_checked\"} 0.042\n"));
    let (head, _) = http_get(&address, "/other").unwrap();
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    server.stop();

    let Some(promtool) = tool("promtool") else {
        return;
    };
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let output = check.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Stops the Prometheus server however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_prometheus(binary: &Path, dir: &Path, target: &str) -> (Server, String) {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: profiler\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={address}"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    (Server(child), address)
}

/// The value of an instant query's single result, if there is one yet.
fn query(address: &str, promql: &str) -> Option<f64> {
    let encoded: String = promql
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (_, body) = http_get(address, &format!("/api/v1/query?query={encoded}")).ok()?;
    // The body may be chunked; the JSON object is the part between the outer braces.
    let json = &body[body.find('{')?..=body.rfind('}')?];
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let result = value["data"]["result"].as_array()?.first()?.clone();
    result["value"][1].as_str()?.parse().ok()
}

#[test]
fn a_real_prometheus_server_scrapes_the_request_count() {
    let Some(binary) = tool("prometheus") else {
        return;
    };
    handle_requests("prometheus_scraped", 7);
    let server = prometheus::serve_metrics("127.0.0.1:0").unwrap();
    let dir = temp_dir("prometheus-server");
    let (_prometheus, address) = start_prometheus(&binary, &dir, &server.local_addr().to_string());
    let promql = "profiler_request_duration_seconds_count{root=\"prometheus_scraped\"}";
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = None;
    while Instant::now() < deadline {
        last = query(&address, promql);
        if last == Some(7.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    assert_eq!(
        last,
        Some(7.0),
        "Prometheus never saw the count; its log:\n{log}"
    );
    // A later scrape sees new requests.
    handle_requests("prometheus_scraped", 3);
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline && last != Some(10.0) {
        std::thread::sleep(Duration::from_millis(250));
        last = query(&address, promql);
    }
    assert_eq!(last, Some(10.0));
    let _ = std::fs::remove_dir_all(&dir);
}
