//! A run ended by SIGTERM while it streams: `viewers/run.sh` loads the file it leaves into the
//! real Perfetto UI, to show that a file completed by the signal handler is a whole trace.
//!
//! ```text
//! cargo run -p profiler-runtime --features enable --example stream_sigterm -- OUTDIR
//! ```
//!
//! Three threads (`sigterm-worker-N`) make nested calls; once they are done the program sends
//! itself SIGTERM and waits. The collector completes `OUTDIR/sigterm.perfetto-trace` and the
//! signal then ends the process as it would have (killed by SIGTERM, status 143 in a shell). No
//! other file is written: the guard never runs. Exits 1 if the signal did not end it.

use std::path::PathBuf;
use std::time::Duration;

use profiler_runtime::profile;

const WORKERS: usize = 3;
const CALLS: u64 = 200;

#[profile]
fn leaf(i: u64) -> u64 {
    std::hint::black_box(i.wrapping_mul(2_654_435_761))
}

#[profile]
fn step(i: u64) -> u64 {
    leaf(i) ^ leaf(i + 1)
}

#[profile]
fn batch(worker: u64) -> u64 {
    (0..10).map(|i| step(worker * 1000 + i)).sum()
}

#[allow(unsafe_code)]
fn send_sigterm_to_self() {
    // SAFETY: `kill` of our own pid with SIGTERM; its handler (the profiler's) only stores to an
    // atomic and writes to a pipe.
    let sent = unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    assert_eq!(sent, 0, "kill(getpid(), SIGTERM)");
}

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: stream_sigterm OUTDIR"),
    );
    // The guard is never dropped: SIGTERM ends the run.
    let _profiler = profiler_runtime::Config::new()
        .output(out.join("sigterm"))
        .init();
    let workers: Vec<_> = (0..WORKERS as u64)
        .map(|w| {
            std::thread::Builder::new()
                .name(format!("sigterm-worker-{w}"))
                .spawn(move || (0..CALLS).map(|_| batch(w)).sum::<u64>())
                .unwrap()
        })
        .collect();
    for worker in workers {
        std::hint::black_box(worker.join().unwrap());
    }
    send_sigterm_to_self();
    std::thread::sleep(Duration::from_secs(10));
    eprintln!("stream_sigterm: SIGTERM did not end the process");
    std::process::exit(1);
}
