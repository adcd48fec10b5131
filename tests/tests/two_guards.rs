//! Two guards streaming at once (the second records into the first one's file): dropping them
//! must not hang. Each streaming collector once stopped through one process-wide flag, which
//! either collector could take: the other, never stopped, kept its guard's `drop` waiting forever.

use std::sync::mpsc;
use std::time::Duration;

use profiler_runtime::{profile, Config};

#[profile]
fn work(i: u64) -> u64 {
    std::hint::black_box(i)
}

#[test]
fn dropping_two_streaming_guards_returns() {
    let dir = std::env::temp_dir().join(format!("profiler-two-guards-{}", std::process::id()));
    let (done, finished) = mpsc::channel();
    let guards = std::thread::Builder::new().name("guards".into());
    let _ = guards.spawn(move || {
        for _ in 0..10 {
            let first = Config::new().output(dir.join("first")).quiet(true).init();
            let second = Config::new().output(dir.join("second")).quiet(true).init();
            for i in 0..100 {
                work(i);
            }
            // A few collect intervals, so that both collectors wait on the wake-up pipe.
            std::thread::sleep(Duration::from_millis(25));
            drop(second);
            drop(first);
        }
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_mins(1))
        .expect("dropping two streaming guards returns");
}
