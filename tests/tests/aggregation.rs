//! Always-on aggregation: exact per-function and per-root counts, merged across threads
//! (exited ones included), windows and resets.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use profiler_runtime::{
    flush, production::aggregate, production::sampling, profile_scope, ProfileContext,
};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn handle() {
    let _request = ProfileContext::request("aggregation_api");
    lookup();
    lookup();
    render();
}

fn lookup() {
    profile_scope!("aggregation::lookup");
}

fn render() {
    profile_scope!("aggregation::render");
    lookup();
}

#[test]
fn counts_are_exact_and_merged_across_threads() {
    let _serial = serial();
    aggregate::set_per_function(true);
    aggregate::set_timing_rate(1.0);
    sampling::set_sample_rate("aggregation_api", 0.0);
    let before = aggregate::snapshot();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            std::thread::Builder::new()
                .name(format!("aggregation-worker-{i}"))
                .spawn(|| {
                    for _ in 0..250 {
                        handle();
                    }
                })
                .unwrap()
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // The workers have exited: their figures live on in the retired table.
    let window = aggregate::snapshot().since(&before);
    let root = window.root("aggregation_api").unwrap();
    assert_eq!(
        (root.requests, root.discarded, root.sampled),
        (1000, 1000, 0)
    );
    assert_eq!(window.function("aggregation::lookup").unwrap().calls, 3000);
    assert_eq!(window.function("aggregation::render").unwrap().calls, 1000);
    assert_eq!(
        window
            .function("aggregation::lookup")
            .unwrap()
            .histogram
            .count(),
        3000
    );
    assert_eq!(root.histogram.count(), 1000);
    assert_eq!(window.dropped_events, 0);
    assert_eq!(window.probes, 1000 + 4000, "requests plus calls");
    assert!(window.estimated_overhead_seconds() > 0.0);
    // Nothing of the discarded requests reached the timeline.
    let profile = flush();
    assert_eq!(profile.span_count(), 0, "{}", profile.render_tree());
    aggregate::set_timing_rate(aggregate::DEFAULT_TIMING_RATE);
    aggregate::set_per_function(false);
}

#[test]
fn untimed_requests_still_count_every_call() {
    let _serial = serial();
    aggregate::set_per_function(true);
    aggregate::set_timing_rate(0.0);
    sampling::set_sample_rate("aggregation_counted", 0.0);
    let before = aggregate::snapshot();
    for _ in 0..100 {
        let _request = ProfileContext::request("aggregation_counted");
        lookup();
        render();
    }
    let window = aggregate::snapshot().since(&before);
    let lookups = window.function("aggregation::lookup").unwrap();
    assert_eq!(lookups.calls, 200, "exact, though none was timed");
    assert_eq!(lookups.histogram.count(), 0);
    assert_eq!(window.function("aggregation::render").unwrap().calls, 100);
    assert!(
        window.function("aggregation_counted").is_none(),
        "the root is not a function"
    );
    assert_eq!(window.root("aggregation_counted").unwrap().requests, 100);
    assert_eq!(window.probes, 100, "only the requests were timed");
    // A mix: some requests timed, all counted.
    aggregate::set_timing_rate(0.5);
    let before = aggregate::snapshot();
    for _ in 0..200 {
        let _request = ProfileContext::request("aggregation_counted");
        lookup();
    }
    let window = aggregate::snapshot().since(&before);
    let lookups = window.function("aggregation::lookup").unwrap();
    assert_eq!(lookups.calls, 200);
    assert!(
        (40..160).contains(&lookups.histogram.count()),
        "{}",
        lookups.histogram.count()
    );
    aggregate::set_timing_rate(aggregate::DEFAULT_TIMING_RATE);
    aggregate::set_per_function(false);
    flush();
}

#[test]
fn durations_include_callees_and_quantiles_are_ordered() {
    let _serial = serial();
    aggregate::set_per_function(true);
    aggregate::set_timing_rate(1.0);
    for _ in 0..3 {
        let _request = ProfileContext::request("aggregation_sleepy");
        profile_scope!("aggregation::sleep");
        std::thread::sleep(Duration::from_millis(2));
    }
    let snapshot = aggregate::snapshot();
    let sleep = &snapshot.function("aggregation::sleep").unwrap().histogram;
    assert_eq!(sleep.count(), 3);
    // A sleep lasts at least what it asked for (lower bounds only: no timing limit).
    assert!(sleep.min_ns() >= 2e6 * 0.97, "{}", sleep.min_ns());
    let root = &snapshot.root("aggregation_sleepy").unwrap().histogram;
    assert!(root.quantile(0.5).unwrap() >= sleep.quantile(0.5).unwrap() * 0.97);
    let (p50, p99) = (root.quantile(0.5).unwrap(), root.quantile(0.99).unwrap());
    assert!(p50 <= p99 && p99 <= root.max_ns() * 1.02);
    aggregate::set_timing_rate(aggregate::DEFAULT_TIMING_RATE);
    aggregate::set_per_function(false);
    flush();
}

#[test]
fn without_aggregation_only_roots_are_counted() {
    let _serial = serial();
    aggregate::set_per_function(false);
    let before = aggregate::snapshot();
    for _ in 0..10 {
        let _request = ProfileContext::request("aggregation_roots_only");
        profile_scope!("aggregation::not_counted");
    }
    let window = aggregate::snapshot().since(&before);
    assert_eq!(window.root("aggregation_roots_only").unwrap().requests, 10);
    assert!(window.function("aggregation::not_counted").is_none());
    flush();
}

#[test]
fn reset_starts_the_counts_again() {
    let _serial = serial();
    drop(ProfileContext::request("aggregation_reset"));
    assert!(aggregate::snapshot().root("aggregation_reset").is_some());
    aggregate::reset();
    assert!(aggregate::snapshot().root("aggregation_reset").is_none());
    drop(ProfileContext::request("aggregation_reset"));
    assert_eq!(
        aggregate::snapshot()
            .root("aggregation_reset")
            .unwrap()
            .requests,
        1
    );
    flush();
}
