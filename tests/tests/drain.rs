//! Draining moves events out of the rings between flushes: a thread that records far more than
//! its ring holds keeps every call, spans still nest across drains, the collector's memory is
//! capped (and what the cap turns away is counted as dropped), and `Config::init` drains in the
//! background on its own.

use std::time::{Duration, Instant};

use profiler_runtime::{profile_scope, Profile, ThreadTimeline};

fn nest(depth: u32) {
    profile_scope!("drain nest");
    if depth > 0 {
        nest(depth - 1);
    }
}

fn thread_named<'a>(profile: &'a Profile, name: &str) -> &'a ThreadTimeline {
    profile
        .threads
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no timeline for thread {name}"))
}

fn run_thread(name: &str, work: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .unwrap()
        .join()
        .unwrap();
}

/// Restores the global settings a test changed, even when it fails.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        profiler_runtime::set_buffer_capacity(profiler_runtime::DEFAULT_BUFFER_EVENTS);
        profiler_runtime::set_max_buffered_events(profiler_runtime::DEFAULT_MAX_BUFFERED_EVENTS);
        let _ = profiler_runtime::flush();
    }
}

#[test]
fn draining_keeps_every_call_of_a_thread_that_outgrows_its_ring() {
    let _serial = profiler_tests::serial();
    let _restore = Restore;
    profiler_runtime::set_buffer_capacity(64);
    let _ = profiler_runtime::flush();
    let rounds = 500;
    run_thread("drained", move || {
        profile_scope!("drain outer");
        for _ in 0..rounds {
            nest(3);
            profiler_runtime::drain();
        }
    });
    // The control: the same work without draining overflows the 64-event ring.
    run_thread("undrained", move || {
        profile_scope!("drain outer");
        for _ in 0..rounds {
            nest(3);
        }
    });
    assert!(profiler_runtime::buffered_events() > 0);
    let profile = profiler_runtime::flush();
    assert_eq!(
        profiler_runtime::buffered_events(),
        0,
        "the flush took them"
    );
    profile.validate().unwrap();

    let drained = thread_named(&profile, "drained");
    assert_eq!(drained.dropped_events, 0);
    assert_eq!(drained.spans.len(), 1 + rounds * 4);
    let outer = &drained.spans[0];
    assert_eq!(
        profile.functions[outer.function as usize].name,
        "drain outer"
    );
    assert_eq!((outer.depth, outer.parent), (0, None));
    assert!(
        !outer.flags.incomplete,
        "the outer span's exit came after many drains"
    );
    for span in &drained.spans[1..] {
        assert!(span.depth >= 1 && span.depth <= 4);
        assert!(span.start_ns >= outer.start_ns && span.end_ns <= outer.end_ns);
        let parent = &drained.spans[span.parent.unwrap() as usize];
        assert_eq!(parent.depth + 1, span.depth);
        assert!(parent.start_ns <= span.start_ns && span.end_ns <= parent.end_ns);
    }
    let rounds_total: u64 = drained
        .spans
        .iter()
        .filter(|s| s.depth == 1)
        .map(profiler_runtime::Span::duration_ns)
        .sum();
    assert!(
        rounds_total <= outer.duration_ns(),
        "children fit in their parent"
    );

    let undrained = thread_named(&profile, "undrained");
    assert_eq!(undrained.spans.len(), 32, "64 slots hold 32 calls");
    assert_eq!(undrained.dropped_events, (1 + rounds as u64 * 4) * 2 - 64);
}

#[test]
fn draining_stops_at_the_cap_and_what_it_turns_away_is_counted() {
    let _serial = profiler_tests::serial();
    let _restore = Restore;
    profiler_runtime::set_buffer_capacity(64);
    profiler_runtime::set_max_buffered_events(64);
    let _ = profiler_runtime::flush();
    run_thread("capped", || {
        for _ in 0..10 {
            for _ in 0..10 {
                nest(0);
            }
            profiler_runtime::drain();
        }
    });
    // Drains moved 20, 40, 60, then 80 events (the cap is checked per ring, before it), then
    // nothing: the ring filled with 32 more calls and the last 28 were dropped.
    assert_eq!(profiler_runtime::buffered_events(), 80);
    let profile = profiler_runtime::flush();
    profile.validate().unwrap();
    let capped = thread_named(&profile, "capped");
    assert_eq!(capped.spans.len(), 40 + 32);
    assert_eq!(capped.dropped_events, 28 * 2);
    assert!(profile.dropped_events >= 56);
}

