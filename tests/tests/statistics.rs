//! Per-function statistics and the merged call tree, checked against profiles whose true counts
//! and times are known by construction, and against a real recording's structure.

use profiler_runtime::analyze::report::Report;
use profiler_runtime::analyze::stats::{function_stats, FunctionStats};
use profiler_runtime::analyze::tree::CallTree;
use profiler_runtime::{FunctionKind, Profile};
use profiler_tests::synthetic::{call, ProfileBuilder};

fn by_name<'a>(stats: &'a [FunctionStats], name: &str) -> &'a FunctionStats {
    stats
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no statistics for {name}"))
}

/// main calls parse twice and compute once, compute calls parse; a worker calls parse once; idle
/// is registered and never called.
fn workload() -> Profile {
    let mut b = ProfileBuilder::new(2_000);
    let main = b.function("main");
    let parse = b.function("parse");
    let compute = b.function("compute");
    b.function("idle");
    b.thread(
        "main",
        vec![call(
            main,
            0,
            1_000,
            vec![
                call(parse, 100, 300, vec![]),
                call(parse, 400, 500, vec![]),
                call(compute, 600, 900, vec![call(parse, 700, 750, vec![])]),
            ],
        )],
    );
    b.thread("worker", vec![call(parse, 0, 50, vec![])]);
    b.build()
}

#[test]
fn counts_and_times_match_the_construction() {
    let stats = function_stats(&workload());
    let main = by_name(&stats, "main");
    assert_eq!((main.calls, main.total_ns, main.self_ns), (1, 1_000, 400));
    assert_eq!(
        (main.min_ns, main.max_ns, main.p50_ns),
        (1_000, 1_000, 1_000)
    );

    let parse = by_name(&stats, "parse");
    assert_eq!((parse.calls, parse.total_ns, parse.self_ns), (4, 400, 400));
    assert_eq!((parse.min_ns, parse.max_ns), (50, 200));
    assert!((parse.mean_ns - 100.0).abs() < 1e-9);
    // Durations 50, 50, 100, 200: nearest rank.
    assert_eq!((parse.p50_ns, parse.p90_ns, parse.p99_ns), (50, 200, 200));

    let compute = by_name(&stats, "compute");
    assert_eq!(
        (compute.calls, compute.total_ns, compute.self_ns),
        (1, 300, 250)
    );

    // Recorded time: main's 1000 ns plus the worker's 50 ns.
    assert!((main.total_share - 1_000.0 / 1_050.0).abs() < 1e-12);
    assert!((parse.self_share - 400.0 / 1_050.0).abs() < 1e-12);
    let self_shares: f64 = stats.iter().map(|f| f.self_share).sum();
    assert!((self_shares - 1.0).abs() < 1e-12);
    assert!(stats.iter().all(|f| f.async_stats.is_none()));
}

#[test]
fn registered_functions_never_called_have_zero_counts() {
    let stats = function_stats(&workload());
    let idle = by_name(&stats, "idle");
    assert_eq!(
        (
            idle.calls,
            idle.total_ns,
            idle.self_ns,
            idle.max_ns,
            idle.p99_ns
        ),
        (0, 0, 0, 0, 0)
    );
    assert!(idle.mean_ns == 0.0 && idle.total_share == 0.0);
    assert_eq!(stats.len(), 4);
}

#[test]
fn recursion_counts_inclusive_time_once() {
    let mut b = ProfileBuilder::new(10_000);
    let fib = b.function("fib");
    let a = b.function("a");
    let bb = b.function("b");
    b.thread(
        "main",
        vec![
            // fib(1000) > fib(800) > fib(300): 3 calls, 1000 ns of inclusive time.
            call(
                fib,
                0,
                1_000,
                vec![call(fib, 100, 900, vec![call(fib, 200, 500, vec![])])],
            ),
            // Mutual recursion a > b > a > b.
            call(
                a,
                2_000,
                3_000,
                vec![call(
                    bb,
                    2_100,
                    2_900,
                    vec![call(a, 2_200, 2_800, vec![call(bb, 2_300, 2_400, vec![])])],
                )],
            ),
        ],
    );
    // Another thread's fib is not nested in the first: its time adds.
    b.thread("worker", vec![call(fib, 500, 600, vec![])]);
    let stats = function_stats(&b.build());

    let fib = by_name(&stats, "fib");
    assert_eq!(fib.calls, 4);
    assert_eq!(fib.total_ns, 1_000 + 100);
    assert_eq!(fib.self_ns, 200 + 500 + 300 + 100);
    assert_eq!((fib.min_ns, fib.max_ns), (100, 1_000));
    // Mean is over every call's own duration, recursive ones included.
    assert!((fib.mean_ns - (1_000.0 + 800.0 + 300.0 + 100.0) / 4.0).abs() < 1e-9);

    let a = by_name(&stats, "a");
    let b = by_name(&stats, "b");
    assert_eq!((a.calls, a.total_ns, a.self_ns), (2, 1_000, 200 + 500));
    assert_eq!((b.calls, b.total_ns, b.self_ns), (2, 800, 200 + 100));
    // Self time still adds up to the recorded time.
    let self_total: u64 = stats.iter().map(|f| f.self_ns).sum();
    assert_eq!(self_total, 1_000 + 1_000 + 100);
}

