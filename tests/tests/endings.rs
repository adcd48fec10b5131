//! How a streaming run ends (issue 15): a real program (`src/bin/endings_child.rs`) recording on
//! several threads is ended by SIGINT, SIGTERM, SIGHUP, `process::exit(3)` and `abort`, by a
//! SIGINT its own handler catches, and by a SIGINT with `PROFILER_SIGNALS=0`. Each time the exit
//! status must be the one the ending implies, and the streamed `.perfetto-trace` must load with
//! every thread, spans that nest, and every call that had returned before the ending.

#![cfg(unix)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use profiler_runtime::{import::read_perfetto, Profile};

const THREADS: usize = 4;
const CALLS: u64 = 200;
/// The collect interval the children run with (the default).
const INTERVAL_MS: u64 = 10;

/// A fresh, empty folder for one test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("profiler-endings-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs one child at a time, across test processes too (nextest runs each test in its own): the
/// bound on what `abort` loses holds for a collector that gets the CPU, which several children of
/// five busy threads each, on a small machine, would deny it.
#[allow(unsafe_code)]
fn one_at_a_time() -> std::fs::File {
    use std::os::fd::AsRawFd as _;
    let lock = std::fs::File::create(std::env::temp_dir().join("profiler-endings.lock")).unwrap();
    // SAFETY: `flock` on a descriptor we own and keep open; the lock goes with the file.
    let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(locked, 0, "flock");
    lock
}

struct Run {
    _lock: std::fs::File,
    child: Child,
    /// Each thread's count of returned `outer` calls when the child said `ready`.
    ready: Vec<u64>,
    stdout: BufReader<std::process::ChildStdout>,
}

/// Starts the child in `mode`, writing to `<dir>/run.*`, and waits for its `ready` line.
fn start(dir: &Path, mode: &str, env: &[(&str, &str)]) -> Run {
    let lock = one_at_a_time();
    let mut command = Command::new(env!("CARGO_BIN_EXE_endings_child"));
    command
        .args([mode, &THREADS.to_string(), &CALLS.to_string()])
        .env("PROFILER_OUTPUT", dir.join("run"))
        .env("PROFILER_COLLECT_INTERVAL_MS", INTERVAL_MS.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The test's own environment must not change what the program does.
    for var in [
        "PROFILER_FORMATS",
        "PROFILER_QUIET",
        "PROFILER_BUFFER_EVENTS",
        "PROFILER_ENABLED",
        "PROFILER_STREAM",
        "PROFILER_SIGNALS",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let Some(counts) = line.trim_end().strip_prefix("ready ") else {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "{mode}: no ready line but {line:?}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ready: Vec<u64> = counts.split(' ').map(|c| c.parse().unwrap()).collect();
    assert_eq!(ready.len(), THREADS);
    assert!(ready.iter().all(|&c| c >= CALLS), "{ready:?}");
    Run {
        _lock: lock,
        child,
        ready,
        stdout,
    }
}

#[allow(unsafe_code)]
fn send(child: &Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: `kill` with the pid of our own child, not yet waited for (so not reused).
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

/// Waits for the child (at most 30 s); returns its status, the rest of its stdout and its stderr.
fn finish(mut run: Run) -> (ExitStatus, String, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = run.child.kill();
            panic!("the child did not end within 30 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stdout = String::new();
    run.stdout.read_to_string(&mut stdout).unwrap();
    let mut stderr = String::new();
    run.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stdout, stderr)
}

fn load(dir: &Path) -> Profile {
    let path = dir.join("run.perfetto-trace");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    read_perfetto(file, u64::MAX).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The checks every ending shares: each worker is in the file with its spans, they nest, none
/// was dropped, and each worker's returned calls (`ready`) are all there. With `complete`, no
/// span is left incomplete (the file was completed after the threads stopped).
fn check(what: &str, profile: &Profile, ready: &[u64], complete: bool) {
    if let Err(missing) = check_structure(what, profile, ready, complete) {
        panic!("{missing}");
    }
}

/// [`check`], except that calls missing from the file are returned as an error, not a panic.
fn check_structure(
    what: &str,
    profile: &Profile,
    ready: &[u64],
    complete: bool,
) -> Result<(), String> {
    let function = |i: u32| {
        let name = &profile.functions[i as usize].name;
        name.rsplit("::").next().unwrap().to_owned()
    };
    for (i, &calls) in ready.iter().enumerate() {
        let name = format!("worker-{i}");
        let thread = profile
            .threads
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "{what}: no thread {name} in {:?}",
                    profile.threads.iter().map(|t| &t.name).collect::<Vec<_>>()
                )
            });
        assert_eq!(thread.dropped_events, 0, "{what}: {name} dropped events");
        let mut whole = [0u64; 3];
        let mut incomplete = 0;
        for span in &thread.spans {
            let f = function(span.function);
            let (level, parent) = match f.as_str() {
                "outer" => (0, None),
                "middle" => (1, Some("outer")),
                "leaf" => (2, Some("middle")),
                other => panic!("{what}: {name} has a span of {other}"),
            };
            assert_eq!(
                span.depth, level,
                "{what}: {name}: {f} at depth {}",
                span.depth
            );
            assert!(span.start_ns <= span.end_ns, "{what}: {name}: {span:?}");
            match (span.parent, parent) {
                (None, None) => {}
                (Some(p), Some(parent)) => {
                    let p = thread.spans[p as usize];
                    assert_eq!(function(p.function), parent, "{what}: {name}: {f}'s parent");
                    assert_eq!(p.depth + 1, span.depth, "{what}: {name}");
                    assert!(
                        p.start_ns <= span.start_ns && span.end_ns <= p.end_ns,
                        "{what}: {name}: {f} {span:?} is not within {parent} {p:?}"
                    );
                }
                (got, _) => panic!("{what}: {name}: {f} has parent {got:?}"),
            }
            if span.flags.incomplete {
                incomplete += 1;
            } else {
                whole[level as usize] += 1;
            }
        }
        // At most the one call in progress at the end, at each level.
        let allowed = if complete { 0 } else { 3 };
        assert!(
            incomplete <= allowed,
            "{what}: {name} has {incomplete} incomplete spans"
        );
        if whole[0] < calls || whole[1] < 2 * calls || whole[2] < 2 * calls {
            return Err(format!(
                "{what}: {name} holds {whole:?} outer/middle/leaf calls, but had returned from \
                 {calls} outer calls (each with 2 middle and 2 leaf) before the ending"
            ));
        }
    }
    Ok(())
}

/// For the endings that cut the file (abort, a signal with our handlers off): the calls returned
/// before `ready` must be in the file once the child waited `wait_ms` after it, the collector
/// writing every interval. That holds for a collector that gets the CPU: on a machine busy with
/// other work it may lag by more than the wait, so a miss is tried once more with a wait of a
/// second, which must then hold everything (a file that never holds them fails).
fn check_cut(what: &str, mut run_once: impl FnMut(u64) -> (Profile, Vec<u64>)) {
    let (profile, ready) = run_once(3 * INTERVAL_MS);
    if let Err(missing) = check_structure(what, &profile, &ready, false) {
        eprintln!("{missing}; trying again with a wait of 1 s (a busy machine?)");
        let (profile, ready) = run_once(1000);
        check(what, &profile, &ready, false);
    }
}

fn ended_by_signal(sig: libc::c_int, name: &str) {
    let dir = temp_dir(name);
    let run = start(&dir, "wait", &[]);
    let ready = run.ready.clone();
    send(&run.child, sig);
    let (status, _, stderr) = finish(run);
    assert_eq!(
        status.signal(),
        Some(sig),
        "{name}: {status}; stderr: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "profiler: completed {}",
            dir.join("run.perfetto-trace").display()
        )) && stderr.contains(&format!("at {name}")),
        "{name}: {stderr}"
    );
    check(name, &load(&dir), &ready, false);
}

