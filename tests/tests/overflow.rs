//! A full buffer drops whole calls, counts them, and never breaks the timeline.

use profiler_runtime::profile_scope;

fn nest(depth: u32) {
    profile_scope!("nest");
    if depth > 0 {
        nest(depth - 1);
    }
}

#[test]
fn overflowing_buffer_gives_a_well_formed_timeline_and_the_dropped_count() {
    let _serial = profiler_tests::serial();
    profiler_runtime::set_buffer_capacity(64);
    let _ = profiler_runtime::flush();
    let calls_per_round = 10; // nest(9) = 10 nested calls
    let rounds = 20;
    std::thread::Builder::new()
        .name("tiny-buffer".into())
        .spawn(move || {
            for _ in 0..rounds {
                nest(calls_per_round - 1);
            }
        })
        .unwrap()
        .join()
        .unwrap();
    let profile = profiler_runtime::flush();
    profiler_runtime::set_buffer_capacity(profiler_runtime::DEFAULT_BUFFER_EVENTS);
    profile.validate().unwrap();
    let t = profile
        .threads
        .iter()
        .find(|t| t.name == "tiny-buffer")
        .unwrap();
    let total_events = u64::from(calls_per_round * rounds) * 2;
    // 64 slots hold 32 calls: an enter is only recorded if its exit fits too.
    assert_eq!(t.spans.len(), 32);
    assert_eq!(t.dropped_events, total_events - 64);
    assert!(profile.dropped_events >= t.dropped_events);
    assert!(
        t.spans.iter().all(|s| !s.flags.incomplete),
        "every recorded call is closed"
    );
    // The dropped count reaches every export.
    let mut chrome = Vec::new();
    profiler_runtime::export::write_chrome_trace(&profile, &mut chrome).unwrap();
    let chrome: serde_json::Value = serde_json::from_slice(&chrome).unwrap();
    assert_eq!(
        chrome["otherData"]["dropped_events"],
        profile.dropped_events
    );
    let mut speedscope = Vec::new();
    profiler_runtime::export::write_speedscope(&profile, &mut speedscope).unwrap();
    let speedscope: serde_json::Value = serde_json::from_slice(&speedscope).unwrap();
    let names: Vec<&str> = speedscope["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names
        .iter()
        .any(|n| n.contains(&format!("{} events dropped", t.dropped_events))));
}
