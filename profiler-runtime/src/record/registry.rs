//! Static metadata of instrumented functions, and their registration with `inventory`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

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
    /// `core::any::type_name_of_val` of an item nested in the function: the compiler's own path
    /// of the function (`<my_crate::Pool as my_crate::Source>::get::__profiler_here`), which
    /// tells apart what the attribute cannot see (which `impl`, which trait). `None` when the
    /// name was given (`name = "..."`, scopes, contexts).
    path_of: Option<fn() -> &'static str>,
    /// The name made from `path_of`, once.
    resolved_name: OnceLock<&'static str>,
    /// How a call picks the site it records under ([`Dispatch`]): a `u8` so the hot path reads
    /// it with one relaxed load.
    dispatch: AtomicU8,
    /// For a trait's default method: the site of each receiver type seen so far, a list that
    /// only grows (readers never lock).
    receivers: OnceLock<&'static ReceiverSite>,
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
            path_of: None,
            resolved_name: OnceLock::new(),
            dispatch: AtomicU8::new(Dispatch::Unknown as u8),
            receivers: OnceLock::new(),
            budget_ns: None,
            table_stamp: AtomicU64::new(0),
        }
    }

    /// Names the site after the compiler's path of the function: `path_of` returns
    /// `core::any::type_name_of_val` of an item nested in it. Without a receiver type the site
    /// records under that one name.
    #[doc(hidden)]
    #[must_use]
    pub const fn with_path(mut self, path_of: fn() -> &'static str) -> Self {
        self.path_of = Some(path_of);
        self.dispatch = AtomicU8::new(Dispatch::This as u8);
        self
    }

    /// Like [`with_path`](Self::with_path) for a function that has a receiver type (`Self`) but
    /// may be a trait's default method: its first call decides (see [`Dispatch`]).
    #[doc(hidden)]
    #[must_use]
    pub const fn with_receiver(mut self, path_of: fn() -> &'static str) -> Self {
        self.path_of = Some(path_of);
        self.dispatch = AtomicU8::new(Dispatch::Unknown as u8);
        self
    }

    /// Like [`with_receiver`](Self::with_receiver) for a method known to be a trait's default
    /// method (the `#[profile]` was on the `trait`): each receiver type gets its own site.
    #[doc(hidden)]
    #[must_use]
    pub const fn with_default_method(mut self, path_of: fn() -> &'static str) -> Self {
        self.path_of = Some(path_of);
        self.dispatch = AtomicU8::new(Dispatch::PerReceiver as u8);
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
    /// `<my_crate::db::Pool as my_crate::db::Source>::get`, or the name given with
    /// `#[profile(name = "...")]`. Generic arguments the compiler leaves open are dropped
    /// (`Pool<_>` reads `Pool`).
    pub fn name(&self) -> Cow<'static, str> {
        match self.path_of {
            Some(path_of) => Cow::Borrowed(
                self.resolved_name
                    .get_or_init(|| leak(function_path(path_of()))),
            ),
            None => Cow::Borrowed(self.name),
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

    /// The site a call with receiver type `type_name` (`core::any::type_name::<Self>`) records
    /// under: this one, or for a trait's default method the receiver type's own.
    #[inline(always)]
    pub(crate) fn for_receiver(
        &'static self,
        type_name: fn() -> &'static str,
    ) -> &'static FunctionInfo {
        if self.dispatch.load(Ordering::Relaxed) == Dispatch::This as u8 {
            self
        } else {
            self.for_receiver_cold(type_name)
        }
    }

    #[cold]
    #[inline(never)]
    fn for_receiver_cold(&'static self, type_name: fn() -> &'static str) -> &'static FunctionInfo {
        let dispatch = self.dispatch.load(Ordering::Relaxed);
        if dispatch == Dispatch::Unknown as u8 {
            let per_receiver = match self.path_of {
                Some(path_of) => is_default_method(path_of(), type_name()),
                None => false,
            };
            let decided = if per_receiver {
                Dispatch::PerReceiver
            } else {
                Dispatch::This
            };
            self.dispatch.store(decided as u8, Ordering::Relaxed);
            if !per_receiver {
                return self;
            }
        } else if dispatch == Dispatch::This as u8 {
            return self;
        }
        // The function's address identifies the receiver type cheaply; the same type may have
        // several copies of `type_name::<T>` (one per codegen unit), which only adds entries.
        let key = type_name as usize;
        let mut next = self.receivers.get();
        let mut last = &self.receivers;
        while let Some(entry) = next {
            if entry.key == key {
                return entry.site;
            }
            last = &entry.next;
            next = entry.next.get();
        }
        let site = intern_receiver_site(self, type_name());
        let entry: &'static ReceiverSite = Box::leak(Box::new(ReceiverSite {
            key,
            site,
            next: OnceLock::new(),
        }));
        // Append at the end; another thread may have appended meanwhile: follow it.
        let mut slot = last;
        while slot.set(entry).is_err() {
            slot = &slot
                .get()
                .expect("a slot that refused a value holds one")
                .next;
        }
        site
    }

    /// The name of a trait's default method called on receiver type `self_type`:
    /// `<Type as Trait>::method`.
    pub(crate) fn receiver_name(&self, self_type: &str) -> String {
        let path = self.name();
        let (owner, method) = split_owner(&path);
        format!("<{} as {owner}>::{method}", drop_generics(self_type))
    }

    /// The site of one receiver type of a trait's default method, named `name`
    /// ([`receiver_name`](Self::receiver_name)), with this site's place, kind and budget.
    pub(crate) fn receiver_site(&self, name: &'static str) -> FunctionInfo {
        FunctionInfo {
            on: AtomicBool::new(self.is_on()),
            name,
            module_path: self.module_path,
            file: self.file,
            line: self.line,
            kind: self.kind,
            path_of: None,
            resolved_name: OnceLock::new(),
            dispatch: AtomicU8::new(Dispatch::This as u8),
            receivers: OnceLock::new(),
            budget_ns: self.budget_ns,
            table_stamp: AtomicU64::new(0),
        }
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
}

