//! The same functions as always, each under `#[profile]` (unless the `bare` feature removes the
//! attribute), built against `profiler-runtime` without its `enable` feature.
//!
//! `tests/feature_off.rs` checks that calling them records nothing and returns what the plain
//! code returns; `check-codegen.sh` checks that the release machine code is identical with and
//! without the attributes.

use std::fmt::Display;
use std::future::Future;
use std::num::ParseIntError;
use std::pin::Pin;
use std::task::{Context, Poll};

#[cfg(not(feature = "bare"))]
use profiler_runtime::profile;

/// The one-line forms of the workspace's tests, under `deny(warnings, clippy::pedantic)`: with
/// the feature off they must build as cleanly as with it on.
#[path = "../../src/one_line_forms.rs"]
pub mod one_line_forms;

/// A byte checksum (a loop worth optimising).
#[cfg_attr(not(feature = "bare"), profile)]
#[must_use]
pub fn checksum(data: &[u8]) -> u32 {
    data.iter()
        .fold(0u32, |sum, &b| sum.rotate_left(5) ^ u32::from(b))
}

/// Recursion.
#[cfg_attr(not(feature = "bare"), profile)]
#[must_use]
pub fn fib(n: u32) -> u64 {
    if n < 2 {
        u64::from(n)
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

/// Early return and `?`.
///
/// # Errors
///
/// The first part that is not a number.
#[cfg_attr(not(feature = "bare"), profile)]
pub fn parse_sum(text: &str) -> Result<u32, ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    let mut total = 0u32;
    for part in text.split(',') {
        total = total.wrapping_add(part.trim().parse::<u32>()?);
    }
    Ok(total)
}

/// A panic.
///
/// # Panics
///
/// When `fail` is true.
#[cfg_attr(not(feature = "bare"), profile(name = "custom", budget = "1ms"))]
#[must_use]
pub fn checked(fail: bool) -> u32 {
    assert!(!fail, "asked to fail");
    7
}

/// Generic, returning `impl Trait`.
#[cfg_attr(not(feature = "bare"), profile)]
pub fn labels<T: Display>(items: &[T]) -> impl Iterator<Item = String> + '_ {
    items.iter().map(|item| format!("<{item}>"))
}

/// A scope inside a function: `profile_scope!` expands to nothing.
#[must_use]
pub fn scoped(x: u64) -> u64 {
    profiler_runtime::profile_scope!("scoped");
    x * 3
}

/// A future that is pending once.
#[derive(Debug, Default)]
pub struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// An async function that awaits.
#[cfg_attr(not(feature = "bare"), profile)]
pub async fn fetch(key: u32) -> u32 {
    YieldOnce::default().await;
    key + 1
}

/// A type with instrumented methods.
#[derive(Debug)]
pub struct Pool {
    items: Vec<u32>,
}

#[cfg_attr(not(feature = "bare"), profile)]
impl Pool {
    /// A pool of `items`.
    #[must_use]
    pub fn new(items: Vec<u32>) -> Self {
        Pool { items }
    }

    /// The sum of the items.
    #[must_use]
    pub fn total(&self) -> u32 {
        self.items.iter().sum()
    }

    /// The item at `index`, after a yield.
    pub async fn get(&self, index: usize) -> Option<u32> {
        YieldOnce::default().await;
        self.items.get(index).copied()
    }
}

/// Instantiates the generic function, so that its code is part of the comparison.
#[must_use]
pub fn label_numbers(items: &[u32]) -> Vec<String> {
    labels(items).collect()
}

/// Drives the async functions to completion, so that their state machines are part of the
/// comparison. Returns their outputs and the number of polls.
#[must_use]
pub fn drive(key: u32) -> (u32, Option<u32>, u32) {
    let pool = Pool::new(vec![key, key + 1]);
    let mut polls = 0;
    let fetched = poll_to_end(fetch(key), &mut polls);
    let got = poll_to_end(pool.get(1), &mut polls);
    (fetched, got, polls)
}

fn poll_to_end<F: Future>(future: F, polls: &mut u32) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        *polls += 1;
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}
