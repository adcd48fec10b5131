//! A file that cannot be written whole is not written at all: on a full or read-only disk the
//! previous export or baseline stays byte for byte, no partial or temporary file is left, and
//! the guard's `finish` reports every file it could not write, not only the first.
//!
//! The full and read-only disks are small tmpfs mounts; where the machine refuses to mount one,
//! those tests say so on stderr and pass (the writer-failure unit tests of `atomic_file` cover the
//! same logic without a mount). The guard's own failures need no mount.

use std::path::{Path, PathBuf};

use profiler_runtime::baseline::{Baseline, BaselineError, Fingerprint, Run, RunFunction};
use profiler_runtime::export::{export_profile, ExportError, Format};
use profiler_runtime::{Config, Profile};
use profiler_tests::assert_unchanged;
use profiler_tests::synthetic::{call, ProfileBuilder};
use profiler_tests::tmpfs::mount_or_skip;

/// A profile of `calls` calls of as many functions: its Chrome trace takes about 150 bytes a call.
fn profile(calls: u32) -> Profile {
    let mut b = ProfileBuilder::new(u64::from(calls) * 10);
    let roots = (0..calls)
        .map(|i| {
            let f = b.function(&format!("app::module::function_number_{i}"));
            call(f, u64::from(i) * 10, u64::from(i) * 10 + 5, vec![])
        })
        .collect();
    b.thread("main", roots);
    b.build()
}

/// A baseline of three runs of `functions` functions.
fn baseline(functions: u32) -> Baseline {
    let run = Run::new(
        (0..functions)
            .map(|i| RunFunction::from_totals(&format!("app::function_number_{i}"), 10, 1_000))
            .collect(),
    );
    Baseline::from_runs(
        Fingerprint::current("atomic"),
        &[run.clone(), run.clone(), run],
    )
    .unwrap()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// A fresh, empty folder for one test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "profiler-atomic-writes-{}-{test}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn an_export_that_does_not_fit_on_the_disk_keeps_the_old_file_whole() {
    let Some(disk) = mount_or_skip("export-full", 64) else {
        return;
    };
    let path = disk.path().join("run.trace.json");
    export_profile(&profile(10), &path, None).unwrap();
    let good = std::fs::read(&path).unwrap();

    // About 150 KB: more than the whole disk.
    let error = export_profile(&profile(1000), &path, None).unwrap_err();
    assert!(
        matches!(&error, ExportError::Io { path: p, .. } if *p == path),
        "{error}"
    );
    assert!(error.to_string().contains("No space left"), "{error}");
    assert_unchanged(&path, &good);
    assert_eq!(names_in(disk.path()), ["run.trace.json"]);
}

#[test]
fn a_baseline_that_does_not_fit_on_the_disk_keeps_the_old_baseline_whole() {
    let Some(disk) = mount_or_skip("baseline-full", 64) else {
        return;
    };
    let path = disk.path().join("main.baseline.json");
    baseline(2).save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();

    let error = baseline(1000).save(&path).unwrap_err();
    assert!(
        matches!(&error, BaselineError::Io { path: p, .. } if *p == path),
        "{error}"
    );
    assert_unchanged(&path, &good);
    assert_eq!(names_in(disk.path()), ["main.baseline.json"]);
    assert_eq!(Baseline::load(&path).unwrap().functions.len(), 2);
}

#[test]
fn an_export_onto_a_read_only_disk_keeps_the_old_file() {
    let Some(disk) = mount_or_skip("export-read-only", 64) else {
        return;
    };
    let path = disk.path().join("run.csv");
    export_profile(&profile(3), &path, None).unwrap();
    let good = std::fs::read(&path).unwrap();
    if let Err(reason) = disk.make_read_only() {
        eprintln!("skipped: cannot remount the tmpfs read-only ({reason})");
        return;
    }
    let error = export_profile(&profile(5), &path, None).unwrap_err();
    assert!(error.to_string().contains("Read-only"), "{error}");
    assert_unchanged(&path, &good);
    assert_eq!(names_in(disk.path()), ["run.csv"]);
}

