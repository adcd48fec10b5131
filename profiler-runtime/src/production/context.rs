//! Named regions recorded like function calls: [`ProfileContext`].

use crate::production::sampling::{self, Request};
use crate::record::recorder::{self, SpanGuard};
use crate::record::registry::FunctionInfo;

/// A named region of work, such as handling one request: a span from [`ProfileContext::new`] to
/// the drop of the value, recorded like a function call and nesting the same way.
///
/// The name is looked up once per distinct name (a lock the first time, a hash lookup after);
/// for a region inside a hot loop prefer [`profile_scope!`](crate::profile_scope), whose site is
/// a `static`.
///
/// A region begun with [`ProfileContext::request`] is the root of a request, and follows the
/// production policy of its name: head sampling, tail profiling, SLA alerts and aggregation (see
/// [`sampling`]).
///
/// # Examples
///
/// ```
/// use profiler_runtime::ProfileContext;
///
/// fn handle_request() {
///     let _request = ProfileContext::new("api_request");
///     // ... everything called from here nests under `api_request`
/// }
/// # handle_request();
/// ```
#[derive(Debug)]
pub struct ProfileContext {
    info: &'static FunctionInfo,
    /// `None` only while being dropped.
    guard: Option<SpanGuard>,
    request: Option<Request>,
}

impl ProfileContext {
    /// Begins the region `name`.
    pub fn new(name: &'static str) -> Self {
        Self::with_info(crate::record::registry::intern_context(name))
    }

    /// Begins a region described by a `static` [`FunctionInfo`] (no lookup at all).
    pub fn with_info(info: &'static FunctionInfo) -> Self {
        ProfileContext {
            info,
            guard: Some(recorder::enter(info)),
            request: None,
        }
    }

    /// Begins a request whose root is `name`: whether and how it is recorded follows the root's
    /// policy ([`sampling::set_sample_rate`],
    /// [`sampling::set_tail_threshold`],
    /// [`sampling::set_sla`], [`aggregate::set_per_function`](crate::production::aggregate::set_per_function)),
    /// and its duration is always added to the root's aggregates (while profiling is enabled).
    /// The root's name is looked up in a per-thread cache (a lock the first time on a thread).
    ///
    /// # Examples
    ///
    /// ```
    /// use profiler_runtime::{production::sampling, ProfileContext};
    ///
    /// sampling::set_sample_rate("doc_api_request", 0.01);
    /// for _ in 0..100 {
    ///     let _request = ProfileContext::request("doc_api_request");
    ///     // ... about one of these hundred requests is recorded
    /// }
    /// ```
    pub fn request(name: &'static str) -> Self {
        let root = sampling::root(name);
        let request = Request::begin(root);
        ProfileContext {
            info: root.info,
            guard: Some(recorder::enter(root.info)),
            request,
        }
    }

    /// Marks the request as failed: the tail mode keeps it whatever its duration, and it counts
    /// as an error in the aggregates. A panic while the request is open does the same. No effect
    /// on a region that is not a request.
    pub fn mark_error(&mut self) {
        if let Some(request) = &mut self.request {
            request.mark_error();
        }
    }

    /// The region's name.
    pub fn name(&self) -> std::borrow::Cow<'static, str> {
        self.info.name()
    }

    /// Whether the region is being recorded (for a tail-mode request: recorded, and kept if it
    /// turns out slow).
    pub fn is_recording(&self) -> bool {
        self.guard.as_ref().is_some_and(SpanGuard::is_recording)
    }
}

impl Drop for ProfileContext {
    fn drop(&mut self) {
        // The root's exit is recorded first, so that a held request is complete when decided.
        drop(self.guard.take());
        if let Some(request) = self.request.take() {
            request.finish();
        }
    }
}
