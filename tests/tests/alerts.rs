//! SLA alerts: violations reach the callback on the alert thread, with the trace when the request
//! was tail-recorded, rate-limited, and can trigger a flight-recorder dump.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use profiler_runtime::{
    production::aggregate, production::alert, production::sampling, profile_scope, ProfileContext,
};

#[test]
fn violations_are_delivered_off_the_request_thread_rate_limited_with_traces() {
    let dir = std::env::temp_dir().join(format!("profiler-alerts-{}", std::process::id()));
    sampling::set_sla("alerts_checkout", Some(Duration::from_millis(1)));
    sampling::set_tail_threshold("alerts_checkout", Some(Duration::from_secs(100_000)));
    sampling::set_sample_rate("alerts_checkout", 0.0);
    alert::set_rate_limit(2, Duration::from_secs(100_000));
    alert::dump_on_alert(Some(dir.join("incident")));
    let seen = Arc::new(Mutex::new(Vec::new()));
    {
        let seen = Arc::clone(&seen);
        alert::on_sla_violation(move |v| {
            let thread = std::thread::current().name().map(str::to_owned);
            seen.lock().unwrap().push((v.clone(), thread));
        });
    }
    for _ in 0..6 {
        let _request = ProfileContext::request("alerts_checkout");
        profile_scope!("alerts::charge_card");
        // At least 5 ms: above the 1 ms SLA whatever the load.
        std::thread::sleep(Duration::from_millis(5));
    }
    // Fast requests do not alert (a 1 ms SLA is far above an empty request).
    assert!(alert::wait_delivered(Duration::from_secs(30)));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "rate limited to 2");
    let stats = alert::stats();
    assert_eq!((stats.delivered, stats.suppressed), (2, 4));
    assert_eq!(stats.dumps, 2);
    for (violation, thread) in seen.iter() {
        assert_eq!(thread.as_deref(), Some("profiler-alerts"));
        assert_eq!(violation.root, "alerts_checkout");
        assert_eq!(violation.threshold, Duration::from_millis(1));
        assert!(violation.duration >= Duration::from_millis(4));
        assert_eq!(
            violation.thread,
            "violations_are_delivered_off_the_request_thread_rate_limited_with_traces"
        );
        let trace = violation.trace.as_ref().expect("tail-recorded");
        trace.validate().unwrap();
        assert!(trace
            .render_tree()
            .ends_with("  alerts_checkout\n    alerts::charge_card\n"));
    }
    let snapshot = aggregate::snapshot();
    let root = snapshot.root("alerts_checkout").unwrap();
    assert_eq!(
        (root.requests, root.sla_violations, root.tail_kept),
        (6, 6, 6)
    );
    assert_eq!(root.sla_threshold_ns, Some(1_000_000));
    let dump = std::fs::read_to_string(dir.join("incident.trace.json")).unwrap();
    assert!(dump.contains("alerts::charge_card"));
    std::fs::remove_dir_all(&dir).unwrap();
}