#[test]
fn continued_spans_add_time_but_not_calls_and_incomplete_spans_count() {
    let mut b = ProfileBuilder::new(1_000);
    let long = b.function("long");
    let step = b.function("step");
    b.thread(
        "main",
        vec![
            call(long, 0, 300, vec![call(step, 0, 100, vec![]).continued()]).continued(),
            call(step, 400, 500, vec![]),
            call(
                long,
                600,
                1_000,
                vec![call(step, 700, 1_000, vec![]).incomplete()],
            )
            .incomplete(),
        ],
    );
    let profile = b.build();
    let stats = function_stats(&profile);
    let long = by_name(&stats, "long");
    assert_eq!(
        (long.calls, long.total_ns, long.self_ns),
        (1, 700, 200 + 100)
    );
    // Only the incomplete call is in the distribution.
    assert_eq!((long.min_ns, long.max_ns), (400, 400));
    let step = by_name(&stats, "step");
    assert_eq!((step.calls, step.total_ns), (2, 500));
    assert_eq!((step.min_ns, step.max_ns), (100, 300));

    let tree = CallTree::new(&profile);
    let root = &tree.nodes[0];
    assert_eq!(profile.function(root.function).name, "long");
    assert_eq!((root.calls, root.total_ns), (1, 700));
}

#[test]
fn async_functions_have_wall_time_per_future_and_busy_time_from_polls() {
    let mut b = ProfileBuilder::new(10_000);
    let main = b.function("main");
    let fetch = b.function_of_kind("fetch", FunctionKind::AsyncFunction);
    let decode = b.function("decode");
    // Future 1 lives 0..5000 and is polled three times (the last poll calls decode);
    // future 2 lives 6000..7000, polled once, and is cancelled.
    b.thread(
        "main",
        vec![call(
            main,
            0,
            8_000,
            vec![
                call(fetch, 0, 100, vec![]),
                call(fetch, 2_000, 2_100, vec![]),
                call(
                    fetch,
                    4_800,
                    5_000,
                    vec![call(decode, 4_850, 4_950, vec![])],
                ),
                call(fetch, 6_000, 6_050, vec![]),
            ],
        )],
    );
    b.future(fetch, 0, 5_000, false)
        .future(fetch, 6_000, 7_000, true);
    let stats = function_stats(&b.build());
    let fetch = by_name(&stats, "fetch");
    assert_eq!(fetch.kind, FunctionKind::AsyncFunction);
    assert_eq!(fetch.calls, 2);
    assert_eq!(fetch.total_ns, 100 + 100 + 200 + 50);
    assert_eq!(fetch.self_ns, 100 + 100 + 100 + 50);
    assert_eq!((fetch.min_ns, fetch.max_ns), (1_000, 5_000));
    assert!((fetch.mean_ns - 3_000.0).abs() < 1e-9);
    let a = fetch.async_stats.as_ref().expect("async statistics");
    assert_eq!((a.polls, a.wall_ns, a.cancelled), (4, 6_000, 1));
    assert_eq!(by_name(&stats, "decode").calls, 1);
    assert!(by_name(&stats, "main").async_stats.is_none());
}

/// The tree as indented text: `name calls total self`, two spaces per depth.
fn render(profile: &Profile, tree: &CallTree) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for n in &tree.nodes {
        let _ = writeln!(
            out,
            "{}{} {}x {} {}",
            "  ".repeat(n.depth as usize),
            profile.function(n.function).name,
            n.calls,
            n.total_ns,
            n.self_ns
        );
    }
    out
}

