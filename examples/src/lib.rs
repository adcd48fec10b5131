//! Workloads shared by the examples: real work (parsing, hashing, sorting), deterministic, and
//! instrumented with `#[profile]`, so that every tutorial profiles something worth looking at.

pub mod logs;
pub mod measure;

use std::path::PathBuf;

/// Where an example writes its files: `$PROFILER_OUTPUT` if set (a path prefix), else
/// `target/profiles/<example>` in the current directory.
pub fn output_prefix(example: &str) -> PathBuf {
    std::env::var_os("PROFILER_OUTPUT")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || PathBuf::from("target/profiles").join(example),
            PathBuf::from,
        )
}
