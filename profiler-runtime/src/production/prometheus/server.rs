//! The `/metrics` endpoint: a small HTTP/1.1 server over `std::net` (feature `metrics-server`).
//!
//! It must keep answering the scraper while other clients misbehave (issue 16: a request line
//! without an end made the host hold 1.6 GB, a client sending a byte every 4 s blocked every
//! scrape, 300 idle connections made scrapes time out). So:
//!
//! - each connection has a thread of its own, at most [`MAX_CONNECTIONS`] at once;
//! - a request head (request line and headers) is read into a fixed buffer of
//!   [`MAX_REQUEST_HEAD_BYTES`]; a longer one is answered 414 or 431;
//! - the whole head must arrive within [`REQUEST_DEADLINE`] of the connection being accepted,
//!   however the bytes are spread over reads, or it is answered 408; the response must be taken
//!   within [`RESPONSE_DEADLINE`];
//! - when every slot is taken, a new connection closes the oldest one still waiting for its
//!   request. A scraper sends its request at once and is answered within milliseconds, so it is
//!   never the oldest for long, while idle and slow clients are pushed out, however many there
//!   are. Only if every slot is busy answering is the new connection refused with 503.
//!
//! Blocking reads with one thread per connection keep this std-only; an event loop would need
//! `poll` or an async runtime, for an endpoint that is scraped a few times a minute.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The most connections served at once, each on its own thread. Beyond it a new connection
/// closes the oldest one that is still sending its request.
pub const MAX_CONNECTIONS: usize = 128;

/// The longest request head accepted: the request line and the headers, line ends included.
/// A request line that does not end within it is answered `414 URI Too Long`, headers that do
/// not end within it `431 Request Header Fields Too Large`.
pub const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;

/// The time from accepting a connection to having its whole request head, over all its reads.
/// A connection that has not sent it by then is answered `408 Request Timeout` and closed.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);

/// The time a client has to take the response, over all writes; then the connection is closed.
pub const RESPONSE_DEADLINE: Duration = Duration::from_secs(5);

/// Stack of a connection thread: it reads into a buffer on its stack and renders the text.
const CONNECTION_STACK_BYTES: usize = 256 * 1024;

/// After refusing a request that was too large, the rest the client sends is read and dropped,
/// up to these bounds, before closing: closing with unread bytes makes the kernel reset the
/// connection, and the client could lose the answer that says why.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;

/// How long the acceptor waits for an evicted connection's thread to end before refusing.
const SLOT_WAIT: Duration = Duration::from_millis(250);

/// The pause after a failed `accept` (such as running out of file descriptors), so that the
/// acceptor does not spin while connections close.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// A running `/metrics` endpoint; stops when dropped (or with [`MetricsServer::stop`]).
#[derive(Debug)]
pub struct MetricsServer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    connections: Arc<Connections>,
    thread: Option<JoinHandle<()>>,
}

/// Serves the metrics at `GET /metrics` on `address`, from a background thread named
/// `profiler-metrics` that gives each connection a thread named `profiler-metrics-connection`.
///
/// `address` decides who can scrape: `"127.0.0.1:9898"` (what [`serve_metrics_on_port`] binds)
/// only this host, `"0.0.0.0:9898"` every network the host is on. The endpoint has no
/// authentication, so bind a public interface only where the network is trusted. Port 0 takes
/// any free port; [`MetricsServer::local_addr`] tells which.
///
/// Other paths answer 404, other methods 405. The server is bounded against clients that hold
/// connections: at most [`MAX_CONNECTIONS`] at once (a new one beyond it closes the oldest that
/// is still sending its request), a request head of at most [`MAX_REQUEST_HEAD_BYTES`], whole
/// within [`REQUEST_DEADLINE`], and a response taken within [`RESPONSE_DEADLINE`]. Requires the
/// cargo feature `metrics-server`.
///
/// # Errors
///
/// The address does not resolve or cannot be bound (in use, no permission), or the thread
/// cannot be started; the message names the address.
///
/// # Examples
///
/// ```
/// let server = profiler_runtime::production::prometheus::serve_metrics("127.0.0.1:0")?;
/// println!("scrape http://{}/metrics", server.local_addr());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn serve_metrics(address: impl ToSocketAddrs) -> io::Result<MetricsServer> {
    let addresses: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|e| context(&e, "cannot resolve the metrics address"))?
        .collect();
    let listener = TcpListener::bind(&addresses[..])
        .map_err(|e| context(&e, &format!("cannot serve metrics on {}", list(&addresses))))?;
    let address = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let connections = Arc::new(Connections::default());
    let thread = {
        let stop = Arc::clone(&stop);
        let connections = Arc::clone(&connections);
        std::thread::Builder::new()
            .name("profiler-metrics".into())
            .spawn(move || accept_loop(&listener, &stop, &connections))
            .map_err(|e| context(&e, "cannot start the thread profiler-metrics"))?
    };
    Ok(MetricsServer {
        address,
        stop,
        connections,
        thread: Some(thread),
    })
}

