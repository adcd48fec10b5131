//! The `profiler` command end to end, on files: summary, convert, flamegraph, and bad input
//! (missing, empty, truncated, wrong kind, newer version) as one line on stderr and exit code 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use profiler_runtime::export::{export_profile, Format};
use profiler_runtime::{
    AsyncSpan, ClockInfo, ClockKind, FunctionEntry, FunctionKind, Profile, Span, SpanFlags,
    ThreadTimeline,
};

fn entry(name: &str, kind: FunctionKind) -> FunctionEntry {
    FunctionEntry {
        name: name.to_owned(),
        module_path: "app".to_owned(),
        file: "src/main.rs".to_owned(),
        line: 1,
        kind,
        budget_ns: None,
    }
}

fn span(function: u32, start_ns: u64, end_ns: u64, depth: u32, parent: Option<u32>) -> Span {
    Span {
        function,
        start_ns,
        end_ns,
        depth,
        parent,
        flags: SpanFlags::default(),
    }
}

/// `app::main` (10 ms) calls `app::parse<K, V>` 3 times (1 ms each) and `app::render` once
/// (5 ms, of which 4 ms in `app::draw`); `app::unused` is never called; `app::fetch` is async.
fn profile() -> Profile {
    let functions = vec![
        entry("app::main", FunctionKind::Function),
        entry("app::parse<K, V>", FunctionKind::Function),
        entry("app::render", FunctionKind::Function),
        entry("app::draw \"fast\"", FunctionKind::Function),
        entry("app::unused", FunctionKind::Function),
        entry("app::fetch", FunctionKind::AsyncFunction),
    ];
    let ms = 1_000_000;
    let spans = vec![
        span(0, 0, 10 * ms, 0, None),
        span(1, ms, 2 * ms, 1, Some(0)),
        span(1, 2 * ms, 3 * ms, 1, Some(0)),
        span(1, 3 * ms, 4 * ms, 1, Some(0)),
        span(2, 4 * ms, 9 * ms, 1, Some(0)),
        span(3, 5 * ms, 9 * ms, 2, Some(4)),
        span(5, 9 * ms, 9 * ms + 500, 1, Some(0)),
    ];
    Profile {
        functions,
        threads: vec![ThreadTimeline {
            tid: 1,
            name: "main".to_owned(),
            spans,
            dropped_events: 0,
            exited: false,
        }],
        async_spans: vec![AsyncSpan {
            function: 5,
            id: 1,
            start_ns: 9 * ms,
            end_ns: 10 * ms,
            start_tid: 1,
            end_tid: 1,
            cancelled: false,
            flags: SpanFlags::default(),
        }],
        start_ns: 0,
        end_ns: 10 * ms,
        epoch_unix_ns: 1_795_595_063_000_000_000,
        clock: ClockInfo {
            kind: ClockKind::Monotonic,
            ticks_per_second: 1e9,
        },
        dropped_events: 0,
        process_name: "app".to_owned(),
        pid: 7,
        build: None,
    }
}

/// A fresh folder holding `run.json` and `run.trace.json` of [`profile`].
fn fixture(test: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("profiler-cli-{}", std::process::id()))
        .join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let profile = profile();
    export_profile(&profile, dir.join("run.json"), None).unwrap();
    export_profile(&profile, dir.join("run.trace.json"), None).unwrap();
    dir
}

