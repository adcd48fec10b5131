//! Wall time, process CPU time and resident memory, for the whole-run figures.

use std::time::{Duration, Instant};

use cpu_time::ProcessTime;

/// A wall-clock and process-CPU-time stopwatch. Process CPU time counts every thread of the
/// process, so a profiler's background threads show up in it even when the measuring thread
/// does not wait for them.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    wall: Instant,
    cpu: ProcessTime,
}

/// What a [`Stopwatch`] measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Elapsed {
    /// Wall-clock time.
    pub wall: Duration,
    /// CPU time of all the process's threads (user + system).
    pub cpu: Duration,
}

impl Stopwatch {
    /// Starts both clocks.
    pub fn start() -> Self {
        Stopwatch {
            cpu: ProcessTime::now(),
            wall: Instant::now(),
        }
    }

    /// Time since [`start`](Self::start).
    pub fn elapsed(&self) -> Elapsed {
        let wall = self.wall.elapsed();
        Elapsed {
            wall,
            cpu: self.cpu.elapsed(),
        }
    }
}

impl std::ops::AddAssign for Elapsed {
    fn add_assign(&mut self, other: Elapsed) {
        self.wall += other.wall;
        self.cpu += other.cpu;
    }
}

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`), or `None` where there is no such
/// file (not Linux).
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| {
        l.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    let kib: u64 = line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Current resident set size in bytes.
pub fn rss_bytes() -> Option<u64> {
    proc_status_bytes("VmRSS")
}

/// Peak resident set size in bytes (high-water mark since the process started).
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_bytes("VmHWM")
}

/// Bytes as MiB with one decimal, or `n/a`.
pub fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "n/a".to_owned(),
        |b| format!("{:.1}", b as f64 / f64::from(1u32 << 20)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_on_linux() {
        if cfg!(target_os = "linux") {
            let rss = rss_bytes().expect("VmRSS");
            let peak = peak_rss_bytes().expect("VmHWM");
            assert!(rss > 0 && peak >= rss);
        }
        assert_eq!(mib(Some(3 << 20)), "3.0");
        assert_eq!(mib(None), "n/a");
    }
}
