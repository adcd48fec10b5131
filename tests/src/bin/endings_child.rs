//! A program whose run ends in each of the ways `tests/endings.rs` checks: a signal (SIGINT,
//! SIGTERM, SIGHUP), `std::process::exit`, `std::process::abort`, or a SIGINT that its own handler
//! catches. It streams (the default of `init`) while several threads record.
//!
//! `endings_child MODE THREADS CALLS`: starts THREADS threads named `worker-N`, each calling
//! `outer` (which calls `middle` twice, each calling `leaf`) in a loop and counting the calls that
//! returned. Once every thread has made CALLS calls, it prints `ready C0 C1 ...` (each thread's
//! count at that moment: those calls are complete, so the file must hold them) on stdout, then:
//! - `wait`: waits to be killed by a signal (exits 99 after 30 s);
//! - `exit`: calls `std::process::exit(3)` while the threads go on recording;
//! - `abort`: sleeps three collect intervals (or `ENDINGS_ABORT_AFTER_MS`), then
//!   `std::process::abort()`, the threads still recording;
//! - `handler`: its own SIGINT handler, installed before `init`, sets a flag; once it has, the
//!   threads stop, `handled` is printed and `main` returns (the guard completes the file).

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use profiler_runtime::profile;

/// Set by the program's own SIGINT handler (mode `handler`).
static HANDLED: AtomicBool = AtomicBool::new(false);
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_sig: libc::c_int) {
    HANDLED.store(true, Ordering::SeqCst);
}

#[allow(unsafe_code)]
fn install_own_handler() {
    // SAFETY: `on_sigint` is an `extern "C" fn(c_int)` that only stores to an atomic
    // (async-signal-safe); `signal` takes its address as a `sighandler_t`.
    let previous =
        unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
    assert_ne!(previous, libc::SIG_ERR, "signal(SIGINT)");
}

#[profile]
fn leaf() {
    // Keeps the event rate well below what the rings hold between two drains.
    std::thread::sleep(Duration::from_micros(20));
}

#[profile]
fn middle() {
    leaf();
}

#[profile]
fn outer() {
    middle();
    middle();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().expect("a mode: wait, exit, abort or handler");
    let threads: usize = args
        .next()
        .map_or(4, |n| n.parse().expect("a number of threads"));
    let calls: u64 = args
        .next()
        .map_or(100, |n| n.parse().expect("a number of calls"));
    if mode == "handler" {
        install_own_handler();
    }
    let profiler = profiler_runtime::init();

    let counts: Arc<Vec<AtomicU64>> = Arc::new((0..threads).map(|_| AtomicU64::new(0)).collect());
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let counts = Arc::clone(&counts);
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || {
                    while !STOP.load(Ordering::Relaxed) {
                        outer();
                        counts[i].fetch_add(1, Ordering::SeqCst);
                    }
                })
                .expect("a worker thread")
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(30);
    while counts.iter().any(|c| c.load(Ordering::SeqCst) < calls) {
        assert!(
            Instant::now() < deadline,
            "the workers did not make {calls} calls in 30 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let ready: Vec<String> = counts
        .iter()
        .map(|c| c.load(Ordering::SeqCst).to_string())
        .collect();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready {}", ready.join(" ")).unwrap();
    stdout.flush().unwrap();
    drop(stdout);

    match mode.as_str() {
        "exit" => std::process::exit(3),
        "abort" => {
            let interval_ms: u64 = std::env::var("PROFILER_COLLECT_INTERVAL_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(10);
            let wait_ms = std::env::var("ENDINGS_ABORT_AFTER_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(3 * interval_ms);
            std::thread::sleep(Duration::from_millis(wait_ms));
            std::process::abort();
        }
        "wait" | "handler" => {
            while !HANDLED.load(Ordering::SeqCst) {
                if Instant::now() > deadline {
                    eprintln!("endings_child: no signal ended the run");
                    std::process::exit(99);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            STOP.store(true, Ordering::SeqCst);
            for worker in workers {
                worker.join().unwrap();
            }
            println!("handled");
            drop(profiler);
        }
        other => panic!("unknown mode {other}"),
    }
}
