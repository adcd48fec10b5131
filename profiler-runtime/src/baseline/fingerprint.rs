//! What makes two sets of runs comparable: the machine, the build and the workload.

use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::collect::build_info::BuildInfo;

/// The machine the runs were made on: coarse on purpose, so that two runners of the same CI
/// pool match, and a laptop and a runner do not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// The CPU model (`model name` of `/proc/cpuinfo`), or `unknown`.
    pub cpu_model: String,
    /// Logical CPUs available to the process.
    pub cores: u32,
    /// Total memory in MiB (`MemTotal` of `/proc/meminfo`), 0 when unknown.
    pub memory_mib: u64,
    /// `std::env::consts::OS` and `ARCH`, e.g. `linux x86_64`.
    pub os: String,
}

impl MachineInfo {
    /// Describes this machine. Never fails: what cannot be read is `unknown` or 0.
    pub fn current() -> MachineInfo {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        MachineInfo {
            cpu_model: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".to_owned()),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get() as u32),
            memory_mib: mem_total_kib(&meminfo).map_or(0, |kib| kib / 1024),
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let key = key.trim();
        (key == "model name" || key == "Processor" || key == "cpu model")
            .then(|| value.trim().to_owned())
    })
}

fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix("MemTotal:")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The source revision: the git commit and whether the work tree had changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// The commit hash, `None` outside a git work tree or without `git`.
    pub commit: Option<String>,
    /// Whether tracked files differed from the commit (`None` when unknown).
    pub dirty: Option<bool>,
}

impl SourceInfo {
    /// Asks `git` in the current directory. Absence of `git` or of a repository gives `None`s.
    pub fn current() -> SourceInfo {
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        let commit = git(&["rev-parse", "HEAD"]);
        let dirty = commit
            .as_ref()
            .and_then(|_| git(&["status", "--porcelain", "--untracked-files=no"]))
            .map(|s| !s.is_empty());
        SourceInfo { commit, dirty }
    }
}

/// Everything that decides whether two sets of runs may be compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The profiler that measured, e.g. `profiler-runtime 0.1.0`.
    pub tool: String,
    /// The workload's name (a benchmark, a test program).
    pub workload: String,
    /// The machine.
    pub machine: MachineInfo,
    /// The build of the profiled program.
    pub build: BuildInfo,
    /// The source revision.
    pub source: SourceInfo,
}

/// One way in which two fingerprints differ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FingerprintDifference {
    /// The field, e.g. `machine.cpu_model`.
    pub field: String,
    /// Its value in the baseline.
    pub baseline: String,
    /// Its value in the new runs.
    pub new: String,
    /// Whether the difference makes times incomparable (machine, compiler, profile) rather than
    /// merely worth knowing (commit, tool version).
    pub affects_times: bool,
}

impl Fingerprint {
    /// This machine, this binary's build, the git revision of the current directory.
    ///
    /// # Examples
    ///
    /// ```
    /// let here = profiler_runtime::baseline::Fingerprint::current("my-bench");
    /// assert!(here.differences(&here).is_empty());
    /// ```
    pub fn current(workload: &str) -> Fingerprint {
        Fingerprint {
            tool: crate::baseline::TOOL.to_owned(),
            workload: workload.to_owned(),
            machine: MachineInfo::current(),
            build: BuildInfo::of_this_build(),
            source: SourceInfo::current(),
        }
    }

    /// The fields that differ between `self` (the baseline) and `new`. The commit is expected to
    /// differ and is reported as not affecting times.
    /// The fingerprint of `runs` of `workload` made on this machine: the build comes from the
    /// runs' profiles when they record it (a profile written by this crate does), so a baseline
    /// saved by the `profiler` command describes the workload's build, not the command's.
    pub fn for_runs(workload: &str, runs: &[super::Run]) -> Fingerprint {
        let mut fingerprint = Fingerprint::current(workload);
        if let Some(build) = runs.iter().find_map(|r| r.build.clone()) {
            fingerprint.build = build;
        }
        fingerprint
    }

    /// Differences from `new`'s fingerprint.
    pub fn differences(&self, new: &Fingerprint) -> Vec<FingerprintDifference> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".to_owned());
        let flag = |v: Option<bool>| v.map_or_else(|| "unknown".to_owned(), |b| b.to_string());
        let fields: [(&str, String, String, bool); 11] = [
            ("tool", self.tool.clone(), new.tool.clone(), false),
            (
                "workload",
                self.workload.clone(),
                new.workload.clone(),
                true,
            ),
            (
                "machine.cpu_model",
                self.machine.cpu_model.clone(),
                new.machine.cpu_model.clone(),
                true,
            ),
            (
                "machine.cores",
                self.machine.cores.to_string(),
                new.machine.cores.to_string(),
                true,
            ),
            (
                "machine.memory_mib",
                self.machine.memory_mib.to_string(),
                new.machine.memory_mib.to_string(),
                true,
            ),
            (
                "machine.os",
                self.machine.os.clone(),
                new.machine.os.clone(),
                true,
            ),
            (
                "build.rustc",
                self.build.rustc.clone(),
                new.build.rustc.clone(),
                true,
            ),
            (
                "build.target",
                self.build.target.clone(),
                new.build.target.clone(),
                true,
            ),
            (
                "build.profile",
                self.build.profile.clone(),
                new.build.profile.clone(),
                true,
            ),
            (
                "build.features",
                self.build.features.clone(),
                new.build.features.clone(),
                true,
            ),
            (
                "source.dirty",
                flag(self.source.dirty),
                flag(new.source.dirty),
                false,
            ),
        ];
        let mut out: Vec<FingerprintDifference> = fields
            .into_iter()
            .filter(|(_, a, b, _)| a != b)
            .map(
                |(field, baseline, new, affects_times)| FingerprintDifference {
                    field: field.to_owned(),
                    baseline,
                    new,
                    affects_times,
                },
            )
            .collect();
        if self.source.commit != new.source.commit {
            out.push(FingerprintDifference {
                field: "source.commit".to_owned(),
                baseline: opt(&self.source.commit),
                new: opt(&new.source.commit),
                affects_times: false,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_model_and_memory() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(cpu_model("processor: 0\n"), None);
        assert_eq!(
            mem_total_kib("MemTotal:       8131072 kB\nMemFree: 1 kB\n"),
            Some(8_131_072)
        );
    }

    #[test]
    fn differences_name_the_fields() {
        let a = Fingerprint::current("w");
        let mut b = a.clone();
        b.machine.cpu_model = "Other CPU".to_owned();
        b.source.commit = Some("abc".to_owned());
        let diff = a.differences(&b);
        let fields: Vec<&str> = diff.iter().map(|d| d.field.as_str()).collect();
        assert!(fields.contains(&"machine.cpu_model"));
        assert!(diff
            .iter()
            .any(|d| d.field == "machine.cpu_model" && d.affects_times));
        if a.source.commit.as_deref() != Some("abc") {
            assert!(diff
                .iter()
                .any(|d| d.field == "source.commit" && !d.affects_times));
        }
    }
}
