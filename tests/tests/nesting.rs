//! Nesting and recursion give the exact tree, and times add up.

use profiler_runtime::profile_scope;
use profiler_tests::{record, this_thread, tree};

fn leaf(n: u64) -> u64 {
    profile_scope!("leaf");
    (0..n).fold(0, |a, b| a ^ b.wrapping_mul(0x9E37_79B9))
}

fn middle() -> u64 {
    profile_scope!("middle");
    leaf(100) + leaf(200)
}

fn fib(n: u32) -> u64 {
    profile_scope!("fib");
    if n < 2 {
        u64::from(n)
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

#[test]
fn nested_calls_give_the_exact_tree() {
    let profile = record(|| {
        profile_scope!("root");
        middle();
        leaf(10);
    });
    let thread = this_thread(&profile);
    assert_eq!(
        tree(&profile, thread),
        "root\n  middle\n    leaf\n    leaf\n  leaf\n"
    );
}

#[test]
fn recursion_gives_the_exact_tree() {
    let profile = record(|| {
        fib(3);
    });
    let thread = this_thread(&profile);
    // fib(3) = fib(2) + fib(1); fib(2) = fib(1) + fib(0)
    assert_eq!(
        tree(&profile, thread),
        "fib\n  fib\n    fib\n    fib\n  fib\n"
    );
}

#[test]
fn children_lie_within_parents_and_times_add_up() {
    let profile = record(|| {
        for _ in 0..50 {
            middle();
        }
    });
    let thread = this_thread(&profile);
    assert_eq!(thread.spans.len(), 150);
    for (i, span) in thread.spans.iter().enumerate() {
        let children: Vec<_> = thread
            .spans
            .iter()
            .filter(|s| s.parent == Some(i as u32))
            .collect();
        let child_total: u64 = children.iter().map(|c| c.duration_ns()).sum();
        assert!(child_total <= span.duration_ns(), "children exceed parent");
        for c in &children {
            assert!(c.start_ns >= span.start_ns && c.end_ns <= span.end_ns);
        }
        // Siblings do not overlap.
        for pair in children.windows(2) {
            assert!(pair[0].end_ns <= pair[1].start_ns);
        }
    }
    assert!(profile.start_ns <= thread.spans[0].start_ns);
    assert!(thread.spans.last().unwrap().end_ns <= profile.end_ns);
}

#[test]
fn disabled_records_nothing_and_open_spans_still_close() {
    let profile = record(|| {
        profile_scope!("outer");
        profiler_runtime::disable();
        middle();
        profiler_runtime::enable();
        // `outer` was entered while enabled: its exit is recorded even though we toggled.
    });
    let thread = this_thread(&profile);
    assert_eq!(tree(&profile, thread), "outer\n");
}

#[test]
fn a_span_open_at_a_flush_is_closed_there_and_continued_without_double_counting() {
    let _serial = profiler_tests::serial();
    let _ = profiler_runtime::flush();
    let first;
    {
        profile_scope!("long");
        leaf(10);
        first = profiler_runtime::flush();
        leaf(10);
    }
    let second = profiler_runtime::flush();
    first.validate().unwrap();
    second.validate().unwrap();
    let a = this_thread(&first);
    let b = this_thread(&second);
    assert_eq!(tree(&first, a), "long (incomplete)\n  leaf\n");
    assert_eq!(tree(&second, b), "long\n  leaf\n");
    assert!(a.spans[0].flags.incomplete && !a.spans[0].flags.continued);
    assert!(b.spans[0].flags.continued && !b.spans[0].flags.incomplete);
    assert!(
        a.spans[0].end_ns <= first.end_ns,
        "closed at the flush time"
    );
    assert!(a.spans[1].end_ns <= a.spans[0].end_ns);
    assert_eq!(
        b.spans[0].start_ns, a.spans[0].end_ns,
        "continues exactly where the flush cut it"
    );
    assert!(second.start_ns <= b.spans[0].start_ns && second.start_ns <= first.end_ns);
    // The two parts add up to the whole, with no overlap: the call is counted once.
    assert!(b.spans[1].start_ns >= b.spans[0].start_ns);
}

/// Many sibling leaves, and leaves beside deeper calls, over several 4,096-event blocks of the
/// ring: the merge takes runs of leaf calls in one step and must still give every span its
/// parent, depth and place wherever a block ends (an enter at the end of one block, its exit at
/// the start of the next).
#[test]
fn long_runs_of_leaves_across_buffer_blocks_keep_their_parents() {
    const ROUNDS: usize = 3_001;
    let profile = record(|| {
        profile_scope!("root");
        for round in 0..ROUNDS {
            leaf(1);
            if round % 7 == 0 {
                middle();
            }
            leaf(2);
        }
    });
    let thread = this_thread(&profile);
    let name = |i: usize| {
        let f = &profile.functions[thread.spans[i].function as usize].name;
        f.rsplit("::").next().unwrap().to_owned()
    };
    let middles = ROUNDS.div_ceil(7);
    // root + two leaves per round + a middle (with two leaves) every 7th round.
    assert_eq!(thread.spans.len(), 1 + 2 * ROUNDS + 3 * middles);
    assert!(2 * thread.spans.len() > 3 * 4_096, "spans several blocks");
    assert_eq!(name(0), "root");
    assert_eq!((thread.spans[0].depth, thread.spans[0].parent), (0, None));
    let mut i = 1;
    for round in 0..ROUNDS {
        let mut expect = vec![("leaf", 1, Some(0))];
        if round % 7 == 0 {
            expect.push(("middle", 1, Some(0)));
            let m = (i + 1) as u32;
            expect.extend([("leaf", 2, Some(m)), ("leaf", 2, Some(m))]);
        }
        expect.push(("leaf", 1, Some(0)));
        for (what, depth, parent) in expect {
            let span = &thread.spans[i];
            assert_eq!(
                (name(i).as_str(), span.depth, span.parent),
                (what, depth, parent),
                "span {i} (round {round})"
            );
            assert!(!span.flags.incomplete, "span {i} complete");
            if let Some(p) = span.parent {
                let p = &thread.spans[p as usize];
                assert!(p.start_ns <= span.start_ns && span.end_ns <= p.end_ns);
            }
            if i > 1 && thread.spans[i - 1].depth == span.depth {
                assert!(
                    thread.spans[i - 1].end_ns <= span.start_ns,
                    "siblings in order"
                );
            }
            i += 1;
        }
    }
}