/// A guard writing `formats` to `prefix`, finished at once.
fn finish(prefix: &Path, formats: &[Format]) -> Result<Vec<PathBuf>, String> {
    let _serial = profiler_tests::serial();
    Config::new()
        .output(prefix)
        .formats(formats)
        .quiet(true)
        .init()
        .finish()
        .map_err(|e| e.to_string())
}

#[test]
fn finish_names_every_file_it_could_not_write_not_only_the_first() {
    let dir = temp_dir("collisions");
    // A folder where a file should go cannot be replaced by it, not even by root.
    for name in ["run.trace.json", "run.csv"] {
        std::fs::create_dir(dir.join(name)).unwrap();
    }
    let error = finish(
        &dir.join("run"),
        &[Format::ChromeTrace, Format::Json, Format::Csv],
    )
    .unwrap_err();
    for name in ["run.trace.json", "run.csv"] {
        assert!(
            error.contains(&format!("cannot write {}", dir.join(name).display())),
            "{name}: {error}"
        );
    }
    // The format between the two failures was written all the same.
    assert!(dir.join("run.json").is_file());
    assert_eq!(
        names_in(&dir),
        [
            "run.csv",
            "run.json",
            "run.perfetto-trace",
            "run.trace.json"
        ]
    );
}

#[test]
fn finish_lists_each_file_under_a_folder_that_cannot_be_created() {
    let dir = temp_dir("uncreatable");
    let blocker = dir.join("blocker");
    std::fs::write(&blocker, b"").unwrap();
    let error = finish(
        &blocker.join("run"),
        &[Format::ChromeTrace, Format::Speedscope, Format::Csv],
    )
    .unwrap_err();
    for name in ["run.trace.json", "run.speedscope.json", "run.csv"] {
        assert!(
            error.contains(&format!("cannot write {}", blocker.join(name).display())),
            "{name}: {error}"
        );
    }
}

#[test]
fn finish_returns_the_failed_and_the_written_files() {
    let dir = temp_dir("structured");
    std::fs::create_dir(dir.join("run.trace.json")).unwrap();
    let _serial = profiler_tests::serial();
    let error = Config::new()
        .output(dir.join("run"))
        .formats(&[Format::ChromeTrace, Format::Json, Format::Csv])
        .quiet(true)
        .init()
        .finish()
        .unwrap_err();
    assert_eq!(error.written(), [dir.join("run.json"), dir.join("run.csv")]);
    let failed: Vec<&Path> = error.failed().iter().map(ExportError::path).collect();
    assert_eq!(failed, [dir.join("run.trace.json")]);
    assert!(
        error
            .to_string()
            .starts_with("1 of 3 profile files not written:\n"),
        "{error}"
    );
}

#[test]
fn finish_on_a_read_only_disk_reports_every_file_and_keeps_the_old_ones() {
    let Some(disk) = mount_or_skip("guard-read-only", 64) else {
        return;
    };
    let prefix = disk.path().join("run");
    let formats = [Format::ChromeTrace, Format::Csv];
    let written = finish(&prefix, &formats).unwrap();
    let old: Vec<Vec<u8>> = written.iter().map(|p| std::fs::read(p).unwrap()).collect();
    if let Err(reason) = disk.make_read_only() {
        eprintln!("skipped: cannot remount the tmpfs read-only ({reason})");
        return;
    }
    let error = finish(&prefix, &formats).unwrap_err();
    for (path, old) in written.iter().zip(&old) {
        assert!(
            error.contains(&format!("cannot write {}", path.display())),
            "{}: {error}",
            path.display()
        );
        assert_unchanged(path, old);
    }
    assert_eq!(names_in(disk.path()), ["run.csv", "run.trace.json"]);
}

#[test]
fn a_flight_recorder_dump_names_every_file_it_could_not_write() {
    let dir = temp_dir("dump");
    let blocker = dir.join("blocker");
    std::fs::write(&blocker, b"").unwrap();
    let error = profiler_runtime::production::sampling::dump_flight_recorder(
        blocker.join("slow"),
        &[Format::ChromeTrace, Format::Speedscope],
    )
    .unwrap_err();
    let failed: Vec<&Path> = error.failed().iter().map(ExportError::path).collect();
    assert_eq!(
        failed,
        [
            blocker.join("slow.trace.json"),
            blocker.join("slow.speedscope.json")
        ]
    );
    assert!(error.written().is_empty());
}
