//! What the guard says on stderr when the program ends, and what it does with a bad
//! `PROFILER_FORMATS`: checked on a real program (`src/bin/guard_exit.rs`) run as a child
//! process, the only way to read its stderr.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh, empty folder for one test.
fn temp_dir(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("profiler-guard-exit-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the program recording `calls` calls, with `PROFILER_OUTPUT=<output>` and `env`; returns
/// its stderr after checking that it exited with 0.
fn run(output: &Path, calls: u64, env: &[(&str, &str)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_guard_exit"));
    command
        .arg(calls.to_string())
        .env("PROFILER_OUTPUT", output);
    // The test's own environment must not change what the program does.
    for var in [
        "PROFILER_FORMATS",
        "PROFILER_QUIET",
        "PROFILER_BUFFER_EVENTS",
        "PROFILER_COLLECT_INTERVAL_MS",
        "PROFILER_ENABLED",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let out = command.output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{}: {stderr}", out.status);
    stderr
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn at_exit_says_where_the_files_went_and_what_they_hold() {
    let dir = temp_dir("default");
    let prefix = dir.join("run");
    let stderr = run(&prefix, 25, &[]);
    let trace = dir.join("run.trace.json");
    let speedscope = dir.join("run.speedscope.json");
    let streamed = dir.join("run.perfetto-trace");
    let bytes = std::fs::metadata(&streamed).unwrap().len();
    // The streamed trace first (50 events: an enter and an exit a call), then the formats made
    // from it at exit.
    assert_eq!(
        stderr,
        format!(
            "profiler: 25 spans on 1 thread, no events dropped\n\
             profiler: wrote {} (50 events streamed, {bytes} bytes)\n\
             profiler: wrote {}\n\
             profiler: wrote {}\n",
            streamed.display(),
            trace.display(),
            speedscope.display()
        )
    );
    assert_eq!(
        files_in(&dir),
        [
            "run.perfetto-trace",
            "run.speedscope.json",
            "run.trace.json"
        ]
    );
    // Without streaming, only the formats.
    let dir = temp_dir("in-memory");
    let stderr = run(&dir.join("run"), 25, &[("PROFILER_STREAM", "0")]);
    assert!(!stderr.contains("streamed"), "{stderr}");
    assert_eq!(files_in(&dir), ["run.speedscope.json", "run.trace.json"]);
}

#[test]
fn quiet_says_nothing_and_still_writes() {
    for (var, value) in [("PROFILER_QUIET", "1"), ("PROFILER_QUIET", "true")] {
        let dir = temp_dir(&format!("quiet-{value}"));
        let stderr = run(&dir.join("run"), 5, &[(var, value)]);
        assert_eq!(stderr, "", "{var}={value}");
        assert_eq!(
            files_in(&dir),
            [
                "run.perfetto-trace",
                "run.speedscope.json",
                "run.trace.json"
            ]
        );
    }
    let dir = temp_dir("quiet-0");
    let stderr = run(&dir.join("run"), 5, &[("PROFILER_QUIET", "0")]);
    assert!(stderr.starts_with("profiler: 5 spans"), "{stderr}");
}

#[test]
fn dropped_events_are_reported_with_the_setting_that_avoids_them() {
    let dir = temp_dir("dropped");
    // A ring of 16 events and no collector to drain it: most of the 1000 calls are dropped.
    let stderr = run(
        &dir.join("run"),
        1000,
        &[
            ("PROFILER_BUFFER_EVENTS", "16"),
            ("PROFILER_COLLECT_INTERVAL_MS", "0"),
        ],
    );
    let first = stderr.lines().next().unwrap();
    assert!(first.contains("events DROPPED"), "{stderr}");
    let dropped: u64 = first
        .split(", ")
        .nth(1)
        .and_then(|d| d.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count of dropped events: {first}"));
    let spans: u64 = first["profiler: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // Each call is an enter and an exit: recorded and dropped calls make up the 1000.
    assert_eq!(spans + dropped / 2, 1000, "{stderr}");
    assert!(
        stderr.contains("PROFILER_BUFFER_EVENTS (now 16 per thread)")
            && stderr.contains("PROFILER_COLLECT_INTERVAL_MS"),
        "{stderr}"
    );
    // Not streamed, the same advice (the background collector is what the setting turned off).
    let dir = temp_dir("dropped-in-memory");
    let stderr = run(
        &dir.join("run"),
        1000,
        &[
            ("PROFILER_BUFFER_EVENTS", "16"),
            ("PROFILER_COLLECT_INTERVAL_MS", "0"),
            ("PROFILER_STREAM", "off"),
        ],
    );
    assert!(
        stderr.contains("let the background collector drain the rings during the run"),
        "{stderr}"
    );
}

#[test]
fn formats_from_the_environment_are_the_files_written() {
    let dir = temp_dir("formats");
    let stderr = run(
        &dir.join("run"),
        3,
        &[("PROFILER_FORMATS", "CSV, json,csv")],
    );
    assert_eq!(
        files_in(&dir),
        ["run.csv", "run.json", "run.perfetto-trace"]
    );
    assert!(stderr.ends_with(&format!(
        "profiler: wrote {}\nprofiler: wrote {}\n",
        dir.join("run.csv").display(),
        dir.join("run.json").display()
    )));
}

#[test]
fn an_unknown_format_is_an_error_naming_the_valid_ones_and_the_profile_is_still_written() {
    let dir = temp_dir("bogus");
    let stderr = run(&dir.join("run"), 3, &[("PROFILER_FORMATS", "chrome,bogus")]);
    let first = stderr.lines().next().unwrap();
    assert!(
        first.starts_with("profiler: PROFILER_FORMATS=\"chrome,bogus\": unknown format `bogus`"),
        "{stderr}"
    );
    for name in [
        "chrome",
        "speedscope",
        "json",
        "csv",
        "folded",
        "flamegraph",
        "icicle",
    ] {
        assert!(first.contains(name), "{name}: {first}");
    }
    assert!(
        first.ends_with("; writing chrome, speedscope instead"),
        "{first}"
    );
    // Not half applied: the configured formats, and the exit message says so.
    assert_eq!(
        files_in(&dir),
        [
            "run.perfetto-trace",
            "run.speedscope.json",
            "run.trace.json"
        ]
    );
    assert!(stderr.contains("profiler: wrote "), "{stderr}");
}

#[test]
fn a_file_that_cannot_be_written_is_reported_with_its_error() {
    let dir = temp_dir("unwritable");
    // The output's folder is a file: neither the folder nor the files can be created.
    let blocker = dir.join("blocker");
    std::fs::write(&blocker, b"").unwrap();
    let stderr = run(
        &blocker.join("run"),
        3,
        &[("PROFILER_FORMATS", "chrome,csv")],
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    // The stream cannot be opened either: said at once, and the run is kept in memory.
    assert!(
        lines[0].starts_with(&format!(
            "profiler: cannot stream to {}: ",
            blocker.join("run.perfetto-trace").display()
        )) && lines[0].ends_with("; keeping the run in memory until the flush"),
        "{stderr}"
    );
    for (line, name) in lines[1..].iter().zip(["run.trace.json", "run.csv"]) {
        assert!(
            line.starts_with(&format!(
                "profiler: cannot write {}: cannot create the directory {}",
                blocker.join(name).display(),
                blocker.display()
            )),
            "{line}"
        );
    }
}

#[test]
fn every_file_that_cannot_be_written_is_listed_and_the_others_are_written() {
    let dir = temp_dir("collisions");
    // A folder where a file should go cannot be replaced by it, not even by root.
    for name in ["run.trace.json", "run.csv"] {
        std::fs::create_dir(dir.join(name)).unwrap();
    }
    let stderr = run(
        &dir.join("run"),
        3,
        &[("PROFILER_FORMATS", "chrome,json,csv")],
    );
    assert!(
        stderr.contains(&format!(
            "profiler: wrote {}\n",
            dir.join("run.json").display()
        )),
        "{stderr}"
    );
    for name in ["run.trace.json", "run.csv"] {
        assert!(
            stderr.contains(&format!(
                "profiler: cannot write {}: ",
                dir.join(name).display()
            )),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn on_a_full_disk_each_file_is_reported_and_the_previous_run_s_files_stay_whole() {
    let Some(disk) = profiler_tests::tmpfs::mount_or_skip("guard-full-disk", 64) else {
        return;
    };
    let prefix = disk.path().join("run");
    run(&prefix, 3, &[]);
    let names = ["run.speedscope.json", "run.trace.json"];
    let old: Vec<Vec<u8>> = names
        .iter()
        .map(|name| std::fs::read(disk.path().join(name)).unwrap())
        .collect();

    // 20,000 calls: each file alone is larger than the disk (the streamed trace, compressed,
    // still fits).
    let stderr = run(&prefix, 20_000, &[("PROFILER_QUIET", "1")]);
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    for (name, old) in names.iter().zip(&old) {
        let path = disk.path().join(name);
        assert!(
            stderr.contains(&format!("profiler: cannot write {}: ", path.display())),
            "{name}: {stderr}"
        );
        profiler_tests::assert_unchanged(&path, old);
    }
    assert_eq!(
        files_in(disk.path()),
        [
            "run.perfetto-trace",
            "run.speedscope.json",
            "run.trace.json"
        ]
    );
}

#[test]
fn a_disk_that_fills_stops_the_stream_with_an_error_and_the_file_keeps_what_came_before() {
    let Some(disk) = profiler_tests::tmpfs::mount_or_skip("guard-full-stream", 64) else {
        return;
    };
    let prefix = disk.path().join("run");
    // Two million calls: far more than 64 KiB even compressed.
    let stderr = run(
        &prefix,
        2_000_000,
        &[("PROFILER_QUIET", "1"), ("PROFILER_FORMATS", "csv")],
    );
    let streamed = disk.path().join("run.perfetto-trace");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "profiler: writing {} failed (",
            streamed.display()
        )) && first.contains("No space left on device")
            && first.ends_with("events not written; it holds what came before"),
        "{stderr}"
    );
    // What was written before the disk filled loads, and holds calls.
    let file = std::fs::File::open(&streamed).unwrap();
    let profile = profiler_runtime::import::read_perfetto(file, u64::MAX).unwrap();
    assert!(
        profile.span_count() > 1000,
        "{} spans",
        profile.span_count()
    );
    assert!(profile.validate().is_ok());
}
