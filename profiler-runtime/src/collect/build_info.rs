//! How the profiled program was built (recorded in every profile, for comparability).

#[cfg(feature = "analysis")]
use serde::{Deserialize, Serialize};

/// How the profiled program was built. Captured when `profiler-runtime` is compiled, by the same
/// `rustc`, for the same target and profile as the program that links it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "analysis", derive(Serialize, Deserialize))]
pub struct BuildInfo {
    /// `rustc -V` of the compiler, e.g. `rustc 1.85.0 (4d91de4e4 2025-02-17)`.
    pub rustc: String,
    /// The target triple, e.g. `x86_64-unknown-linux-gnu`.
    pub target: String,
    /// `debug` or `release` (cargo's view: `release` for profiles that inherit from it).
    pub profile: String,
    /// The features of `profiler-runtime` that were on, comma-separated and sorted.
    pub features: String,
}

impl BuildInfo {
    /// The build of this binary.
    ///
    /// The compiler's version is taken at build time (a build script runs `$RUSTC -V`), not from
    /// `rustc -V` when a baseline is saved: the toolchain on `PATH` at that moment need not be
    /// the one that compiled the program (rustup overrides, a CI image updated between steps).
    ///
    /// # Examples
    ///
    /// ```
    /// let build = profiler_runtime::BuildInfo::of_this_build();
    /// assert!(build.rustc.starts_with("rustc") || build.rustc == "unknown");
    /// ```
    pub fn of_this_build() -> BuildInfo {
        BuildInfo {
            rustc: env!("PROFILER_BUILD_RUSTC").to_owned(),
            target: env!("PROFILER_BUILD_TARGET").to_owned(),
            profile: env!("PROFILER_BUILD_PROFILE").to_owned(),
            features: env!("PROFILER_BUILD_FEATURES").to_owned(),
        }
    }
}

/// `profiler-runtime <version>`, written into every export.
pub(crate) const EXPORTER: &str = concat!("profiler-runtime ", env!("CARGO_PKG_VERSION"));

/// The `$schema` by which Speedscope (and `import`) recognise a Speedscope file.
pub(crate) const SPEEDSCOPE_SCHEMA: &str = "https://www.speedscope.app/file-format-schema.json";