/// How a call of a site with a receiver type picks the site it records under.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dispatch {
    /// Records under the site itself.
    This = 0,
    /// Not known until the first call: a method whose block the attribute could not see may be
    /// a trait's default method.
    Unknown = 1,
    /// A trait's default method: each receiver type records under its own site.
    PerReceiver = 2,
}

/// One entry of a default method's list of receiver types.
#[derive(Debug)]
struct ReceiverSite {
    /// The address of `core::any::type_name::<Self>` for this receiver type.
    key: usize,
    site: &'static FunctionInfo,
    next: OnceLock<&'static ReceiverSite>,
}

pub(crate) fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// The function's path from the path of an item nested in it: the last segment goes, and
/// generic argument lists the compiler leaves open (`<_>`, `<_, _>`) are dropped.
fn function_path(nested: &str) -> String {
    let mut path = nested.rsplit_once("::").map_or(nested, |(head, _)| head);
    // The body of an `async fn` is a coroutine: what is nested in it sits under `{{closure}}`.
    while let Some(head) = path.strip_suffix("::{{closure}}") {
        path = head;
    }
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        // `<_>` or `<_, _, ..>` directly after a name: generic arguments nobody filled in.
        let close = after.find('>');
        let open_list = close.is_some_and(|close| {
            open > 0
                && !rest[..open].ends_with(' ')
                && after[1..close]
                    .split(',')
                    .all(|argument| argument.trim() == "_")
        });
        if let (true, Some(close)) = (open_list, close) {
            rest = &after[close + 1..];
        } else {
            out.push('<');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    out
}

/// `(owner, method)` of a function path: `("my_crate::Source", "get")`.
fn split_owner(path: &str) -> (&str, &str) {
    path.rsplit_once("::").unwrap_or(("", path))
}

/// A type's name without generic arguments: `my_crate::Pool<u8>` reads `my_crate::Pool`,
/// `&my_crate::Pool<u8>` reads `&my_crate::Pool`.
fn drop_generics(type_name: &str) -> String {
    let mut out = String::with_capacity(type_name.len());
    let mut depth = 0usize;
    for c in type_name.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Whether a function with receiver type `self_type` whose path is `function_path(nested)` is a
/// trait's default method. An `impl` method's path is `<Type as Trait>::m` (trait impl) or
/// `Type::m` (inherent impl, the receiver type's own path); a default method's is
/// `Trait::m`, which is not the receiver's type.
fn is_default_method(nested: &str, self_type: &str) -> bool {
    let path = function_path(nested);
    if path.starts_with('<') {
        return false;
    }
    let (owner, _) = split_owner(&path);
    drop_generics(owner) != drop_generics(self_type)
}

/// The global run-time switch. Starts on; `PROFILER_ENABLED=0` read by [`crate::init`] turns it
/// off. Each site tests its own copy ([`FunctionInfo::is_on`]); this one is what new sites copy.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Sites made at run time: named contexts, and one per receiver type of a trait's default
/// method. Under one lock with the switch, so that a site made while the switch turns gets the
/// new value.
struct RunTimeSites {
    contexts: BTreeMap<&'static str, &'static FunctionInfo>,
    receivers: BTreeMap<&'static str, &'static FunctionInfo>,
}

static RUN_TIME_SITES: Mutex<RunTimeSites> = Mutex::new(RunTimeSites {
    contexts: BTreeMap::new(),
    receivers: BTreeMap::new(),
});

/// Nothing panics while the lock is held; a poisoned lock is still consistent.
fn run_time_sites_mut() -> MutexGuard<'static, RunTimeSites> {
    RUN_TIME_SITES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Whether recording is switched on.
#[inline(always)]
pub(crate) fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Sets the global switch and every site's copy of it: the registered sites and those made at
/// run time.
pub(crate) fn switch_sites(on: bool) {
    let sites = run_time_sites_mut();
    ENABLED.store(on, Ordering::Relaxed);
    let made = sites
        .contexts
        .values()
        .chain(sites.receivers.values())
        .copied();
    for info in registered_sites().chain(made) {
        info.set_on(on);
    }
}

/// The sites made at run time so far (contexts, receiver types of default methods).
pub(crate) fn run_time_sites() -> Vec<&'static FunctionInfo> {
    let sites = run_time_sites_mut();
    sites
        .contexts
        .values()
        .chain(sites.receivers.values())
        .copied()
        .collect()
}

/// The site of a named context, made on first use.
pub(crate) fn intern_context(name: &'static str) -> &'static FunctionInfo {
    let mut sites = run_time_sites_mut();
    if let Some(info) = sites.contexts.get(name) {
        return info;
    }
    let info: &'static FunctionInfo = Box::leak(Box::new(FunctionInfo::new(
        name,
        "",
        "",
        0,
        FunctionKind::Context,
    )));
    info.set_on(is_enabled());
    sites.contexts.insert(name, info);
    info
}

