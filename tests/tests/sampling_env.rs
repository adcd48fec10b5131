//! The production settings come from the environment when the code sets none.

use profiler_runtime::{flush, production::aggregate, profile_scope, ProfileContext};

#[test]
fn rates_thresholds_and_aggregation_come_from_the_environment() {
    // Set before the profiler reads its settings (the first request or setting call); this test
    // file is its own process.
    std::env::set_var("PROFILER_SAMPLE_RATE", "env_sampled=1,0");
    std::env::set_var("PROFILER_TAIL_THRESHOLD", "env_tail=100000s");
    std::env::set_var("PROFILER_SLA", "env_sampled=250ms");
    std::env::set_var("PROFILER_AGGREGATE", "1");
    for root in ["env_sampled", "env_default", "env_tail"] {
        let _request = ProfileContext::request(root);
        profile_scope!("env::work");
    }
    assert!(aggregate::per_function());
    let tree = flush().render_tree();
    assert!(tree.contains("  env_sampled\n    env::work\n"), "{tree}");
    assert!(
        !tree.contains("env_default"),
        "the default rate is 0: {tree}"
    );
    assert!(
        !tree.contains("env_tail"),
        "fast: discarded by the tail mode: {tree}"
    );
    let snapshot = aggregate::snapshot();
    assert_eq!(snapshot.root("env_tail").unwrap().discarded, 1);
    assert_eq!(
        snapshot.root("env_sampled").unwrap().sla_threshold_ns,
        Some(250_000_000)
    );
    assert_eq!(
        snapshot.function("env::work").unwrap().calls,
        3,
        "counted in every request"
    );
}
