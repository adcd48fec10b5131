//! Tail profiling: requests are recorded, then kept when slow, failed or panicking and discarded
//! otherwise; kept ones reach the timeline and the flight recorder.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use profiler_runtime::export::Format;
use profiler_runtime::{
    flush, production::aggregate, production::sampling, profile_scope, Profile, ProfileContext,
};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

const NEVER_SLOW: Option<Duration> = Some(Duration::from_secs(100_000));

fn calls() {
    profile_scope!("tail::parse");
    {
        profile_scope!("tail::query");
    }
}

fn count(profile: &Profile, name: &str) -> usize {
    profile
        .threads
        .iter()
        .flat_map(|t| &t.spans)
        .filter(|s| profile.function(s.function).name == name)
        .count()
}

#[test]
fn fast_requests_are_discarded_without_trace() {
    let _serial = serial();
    sampling::set_tail_threshold("tail_fast", NEVER_SLOW);
    sampling::set_sample_rate("tail_fast", 0.0);
    flush();
    for _ in 0..50 {
        let request = ProfileContext::request("tail_fast");
        assert!(request.is_recording(), "held while it runs");
        calls();
    }
    let profile = flush();
    assert_eq!(count(&profile, "tail_fast"), 0);
    assert_eq!(count(&profile, "tail::parse"), 0);
    assert_eq!(profile.dropped_events, 0);
    let snapshot = aggregate::snapshot();
    let root = snapshot.root("tail_fast").unwrap();
    assert_eq!((root.requests, root.discarded, root.tail_kept), (50, 50, 0));
}

#[test]
fn slow_failed_and_panicking_requests_are_kept_whole() {
    let _serial = serial();
    sampling::set_tail_threshold("tail_slow", Some(Duration::from_millis(10)));
    sampling::set_tail_threshold("tail_failed", NEVER_SLOW);
    sampling::set_sample_rate("tail_slow", 0.0);
    sampling::set_sample_rate("tail_failed", 0.0);
    flush();
    {
        let _request = ProfileContext::request("tail_slow");
        calls();
        // At least 30 ms: above the 10 ms threshold whatever the machine's load.
        std::thread::sleep(Duration::from_millis(30));
    }
    for _ in 0..5 {
        let _request = ProfileContext::request("tail_slow");
        // Under 10 ms unless the machine stalls; not asserted.
    }
    {
        let mut request = ProfileContext::request("tail_failed");
        calls();
        request.mark_error();
    }
    let panicked = std::panic::catch_unwind(|| {
        let _request = ProfileContext::request("tail_failed");
        calls();
        panic!("handler failed");
    });
    assert!(panicked.is_err());
    let profile = flush();
    profile.validate().unwrap();
    assert!(count(&profile, "tail_slow") >= 1);
    assert_eq!(count(&profile, "tail_failed"), 2, "the error and the panic");
    let thread = &profile.threads[0].name;
    let tree = profile.render_tree();
    assert!(
        tree.contains(&format!(
            "thread {thread}\n  tail_slow\n    tail::parse\n      tail::query\n"
        )),
        "{tree}"
    );
    let snapshot = aggregate::snapshot();
    let failed = snapshot.root("tail_failed").unwrap();
    assert_eq!(
        (failed.requests, failed.errors, failed.tail_kept),
        (2, 2, 2)
    );
    let slow = snapshot.root("tail_slow").unwrap();
    assert_eq!(slow.requests, 6);
    assert_eq!(slow.tail_kept + slow.discarded, 6);
    assert!(slow.tail_kept >= 1);
}

#[test]
fn a_request_that_does_not_fit_is_kept_truncated_and_counted() {
    let _serial = serial();
    sampling::set_tail_threshold("tail_big", Some(Duration::ZERO));
    flush();
    // A fresh thread gets a fresh, small buffer.
    std::thread::Builder::new()
        .name("tail-small-buffer".into())
        .spawn(|| {
            profiler_runtime::set_buffer_capacity(64);
            let _request = ProfileContext::request("tail_big");
            for _ in 0..100 {
                calls();
            }
        })
        .unwrap()
        .join()
        .unwrap();
    profiler_runtime::set_buffer_capacity(profiler_runtime::DEFAULT_BUFFER_EVENTS);
    let profile = flush();
    profile.validate().unwrap();
    assert_eq!(count(&profile, "tail_big"), 1);
    // 64 slots hold the root and the first calls; each later enter was dropped with its exit,
    // and counted: every event is either recorded or counted.
    let recorded = profile.span_count() as u64 * 2;
    assert_eq!(recorded + profile.dropped_events, 2 + 100 * 4);
    let snapshot = aggregate::snapshot();
    assert_eq!(snapshot.root("tail_big").unwrap().truncated, 1);
}

#[test]
fn the_flight_recorder_keeps_the_last_slow_requests_and_dumps_them() {
    let _serial = serial();
    sampling::set_tail_threshold("tail_flight", Some(Duration::ZERO));
    sampling::set_flight_recorder_capacity(3);
    for _ in 0..5 {
        let _request = ProfileContext::request("tail_flight");
        calls();
    }
    assert_eq!(sampling::flight_recorder_len(), 3);
    let profile = sampling::flight_recorder_profile();
    profile.validate().unwrap();
    assert_eq!(count(&profile, "tail_flight"), 3);
    assert_eq!(count(&profile, "tail::query"), 3);
    // The three requests on this thread's timeline, one after another, each a whole tree:
    // request > parse > query, each span within its parent.
    assert_eq!(profile.threads.len(), 1);
    let spans = &profile.threads[0].spans;
    let shape: Vec<_> = spans
        .iter()
        .map(|s| {
            (
                profile.function(s.function).name.as_str(),
                s.depth,
                s.parent,
            )
        })
        .collect();
    let mut expected = Vec::new();
    for request in 0..3u32 {
        let root = request * 3;
        expected.extend([
            ("tail_flight", 0, None),
            ("tail::parse", 1, Some(root)),
            ("tail::query", 2, Some(root + 1)),
        ]);
    }
    assert_eq!(shape, expected);
    for span in spans {
        assert!(!span.flags.incomplete);
        if let Some(parent) = span.parent {
            let parent = &spans[parent as usize];
            assert!(parent.start_ns <= span.start_ns && span.end_ns <= parent.end_ns);
        }
    }
    assert!(spans[0].end_ns <= spans[3].start_ns && spans[3].end_ns <= spans[6].start_ns);
    assert!(profile.start_ns <= spans[0].start_ns && spans[6].end_ns <= profile.end_ns);
    let dir = std::env::temp_dir().join(format!("profiler-tail-{}", std::process::id()));
    let written = sampling::dump_flight_recorder(
        dir.join("slow"),
        &[Format::ChromeTrace, Format::Speedscope],
    )
    .unwrap();
    assert_eq!(
        written,
        [
            dir.join("slow.trace.json"),
            dir.join("slow.speedscope.json")
        ]
    );
    for path in &written {
        let text = std::fs::read_to_string(path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(json.is_object());
        assert!(text.contains("tail::query"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
    sampling::set_flight_recorder_capacity(sampling::DEFAULT_FLIGHT_RECORDER_REQUESTS);
    flush();
}
