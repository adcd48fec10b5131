//! Small helpers the case studies use to read figures out of a merged [`Profile`]: call counts
//! and times per function, async wall time against busy (polled) time, and writing a profile to
//! `<prefix>-<variant>.trace.json` / `.speedscope.json`.

use std::path::{Path, PathBuf};

use profiler_runtime::export::{export_profile, ExportError, Format};
use profiler_runtime::Profile;

/// Calls and time of one function (or scope, or context) in a profile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Completed calls that began in this profile.
    pub calls: u64,
    /// Inclusive time of all its spans, in nanoseconds.
    pub total_ns: u64,
}

impl Totals {
    /// Mean inclusive time per call in nanoseconds (0 without calls).
    pub fn mean_ns(&self) -> u64 {
        self.total_ns.checked_div(self.calls).unwrap_or(0)
    }
}

/// Whether a recorded name denotes `name`: equal, or ending in `::name` (so `query` matches
/// `my_crate::Db::query` but not `my_crate::Db::subquery`).
fn matches(recorded: &str, name: &str) -> bool {
    recorded == name
        || recorded
            .strip_suffix(name)
            .is_some_and(|head| head.ends_with("::"))
}

/// Sums the spans on all threads of every function whose name is `name` or ends in `::name`.
/// For an `async fn` these are its polls.
pub fn totals(profile: &Profile, name: &str) -> Totals {
    let mut totals = Totals::default();
    for thread in &profile.threads {
        for span in &thread.spans {
            if matches(&profile.function(span.function).name, name) {
                totals.total_ns += span.duration_ns();
                if !span.flags.continued {
                    totals.calls += 1;
                }
            }
        }
    }
    totals
}

/// The life of an `async fn`'s calls against the time spent inside their polls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AsyncTotals {
    /// Calls (async spans) of the function.
    pub calls: u64,
    /// Sum over calls of first poll to completion, in nanoseconds.
    pub wall_ns: u64,
    /// Sum of all its polls, in nanoseconds: the time it actually ran.
    pub busy_ns: u64,
    /// Number of polls.
    pub polls: u64,
}

impl AsyncTotals {
    /// Wall time not spent in a poll: waiting to be woken, or woken and waiting for a thread.
    pub fn between_polls_ns(&self) -> u64 {
        self.wall_ns.saturating_sub(self.busy_ns)
    }
}

/// Wall and busy time of the `async fn` named `name` (matched as in [`totals`]).
pub fn async_totals(profile: &Profile, name: &str) -> AsyncTotals {
    let polls = totals(profile, name);
    let mut out = AsyncTotals {
        busy_ns: polls.total_ns,
        polls: polls.calls,
        ..AsyncTotals::default()
    };
    for span in &profile.async_spans {
        if matches(&profile.function(span.function).name, name) {
            out.calls += 1;
            out.wall_ns += span.end_ns - span.start_ns;
        }
    }
    out
}

/// Milliseconds with two decimals, for printing nanoseconds.
pub fn ms(ns: u64) -> String {
    format!("{:.2} ms", ns as f64 / 1e6)
}

/// Microseconds with one decimal, for printing nanoseconds.
pub fn us(ns: u64) -> String {
    format!("{:.1} us", ns as f64 / 1e3)
}

/// Writes `profile` as `<prefix><suffix>.trace.json` and `<prefix><suffix>.speedscope.json`,
/// creating the directory, and returns the paths.
///
/// # Errors
///
/// The first file that could not be created or written.
pub fn write_profile(
    profile: &Profile,
    prefix: &Path,
    suffix: &str,
) -> Result<Vec<PathBuf>, ExportError> {
    let mut base = prefix.as_os_str().to_owned();
    base.push(suffix);
    let base = PathBuf::from(base);
    if let Some(dir) = base.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ExportError::Io {
            path: dir.to_owned(),
            source,
        })?;
    }
    let mut written = Vec::new();
    for format in [Format::ChromeTrace, Format::Speedscope] {
        let mut name = base.clone().into_os_string();
        name.push(format.extensions()[0]);
        let path = PathBuf::from(name);
        export_profile(profile, &path, Some(format))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn names_match_whole_path_segments() {
        assert!(matches("app::Db::query", "query"));
        assert!(matches("app::Db::query", "Db::query"));
        assert!(matches("lock wait", "lock wait"));
        assert!(!matches("app::Db::subquery", "query"));
        assert!(!matches("app::Db::query_all", "query"));
    }
}
