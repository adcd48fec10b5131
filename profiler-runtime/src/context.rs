//! Named regions recorded like function calls: [`ProfileContext`].

use crate::collect;
use crate::recorder::{self, SpanGuard};
use crate::registry::FunctionInfo;

/// A named region of work, such as handling one request: a span from [`ProfileContext::new`] to
/// the drop of the value, recorded like a function call and nesting the same way.
///
/// The name is looked up once per distinct name (a lock the first time, a hash lookup after);
/// for a region inside a hot loop prefer [`profile_scope!`](crate::profile_scope), whose site is
/// a `static`.
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
    guard: SpanGuard,
}

impl ProfileContext {
    /// Begins the region `name`.
    pub fn new(name: &'static str) -> Self {
        Self::with_info(collect::intern_context(name))
    }

    /// Begins a region described by a `static` [`FunctionInfo`] (no lookup at all).
    pub fn with_info(info: &'static FunctionInfo) -> Self {
        ProfileContext {
            info,
            guard: recorder::enter(info),
        }
    }

    /// The region's name.
    pub fn name(&self) -> std::borrow::Cow<'static, str> {
        self.info.name()
    }

    /// Whether the region is being recorded.
    pub fn is_recording(&self) -> bool {
        self.guard.is_recording()
    }
}
