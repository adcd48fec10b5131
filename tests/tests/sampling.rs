//! Head sampling: unsampled requests record nothing inside them, sampled ones record whole, and
//! the rate holds over many requests.

use std::sync::{Mutex, MutexGuard, PoisonError};

use profiler_runtime::{
    flush, production::aggregate, production::sampling, profile_scope, Profile, ProfileContext,
};

/// `flush` drains every thread: the tests of this file take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn handle(root: &'static str) {
    let _request = ProfileContext::request(root);
    work();
    work();
}

fn work() {
    profile_scope!("sampling::work");
    inner();
}

fn inner() {
    profile_scope!("sampling::inner");
}

/// Number of spans named `name` in the profile.
fn count(profile: &Profile, name: &str) -> usize {
    profile
        .threads
        .iter()
        .flat_map(|t| &t.spans)
        .filter(|s| profile.function(s.function).name == name)
        .count()
}

#[test]
fn unsampled_requests_record_nothing_and_reopen_the_buffer() {
    let _serial = serial();
    sampling::set_sample_rate("sampling_never", 0.0);
    flush();
    for _ in 0..10 {
        let request = ProfileContext::request("sampling_never");
        assert!(!request.is_recording());
        work();
    }
    // After the request, plain recording is back.
    {
        let _after = ProfileContext::new("sampling_after");
        work();
    }
    let profile = flush();
    profile.validate().unwrap();
    assert_eq!(count(&profile, "sampling_never"), 0);
    assert_eq!(
        profile.render_tree(),
        "thread unsampled_requests_record_nothing_and_reopen_the_buffer\n  sampling_after\n    sampling::work\n      sampling::inner\n"
    );
    assert_eq!(profile.dropped_events, 0, "skipped calls are not drops");
    let root = aggregate::snapshot();
    let root = root.root("sampling_never").unwrap();
    assert_eq!((root.requests, root.sampled), (10, 0));
}

#[test]
fn sampled_requests_record_whole() {
    let _serial = serial();
    sampling::set_sample_rate("sampling_always", 1.0);
    flush();
    handle("sampling_always");
    let profile = flush();
    let thread = "thread sampled_requests_record_whole\n";
    let call = "    sampling::work\n      sampling::inner\n";
    assert_eq!(
        profile.render_tree(),
        format!("{thread}  sampling_always\n{call}{call}")
    );
}

#[test]
fn the_rate_holds_and_the_timeline_matches_the_counters() {
    let _serial = serial();
    sampling::set_sample_rate("sampling_quarter", 0.25);
    sampling::seed_sampler(7);
    flush();
    let before = aggregate::snapshot();
    for _ in 0..4000 {
        handle("sampling_quarter");
    }
    let profile = flush();
    profile.validate().unwrap();
    let window = aggregate::snapshot().since(&before);
    let root = window.root("sampling_quarter").unwrap();
    assert_eq!(root.requests, 4000);
    // 25% of 4000 is 1000, with a standard deviation of about 27.
    assert!((850..1150).contains(&root.sampled), "{}", root.sampled);
    assert_eq!(count(&profile, "sampling_quarter") as u64, root.sampled);
    assert_eq!(count(&profile, "sampling::work") as u64, 2 * root.sampled);
    assert_eq!(count(&profile, "sampling::inner") as u64, 2 * root.sampled);
}

#[test]
fn rates_change_at_run_time_and_roots_without_a_rate_use_the_default() {
    let _serial = serial();
    sampling::set_default_sample_rate(0.0);
    flush();
    handle("sampling_default");
    sampling::set_sample_rate("sampling_default", 1.0);
    handle("sampling_default");
    sampling::set_default_sample_rate(1.0);
    let profile = flush();
    assert_eq!(count(&profile, "sampling_default"), 1);
}

#[test]
fn a_request_inside_a_request_follows_the_outer_one() {
    let _serial = serial();
    sampling::set_sample_rate("sampling_outer", 0.0);
    sampling::set_sample_rate("sampling_inner", 1.0);
    flush();
    {
        let _outer = ProfileContext::request("sampling_outer");
        handle("sampling_inner");
    }
    let profile = flush();
    assert_eq!(count(&profile, "sampling_inner"), 0);
    assert_eq!(count(&profile, "sampling::work"), 0);
}
