//! Both exports parse back and satisfy their format's rules; awkward names survive; bad paths
//! are errors, not panics; golden files pin the exact output (`PROFILER_BLESS=1` rewrites them).

use std::collections::HashMap;
use std::path::Path;

use profiler_runtime::export::{
    export_profile, write_chrome_trace, write_speedscope, ExportError, Format,
};
use profiler_runtime::{
    AsyncSpan, ClockInfo, ClockKind, FunctionEntry, FunctionKind, Profile, ProfileContext, Span,
    SpanFlags, ThreadTimeline,
};
use serde_json::Value;

const AWKWARD: &str = "quote\" back\\slash, comma <T, U> ünïcødé 🦀\ttab";

fn awkward_scope() {
    profiler_runtime::profile_scope!("quote\" back\\slash, comma <T, U> ünïcødé 🦀\ttab");
    inner();
}

fn inner() {
    profiler_runtime::profile_scope!("inner");
    std::hint::black_box((0..100).sum::<u32>());
}

fn recorded() -> Profile {
    profiler_tests::record(|| {
        let _request = ProfileContext::new("api_request");
        for _ in 0..3 {
            awkward_scope();
        }
        std::thread::Builder::new()
            .name("helper \"thread\"".into())
            .spawn(|| {
                for _ in 0..2 {
                    inner();
                }
            })
            .unwrap()
            .join()
            .unwrap();
    })
}

fn to_json(profile: &Profile, format: Format) -> Value {
    let mut out = Vec::new();
    format.write(profile, &mut out).unwrap();
    serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{format} output is not JSON: {e}"))
}

/// Microseconds back to nanoseconds, rounded as Perfetto does (where boundaries of a thread share
/// a nanosecond, their `ts`/`dur` move by a few ulps so that float-adding viewers keep them in
/// order).
fn ns(v: &Value) -> u64 {
    (v.as_f64().unwrap() * 1000.0).round() as u64
}

