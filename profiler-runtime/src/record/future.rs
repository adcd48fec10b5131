//! The async wrapper behind `#[profile] async fn`.
//!
//! Each poll is a span on the thread that polls (so it nests under whatever that thread is
//! doing), and the future's whole life, from its first poll to its completion, is one async span
//! with a process-unique id. A future dropped after its first poll but before completion ends its
//! async span marked cancelled.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::record::recorder::{self, EventKind};
use crate::record::registry::FunctionInfo;

/// Not started: no poll yet.
const NEW: u8 = 0;
/// Polled at least once, not complete.
const RUNNING: u8 = 1;
/// Completed.
const DONE: u8 = 2;

pin_project! {
    /// A future whose polls and lifetime are recorded. Created by `#[profile]` on an `async fn`.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct ProfiledFuture<F> {
        #[pin]
        inner: F,
        site: &'static FunctionInfo,
        // Async span id; 0 when its begin was not recorded (profiling off, or no room).
        id: u64,
        state: u8,
    }

    impl<F> PinnedDrop for ProfiledFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.state == RUNNING && *this.id != 0 {
                recorder::record_async(EventKind::AsyncCancel, this.site, *this.id);
            }
        }
    }
}

impl<F: Future> ProfiledFuture<F> {
    /// Wraps `inner`, recording under `site`.
    pub(crate) fn new(site: &'static FunctionInfo, inner: F) -> Self {
        ProfiledFuture {
            inner,
            site,
            id: 0,
            state: NEW,
        }
    }
}

impl<F: Future> Future for ProfiledFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if *this.state == NEW {
            *this.state = RUNNING;
            if recorder::is_enabled() {
                let id = recorder::next_async_id();
                if recorder::record_async(EventKind::AsyncBegin, this.site, id) {
                    *this.id = id;
                }
            }
        }
        let poll_span = recorder::enter(this.site);
        let result = this.inner.poll(cx);
        drop(poll_span);
        if result.is_ready() {
            *this.state = DONE;
            if *this.id != 0 {
                recorder::record_async(EventKind::AsyncEnd, this.site, *this.id);
            }
        }
        result
    }
}
