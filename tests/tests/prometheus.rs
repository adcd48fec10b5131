//! Prometheus exposition: the text passes `promtool check metrics`, and a real Prometheus server
//! scrapes our `/metrics` endpoint and answers a query with the expected request count. The
//! endpoint refuses oversized and unfinished requests, and keeps answering Prometheus, with the
//! process's memory flat, while clients attack it (issue 16).
//!
//! The tools come from Debian's `prometheus` package. Without them the checks are skipped, unless
//! `CI` is set: then their absence fails the test.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Starts Prometheus scraping `target` every `interval_s` seconds, with a timeout as long.
fn start_prometheus(binary: &Path, dir: &Path, target: &str, interval_s: u32) -> (Server, String) {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: {interval_s}s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: profiler\n    scrape_interval: {interval_s}s\n    scrape_timeout: {interval_s}s\n    static_configs:\n      - targets: ['{target}']\n"
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

/// The JSON answer of Prometheus's HTTP API at `path_and_query`, if it answered.
fn api(address: &str, path_and_query: &str) -> Option<serde_json::Value> {
    let (_, body) = http_get(address, path_and_query).ok()?;
    // The body may be chunked; the JSON object is the part between the outer braces.
    let json = &body[body.find('{')?..=body.rfind('}')?];
    serde_json::from_str(json).ok()
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of an instant query's single result, if there is one yet.
fn query(address: &str, promql: &str) -> Option<f64> {
    let value = api(
        address,
        &format!("/api/v1/query?query={}", url_encode(promql)),
    )?;
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
    let (_prometheus, address) =
        start_prometheus(&binary, &dir, &server.local_addr().to_string(), 1);
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

/// Sends `request` and returns what the endpoint answers before it closes the connection.
fn exchange(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    // A reset after the answer is not what these tests check: the answer is.
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn an_oversized_request_is_refused_with_a_status_that_says_why() {
    let server = prometheus::serve_metrics("127.0.0.1:0").unwrap();
    let address = server.local_addr();
    let cap = prometheus::MAX_REQUEST_HEAD_BYTES;
    let endless_line = format!("GET /{}", "a".repeat(cap));
    let answer = exchange(address, endless_line.as_bytes());
    assert!(
        answer.starts_with("HTTP/1.1 414 URI Too Long\r\n"),
        "{answer:?}"
    );
    let endless_headers = format!(
        "GET /metrics HTTP/1.1\r\nX-Padding: {}\r\n",
        "a".repeat(cap)
    );
    let answer = exchange(address, endless_headers.as_bytes());
    assert!(
        answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{answer:?}"
    );
    // Just under the cap is still a request.
    let padding = "a".repeat(cap - 100);
    let answer = exchange(
        address,
        format!("GET /metrics HTTP/1.1\r\nX-Padding: {padding}\r\n\r\n").as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:?}");
}

#[test]
fn an_unfinished_request_is_answered_408_at_the_deadline() {
    let server = prometheus::serve_metrics("127.0.0.1:0").unwrap();
    // A request line, and headers that never end with a blank line.
    let answer = exchange(server.local_addr(), b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer:?}"
    );
}

#[test]
fn serve_metrics_on_port_binds_loopback_only() {
    let server = prometheus::serve_metrics_on_port(0).unwrap();
    assert_eq!(server.local_addr().ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    let (head, _) = http_get(&server.local_addr().to_string(), "/metrics").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
}

// The attacks of issue 16, each while a real Prometheus server scrapes the endpoint.

/// How long each attack lasts.
const ATTACK: Duration = Duration::from_secs(8);
/// Seconds between scrapes, and each scrape's timeout: generous for an endpoint that answers in
/// milliseconds on a machine shared with other work, and far shorter than the old server's stalls
/// (5 s per idle connection, forever for a slow one).
const SCRAPE_INTERVAL_S: u32 = 2;
/// The most the process's resident memory may grow during an attack. The old server held each
/// request line whole: one 100 MiB line took 128 MiB.
const MEMORY_GROWTH_LIMIT: u64 = 50 << 20;

/// The memory measured is the whole process's: one attack at a time, so that each is measured
/// alone (Prometheus starts, and the scrapes are read back, in parallel).
static ONE_ATTACK_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Resident memory of this process, which runs the endpoint, from `/proc/self/status`.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS line in /proc/self/status:\n{status}"));
    kib << 10
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    done()
}

/// Sleeps for `pause`, or until `until` if that comes first.
fn pause(pause: Duration, until: Instant) {
    std::thread::sleep(pause.min(until.saturating_duration_since(Instant::now())));
}

/// Whether the endpoint has answered or closed `stream`, one of the attacker's non-blocking
/// connections: either way it no longer holds the endpoint.
fn let_go(stream: &mut TcpStream) -> bool {
    let mut buffer = [0; 512];
    !matches!(stream.read(&mut buffer), Err(e) if e.kind() == ErrorKind::WouldBlock)
}

/// The error of Prometheus's latest scrape of its only target, if it failed.
fn last_scrape_error(address: &str) -> Option<String> {
    let targets = api(address, "/api/v1/targets")?;
    let error = targets["data"]["activeTargets"][0]["lastError"].as_str()?;
    (!error.is_empty()).then(|| error.to_owned())
}

/// What an attack did, to check that it did happen.
#[derive(Debug, Default)]
struct Sent {
    connections: usize,
    bytes: usize,
}

/// What Prometheus stored and what memory the process held during one attack.
struct Attacked {
    sent: Sent,
    /// `(timestamp, up)` of each scrape that began during the attack.
    scrapes: Vec<(f64, f64)>,
    resident_before: u64,
    resident_peak: u64,
    /// The scrape errors Prometheus reported during the attack, and its log, to explain a failure.
    errors: Vec<String>,
    log: String,
}

/// Serves the metrics, has a real Prometheus server scrape them, and runs `attack` on the
/// endpoint until the `Instant` it is given; `None` when Prometheus is not installed (outside CI).
fn scraped_during(
    name: &str,
    attack: impl FnOnce(SocketAddr, Instant) -> Sent + Send,
) -> Option<Attacked> {
    let binary = tool("prometheus")?;
    let server = prometheus::serve_metrics("127.0.0.1:0").unwrap();
    let target = server.local_addr();
    let dir = temp_dir(name);
    let (prometheus_server, address) =
        start_prometheus(&binary, &dir, &target.to_string(), SCRAPE_INTERVAL_S);
    let log = || std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    let up = "up{job=\"profiler\"}";
    // Attack once Prometheus is scraping, so that it schedules scrapes all through the attack.
    assert!(
        wait_for(Duration::from_secs(90), || query(&address, up) == Some(1.0)),
        "Prometheus never scraped the endpoint; its log:\n{}",
        log()
    );

    let attacking = ONE_ATTACK_AT_A_TIME
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let resident_before = resident_bytes();
    let started = unix_now();
    let until = Instant::now() + ATTACK;
    let mut errors = Vec::new();
    let (sent, resident_peak) = std::thread::scope(|scope| {
        let attacker = std::thread::Builder::new()
            .name(format!("attacker-{name}"))
            .spawn_scoped(scope, move || attack(target, until))
            .unwrap();
        let mut peak = resident_before;
        let mut asked = Instant::now();
        while !attacker.is_finished() {
            peak = peak.max(resident_bytes());
            if asked.elapsed() >= Duration::from_secs(1) {
                asked = Instant::now();
                if let Some(error) = last_scrape_error(&address).filter(|e| !errors.contains(e)) {
                    errors.push(error);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (attacker.join().unwrap(), peak)
    });
    let ended = unix_now();
    drop(attacking);

    // Scrapes are stored in order, so once one that began after the attack is stored, every
    // scrape that began during it is too.
    let timestamp = format!("timestamp({up})");
    assert!(
        wait_for(Duration::from_secs(90), || query(&address, &timestamp)
            .is_some_and(|t| t >= ended)),
        "Prometheus stored no scrape after the attack; its log:\n{}",
        log()
    );
    let window = format!("{up}[{}ms]", ((ended - started) * 1e3) as u64);
    let answer = api(
        &address,
        &format!("/api/v1/query?query={}&time={ended}", url_encode(&window)),
    )
    .expect("Prometheus answers a range query");
    let scrapes = answer["data"]["result"][0]["values"]
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(|v| Some((v[0].as_f64()?, v[1].as_str()?.parse().ok()?)))
                .collect()
        })
        .unwrap_or_default();
    let attacked = Attacked {
        sent,
        scrapes,
        resident_before,
        resident_peak,
        errors,
        log: log(),
    };
    drop(prometheus_server);
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
    Some(attacked)
}

/// The attack opened at least `connections`, every scrape during it succeeded, and memory
/// stayed flat.
fn assert_survived(attack: &str, attacked: &Attacked, connections: usize) {
    let mut problems = Vec::new();
    if attacked.sent.connections < connections {
        problems.push(format!(
            "the attack opened fewer connections than it is made of ({connections}): {:?}",
            attacked.sent
        ));
    }
    // `ATTACK` holds 4 scrapes at `SCRAPE_INTERVAL_S`; failed scrapes are stored too (`up` 0).
    if attacked.scrapes.len() < 2 {
        problems.push(format!(
            "Prometheus stored {} scrapes during the attack: {:?}",
            attacked.scrapes.len(),
            attacked.scrapes
        ));
    }
    let failed = attacked.scrapes.iter().filter(|(_, up)| *up < 1.0).count();
    if failed > 0 {
        problems.push(format!(
            "{failed} of {} scrapes failed (up = 0); Prometheus's errors: {:?}",
            attacked.scrapes.len(),
            attacked.errors
        ));
    }
    let growth = attacked
        .resident_peak
        .saturating_sub(attacked.resident_before);
    if growth >= MEMORY_GROWTH_LIMIT {
        problems.push(format!(
            "resident memory grew by {} MiB (from {} MiB)",
            growth >> 20,
            attacked.resident_before >> 20
        ));
    }
    eprintln!(
        "{attack}: {:?}; {} scrapes, {failed} failed; resident memory {} -> peak {} KiB",
        attacked.sent,
        attacked.scrapes.len(),
        attacked.resident_before >> 10,
        attacked.resident_peak >> 10
    );
    assert!(
        problems.is_empty(),
        "during {attack}: {}\nPrometheus's log:\n{}",
        problems.join("; "),
        attacked.log
    );
}

/// Request lines that never end, 100 MiB each, one connection after another.
fn send_endless_request_lines(target: SocketAddr, until: Instant) -> Sent {
    const LINE: usize = 100 << 20;
    let chunk = vec![b'a'; 64 << 10];
    let mut total = Sent::default();
    while Instant::now() < until {
        let Ok(mut stream) = TcpStream::connect_timeout(&target, Duration::from_millis(500)) else {
            pause(Duration::from_millis(50), until);
            continue;
        };
        total.connections += 1;
        stream
            .set_write_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut sent = 0;
        if stream.write_all(b"GET /").is_ok() {
            while sent < LINE && Instant::now() < until {
                match stream.write(&chunk) {
                    Ok(n) => sent += n,
                    // The endpoint is not reading at the moment.
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => break,
                }
            }
        }
        total.bytes += sent;
        // Hold the connection until the endpoint lets go of it.
        stream.set_nonblocking(true).unwrap();
        while Instant::now() < until && !let_go(&mut stream) {
            pause(Duration::from_millis(50), until);
        }
        pause(Duration::from_millis(20), until);
    }
    total
}

/// Four clients, each sending one byte of a request every 3 s (under the old 5 s read timeout),
/// reconnecting when the endpoint lets go of them.
fn drip_requests(target: SocketAddr, until: Instant) -> Sent {
    let request = b"GET /metrics HTTP/1.1\r\nHost: attacker\r\n\r\n";
    let mut clients: Vec<Option<(TcpStream, usize)>> = (0..4).map(|_| None).collect();
    let mut total = Sent::default();
    while Instant::now() < until {
        for client in &mut clients {
            if client.as_mut().is_some_and(|(stream, _)| let_go(stream)) {
                *client = None;
            }
            if client.is_none() {
                *client = TcpStream::connect_timeout(&target, Duration::from_millis(500))
                    .ok()
                    .map(|stream| {
                        stream.set_nonblocking(true).unwrap();
                        total.connections += 1;
                        (stream, 0)
                    });
            }
            if let Some((stream, sent)) = client {
                let next = *sent % request.len();
                if stream.write(&request[next..=next]).is_ok() {
                    *sent += 1;
                    total.bytes += 1;
                }
            }
        }
        pause(Duration::from_secs(3), until);
    }
    total
}

/// 300 connections that send nothing, reopened as the endpoint closes them.
fn hold_idle_connections(target: SocketAddr, until: Instant) -> Sent {
    const IDLE: usize = 300;
    let mut held: Vec<TcpStream> = Vec::with_capacity(IDLE);
    let mut total = Sent::default();
    while Instant::now() < until {
        held.retain_mut(|stream| !let_go(stream));
        while held.len() < IDLE && Instant::now() < until {
            // A full listen backlog makes a connection wait; try again next round.
            let Ok(stream) = TcpStream::connect_timeout(&target, Duration::from_millis(200)) else {
                break;
            };
            stream.set_nonblocking(true).unwrap();
            held.push(stream);
            total.connections += 1;
        }
        pause(Duration::from_millis(500), until);
    }
    total
}

#[test]
fn scrapes_succeed_while_a_request_line_never_ends() {
    if let Some(attacked) = scraped_during("endless-line", send_endless_request_lines) {
        assert_survived("endless request lines", &attacked, 1);
    }
}

#[test]
fn scrapes_succeed_while_clients_send_a_byte_every_3_s() {
    if let Some(attacked) = scraped_during("slow-clients", drip_requests) {
        assert_survived("slow clients", &attacked, 4);
    }
}

#[test]
fn scrapes_succeed_while_300_connections_sit_idle() {
    if let Some(attacked) = scraped_during("idle-connections", hold_idle_connections) {
        assert_survived("300 idle connections", &attacked, 300);
    }
}
