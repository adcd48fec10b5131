//! Helpers shared by the integration tests in `tests/`.
//!
//! The profiler's state is process-global, and the tests of one file run on parallel threads, so
//! every test that flushes takes [`serial`] first.

pub mod one_line_forms;
pub mod synthetic;
pub mod tmpfs;

use std::sync::{Mutex, MutexGuard, PoisonError};

use profiler_runtime::{Profile, ThreadTimeline};

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises the tests of one process that record and flush.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `work` with nothing else recording in this test process, and returns what it recorded.
pub fn record(work: impl FnOnce()) -> Profile {
    let _serial = serial();
    profiler_runtime::enable();
    let _ = profiler_runtime::flush();
    work();
    let profile = profiler_runtime::flush();
    profile.validate().expect("well-formed timeline");
    profile
}

/// The timeline of the calling thread (found by its name).
pub fn this_thread(profile: &Profile) -> &ThreadTimeline {
    let name = std::thread::current().name().map(str::to_owned);
    profile
        .threads
        .iter()
        .find(|t| Some(&t.name) == name.as_ref())
        .unwrap_or_else(|| panic!("no timeline for thread {name:?}"))
}

/// One thread's spans as an indented tree of the last path segments of the names (the test's
/// own module path is noise), two spaces per depth.
pub fn tree(profile: &Profile, thread: &ThreadTimeline) -> String {
    let mut out = String::new();
    for span in &thread.spans {
        let name = &profile.function(span.function).name;
        let short = name.rsplit("::").next().unwrap_or(name);
        out.push_str(&"  ".repeat(span.depth as usize));
        out.push_str(short);
        if span.flags.incomplete {
            out.push_str(" (incomplete)");
        }
        out.push('\n');
    }
    out
}

/// Asserts that the file at `path` still holds `old`, byte for byte (a failure gives the sizes,
/// not the bytes).
pub fn assert_unchanged(path: &std::path::Path, old: &[u8]) {
    let now = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        now == old,
        "{} changed: {} bytes now, {} before",
        path.display(),
        now.len(),
        old.len()
    );
}