fn profiler(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_profiler"));
    for arg in args {
        command.arg(arg);
    }
    command.env("RUST_BACKTRACE", "1").output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// Asserts a clean failure: exit code 1, one line on stderr naming `what`, no panic.
fn fails_cleanly(output: &Output, what: &str) -> String {
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(output.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr}");
    assert!(stderr.starts_with("profiler: "), "{stderr}");
    assert!(stderr.contains(what), "{stderr} should mention {what}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    stderr
}

/// The rows of the function table: the lines between its header and the next blank line.
fn table(text: &str) -> Vec<&str> {
    text.lines()
        .skip_while(|l| !l.ends_with("  function"))
        .skip(1)
        .take_while(|l| !l.is_empty() && !l.starts_with('('))
        .collect()
}

#[test]
fn summary_prints_an_aligned_table_and_the_hottest_paths() {
    let dir = fixture("summary");
    for input in ["run.json", "run.trace.json"] {
        let text = stdout(&profiler(&[&"summary", &dir.join(input)]));
        assert!(text.starts_with("app (pid 7)"), "{text}");
        assert!(text.contains("started 2026-11-25T08:24:23.000000000Z, lasted 10.000 ms"));
        let rows = table(&text);
        let names: Vec<&str> = rows
            .iter()
            .map(|r| r[r.find("  app::").unwrap() + 2..].trim_end())
            .collect();
        // By self time: draw 4 ms, parse 3 ms, main 2 ms, render 1 ms, fetch 500 ns, unused.
        assert_eq!(
            names[..4],
            [
                "app::draw \"fast\"",
                "app::parse<K, V>",
                "app::main",
                "app::render"
            ],
            "{text}"
        );
        assert!(names[4].starts_with("app::fetch (async"));
        if input == "run.json" {
            assert_eq!(names[5], "app::unused");
            assert!(text.contains("(1 registered function was never called)"));
        } else {
            // A Chrome trace only names the functions that have events.
            assert_eq!(names.len(), 5);
        }
        // Aligned: every row's name starts in the same column as the header's `function`.
        let header = text.lines().find(|l| l.ends_with("  function")).unwrap();
        let column = header.find("function").unwrap();
        for row in &rows {
            assert_eq!(row.chars().take(column).count(), column);
            assert!(
                row.chars().nth(column - 1) == Some(' ') && row.chars().nth(column) == Some('a'),
                "{row:?}"
            );
        }
        assert!(
            rows[1].contains("3.000 ms") && rows[1].contains("      3  "),
            "{}",
            rows[1]
        );
        assert!(text.contains("hottest paths by self time:"));
        assert!(
            text.contains(
                "4.000 ms  40.0%        1x  app::main > app::render > app::draw \"fast\""
            ),
            "{text}"
        );
    }
}

#[test]
fn summary_reads_our_speedscope_files() {
    let dir = fixture("speedscope");
    let speedscope = dir.join("run.speedscope.json");
    export_profile(&profile(), &speedscope, None).unwrap();
    let text = stdout(&profiler(&[&"summary", &speedscope]));
    let from_trace = stdout(&profiler(&[&"summary", &dir.join("run.trace.json")]));
    assert!(text.starts_with("app (pid 0)"), "{text}");
    assert!(text.contains("threads: main (tid 1, 7 spans)"), "{text}");
    // The same table and paths as from the trace, but for the async function, whose kind the
    // format does not keep, and the registered function never called, which it does.
    let plain = |text: &str| -> Vec<String> {
        table(text)
            .iter()
            .filter(|r| !r.contains("app::fetch") && !r.contains("app::unused"))
            .map(|r| (*r).to_owned())
            .collect()
    };
    assert_eq!(plain(&text), plain(&from_trace), "{text}");
    assert!(table(&text).iter().any(|r| r.ends_with("  app::unused")));
    let paths = |text: &str| text[text.find("hottest paths").unwrap()..].to_owned();
    assert_eq!(paths(&text), paths(&from_trace));
    // And it converts like a trace.
    let csv = dir.join("from-speedscope.csv");
    stdout(&profiler(&[&"convert", &speedscope, &csv]));
    assert!(module_paths(&csv).iter().all(|(_, module)| module == "app"));
}

#[test]
fn summary_sorts_and_limits() {
    let dir = fixture("sort");
    let text = stdout(&profiler(&[
        &"summary",
        &dir.join("run.json"),
        &"--sort",
        &"count",
        &"--top",
        &"2",
    ]));
    let rows = table(&text);
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows[0].ends_with("app::parse<K, V>"));
    assert!(text.contains("top functions by call count (2 of 6)"));
    let text = stdout(&profiler(&[
        &"summary",
        &dir.join("run.json"),
        &"--sort",
        &"total",
        &"--top",
        &"1",
    ]));
    assert!(table(&text)[0].ends_with("app::main"));

    let text = stdout(&profiler(&[
        &"summary",
        &dir.join("run.json"),
        &"--paths",
        &"1",
    ]));
    let paths = &text[text.find("hottest paths by self time:\n").unwrap()..];
    assert_eq!(paths.lines().count(), 2, "{paths}");
    assert!(paths.ends_with("1x  app::main > app::render > app::draw \"fast\"\n"));
    // 0 leaves the list out, rather than claiming that no time was recorded.
    let text = stdout(&profiler(&[
        &"summary",
        &dir.join("run.json"),
        &"--paths",
        &"0",
    ]));
    assert!(!text.contains("hottest paths"), "{text}");
    assert!(!text.contains("no time recorded"), "{text}");
    assert!(
        text.ends_with("(1 registered function was never called)\n"),
        "{text}"
    );

    let bad = profiler(&[&"summary", &dir.join("run.json"), &"--sort", &"speed"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("speed"));
}

#[test]
fn convert_writes_the_format_of_the_output_name() {
    let dir = fixture("convert");
    let json = dir.join("run.json");
    for (out, check) in [
        ("out.csv", "\"app::parse<K, V>\""),
        (
            "out.folded",
            "app::main;app::render;app::draw \"fast\" 4000000",
        ),
        ("out.svg", "<svg"),
        ("copy.json", "\"schema\": \"profiler-profile\""),
    ] {
        let path = dir.join(out);
        stdout(&profiler(&[&"convert", &json, &path]));
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.contains(check), "{out}: {written}");
    }
    // --format wins over the name.
    let path = dir.join("stacks.txt");
    stdout(&profiler(&[
        &"convert",
        &json,
        &path,
        &"--format",
        &"folded",
    ]));
    assert!(std::fs::read_to_string(&path).unwrap().lines().count() >= 4);
    // From a Chrome trace, the timeline formats too.
    let path = dir.join("again.speedscope.json");
    stdout(&profiler(&[&"convert", &dir.join("run.trace.json"), &path]));
    let speedscope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(speedscope["profiles"][0]["type"], "evented");
}

/// The `module_path` column of a CSV, by function name.
fn module_paths(csv_path: &Path) -> Vec<(String, String)> {
    let mut reader = csv::Reader::from_path(csv_path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let name = headers.iter().position(|h| h == "name").unwrap();
    let module = headers.iter().position(|h| h == "module_path").unwrap();
    let mut rows: Vec<(String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[name].to_owned(), r[module].to_owned())
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn csv_converted_from_a_trace_has_the_module_paths() {
    let dir = fixture("module-path");
    let from_trace = dir.join("from-trace.csv");
    stdout(&profiler(&[
        &"convert",
        &dir.join("run.trace.json"),
        &from_trace,
    ]));
    let rows = module_paths(&from_trace);
    assert_eq!(rows.len(), 5, "{rows:?}");
    for (name, module) in &rows {
        assert_eq!(module, "app", "{name}");
    }
    // A trace that does not carry them (another tool's, or an older one): derived from the
    // names, which here gives the same.
    let trace = std::fs::read_to_string(dir.join("run.trace.json")).unwrap();
    assert!(trace.contains(",\"module_path\":\"app\""));
    let bare = write(
        &dir,
        "bare.trace.json",
        trace.replace(",\"module_path\":\"app\"", "").as_bytes(),
    );
    let from_bare = dir.join("from-bare.csv");
    stdout(&profiler(&[&"convert", &bare, &from_bare]));
    assert_eq!(module_paths(&from_bare), rows);
}

#[test]
fn convert_refuses_timeline_formats_from_a_profile_json() {
    let dir = fixture("timeline");
    let out = dir.join("out.trace.json");
    let output = profiler(&[&"convert", &dir.join("run.json"), &out]);
    let message = fails_cleanly(&output, "run.json");
    assert!(message.contains("timeline"), "{message}");
    assert!(!out.exists());
    let output = profiler(&[&"convert", &dir.join("run.json"), &dir.join("out.unknown")]);
    let message = fails_cleanly(&output, "out.unknown");
    assert!(
        message.contains(
            "give --format with one of chrome, speedscope, json, csv, folded, flamegraph, icicle"
        ),
        "{message}"
    );
    assert!(message.contains(".trace.json, "), "{message}");
}

#[test]
fn flamegraph_writes_svg_and_icicle() {
    let dir = fixture("flamegraph");
    for (name, extra) in [("flame.svg", None), ("icicle.svg", Some("--icicle"))] {
        let path = dir.join(name);
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"flamegraph", &"--title", &"My <app>"];
        let input = dir.join("run.json");
        args.push(&input);
        args.push(&path);
        if let Some(flag) = &extra {
            args.push(flag);
        }
        stdout(&profiler(&args));
        let svg = std::fs::read_to_string(&path).unwrap();
        let options = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        };
        let doc = roxmltree::Document::parse_with_options(&svg, options).expect("well-formed SVG");
        let titles: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("title"))
            .filter_map(|n| n.text())
            .collect();
        for function in [
            "app::main",
            "app::parse<K, V>",
            "app::render",
            "app::draw \"fast\"",
            "app::fetch",
        ] {
            assert!(
                titles
                    .iter()
                    .any(|t| t.starts_with(&format!("{function} ("))),
                "{function} in {name}"
            );
        }
        assert!(svg.contains("My &lt;app&gt;"));
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn bad_input_files_fail_with_one_line_and_exit_code_1() {
    let dir = fixture("bad");
    let good = std::fs::read(dir.join("run.json")).unwrap();
    let trace = std::fs::read(dir.join("run.trace.json")).unwrap();
    let newer =
        String::from_utf8(good.clone())
            .unwrap()
            .replacen("\"version\": 1", "\"version\": 2", 1);
    export_profile(&profile(), dir.join("run.csv"), Some(Format::Csv)).unwrap();
    let cases = [
        (dir.join("missing.json"), "cannot read"),
        (write(&dir, "empty.json", b""), "truncated"),
        (
            write(&dir, "cut.json", &good[..good.len() / 3]),
            "truncated",
        ),
        (
            write(&dir, "cut.trace.json", &trace[..trace.len() / 2]),
            "truncated",
        ),
        (dir.join("run.csv"), "not valid JSON"),
        (
            write(&dir, "other.json", br#"{"schema": "other-tool"}"#),
            "not a profile of this tool: schema is \"other-tool\"; expected a profile JSON (\"schema\": \"profiler-profile\"), a Chrome trace (\"traceEvents\") or a Speedscope file",
        ),
        (write(&dir, "newer.json", newer.as_bytes()), "newer"),
    ];
    for (path, problem) in &cases {
        let name = path.file_name().unwrap().to_str().unwrap();
        for args in [
            vec!["summary"],
            vec!["convert", "-"],
            vec!["flamegraph", "-"],
        ] {
            let out = dir.join("out.svg");
            let mut argv: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&args[0]];
            argv.push(path);
            if args.len() > 1 {
                argv.push(&out);
            }
            let message = fails_cleanly(&profiler(&argv), name);
            assert!(message.contains(problem), "{args:?} {name}: {message}");
        }
    }
}

/// A tmpfs of `size_kib` KiB mounted on a fresh folder for one test, unmounted when dropped: a
/// disk that is full after a few files.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None`, said on stderr, where this machine refuses the mount (not root, a container
    /// without the capability): only a refused mount skips the test.
    fn mount_or_skip(test: &str, size_kib: u32) -> Option<Tmpfs> {
        let dir =
            std::env::temp_dir().join(format!("profiler-cli-tmpfs-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tmpfs = Tmpfs(dir);
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k"), "tmpfs"])
            .arg(&tmpfs.0)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(tmpfs),
            Ok(out) => {
                let reason = String::from_utf8_lossy(&out.stderr).trim().to_owned();
                eprintln!("skipped {test}: cannot mount a tmpfs here ({reason})");
                None
            }
            Err(e) => {
                eprintln!("skipped {test}: cannot run mount ({e})");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// `n` functions called once each: its baseline and its flamegraph take over 64 KiB.
fn wide_profile(n: u32) -> Profile {
    let mut profile = profile();
    profile.functions = (0..n)
        .map(|i| entry(&format!("app::function_number_{i}"), FunctionKind::Function))
        .collect();
    profile.threads[0].spans = (0..n)
        .map(|i| span(i, u64::from(i) * 10, u64::from(i) * 10 + 5, 0, None))
        .collect();
    profile.async_spans.clear();
    profile.end_ns = u64::from(n) * 10;
    profile
}

/// Asserts that the file at `path` still holds `old`, byte for byte.
fn assert_unchanged(path: &Path, old: &[u8]) {
    let now = std::fs::read(path).unwrap();
    assert!(
        now == old,
        "{} changed: {} bytes now, {} before",
        path.display(),
        now.len(),
        old.len()
    );
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Asserts a failure that names `path`: a non-zero exit code, one line on stderr, no panic.
fn fails_naming(output: &Output, path: &Path) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && output.status.code().is_some(),
        "{}: {stderr}",
        output.status
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("No space left"), "{stderr}");
}

#[test]
fn baseline_save_onto_a_full_disk_fails_and_keeps_the_old_baseline() {
    let Some(disk) = Tmpfs::mount_or_skip("baseline-save", 64) else {
        return;
    };
    let dir = fixture("baseline-full-disk");
    let wide = dir.join("wide.json");
    export_profile(&wide_profile(1000), &wide, None).unwrap();
    let baseline = disk.0.join("main.baseline.json");

    let saved = profiler(&[&"baseline", &"save", &baseline, &dir.join("run.json")]);
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    let good = std::fs::read(&baseline).unwrap();

    fails_naming(
        &profiler(&[&"baseline", &"save", &baseline, &wide]),
        &baseline,
    );
    assert_unchanged(&baseline, &good);
    assert_eq!(names_in(&disk.0), ["main.baseline.json"]);
}

#[test]
fn flamegraph_and_convert_onto_a_full_disk_fail_and_keep_the_old_files() {
    let Some(disk) = Tmpfs::mount_or_skip("flamegraph-convert", 64) else {
        return;
    };
    let dir = fixture("flamegraph-full-disk");
    let wide = dir.join("wide.json");
    export_profile(&wide_profile(1000), &wide, None).unwrap();
    let svg = disk.0.join("flame.svg");
    let csv = disk.0.join("run.csv");
    stdout(&profiler(&[&"flamegraph", &dir.join("run.json"), &svg]));
    stdout(&profiler(&[&"convert", &dir.join("run.json"), &csv]));
    let good_svg = std::fs::read(&svg).unwrap();
    let good_csv = std::fs::read(&csv).unwrap();

    fails_naming(&profiler(&[&"flamegraph", &wide, &svg]), &svg);
    fails_naming(&profiler(&[&"convert", &wide, &csv]), &csv);
    assert_unchanged(&svg, &good_svg);
    assert_unchanged(&csv, &good_csv);
    assert_eq!(names_in(&disk.0), ["flame.svg", "run.csv"]);
}

/// `app::main` (2 µs) whose first microsecond is a recursion `depth` calls deep (every call of
/// `app::recurse` over the same microsecond, so only the deepest has self time).
#[cfg(target_os = "linux")]
fn deep_profile(depth: u32) -> Profile {
    let mut spans = vec![span(0, 0, 2_000, 0, None)];
    spans.extend((0..depth).map(|d| span(1, 0, 1_000, d + 1, Some(d))));
    Profile {
        functions: vec![
            entry("app::main", FunctionKind::Function),
            entry("app::recurse", FunctionKind::Function),
        ],
        threads: vec![ThreadTimeline {
            tid: 1,
            name: "main".to_owned(),
            spans,
            dropped_events: 0,
            exited: false,
        }],
        async_spans: Vec::new(),
        end_ns: 2_000,
        ..profile()
    }
}

/// Runs the tool with its address space limited to `limit_mib`, so that a version that needs
/// more fails at once (allocation failure) instead of exhausting the machine.
#[cfg(target_os = "linux")]
fn profiler_within(limit_mib: u64, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -v {} && exec \"$@\"", limit_mib * 1024))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_profiler"));
    for arg in args {
        command.arg(arg);
    }
    command.output().unwrap()
}

/// Issue 16: folded and SVG export kept every path of the call tree as a string, memory in the
/// square of the depth: a recursion 100,000 deep took tens of gigabytes. Within 200 MiB of
/// address space (the old writer needed about 65 GB of path strings here), both are written and
/// the deepest line has every frame.
#[test]
#[cfg(target_os = "linux")] // `ulimit -v` is enforced there
fn folded_and_svg_export_of_a_deep_recursion_fit_in_bounded_memory() {
    const DEPTH: u32 = 100_000;
    let dir = std::env::temp_dir()
        .join(format!("profiler-cli-{}", std::process::id()))
        .join("deep");
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("deep.trace.json");
    export_profile(&deep_profile(DEPTH), &trace, None).unwrap();

    let folded = dir.join("deep.folded");
    stdout(&profiler_within(200, &[&"convert", &trace, &folded]));
    let text = std::fs::read_to_string(&folded).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{:?}", &text[..text.len().min(200)]);
    assert_eq!(lines[0], "app::main 1000");
    let (deepest, weight) = lines[1].rsplit_once(' ').unwrap();
    assert_eq!(weight, "1000");
    let frames: Vec<&str> = deepest.split(';').collect();
    assert_eq!(frames.len(), DEPTH as usize + 1);
    assert_eq!(frames[0], "app::main");
    assert!(frames[1..].iter().all(|&f| f == "app::recurse"));

    let svg = dir.join("deep.svg");
    stdout(&profiler_within(200, &[&"flamegraph", &trace, &svg]));
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.trim_end().ends_with("</svg>"), "{}", drawn.len());
    assert!(drawn.contains("app::recurse"));
    // 40 MB of files: not left behind on success.
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs the tool with `stdin` as its standard input, killed after a minute so that a version
/// that blocks fails the test instead of hanging it (no run here takes more than seconds).
#[cfg(target_os = "linux")]
fn profiler_with_input(args: &[&dyn AsRef<std::ffi::OsStr>], stdin: Option<&[u8]>) -> Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut command = Command::new(env!("CARGO_BIN_EXE_profiler"));
    for arg in args {
        command.arg(arg);
    }
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // The tool may stop reading early (a limit); a broken pipe is then expected.
        let _ = pipe.write_all(bytes);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!(
                "`profiler {:?}` still running after a minute",
                command.get_args()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Issue 16: `profiler summary /dev/zero` grew without limit and a named pipe hung. Only regular
/// files are opened by name, standard input is read with `-`, and input past
/// `--max-input-size` (default 1 GiB) is an error naming the file and the option.
#[test]
#[cfg(target_os = "linux")] // /dev/zero, mkfifo and an enforced `ulimit -v`
fn inputs_are_regular_files_or_stdin_and_their_size_is_capped() {
    let dir = fixture("inputs");
    let trace = dir.join("run.trace.json");
    let bytes = std::fs::read(&trace).unwrap();

    // Within the address-space limit, a reader that grows fails instead of exhausting the machine.
    let message = fails_cleanly(
        &profiler_within(200, &[&"summary", &"/dev/zero"]),
        "/dev/zero",
    );
    assert!(
        message.contains("not a regular file (a character device)") && message.contains("give `-`"),
        "{message}"
    );

    let fifo = dir.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let message = fails_cleanly(&profiler_with_input(&[&"summary", &fifo], None), "fifo");
    assert!(
        message.contains("not a regular file (a named pipe)"),
        "{message}"
    );

    let piped = stdout(&profiler_with_input(&[&"summary", &"-"], Some(&bytes)));
    assert_eq!(piped, stdout(&profiler(&[&"summary", &trace])));

    let message = fails_cleanly(
        &profiler(&[&"summary", &"--max-input-size", &"1K", &trace]),
        "run.trace.json",
    );
    assert!(
        message.contains(
            "larger than the input limit of 1 KiB (1024 bytes); raise it with --max-input-size"
        ),
        "{message}"
    );
    let message = fails_cleanly(
        &profiler_with_input(
            &[
                &"convert",
                &"--max-input-size",
                &"1K",
                &"-",
                &dir.join("out.csv"),
            ],
            Some(&bytes),
        ),
        "<stdin>",
    );
    assert!(
        message.contains("larger than the input limit of 1 KiB"),
        "{message}"
    );
    // Exactly at the limit is within it.
    let size = bytes.len().to_string();
    stdout(&profiler(&[&"summary", &"--max-input-size", &size, &trace]));
    stdout(&profiler_with_input(
        &[&"summary", &"--max-input-size", &size, &"-"],
        Some(&bytes),
    ));
}

/// Issue 16: a trace of another tool in B/E events summarised as an empty profile, exit 0.
#[test]
fn foreign_begin_end_traces_are_summarised_and_traces_without_spans_fail() {
    let dir = fixture("foreign");
    let begin_end = write(
        &dir,
        "begin-end.json",
        br#"[{"ph":"B","name":"load","pid":3,"tid":4,"ts":0},{"ph":"B","name":"parse","pid":3,"tid":4,"ts":1},
             {"ph":"E","pid":3,"tid":4,"ts":4},{"ph":"E","pid":3,"tid":4,"ts":10}]"#,
    );
    let text = stdout(&profiler(&[&"summary", &begin_end]));
    let rows = table(&text);
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0].ends_with("  load") && rows[0].contains("7.000 µs"),
        "{text}"
    );
    assert!(
        rows[1].ends_with("  parse") && rows[1].contains("3.000 µs"),
        "{text}"
    );

    let instants = write(
        &dir,
        "instants.json",
        br#"{"traceEvents":[{"ph":"i","name":"mark","pid":3,"tid":4,"ts":0}]}"#,
    );
    let message = fails_cleanly(&profiler(&[&"summary", &instants]), "instants.json");
    assert!(
        message.contains("no span in 1 trace event (phases \"i\")"),
        "{message}"
    );
}

/// Issue 16: `summary` printed a foreign trace's names as they were, escape sequences included,
/// straight to the terminal.
#[test]
fn summary_escapes_control_characters_in_names() {
    let dir = fixture("escapes");
    let trace = write(
        &dir,
        "escapes.json",
        br#"[{"ph":"M","name":"process_name","pid":1,"tid":1,"args":{"name":"app\u0007"}},
             {"ph":"M","name":"thread_name","pid":1,"tid":1,"args":{"name":"main\r\u001b[2J"}},
             {"ph":"X","name":"evil\u001b[31mred\u001b[0m\nfake line","pid":1,"tid":1,"ts":0,"dur":5}]"#,
    );
    let text = stdout(&profiler(&[&"summary", &trace]));
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "control characters printed: {text:?}"
    );
    assert!(text.starts_with("app\\u{7} (pid 1)"), "{text}");
    assert!(text.contains("threads: main\\r\\u{1b}[2J (tid 1"), "{text}");
    assert!(
        table(&text)[0].ends_with("  evil\\u{1b}[31mred\\u{1b}[0m\\nfake line"),
        "{text}"
    );
    assert!(
        text.contains("1x  evil\\u{1b}[31mred\\u{1b}[0m\\nfake line\n"),
        "{text}"
    );
    // Errors quoting the file are escaped too (serde names an unknown profile type as it is).
    let bad = write(
        &dir,
        "escapes.speedscope.json",
        br#"{"$schema":"https://www.speedscope.app/file-format-schema.json","shared":{"frames":[]},
             "profiles":[{"type":"\u001b[2J","name":"t","unit":"nanoseconds","startValue":0,"endValue":1}]}"#,
    );
    let message = fails_cleanly(&profiler(&[&"summary", &bad]), "escapes.speedscope.json");
    assert!(
        !message.trim_end().chars().any(char::is_control),
        "{message:?}"
    );
    assert!(message.contains("\\u{1b}[2J"), "{message}");
}