#[test]
fn init_drains_in_the_background() {
    let _serial = profiler_tests::serial();
    let _restore = Restore;
    profiler_runtime::set_buffer_capacity(64);
    let _ = profiler_runtime::flush();
    let dir = std::env::temp_dir().join(format!("profiler-drain-{}", std::process::id()));
    let guard = profiler_runtime::Config::new()
        .output(dir.join("run"))
        .formats(&[profiler_runtime::export::Format::ChromeTrace])
        .collect_interval(Some(Duration::from_millis(1)))
        // In memory: what the collector drains is held for the flush (streamed, it would be in
        // the file instead, and `buffered_events` would stay 0).
        .stream(false)
        .init();
    let rounds = 20;
    run_thread("background-drained", move || {
        for round in 1..=rounds {
            // 20 events: the 64-event ring holds them, but not two rounds' worth of them.
            for _ in 0..10 {
                nest(0);
            }
            // Wait for the collector thread to take them (no drain call of our own).
            let deadline = Instant::now() + Duration::from_secs(30);
            while profiler_runtime::buffered_events() < round * 20 {
                assert!(
                    Instant::now() < deadline,
                    "the background collector did not drain round {round}"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let written = guard.finish().unwrap();
    let trace: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&written[0]).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let events = trace["traceEvents"].as_array().unwrap();
    let tid = events
        .iter()
        .find(|e| e["ph"] == "M" && e["args"]["name"] == "background-drained")
        .map(|e| e["tid"].clone())
        .expect("the thread's name record");
    let calls = events
        .iter()
        .filter(|e| e["tid"] == tid && e["ph"] == "X" && e["name"] == "drain nest")
        .count();
    assert_eq!(
        calls,
        rounds * 10,
        "every call kept, 200 calls through a 32-call ring"
    );
    assert!(
        !events
            .iter()
            .any(|e| e["ph"] == "M" && e["args"]["name"] == "profiler-collector"),
        "the collector thread records nothing"
    );
}

#[test]
fn while_a_stream_owns_the_rings_flush_takes_nothing_and_the_file_keeps_every_call() {
    let _serial = profiler_tests::serial();
    let _restore = Restore;
    let _ = profiler_runtime::flush();
    let dir = std::env::temp_dir().join(format!("profiler-drain-stream-{}", std::process::id()));
    let guard = profiler_runtime::Config::new()
        .output(dir.join("run"))
        .formats(&[])
        .quiet(true)
        .init();
    let stream = guard
        .config()
        .stream_path()
        .expect("streaming is the default");
    run_thread("streamed", || {
        for _ in 0..1000 {
            nest(2);
        }
    });
    // A flush in the middle of the run takes nothing from the stream...
    let mid = profiler_runtime::flush();
    assert_eq!(mid.span_count(), 0);
    assert!(mid.functions.iter().any(|f| f.name == "drain nest"));
    assert_eq!(profiler_runtime::drain(), 0);
    run_thread("streamed-after", || {
        for _ in 0..500 {
            nest(0);
        }
    });
    guard.finish().unwrap();
    // ...so that the file has every call, before and after it.
    let profile =
        profiler_runtime::import::read_perfetto(std::fs::File::open(&stream).unwrap(), u64::MAX)
            .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(thread_named(&profile, "streamed").spans.len(), 3000);
    assert_eq!(thread_named(&profile, "streamed-after").spans.len(), 500);
    assert!(profile.validate().is_ok());
    // After the guard, flush is the in-memory one again.
    run_thread("after-the-guard", || nest(0));
    assert_eq!(
        thread_named(&profiler_runtime::flush(), "after-the-guard")
            .spans
            .len(),
        1
    );
}