#[test]
fn sigint_completes_the_file_and_kills_the_process_by_sigint() {
    ended_by_signal(libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_completes_the_file_and_kills_the_process_by_sigterm() {
    ended_by_signal(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sighup_completes_the_file_and_kills_the_process_by_sighup() {
    ended_by_signal(libc::SIGHUP, "SIGHUP");
}

#[test]
fn process_exit_while_threads_record_completes_the_file_and_keeps_the_code() {
    let dir = temp_dir("exit");
    let run = start(&dir, "exit", &[]);
    let ready = run.ready.clone();
    let (status, _, stderr) = finish(run);
    assert_eq!(status.code(), Some(3), "{status}; stderr: {stderr}");
    assert!(stderr.contains("at exit"), "{stderr}");
    check("exit(3)", &load(&dir), &ready, false);
}

#[test]
fn abort_loses_at_most_the_last_collect_interval() {
    check_cut("abort", |wait_ms| {
        let dir = temp_dir("abort");
        // The child sleeps `wait_ms` (three collect intervals) after `ready`, then aborts.
        let run = start(
            &dir,
            "abort",
            &[("ENDINGS_ABORT_AFTER_MS", &wait_ms.to_string())],
        );
        let ready = run.ready.clone();
        let (status, _, stderr) = finish(run);
        assert_eq!(
            status.signal(),
            Some(libc::SIGABRT),
            "{status}; stderr: {stderr}"
        );
        (load(&dir), ready)
    });
}

#[test]
fn a_program_with_its_own_sigint_handler_is_not_killed_and_completes_the_file() {
    let dir = temp_dir("handler");
    let run = start(&dir, "handler", &[]);
    let ready = run.ready.clone();
    send(&run.child, libc::SIGINT);
    let (status, stdout, stderr) = finish(run);
    assert!(status.success(), "{status}; stderr: {stderr}");
    assert_eq!(stdout, "handled\n", "its handler ran; stderr: {stderr}");
    // Ended by the guard at the end of `main`, after the threads were joined.
    assert!(
        stderr.contains(&format!(
            "profiler: wrote {}",
            dir.join("run.perfetto-trace").display()
        )),
        "{stderr}"
    );
    check("own SIGINT handler", &load(&dir), &ready, true);
}

#[test]
fn profiler_signals_0_leaves_sigint_its_default_action_and_the_file_loads() {
    check_cut("PROFILER_SIGNALS=0", |wait_ms| {
        let dir = temp_dir("signals-off");
        let run = start(&dir, "wait", &[("PROFILER_SIGNALS", "0")]);
        let ready = run.ready.clone();
        // What was returned by `ready` is written within an interval; the cut comes later.
        std::thread::sleep(Duration::from_millis(wait_ms));
        send(&run.child, libc::SIGINT);
        let (status, _, stderr) = finish(run);
        assert_eq!(
            status.signal(),
            Some(libc::SIGINT),
            "{status}; stderr: {stderr}"
        );
        assert!(!stderr.contains("profiler: completed"), "{stderr}");
        (load(&dir), ready)
    });
}
