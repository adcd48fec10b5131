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
    // One stream per process: the tests of this file take turns (`cargo test` runs them on
    // threads of one process).
    let _serial = profiler_tests::serial();
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

/// One stream per process: the second guard's calls go to the first guard's file, and dropping
/// the second guard does not end that stream.
#[test]
fn the_first_guard_owns_the_stream_until_it_ends() {
    let _serial = profiler_tests::serial();
    let dir = std::env::temp_dir().join(format!("profiler-two-owners-{}", std::process::id()));
    let first = Config::new()
        .output(dir.join("first"))
        .formats(&[])
        .quiet(true)
        .init();
    let second = Config::new()
        .output(dir.join("second"))
        .formats(&[])
        .quiet(true)
        .init();
    let run = |calls: u64| {
        std::thread::Builder::new()
            .name(format!("calls-{calls}"))
            .spawn(move || (0..calls).map(work).sum::<u64>())
            .unwrap()
            .join()
            .unwrap()
    };
    run(100);
    drop(second);
    run(200);
    let path = first.config().stream_path().unwrap();
    drop(first);
    let file = std::fs::File::open(&path).unwrap();
    let profile = profiler_runtime::import::read_perfetto(file, u64::MAX).unwrap();
    let spans = |name: &str| {
        profile
            .threads
            .iter()
            .find(|t| t.name == name)
            .map_or(0, |t| t.spans.len())
    };
    assert_eq!((spans("calls-100"), spans("calls-200")), (100, 200));
    assert!(!dir.join("second.perfetto-trace").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
