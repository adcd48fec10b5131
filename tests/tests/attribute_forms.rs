//! Every form `#[profile]` accepts compiles, runs unchanged and records the expected span names.
//!
//! Each test records under one lock (a flush drains every thread, so two tests recording at once
//! would see each other's spans) and compares the span tree exactly.

use std::fmt::Display;
use std::num::ParseIntError;
use std::sync::{Mutex, PoisonError};

use profiler_runtime::{profile, registered_functions, Profile};

static LOCK: Mutex<()> = Mutex::new(());

/// Runs `work` alone and returns what it recorded.
fn record(work: impl FnOnce()) -> Profile {
    let _lock = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    profiler_runtime::enable();
    drop(profiler_runtime::flush());
    work();
    let profile = profiler_runtime::flush();
    profile.validate().expect("a well-formed timeline");
    profile
}

/// The span tree of every thread, without the thread headers, indented two spaces per depth.
/// The two `#[test]` functions under `#[profile]` record outside the lock (their span opens
/// before their body runs), so their threads are left out.
fn tree(profile: &Profile) -> String {
    let mut out = String::new();
    let mut keep = true;
    for line in profile.render_tree().lines() {
        if let Some(thread) = line.strip_prefix("thread ") {
            keep = !thread.ends_with("_profile");
        } else if keep {
            out.push_str(&line[2..]);
            out.push('\n');
        }
    }
    out
}

fn record_tree(work: impl FnOnce()) -> String {
    tree(&record(work))
}

fn lines(names: &[&str]) -> String {
    names.iter().flat_map(|name| [*name, "\n"]).collect()
}

// ---- free functions and their variations ----

#[profile]
fn free(x: u32) -> u32 {
    x + 1
}

#[profile]
fn generic<T: Display, const N: usize>(value: T) -> String {
    format!("{value}{N}")
}

#[profile]
extern "C" fn c_abi(x: u32) -> u32 {
    x * 2
}

/// The attribute on an `unsafe fn` (whose body does nothing unsafe: this file still has no
/// `unsafe` block; calling it is the only unsafe operation, allowed here alone).
#[allow(unsafe_code)]
mod unsafe_form {
    use profiler_runtime::profile;

    /// # Safety
    ///
    /// None needed: the test only checks that the attribute accepts `unsafe fn`.
    #[profile]
    pub(crate) unsafe fn unchecked(x: u32) -> u32 {
        x + 3
    }

    pub(crate) fn call(x: u32) -> u32 {
        // SAFETY: `unchecked` has no precondition.
        unsafe { unchecked(x) }
    }
}

#[profile]
fn evens(limit: u32) -> impl Iterator<Item = u32> {
    (0..limit).filter(|n| n % 2 == 0)
}

#[profile]
fn parse_sum(text: &str) -> Result<u32, ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    let mut total = 0;
    for part in text.split(',') {
        total += part.parse::<u32>()?;
    }
    Ok(total)
}