/// Serves the metrics on `127.0.0.1:port`, reachable from this host only; port 0 takes any free
/// port. To serve another interface, pass its address to [`serve_metrics`].
///
/// # Errors
///
/// As [`serve_metrics`]: the port is in use or needs privileges, or the thread cannot start.
///
/// # Examples
///
/// ```
/// let server = profiler_runtime::production::prometheus::serve_metrics_on_port(0)?;
/// assert!(server.local_addr().ip().is_loopback());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn serve_metrics_on_port(port: u16) -> io::Result<MetricsServer> {
    serve_metrics((Ipv4Addr::LOCALHOST, port))
}

impl MetricsServer {
    /// The address bound (with the actual port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Stops serving: closes the open connections and waits for the threads to finish.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.connections.close_all();
        // Wake the blocking accept. An unspecified address (0.0.0.0) is reached through loopback.
        let mut wake = self.address;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Their sockets are shut down, so the threads end at their next read or write.
        self.connections.wait_until_none(RESPONSE_DEADLINE);
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn context(error: &io::Error, what: &str) -> io::Error {
    io::Error::new(error.kind(), format!("{what}: {error}"))
}

fn list(addresses: &[SocketAddr]) -> String {
    if addresses.is_empty() {
        return "no address (the name resolved to none)".to_owned();
    }
    let names: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    names.join(", ")
}

fn accept_loop(listener: &TcpListener, stop: &AtomicBool, connections: &Arc<Connections>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            break;
        }
        match stream {
            Ok(stream) => admit(stream, connections),
            Err(_) => std::thread::sleep(ACCEPT_ERROR_PAUSE),
        }
    }
}

fn admit(mut stream: TcpStream, connections: &Arc<Connections>) {
    let accepted = Instant::now();
    let Some(slot) = connections.admit(&stream, accepted) else {
        // A fresh socket's send buffer is empty: this short write does not block.
        let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
        let _ = stream.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\
              Retry-After: 1\r\nConnection: close\r\n\r\nbusy\n",
        );
        return;
    };
    // If the thread cannot start, the closure is dropped with the stream and the slot: the
    // client sees the connection close, and the slot is freed.
    let _ = std::thread::Builder::new()
        .name("profiler-metrics-connection".into())
        .stack_size(CONNECTION_STACK_BYTES)
        .spawn(move || serve(stream, &slot, accepted));
}

/// What a connection is doing, which decides whether a newcomer may close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for its request head: may be closed for a newcomer.
    Reading,
    /// Rendering and writing the response: kept.
    Answering,
    /// Dropping what the client still sends after a refusal: may be closed for a newcomer.
    Lingering,
}

#[derive(Debug)]
struct Open {
    id: u64,
    accepted: Instant,
    phase: Phase,
    /// Set when a newcomer closed it; its thread still counts until it ends.
    evicted: bool,
    /// A handle on the connection's socket, to shut it down from the acceptor.
    stream: TcpStream,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    open: Vec<Open>,
    stopping: bool,
}

/// The open connections: one entry per connection thread, from admission to its end.
#[derive(Debug, Default)]
struct Connections {
    table: Mutex<Table>,
    /// Notified whenever a connection ends.
    ended: Condvar,
}