/// Four threads of `groups` requests, each a call with two callees, one with a callee of its own.
#[cfg(target_os = "linux")]
fn busy_profile(groups: u64) -> Profile {
    let mut threads = Vec::new();
    for tid in 1..=4 {
        let mut spans = Vec::new();
        for g in 0..groups {
            let (t, root) = (g * 1_000, spans.len() as u32);
            spans.push(span(0, t, t + 900, 0, None));
            spans.push(span(1, t + 10, t + 200, 1, Some(root)));
            spans.push(span(2, t + 300, t + 800, 1, Some(root)));
            spans.push(span(3, t + 400, t + 700, 2, Some(root + 2)));
        }
        threads.push(ThreadTimeline {
            tid,
            name: format!("worker-{tid}"),
            spans,
            dropped_events: 0,
            exited: true,
        });
    }
    Profile {
        threads,
        async_spans: Vec::new(),
        end_ns: groups * 1_000,
        ..profile()
    }
}

/// Issue 16: a 200 MB trace took 940 MB to summarise, the whole text and a parsed copy being held.
/// The events are now rebuilt as they are parsed: a 40 MB trace is summarised within 100 MiB of
/// address space (measured: 19 MB peak RSS now, 143 MB before).
#[test]
#[cfg(target_os = "linux")] // `ulimit -v` is enforced there
fn large_traces_are_read_as_a_stream() {
    let dir = fixture("large");
    let trace = dir.join("large.trace.json");
    export_profile(&busy_profile(15_000), &trace, None).unwrap();
    let size = std::fs::metadata(&trace).unwrap().len();
    assert!(size > 35_000_000, "{size} bytes");
    let text = stdout(&profiler_within(100, &[&"summary", &trace]));
    assert!(
        text.contains("threads: worker-1 (tid 1, 60000 spans)"),
        "{text}"
    );
    std::fs::remove_file(&trace).unwrap();
}