#[profile]
fn fib(n: u32) -> u32 {
    if n < 2 {
        n
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

#[profile]
fn boom(fail: bool) -> u32 {
    assert!(!fail, "boom");
    1
}

/// Docs before the attribute.
#[inline]
#[must_use]
#[profile]
fn attributes_after(x: u32) -> u32 {
    x
}

#[profile]
/// Docs after the attribute.
#[must_use]
#[inline(never)]
fn attributes_before(x: u32) -> u32 {
    x
}

#[profile(name = "custom name")]
fn renamed() {}

#[profile(budget = "1.5ms")]
fn budgeted() {}

const NEVER_CALLED_LINE: u32 = line!() + 3;
#[profile]
#[allow(dead_code, reason = "registered whether it is called or not")]
fn never_called() {}

#[test]
fn free_function_forms() {
    let tree = record_tree(|| {
        assert_eq!(free(1), 2);
        assert_eq!(generic::<_, 3>("x"), "x3");
        assert_eq!(generic::<_, 4>(1.5), "1.54");
        assert_eq!(c_abi(4), 8);
        assert_eq!(unsafe_form::call(1), 4);
        assert_eq!(evens(7).collect::<Vec<_>>(), [0, 2, 4, 6]);
        assert_eq!(attributes_after(5), 5);
        assert_eq!(attributes_before(6), 6);
        renamed();
        budgeted();
    });
    assert_eq!(
        tree,
        lines(&[
            "attribute_forms::free",
            "attribute_forms::generic",
            "attribute_forms::generic",
            "attribute_forms::c_abi",
            "attribute_forms::unsafe_form::unchecked",
            "attribute_forms::evens",
            "attribute_forms::attributes_after",
            "attribute_forms::attributes_before",
            "custom name",
            "attribute_forms::budgeted",
        ])
    );
}

#[test]
fn early_return_and_question_mark_close_the_span() {
    let tree = record_tree(|| {
        assert_eq!(parse_sum(""), Ok(0));
        assert_eq!(parse_sum("1,2"), Ok(3));
        assert!(parse_sum("1,x").is_err());
    });
    assert_eq!(tree, lines(&["attribute_forms::parse_sum"; 3]));
}

#[test]
fn recursion_gives_the_call_tree() {
    let tree = record_tree(|| assert_eq!(fib(3), 2));
    assert_eq!(
        tree,
        lines(&[
            "attribute_forms::fib",
            "  attribute_forms::fib",
            "    attribute_forms::fib",
            "    attribute_forms::fib",
            "  attribute_forms::fib",
        ])
    );
}

#[test]
fn a_panic_still_closes_the_span() {
    let tree = record_tree(|| {
        let result = std::panic::catch_unwind(|| boom(true));
        assert!(result.is_err());
        assert_eq!(boom(false), 1);
    });
    // Both calls closed (none incomplete), the panicking one by unwinding.
    assert_eq!(tree, lines(&["attribute_forms::boom"; 2]));
}

#[test]
fn registration_keeps_name_location_and_budget() {
    let find = |name: &str| {
        registered_functions()
            .find(|info| info.name == name)
            .unwrap_or_else(|| panic!("{name} is registered"))
    };
    let info = find("attribute_forms::never_called");
    assert_eq!(info.line, NEVER_CALLED_LINE);
    assert_eq!(info.file, file!());
    assert_eq!(info.module_path, "attribute_forms");
    assert_eq!(info.budget_ns, None);
    assert_eq!(find("attribute_forms::budgeted").budget_ns, Some(1_500_000));
    assert_eq!(
        find("attribute_forms::fetch").kind,
        profiler_runtime::FunctionKind::AsyncFunction
    );
    // A `#[test]` function under the attribute, in either order.
    find("attribute_forms::test_after_profile");
    find("attribute_forms::test_before_profile");
}

#[profile]
#[test]
fn test_after_profile() {
    assert_eq!(free(0), 1);
}

#[test]
#[profile]
fn test_before_profile() {
    assert_eq!(free(1), 2);
}

// ---- methods ----

mod db {
    use profiler_runtime::profile;

    pub(crate) struct Pool {
        pub(crate) base: u32,
    }

    pub(crate) trait Source {
        fn get(&self, key: u32) -> u32;
    }

    pub(crate) trait Greet {
        /// A default method under its own attribute: the type is resolved on the first call.
        #[profile]
        fn greet(&self) -> &'static str {
            "hello"
        }
    }

    #[profile]
    impl Pool {
        pub(crate) fn new(base: u32) -> Self {
            Pool { base }
        }

        pub(crate) fn get(&self, key: u32) -> u32 {
            self.base + key + self.raw()
        }

        #[profile(skip)]
        pub(crate) fn raw(&self) -> u32 {
            self.base / 2
        }

        #[profile(name = "pool size")]
        pub(crate) fn size(&self) -> u32 {
            self.base
        }

        pub(crate) const fn constant() -> u32 {
            7
        }
    }

    #[profile]
    impl Source for Pool {
        fn get(&self, key: u32) -> u32 {
            // The inherent method, from the trait's.
            Pool::get(self, key) * 10
        }
    }

    #[profile]
    pub(crate) trait Tagged {
        fn tag(&self) -> String {
            format!("#{}", self.number())
        }

        fn number(&self) -> u32;
    }

    impl Tagged for Pool {
        fn number(&self) -> u32 {
            self.base
        }
    }

    pub(crate) struct Lone(u32);

    impl Lone {
        #[profile]
        pub(crate) fn create() -> Self {
            Lone(1)
        }

        #[profile]
        pub(crate) fn work(&self) -> u32 {
            self.0
        }

        #[profile]
        pub(crate) fn helper() -> u32 {
            2
        }
    }

    impl Greet for Lone {}
}

#[test]
fn method_forms_record_full_names() {
    use db::{Greet, Lone, Pool, Source, Tagged};
    let tree = record_tree(|| {
        let pool = Pool::new(1);
        assert_eq!(Source::get(&pool, 2), 30);
        assert_eq!(pool.size(), 1);
        assert_eq!(Pool::constant(), 7);
        assert_eq!(pool.tag(), "#1");
        let lone = Lone::create();
        assert_eq!(lone.work(), 1);
        assert_eq!(Lone::helper(), 2);
        assert_eq!(lone.greet(), "hello");
    });
    assert_eq!(
        tree,
        lines(&[
            "attribute_forms::db::Pool::new",
            "<attribute_forms::db::Pool as attribute_forms::db::Source>::get",
            "  attribute_forms::db::Pool::get",
            "pool size",
            "<attribute_forms::db::Pool as attribute_forms::db::Tagged>::tag",
            // Out of sight of their `impl` block: the type comes from `type_name::<Self>()`.
            "attribute_forms::db::Lone::create",
            "attribute_forms::db::Lone::work",
            // No `self`, no `Self`: nothing tells it is a method.
            "attribute_forms::db::Lone::helper",
            "<attribute_forms::db::Lone as attribute_forms::db::Greet>::greet",
        ])
    );
}

// ---- async ----

#[profile]
async fn fetch(key: u32) -> u32 {
    tokio::task::yield_now().await;
    key + 1
}

#[profile]
async fn parse_async(text: &str) -> Result<u32, ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    let value: u32 = text.parse()?;
    Ok(value + fetch(value).await)
}