#[test]
fn chrome_trace_parses_back_with_exact_nanoseconds_and_nesting() {
    let profile = recorded();
    let json = to_json(&profile, Format::ChromeTrace);
    assert_eq!(json["displayTimeUnit"], "ns");
    assert_eq!(json["otherData"]["dropped_events"], 0);
    let events = json["traceEvents"].as_array().unwrap();
    let process = events.iter().find(|e| e["name"] == "process_name").unwrap();
    assert_eq!(process["ph"], "M");
    assert_eq!(process["args"]["name"], profile.process_name.as_str());

    let thread_names: HashMap<u64, &str> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| {
            (
                e["tid"].as_u64().unwrap(),
                e["args"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(thread_names.values().any(|n| *n == "helper \"thread\""));

    let complete: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(complete.len(), profile.span_count());
    // Every span comes back with its exact start and duration, name and source location.
    let mut by_tid: HashMap<u64, Vec<(u64, u64)>> = HashMap::new();
    for e in &complete {
        let tid = e["tid"].as_u64().unwrap();
        assert!(
            thread_names.contains_key(&tid),
            "thread_name metadata for every tid"
        );
        assert_eq!(e["pid"], profile.pid);
        by_tid
            .entry(tid)
            .or_default()
            .push((ns(&e["ts"]), ns(&e["dur"])));
        assert!(e["args"]["line"].is_u64());
    }
    for thread in &profile.threads {
        let got = &by_tid[&u64::from(thread.tid)];
        let want: Vec<(u64, u64)> = thread
            .spans
            .iter()
            .map(|s| (s.start_ns, s.duration_ns()))
            .collect();
        assert_eq!(got, &want, "thread {}", thread.name);
    }
    let names: Vec<&str> = complete
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&AWKWARD), "awkward name survives escaping");
    assert!(names.contains(&"api_request"));
    let awkward = complete.iter().find(|e| e["name"] == AWKWARD).unwrap();
    assert_eq!(awkward["args"]["file"], file!());
    assert_eq!(awkward["cat"], "scope");
}

#[test]
fn speedscope_file_follows_the_format() {
    let profile = recorded();
    let json = to_json(&profile, Format::Speedscope);
    assert_eq!(
        json["$schema"],
        "https://www.speedscope.app/file-format-schema.json"
    );
    assert!(json["exporter"]
        .as_str()
        .unwrap()
        .starts_with("profiler-runtime "));
    assert!(json["name"].is_string());
    let frames = json["shared"]["frames"].as_array().unwrap();
    assert!(frames
        .iter()
        .any(|f| f["name"] == AWKWARD && f["file"] == file!() && f["line"].is_u64()));
    let profiles = json["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), profile.threads.len());
    let mut opened = 0;
    for p in profiles {
        assert_eq!(p["type"], "evented");
        assert_eq!(p["unit"], "nanoseconds");
        let (start, end) = (
            p["startValue"].as_u64().unwrap(),
            p["endValue"].as_u64().unwrap(),
        );
        let mut stack = Vec::new();
        let mut last_at = start;
        for e in p["events"].as_array().unwrap() {
            let at = e["at"].as_u64().unwrap();
            let frame = e["frame"].as_u64().unwrap();
            assert!((frame as usize) < frames.len());
            assert!(
                at >= last_at && at <= end,
                "events sorted and within the profile"
            );
            last_at = at;
            match e["type"].as_str().unwrap() {
                "O" => {
                    opened += 1;
                    stack.push(frame);
                }
                "C" => assert_eq!(stack.pop(), Some(frame), "closes the innermost open frame"),
                other => panic!("unknown event type {other}"),
            }
        }
        assert!(stack.is_empty(), "every open has a close");
    }
    assert_eq!(opened, profile.span_count());
}

#[test]
fn export_profile_picks_the_format_and_reports_bad_paths() {
    let profile = recorded();
    let dir = std::env::temp_dir().join(format!("profiler-exports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    export_profile(&profile, dir.join("a.trace.json"), None).unwrap();
    export_profile(&profile, dir.join("a.speedscope.json"), None).unwrap();
    let chrome: Value =
        serde_json::from_slice(&std::fs::read(dir.join("a.trace.json")).unwrap()).unwrap();
    assert!(chrome["traceEvents"].is_array());
    let speedscope: Value =
        serde_json::from_slice(&std::fs::read(dir.join("a.speedscope.json")).unwrap()).unwrap();
    assert!(speedscope["profiles"].is_array());

    match export_profile(&profile, dir.join("no-such-dir").join("x.trace.json"), None) {
        Err(ExportError::Io { path, .. }) => assert!(path.ends_with("x.trace.json")),
        other => panic!("expected an I/O error naming the file, got {other:?}"),
    }
    match export_profile(&profile, dir.join("x.unknown"), None) {
        Err(e @ ExportError::UnknownFormat { .. }) => assert!(e.to_string().contains("x.unknown")),
        other => panic!("expected UnknownFormat, got {other:?}"),
    }
    // A read-only target is an error too (skipped when running as a user that can write anyway).
    let readonly = dir.join("readonly.trace.json");
    std::fs::write(&readonly, b"").unwrap();
    let mut perms = std::fs::metadata(&readonly).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&readonly, perms).unwrap();
    let result = export_profile(&profile, &readonly, None);
    if std::fs::OpenOptions::new()
        .write(true)
        .open(&readonly)
        .is_err()
    {
        assert!(matches!(result, Err(ExportError::Io { .. })));
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A hand-built profile: every field fixed, so the output is byte-for-byte stable.
fn synthetic() -> Profile {
    let f = |name: &str, kind| FunctionEntry {
        name: name.into(),
        module_path: "demo".into(),
        file: "src/demo.rs".into(),
        line: 7,
        kind,
        budget_ns: None,
    };
    let span = |function, start_ns, end_ns, depth, parent: Option<u32>| Span {
        function,
        start_ns,
        end_ns,
        depth,
        parent,
        flags: SpanFlags::default(),
    };
    Profile {
        functions: vec![
            f("demo::main", FunctionKind::Function),
            f("demo::<Pool as Source>::get", FunctionKind::Function),
            f(AWKWARD, FunctionKind::Scope),
            f("demo::fetch", FunctionKind::AsyncFunction),
        ],
        threads: vec![
            ThreadTimeline {
                tid: 1,
                name: "main".into(),
                spans: vec![
                    span(0, 1_000, 9_999, 0, None),
                    span(1, 1_001, 2_500, 1, Some(0)),
                    span(2, 1_100, 2_500, 2, Some(1)),
                    span(3, 3_000, 3_250, 1, Some(0)),
                    Span {
                        flags: SpanFlags {
                            incomplete: true,
                            continued: false,
                        },
                        ..span(1, 10_000, 12_000, 0, None)
                    },
                ],
                dropped_events: 4,
                exited: false,
            },
            ThreadTimeline {
                tid: 2,
                name: "worker, \"two\"".into(),
                spans: vec![span(3, 4_000, 4_500, 0, None)],
                dropped_events: 0,
                exited: true,
            },
        ],
        async_spans: vec![AsyncSpan {
            function: 3,
            id: 0x1_0001,
            start_ns: 3_000,
            end_ns: 4_500,
            start_tid: 1,
            end_tid: 2,
            cancelled: false,
            flags: SpanFlags::default(),
        }],
        start_ns: 0,
        end_ns: 12_000,
        epoch_unix_ns: 1_700_000_000_000_000_000,
        clock: ClockInfo {
            kind: ClockKind::Tsc { invariant: true },
            ticks_per_second: 2.5e9,
        },
        dropped_events: 4,
        process_name: "demo".into(),
        pid: 42,
        build: None,
    }
}

fn golden(name: &str, actual: &[u8]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    if std::env::var_os("PROFILER_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with PROFILER_BLESS=1 to create it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs; if the change is intended, run with PROFILER_BLESS=1\n--- actual ---\n{}",
        path.display(),
        String::from_utf8_lossy(actual)
    );
}

#[test]
fn golden_files() {
    let profile = synthetic();
    profile.validate().unwrap();
    let mut chrome = Vec::new();
    write_chrome_trace(&profile, &mut chrome).unwrap();
    golden("synthetic.trace.json", &chrome);
    let mut speedscope = Vec::new();
    write_speedscope(&profile, &mut speedscope).unwrap();
    golden("synthetic.speedscope.json", &speedscope);
    // And they are JSON.
    let _: Value = serde_json::from_slice(&chrome).unwrap();
    let _: Value = serde_json::from_slice(&speedscope).unwrap();
}
