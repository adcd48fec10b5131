//! Static metadata of instrumented functions, and their registration with `inventory`.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

/// What kind of code a [`FunctionInfo`] describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FunctionKind {
    /// A synchronous function or method under `#[profile]`.
    Function,
    /// An `async fn` under `#[profile]`: each poll is a span, and the future's life an async span.
    AsyncFunction,
    /// A block under [`profile_scope!`](crate::profile_scope).
    Scope,
    /// A named region such as one request ([`ProfileContext`](crate::ProfileContext)).
    Context,
}

impl FunctionKind {
    /// A lowercase name for exports: `function`, `async`, `scope` or `context`.
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionKind::Function => "function",
            FunctionKind::AsyncFunction => "async",
            FunctionKind::Scope => "scope",
            FunctionKind::Context => "context",
        }
    }
}

/// The static description of one instrumented function, scope or context: one `static` per site,
/// created by `#[profile]` or [`profile_scope!`](crate::profile_scope). Events refer to it by
/// address, so recording never copies or formats a name.
#[derive(Debug)]
pub struct FunctionInfo {
    /// This site's copy of the run-time switch ([`crate::enable`] / [`crate::disable`] set every
    /// registered site's). The generated code tests it at the site's own address, which the
    /// compiler reaches directly: no load of a global's address from the GOT first.
    on: AtomicBool,
    name: &'static str,
    module_path: &'static str,
    file: &'static str,
    line: u32,
    kind: FunctionKind,
    /// For a method whose `impl` block the attribute could not see: the method's own name, to be
    /// joined to the receiver's type, which is filled in on its first call.
    method: Option<&'static str>,
    self_type: OnceLock<&'static str>,
    /// Optional time budget in nanoseconds (`#[profile(budget = "2ms")]`).
    budget_ns: Option<u64>,
    /// This site's index in the function table a merge is building, tagged with that table's
    /// id (`FunctionTable` in `collect.rs`): the merge reads it per span instead of hashing the
    /// site's address. Written by whoever builds a table; a stamp of another table is a miss.
    table_stamp: AtomicU64,
}

impl FunctionInfo {
    /// Describes a site. Used by the generated code; prefer the attribute and the macros.
    #[doc(hidden)]
    pub const fn new(
        name: &'static str,
        module_path: &'static str,
        file: &'static str,
        line: u32,
        kind: FunctionKind,
    ) -> Self {
        FunctionInfo {
            on: AtomicBool::new(true),
            name,
            module_path,
            file,
            line,
            kind,
            method: None,
            self_type: OnceLock::new(),
            budget_ns: None,
            table_stamp: AtomicU64::new(0),
        }
    }

    /// Marks the site as a method whose receiver's type is resolved on its first call.
    #[doc(hidden)]
    #[must_use]
    pub const fn with_method(mut self, method: &'static str) -> Self {
        self.method = Some(method);
        self
    }

    /// Attaches a time budget in nanoseconds.
    #[doc(hidden)]
    #[must_use]
    pub const fn with_budget_ns(mut self, budget_ns: u64) -> Self {
        self.budget_ns = Some(budget_ns);
        self
    }

    /// The full name a user would search for: `my_crate::db::Pool::get`,
    /// `<my_crate::db::Pool as Source>::get`, or the name given with `#[profile(name = "...")]`.
    pub fn name(&self) -> Cow<'static, str> {
        match (self.method, self.self_type.get()) {
            (Some(method), Some(self_type)) => Cow::Owned(format!("{self_type}::{method}")),
            _ => Cow::Borrowed(self.name),
        }
    }

    /// The module the site is in (`module_path!()`).
    pub fn module_path(&self) -> &'static str {
        self.module_path
    }

    /// The source file (`file!()`).
    pub fn file(&self) -> &'static str {
        self.file
    }

    /// The line of the function's signature or the scope macro.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// What kind of site this is.
    pub fn kind(&self) -> FunctionKind {
        self.kind
    }

    /// The budget given with `#[profile(budget = "...")]`, in nanoseconds.
    pub fn budget_ns(&self) -> Option<u64> {
        self.budget_ns
    }

    /// Records the receiver's type of a method site, once. `type_name` is
    /// `core::any::type_name::<Self>` in the method; generic arguments are dropped, so every
    /// instantiation shares one name.
    #[cold]
    #[inline(never)]
    pub(crate) fn resolve_self_type(&self, type_name: fn() -> &'static str) {
        self.self_type.get_or_init(|| {
            let full = type_name();
            full.find('<').map_or(full, |i| &full[..i])
        });
    }

    /// Whether recording is switched on for this site.
    #[inline(always)]
    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Switches recording on or off for this site.
    pub(crate) fn set_on(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    /// The last stamp a function table left on this site (0: none yet).
    #[inline(always)]
    pub(crate) fn table_stamp(&self) -> u64 {
        self.table_stamp.load(Ordering::Relaxed)
    }

    /// Leaves a function table's stamp on this site.
    pub(crate) fn set_table_stamp(&self, stamp: u64) {
        self.table_stamp.store(stamp, Ordering::Relaxed);
    }

    /// Whether the receiver's type still has to be resolved.
    #[inline(always)]
    pub(crate) fn needs_self_type(&self) -> bool {
        self.method.is_some() && self.self_type.get().is_none()
    }
}

/// One instrumented site, submitted to `inventory` by the generated code.
#[doc(hidden)]
#[derive(Debug)]
pub struct Registration(pub &'static FunctionInfo);

inventory::collect!(Registration);

/// Every instrumented function, scope and context of the program (all linked crates), whether it
/// has been called or not. The order is unspecified.
///
/// # Examples
///
/// ```
/// for info in profiler_runtime::registered_functions() {
///     println!("{} at {}:{}", info.name(), info.file(), info.line());
/// }
/// ```
pub fn registered_functions() -> impl Iterator<Item = &'static FunctionInfo> {
    inventory::iter::<Registration>.into_iter().map(|r| r.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_name_of_generic() -> &'static str {
        "my_crate::db::Pool<alloc::string::String>"
    }

    #[test]
    fn method_name_resolves_once_without_generics() {
        static SITE: FunctionInfo = FunctionInfo::new(
            "my_crate::db::get",
            "my_crate::db",
            "db.rs",
            3,
            FunctionKind::Function,
        )
        .with_method("get");
        assert_eq!(SITE.name(), "my_crate::db::get");
        assert!(SITE.needs_self_type());
        SITE.resolve_self_type(type_name_of_generic);
        assert!(!SITE.needs_self_type());
        assert_eq!(SITE.name(), "my_crate::db::Pool::get");
    }
}