impl Connections {
    /// Nothing panics while the lock is held, so a poisoned table is still consistent.
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a new connection, closing the oldest connection still reading (or lingering)
    /// if every slot is taken; `None` if none frees up.
    fn admit(self: &Arc<Self>, stream: &TcpStream, accepted: Instant) -> Option<Slot> {
        let handle = stream.try_clone().ok()?;
        let mut table = self.lock();
        if table.open.len() >= MAX_CONNECTIONS {
            let oldest = table
                .open
                .iter_mut()
                .filter(|c| c.phase != Phase::Answering && !c.evicted)
                .min_by_key(|c| c.accepted);
            if let Some(oldest) = oldest {
                oldest.evicted = true;
                // Its blocked read returns at once, and its thread ends.
                let _ = oldest.stream.shutdown(Shutdown::Both);
            }
            table = self
                .ended
                .wait_timeout_while(table, SLOT_WAIT, |t| {
                    t.open.len() >= MAX_CONNECTIONS && !t.stopping
                })
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if table.stopping || table.open.len() >= MAX_CONNECTIONS {
            return None;
        }
        let id = table.next_id;
        table.next_id += 1;
        table.open.push(Open {
            id,
            accepted,
            phase: Phase::Reading,
            evicted: false,
            stream: handle,
        });
        Some(Slot {
            connections: Arc::clone(self),
            id,
        })
    }

    fn close_all(&self) {
        let mut table = self.lock();
        table.stopping = true;
        for connection in &table.open {
            let _ = connection.stream.shutdown(Shutdown::Both);
        }
        self.ended.notify_all();
    }

    fn wait_until_none(&self, limit: Duration) {
        let table = self.lock();
        let _ = self
            .ended
            .wait_timeout_while(table, limit, |t| !t.open.is_empty());
    }
}

/// A connection's entry in [`Connections`], removed when its thread ends.
#[derive(Debug)]
struct Slot {
    connections: Arc<Connections>,
    id: u64,
}

impl Slot {
    /// Moves the connection to `phase`; `false` if a newcomer has closed it meanwhile.
    fn enter(&self, phase: Phase) -> bool {
        let mut table = self.connections.lock();
        match table.open.iter_mut().find(|c| c.id == self.id) {
            Some(open) if !open.evicted => {
                open.phase = phase;
                true
            }
            _ => false,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = self.connections.lock();
        table.open.retain(|c| c.id != self.id);
        self.connections.ended.notify_all();
    }
}

/// Why no request head was read.
#[derive(Debug)]
enum HeadError {
    /// The client closed (or a newcomer evicted it): there is nobody to answer.
    Closed,
    /// [`REQUEST_DEADLINE`] passed first.
    Deadline,
    /// The buffer filled before the head ended; `line_ended` tells whether the request line did.
    TooLarge { line_ended: bool },
}

/// A response: status line, a plain-text or metrics body, and whether the client may still be
/// sending (then the rest is read and dropped before closing).
struct Response {
    status: &'static str,
    content_type: &'static str,
    extra_header: &'static str,
    body: String,
    with_body: bool,
    unread_input: bool,
}

impl Response {
    fn text(status: &'static str, body: &str) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            extra_header: "",
            body: body.to_owned(),
            with_body: true,
            unread_input: false,
        }
    }
}

fn serve(mut stream: TcpStream, slot: &Slot, accepted: Instant) {
    let mut head = [0; MAX_REQUEST_HEAD_BYTES];
    let read = read_head(&mut stream, &mut head, accepted + REQUEST_DEADLINE);
    if matches!(read, Err(HeadError::Closed)) || !slot.enter(Phase::Answering) {
        return;
    }
    let response = match read {
        Ok(len) => respond(&head[..len]),
        Err(HeadError::TooLarge { line_ended: false }) => Response {
            unread_input: true,
            ..Response::text(
                "414 URI Too Long",
                &format!("the request line is over {MAX_REQUEST_HEAD_BYTES} bytes\n"),
            )
        },
        Err(HeadError::TooLarge { line_ended: true }) => Response {
            unread_input: true,
            ..Response::text(
                "431 Request Header Fields Too Large",
                &format!("the request line and headers are over {MAX_REQUEST_HEAD_BYTES} bytes\n"),
            )
        },
        Err(HeadError::Deadline) => Response::text(
            "408 Request Timeout",
            &format!(
                "the request did not arrive within {} s\n",
                REQUEST_DEADLINE.as_secs()
            ),
        ),
        Err(HeadError::Closed) => return,
    };
    let written = write_response(&mut stream, &response, Instant::now() + RESPONSE_DEADLINE);
    if written.is_ok() && response.unread_input && slot.enter(Phase::Lingering) {
        drain(&mut stream);
    }
}

/// Reads until the blank line that ends a request head, into `buffer`; the head's length.
fn read_head(
    stream: &mut TcpStream,
    buffer: &mut [u8],
    deadline: Instant,
) -> Result<usize, HeadError> {
    let mut filled = 0;
    loop {
        if let Some(end) = head_end(&buffer[..filled]) {
            return Ok(end);
        }
        if filled == buffer.len() {
            return Err(HeadError::TooLarge {
                line_ended: buffer.contains(&b'\n'),
            });
        }
        // The timeout of each read is what is left of the whole head's deadline, so a client
        // that trickles bytes cannot extend it.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(HeadError::Deadline);
        }
        match stream.read(&mut buffer[filled..]) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HeadError::Deadline);
            }
            Err(_) => return Err(HeadError::Closed),
        }
    }
}