#[test]
fn call_tree_merges_the_same_path_across_calls_and_threads() {
    let mut b = ProfileBuilder::new(5_000);
    let main = b.function("main");
    let parse = b.function("parse");
    let compute = b.function("compute");
    let run = |parse_at: u64| {
        call(
            main,
            parse_at,
            parse_at + 1_000,
            vec![
                call(parse, parse_at + 100, parse_at + 300, vec![]),
                call(
                    compute,
                    parse_at + 400,
                    parse_at + 900,
                    vec![call(parse, parse_at + 500, parse_at + 600, vec![])],
                ),
                call(parse, parse_at + 950, parse_at + 1_000, vec![]),
            ],
        )
    };
    b.thread("one", vec![run(0), run(2_000)]);
    b.thread("two", vec![run(0), call(parse, 3_000, 3_010, vec![])]);
    let profile = b.build();
    let tree = CallTree::new(&profile);
    assert_eq!(
        render(&profile, &tree),
        "main 3x 3000 750\n\
         \x20 compute 3x 1500 1200\n\
         \x20   parse 3x 300 300\n\
         \x20 parse 6x 750 750\n\
         parse 1x 10 10\n"
    );
    tree.validate(profile.functions.len()).unwrap();
    assert_eq!(tree.roots().count(), 2);
    let leaf = tree
        .nodes
        .iter()
        .position(|n| n.depth == 2)
        .expect("a node at depth 2");
    let names: Vec<&str> = tree
        .path(leaf)
        .into_iter()
        .map(|i| profile.function(tree.nodes[i].function).name.as_str())
        .collect();
    assert_eq!(names, ["main", "compute", "parse"]);
}

#[test]
fn call_tree_keeps_recursion_as_a_chain_and_survives_deep_recursion() {
    let mut b = ProfileBuilder::new(1_000_000);
    let f = b.function("deep");
    // 5000 levels, each 100 ns longer than the one inside it.
    let mut inner = call(f, 500_000, 500_000, vec![]);
    for level in 1..5_000_u64 {
        inner = call(f, 500_000 - level * 50, 500_000 + level * 50, vec![inner]);
    }
    b.thread("main", vec![inner]);
    let profile = b.build();
    let tree = CallTree::new(&profile);
    assert_eq!(tree.nodes.len(), 5_000);
    assert!(tree.nodes.iter().all(|n| n.calls == 1));
    assert_eq!(tree.nodes[0].total_ns, 4_999 * 100);
    let stats = function_stats(&profile);
    assert_eq!((stats[0].calls, stats[0].total_ns), (5_000, 4_999 * 100));

    // The report of such a profile is written and read back without hitting nesting limits.
    let report = Report::new(&profile);
    let mut json = Vec::new();
    profiler_runtime::export::write_profile_json(&report, &mut json).unwrap();
    assert_eq!(Report::read(&json[..]).unwrap(), report);
}

#[test]
fn report_holds_run_metadata() {
    let mut b = ProfileBuilder::new(2_000);
    let main = b.function("main");
    b.thread("main", vec![call(main, 0, 1_000, vec![])])
        .thread("worker \"2\"", vec![])
        .dropped(2, 6);
    let report = Report::new(&b.build());
    let run = &report.run;
    assert_eq!(run.process_name, "synthetic");
    assert_eq!(run.pid, 4242);
    assert_eq!(run.duration_ns, 2_000);
    assert_eq!(run.started, "2026-11-25T08:24:23.000000000Z");
    assert_eq!(run.start_unix_ns, 1_795_595_063_000_000_000);
    assert_eq!(run.dropped_events, 6);
    assert_eq!(run.clock.kind, "monotonic");
    assert!(run.tool.starts_with("profiler-runtime "));
    let threads: Vec<(u32, &str, u64, u64)> = run
        .threads
        .iter()
        .map(|t| (t.tid, t.name.as_str(), t.dropped_events, t.spans))
        .collect();
    assert_eq!(threads, [(1, "main", 0, 1), (2, "worker \"2\"", 6, 0)]);
}

mod recorded {
    use profiler_runtime::profile_scope;

    use super::{by_name, function_stats};

    fn leaf() {
        profile_scope!("statistics::leaf");
        std::hint::black_box((0..10).sum::<u32>());
    }

    fn recurse(n: u32) {
        profile_scope!("statistics::recurse");
        if n > 0 {
            recurse(n - 1);
        } else {
            leaf();
        }
    }

    #[allow(dead_code)] // registered by its scope, never called: that is the point
    fn never_called() {
        profile_scope!("statistics::never_called");
    }

    #[test]
    fn a_real_recording_has_the_expected_counts() {
        let profile = profiler_tests::record(|| {
            profile_scope!("statistics::root");
            for _ in 0..3 {
                leaf();
            }
            recurse(4);
        });
        let stats = function_stats(&profile);
        assert_eq!(by_name(&stats, "statistics::root").calls, 1);
        assert_eq!(by_name(&stats, "statistics::leaf").calls, 4);
        let recurse = by_name(&stats, "statistics::recurse");
        assert_eq!(recurse.calls, 5);
        // Inclusive time of the recursion is the outermost call's, not the sum of all five.
        assert!(recurse.total_ns <= recurse.max_ns);
        assert_eq!(recurse.total_ns, recurse.max_ns);
        let root = by_name(&stats, "statistics::root");
        assert!(root.total_ns >= recurse.total_ns);
        let never = by_name(&stats, "statistics::never_called");
        assert_eq!((never.calls, never.total_ns), (0, 0));
    }
}
