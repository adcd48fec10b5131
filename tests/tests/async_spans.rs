//! `#[profile] async fn`: each poll is a nested slice on the thread that polled it, and the
//! future's whole life is one async span, also when it migrates between threads; a future
//! dropped before completion is closed and marked cancelled.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use profiler_runtime::{profile, AsyncSpan, Profile};

/// Yields once: returns `Pending` the first time it is polled.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[profile]
async fn step(n: u64) -> u64 {
    YieldOnce(false).await;
    n * 2
}

#[profile]
async fn handler(n: u64) -> Result<u64, String> {
    let mut total = 0;
    for i in 0..n {
        total += step(i).await;
        tokio::task::yield_now().await;
    }
    if n == 1000 {
        return Err("never".into());
    }
    Ok(total)
}

#[profile]
async fn never_finishes() {
    std::future::pending::<()>().await;
}

fn spans_named<'a>(profile: &'a Profile, suffix: &str) -> Vec<&'a AsyncSpan> {
    profile
        .async_spans
        .iter()
        .filter(|s| profile.function(s.function).name.ends_with(suffix))
        .collect()
}

fn poll_count(profile: &Profile, suffix: &str) -> usize {
    profile
        .threads
        .iter()
        .flat_map(|t| &t.spans)
        .filter(|s| profile.function(s.function).name.ends_with(suffix))
        .count()
}

#[test]
fn tokio_multi_thread_tasks_give_one_async_span_each_and_nested_polls() {
    let profile = profiler_tests::record(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .thread_name("tokio-worker")
            .build()
            .unwrap();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..40).map(|n| tokio::spawn(handler(n % 5 + 1))).collect();
            for task in tasks {
                assert!(task.await.unwrap().is_ok());
            }
        });
    });
    let handlers = spans_named(&profile, "handler");
    assert_eq!(handlers.len(), 40, "one async span per future");
    assert!(handlers.iter().all(|s| !s.cancelled && !s.flags.incomplete));
    // n % 5 + 1 steps per handler: 0+1+2+3+4 +5 = 15 per 5 handlers, so 8 * 15 = 120 steps.
    assert_eq!(spans_named(&profile, "step").len(), 120);
    // Every step yields once, so it is polled twice; every handler at least once per step + 1.
    assert_eq!(poll_count(&profile, "step"), 240);
    assert!(poll_count(&profile, "handler") >= 120 + 40);
    // Poll slices of `step` nest inside poll slices of `handler` on the same thread.
    for t in &profile.threads {
        for s in t
            .spans
            .iter()
            .filter(|s| profile.function(s.function).name.ends_with("step"))
        {
            let parent = s
                .parent
                .map(|p| &t.spans[p as usize])
                .expect("step is polled by handler");
            assert!(profile.function(parent.function).name.ends_with("handler"));
        }
    }
    // Every poll lies within its future's lifetime: check that each thread's handler polls are
    // covered by some handler async span.
    for t in &profile.threads {
        for s in t
            .spans
            .iter()
            .filter(|s| profile.function(s.function).name.ends_with("handler"))
        {
            assert!(handlers
                .iter()
                .any(|a| a.start_ns <= s.start_ns && s.end_ns <= a.end_ns));
        }
    }
}

#[test]
fn a_future_that_migrates_between_threads_is_one_async_span() {
    let profile = profiler_tests::record(|| {
        let future = Box::pin(step(21));
        let mut cx = Context::from_waker(Waker::noop());
        // First poll here, on the test thread...
        let mut future = future;
        assert!(future.as_mut().poll(&mut cx).is_pending());
        // ...the rest on another thread.
        std::thread::Builder::new()
            .name("second-poller".into())
            .spawn(move || {
                let mut cx = Context::from_waker(Waker::noop());
                assert_eq!(future.as_mut().poll(&mut cx), Poll::Ready(42));
            })
            .unwrap()
            .join()
            .unwrap();
    });
    let spans = spans_named(&profile, "step");
    assert_eq!(spans.len(), 1);
    let life = spans[0];
    assert_ne!(
        life.start_tid, life.end_tid,
        "began and ended on different threads"
    );
    let pollers: Vec<&str> = profile
        .threads
        .iter()
        .filter(|t| {
            t.spans
                .iter()
                .any(|s| profile.function(s.function).name.ends_with("step"))
        })
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(
        pollers.len(),
        2,
        "one poll slice on each thread: {pollers:?}"
    );
    let mut chrome = Vec::new();
    profiler_runtime::export::write_chrome_trace(&profile, &mut chrome).unwrap();
    let chrome: serde_json::Value = serde_json::from_slice(&chrome).unwrap();
    let events = chrome["traceEvents"].as_array().unwrap();
    let begin = events.iter().find(|e| e["ph"] == "b").expect("async begin");
    let end = events.iter().find(|e| e["ph"] == "e").expect("async end");
    // Process-scoped ids (`id2.local`), so that Perfetto files the async track under our process;
    // with a plain `id` or `id2.global` it lands in "Global Legacy Events" (issue 13, defect 4).
    for event in [begin, end] {
        assert!(event["id2"]["local"].is_string(), "{event}");
        assert!(event.get("id").is_none(), "{event}");
        assert!(event["id2"].get("global").is_none(), "{event}");
        assert_eq!(event["pid"], profile.pid);
    }
    assert_eq!(begin["id2"], end["id2"]);
    assert_eq!(begin["cat"], end["cat"]);
    assert_ne!(begin["tid"], end["tid"]);
    // And the pair is read back as one async span.
    let back =
        profiler_runtime::import::read_chrome_trace(&serde_json::to_vec(&chrome).unwrap()).unwrap();
    assert_eq!(back.async_spans.len(), 1);
    assert_eq!(
        (back.async_spans[0].start_ns, back.async_spans[0].end_ns),
        (life.start_ns, life.end_ns)
    );
}

#[test]
fn a_future_dropped_before_completion_is_closed_and_marked_cancelled() {
    let profile = profiler_tests::record(|| {
        let mut cx = Context::from_waker(Waker::noop());
        {
            let mut future = pin!(never_finishes());
            assert!(future.as_mut().poll(&mut cx).is_pending());
        } // dropped here
          // A future never polled records nothing.
        drop(never_finishes());
    });
    let spans = spans_named(&profile, "never_finishes");
    assert_eq!(spans.len(), 1);
    assert!(spans[0].cancelled);
    assert!(!spans[0].flags.incomplete);
    assert_eq!(poll_count(&profile, "never_finishes"), 1);
}

#[test]
fn a_future_still_running_at_the_flush_is_incomplete_then_continued() {
    let _serial = profiler_tests::serial();
    let _ = profiler_runtime::flush();
    let mut cx = Context::from_waker(Waker::noop());
    let mut future = Box::pin(step(1));
    assert!(future.as_mut().poll(&mut cx).is_pending());
    let first = profiler_runtime::flush();
    assert_eq!(future.as_mut().poll(&mut cx), Poll::Ready(2));
    let second = profiler_runtime::flush();
    let a = spans_named(&first, "step");
    let b = spans_named(&second, "step");
    assert_eq!((a.len(), b.len()), (1, 1));
    assert!(a[0].flags.incomplete && !a[0].flags.continued);
    assert!(b[0].flags.continued && !b[0].flags.incomplete);
    assert_eq!(a[0].id, b[0].id);
}