/// The length of the head in `bytes` up to and including the blank line that ends it, if it
/// is there. Lines may end in CRLF or a bare LF (RFC 9112, section 2.2).
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .find_map(|(i, _)| match &bytes[i + 1..] {
            [b'\n', ..] => Some(i + 2),
            [b'\r', b'\n', ..] => Some(i + 3),
            _ => None,
        })
}

/// The response to a complete request head.
fn respond(head: &[u8]) -> Response {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let Ok(line) = std::str::from_utf8(line) else {
        return Response::text("400 Bad Request", "the request line is not UTF-8\n");
    };
    let mut parts = line.split_ascii_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Response::text("400 Bad Request", "expected a request line: GET /metrics\n");
    };
    let path = target.split('?').next().unwrap_or_default();
    let head_only = method == "HEAD";
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => Response {
            status: "200 OK",
            content_type: super::CONTENT_TYPE,
            extra_header: "",
            body: super::render(),
            with_body: !head_only,
            unread_input: false,
        },
        ("GET" | "HEAD", _) => Response {
            with_body: !head_only,
            ..Response::text("404 Not Found", "not found; try /metrics\n")
        },
        _ => Response {
            extra_header: "Allow: GET, HEAD\r\n",
            ..Response::text("405 Method Not Allowed", "only GET and HEAD\n")
        },
    }
}

fn write_response(
    stream: &mut TcpStream,
    response: &Response,
    deadline: Instant,
) -> io::Result<()> {
    let mut bytes = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len(),
        response.extra_header
    )
    .into_bytes();
    if response.with_body {
        bytes.extend_from_slice(response.body.as_bytes());
    }
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        // As for reading: each write gets what is left of the response's deadline.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left))?;
        match stream.write(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    stream.flush()
}

/// Ends our side, then reads and drops what the client still sends, within the linger bounds.
fn drain(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER_TIME;
    let mut buffer = [0; 8 * 1024];
    let mut dropped = 0;
    while dropped < LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut buffer) {
            Ok(0) => return,
            Ok(n) => dropped += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_ends_at_the_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.1\nHost: x\n\n"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(head_end(b"GET / HTTP/1.1"), None);
    }

    #[test]
    fn requests_get_the_status_their_method_and_path_call_for() {
        let status = |head: &[u8]| respond(head).status;
        assert_eq!(status(b"GET /metrics HTTP/1.1\r\n\r\n"), "200 OK");
        assert_eq!(status(b"GET /metrics?x=1 HTTP/1.1\r\n\r\n"), "200 OK");
        assert_eq!(status(b"GET /other HTTP/1.1\r\n\r\n"), "404 Not Found");
        assert_eq!(
            status(b"POST /metrics HTTP/1.1\r\n\r\n"),
            "405 Method Not Allowed"
        );
        assert_eq!(status(b"\r\n\r\n"), "400 Bad Request");
        assert_eq!(status(b"GET \xff HTTP/1.1\r\n\r\n"), "400 Bad Request");
        assert!(!respond(b"HEAD /metrics HTTP/1.1\r\n\r\n").with_body);
    }

    /// A server holding every slot with connections that send nothing still answers a new
    /// request: each newcomer closes the oldest of them.
    #[test]
    fn a_newcomer_evicts_the_oldest_idle_connection_when_all_slots_are_taken() {
        let server = serve_metrics("127.0.0.1:0").unwrap();
        let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS)
            .map(|_| TcpStream::connect(server.local_addr()).unwrap())
            .collect();
        let mut client = TcpStream::connect(server.local_addr()).unwrap();
        client
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        // Without eviction the newcomer would be refused with 503 after `SLOT_WAIT`.
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer:?}");
        drop(idle);
    }
}
