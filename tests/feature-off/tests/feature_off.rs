//! With `enable` off, `#[profile]` functions record nothing and behave exactly like the plain
//! code (the reference copies below have no attribute).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use profiler_feature_off::{checked, checksum, fetch, fib, labels, parse_sum, scoped, Pool};

/// Polls a future to completion on this thread (the futures here wake themselves).
fn block_on<F: Future>(future: F) -> (F::Output, u32) {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return (output, polls);
        }
    }
}

fn reference_checksum(data: &[u8]) -> u32 {
    data.iter()
        .fold(0u32, |sum, &b| sum.rotate_left(5) ^ u32::from(b))
}

fn reference_fib(n: u32) -> u64 {
    if n < 2 {
        u64::from(n)
    } else {
        reference_fib(n - 1) + reference_fib(n - 2)
    }
}

#[test]
fn results_are_those_of_the_plain_code() {
    let data: Vec<u8> = (0..=255).cycle().take(10_000).collect();
    assert_eq!(checksum(&data), reference_checksum(&data));
    assert_eq!(fib(20), reference_fib(20));
    assert_eq!(parse_sum(""), Ok(0));
    assert_eq!(parse_sum("1, 2,3"), Ok(6));
    assert_eq!(
        parse_sum("1,x").unwrap_err().to_string(),
        "x".parse::<u32>().unwrap_err().to_string()
    );
    assert_eq!(checked(false), 7);
    let panic = std::panic::catch_unwind(|| checked(true)).unwrap_err();
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"asked to fail"));
    assert_eq!(labels(&[1, 2]).collect::<Vec<_>>(), ["<1>", "<2>"]);
    assert_eq!(scoped(2), 6);
    // The futures are the plain ones: same output, same number of polls.
    assert_eq!(block_on(fetch(1)), (2, 2));
    let pool = Pool::new(vec![1, 2, 3]);
    assert_eq!(pool.total(), 6);
    assert_eq!(block_on(pool.get(1)), (Some(2), 2));
    assert_eq!(block_on(pool.get(9)), (None, 2));
    assert_eq!(profiler_feature_off::label_numbers(&[3]), ["<3>"]);
    assert_eq!(profiler_feature_off::drive(4), (5, Some(5), 4));
}

#[test]
#[cfg(not(feature = "bare"))]
fn nothing_is_recorded_or_registered() {
    profiler_runtime::enable();
    let _ = profiler_runtime::flush();
    let _ = fib(10);
    let _ = checksum(b"abc");
    let _ = scoped(1);
    let _ = block_on(fetch(3));
    let _ = block_on(Pool::new(vec![4]).get(0));
    let profile = profiler_runtime::flush();
    assert_eq!(profile.span_count(), 0, "{}", profile.render_tree());
    assert!(profile.async_spans.is_empty());
    assert_eq!(profile.dropped_events, 0);
    // No static was generated, so nothing was submitted to inventory.
    assert_eq!(profiler_runtime::registered_functions().count(), 0);
}

#[test]
fn the_futures_are_no_bigger() {
    // A profiled future would wrap the body in `ProfiledFuture` (site, id, state): the plain one
    // is only the body's state machine.
    async fn reference(key: u32) -> u32 {
        profiler_feature_off::YieldOnce::default().await;
        key + 1
    }
    assert_eq!(size_of_val(&fetch(1)), size_of_val(&reference(1)));
}