#[profile]
async fn opaque() -> impl Display {
    5
}

struct Service {
    base: u32,
}

#[profile]
impl Service {
    async fn call(&self, key: u32) -> u32 {
        fetch(key).await + self.base
    }
}

struct LoneService;

impl LoneService {
    #[profile]
    async fn call(&self) -> u32 {
        3
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime")
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[test]
fn async_forms_record_polls_and_lives() {
    let runtime = current_thread();
    let profile = record(|| {
        runtime.block_on(async {
            // Every instrumented future stays `Send` when its body is.
            assert_eq!(assert_send(fetch(1)).await, 2);
            assert_eq!(assert_send(parse_async("")).await, Ok(0));
            assert_eq!(assert_send(parse_async("x")).await.ok(), None);
            assert_eq!(assert_send(parse_async("4")).await, Ok(9));
            assert_eq!(assert_send(opaque()).await.to_string(), "5");
            assert_eq!(assert_send(Service { base: 10 }.call(1)).await, 12);
            assert_eq!(assert_send(LoneService.call()).await, 3);
        });
    });
    assert_eq!(
        tree(&profile),
        lines(&[
            // `fetch` yields once: two polls.
            "attribute_forms::fetch",
            "attribute_forms::fetch",
            "attribute_forms::parse_async",
            "attribute_forms::parse_async",
            // `parse_async("4")` polls `fetch` inside its own polls.
            "attribute_forms::parse_async",
            "  attribute_forms::fetch",
            "attribute_forms::parse_async",
            "  attribute_forms::fetch",
            "attribute_forms::opaque",
            "attribute_forms::Service::call",
            "  attribute_forms::fetch",
            "attribute_forms::Service::call",
            "  attribute_forms::fetch",
            "attribute_forms::LoneService::call",
        ])
    );
    let lives: Vec<&str> = profile
        .async_spans
        .iter()
        .map(|span| {
            assert!(!span.cancelled);
            profile.function(span.function).name.as_str()
        })
        .collect();
    assert_eq!(lives.len(), 9, "one async span per call: {lives:?}");
    for (name, count) in [
        ("attribute_forms::fetch", 3),
        ("attribute_forms::parse_async", 3),
        ("attribute_forms::opaque", 1),
        ("attribute_forms::Service::call", 1),
        ("attribute_forms::LoneService::call", 1),
    ] {
        assert_eq!(
            lives.iter().filter(|n| **n == name).count(),
            count,
            "{name}"
        );
    }
}

#[test]
fn async_futures_migrate_between_worker_threads() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let profile = record(|| {
        runtime.block_on(async {
            let tasks: Vec<_> = (0..8).map(|i| tokio::spawn(fetch(i))).collect();
            for (i, task) in (0..).zip(tasks) {
                assert_eq!(task.await.expect("the task completes"), i + 1);
            }
        });
    });
    let fetches = profile
        .async_spans
        .iter()
        .filter(|span| profile.function(span.function).name == "attribute_forms::fetch")
        .count();
    assert_eq!(fetches, 8);
    // Two polls per call (one yield), on whichever worker polled them.
    assert_eq!(tree(&profile), lines(&["attribute_forms::fetch"; 16]));
}

#[profile]
#[tokio::main(flavor = "current_thread")]
async fn tokio_main_inside() -> u32 {
    fetch(0).await
}

#[tokio::main(flavor = "current_thread")]
#[profile]
async fn tokio_main_outside() -> u32 {
    fetch(1).await
}

#[test]
fn tokio_main_in_either_order() {
    let tree = record_tree(|| {
        assert_eq!(tokio_main_inside(), 1);
        assert_eq!(tokio_main_outside(), 2);
    });
    assert_eq!(
        tree,
        lines(&[
            // Under `tokio::main`: still an async fn, polled twice by its runtime.
            "attribute_forms::tokio_main_inside",
            "  attribute_forms::fetch",
            "attribute_forms::tokio_main_inside",
            "  attribute_forms::fetch",
            // Over it: a sync fn around `block_on`.
            "attribute_forms::tokio_main_outside",
            "  attribute_forms::fetch",
            "  attribute_forms::fetch",
        ])
    );
}