/// The site of a trait's default method `site` for receiver type `self_type`, made on first use.
fn intern_receiver_site(site: &'static FunctionInfo, self_type: &str) -> &'static FunctionInfo {
    let name = site.receiver_name(self_type);
    let mut sites = run_time_sites_mut();
    if let Some(info) = sites.receivers.get(name.as_str()) {
        return info;
    }
    let name = leak(name);
    let info: &'static FunctionInfo = Box::leak(Box::new(site.receiver_site(name)));
    info.set_on(is_enabled());
    sites.receivers.insert(name, info);
    info
}

/// One instrumented site, submitted to `inventory` by the generated code.
#[doc(hidden)]
#[derive(Debug)]
pub struct Registration(pub &'static FunctionInfo);

inventory::collect!(Registration);

/// Every instrumented site of the program (all linked crates), called or not.
pub(crate) fn registered_sites() -> impl Iterator<Item = &'static FunctionInfo> {
    inventory::iter::<Registration>.into_iter().map(|r| r.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_names() {
        for (nested, name) in [
            ("my_crate::db::get::__profiler_here", "my_crate::db::get"),
            (
                "<my_crate::P<_> as core::fmt::Display>::fmt::__profiler_here",
                "<my_crate::P as core::fmt::Display>::fmt",
            ),
            (
                "my_crate::P<u8>::get::__profiler_here",
                "my_crate::P<u8>::get",
            ),
            (
                "my_crate::Map<_, u8>::get::__profiler_here",
                "my_crate::Map<_, u8>::get",
            ),
            (
                "my_crate::Map<_, _>::get::__profiler_here",
                "my_crate::Map::get",
            ),
            (
                "my_crate::P<&str>::geta::__profiler_here",
                "my_crate::P<&str>::geta",
            ),
            (
                "<[u8] as my_crate::Source>::dm::__profiler_here",
                "<[u8] as my_crate::Source>::dm",
            ),
            // An `async fn`, and a function nested in a closure.
            (
                "my_crate::load::{{closure}}::__profiler_here",
                "my_crate::load",
            ),
            (
                "my_crate::main::{{closure}}::inner::__profiler_here",
                "my_crate::main::{{closure}}::inner",
            ),
        ] {
            assert_eq!(function_path(nested), name, "{nested}");
        }
    }

    #[test]
    fn default_methods_are_told_from_impl_methods() {
        // Trait impl, inherent impl (generic or not), default method, and the receiver of an
        // impl on a reference.
        assert!(!is_default_method("<a::P<_> as a::S>::m::h", "a::P<u8>"));
        assert!(!is_default_method("a::P<_>::m::h", "a::P<u8>"));
        assert!(!is_default_method("a::P::m::h", "a::P"));
        assert!(!is_default_method("dyn a::S::m::h", "dyn a::S"));
        assert!(is_default_method("a::S::m::h", "a::P<u8>"));
        assert!(is_default_method("a::S::m::h", "&a::P"));
        assert!(is_default_method("a::S::m::h", "[u8]"));
    }

    fn nested_path() -> &'static str {
        "my_crate::Source::describe::__profiler_here"
    }

    fn pool_type() -> &'static str {
        "my_crate::Pool<alloc::string::String>"
    }

    fn cache_type() -> &'static str {
        "&my_crate::Cache"
    }

    #[test]
    fn a_default_method_records_under_each_receiver_type() {
        static SITE: FunctionInfo = FunctionInfo::new(
            "my_crate::describe",
            "my_crate",
            "lib.rs",
            3,
            FunctionKind::Function,
        )
        .with_receiver(nested_path);
        assert_eq!(SITE.name(), "my_crate::Source::describe");
        let pool = SITE.for_receiver(pool_type);
        let cache = SITE.for_receiver(cache_type);
        assert_eq!(
            pool.name(),
            "<my_crate::Pool as my_crate::Source>::describe"
        );
        assert_eq!(
            cache.name(),
            "<&my_crate::Cache as my_crate::Source>::describe"
        );
        assert!(
            std::ptr::eq(SITE.for_receiver(pool_type), pool),
            "found again, not made again"
        );
        assert!(std::ptr::eq(SITE.for_receiver(cache_type), cache));
        assert_eq!(
            (pool.file(), pool.line(), pool.kind()),
            ("lib.rs", 3, FunctionKind::Function)
        );
    }

    #[test]
    fn an_impl_method_records_under_its_own_site() {
        fn nested() -> &'static str {
            "my_crate::Pool<_>::get::__profiler_here"
        }
        static SITE: FunctionInfo = FunctionInfo::new(
            "my_crate::get",
            "my_crate",
            "lib.rs",
            9,
            FunctionKind::Function,
        )
        .with_receiver(nested);
        assert!(std::ptr::eq(SITE.for_receiver(pool_type), &raw const SITE));
        assert_eq!(SITE.name(), "my_crate::Pool::get");
    }
}
