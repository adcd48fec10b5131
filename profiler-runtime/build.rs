//! Records how this crate was built, for the fingerprint of baselines and profiles
//! (`BuildInfo::of_this_build`): the compiler's version, the target, the profile and
//! the crate's features. The workload links this crate and is compiled by the same `rustc`, for
//! the same target and profile, so the values describe the profiled program's build.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = Command::new(&rustc)
        .arg("-V")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".to_owned(), |v| v.trim().to_owned());
    println!("cargo:rustc-env=PROFILER_BUILD_RUSTC={version}");
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=PROFILER_BUILD_TARGET={target}");
    let profile = std::env::var("PROFILE").unwrap_or_default();
    println!("cargo:rustc-env=PROFILER_BUILD_PROFILE={profile}");
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(str::to_owned))
        .map(|f| f.to_ascii_lowercase().replace('_', "-"))
        .collect();
    features.sort();
    println!(
        "cargo:rustc-env=PROFILER_BUILD_FEATURES={}",
        features.join(",")
    );
}
