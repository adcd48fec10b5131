//! The analysis formats parse back with real parsers (serde_json, csv, an XML parser) and hold
//! what was computed; awkward names survive every one; the format follows the file name; saved
//! files read back, and bad ones are clear errors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use profiler_runtime::analyze::report::{ReadErrorKind, Report};
use profiler_runtime::analyze::stats::function_stats;
use profiler_runtime::export::{
    export_profile, unescape_frame, write_csv, write_flamegraph, write_folded, write_profile_json,
    write_speedscope, ExportError, FlamegraphOptions, Format, CSV_COLUMNS,
};
use profiler_runtime::import::{load_saved, read_chrome_trace, read_speedscope, SavedFile};
use profiler_runtime::{FunctionKind, Profile};
use profiler_tests::synthetic::{call, ProfileBuilder};
use serde_json::Value;

/// Names a spreadsheet, a JSON parser or a folded-stack reader could trip on.
const AWKWARD: [&str; 6] = [
    "std::collections::HashMap<K, V>::get",
    "say \"hi\", then leave",
    "ünïcødé::函数::🦀",
    "semi;colon",
    "multi\nline\r\nname",
    "percent %3B literal",
];

/// A profile whose functions have awkward names, with nesting, two threads and an async fn.
fn awkward_profile() -> Profile {
    let mut b = ProfileBuilder::new(100_000);
    let main = b.function("main");
    let ids: Vec<u32> = AWKWARD.iter().map(|n| b.function(n)).collect();
    let fetch = b.function_of_kind("client::fetch", FunctionKind::AsyncFunction);
    b.function("never <called>, \"ever\"");
    let mut children = Vec::new();
    for (i, &f) in ids.iter().enumerate() {
        let at = 1_000 + i as u64 * 10_000;
        children.push(call(
            f,
            at,
            at + 5_000,
            vec![call(
                ids[(i + 1) % ids.len()],
                at + 1_000,
                at + 2_000,
                vec![],
            )],
        ));
    }
    children.push(call(fetch, 70_000, 71_000, vec![]));
    b.thread("main", vec![call(main, 0, 90_000, children)]);
    b.thread("worker, \"b\"", vec![call(ids[0], 0, 3_000, vec![])]);
    b.future(fetch, 70_000, 80_000, false);
    b.build()
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("profiler-formats-{}", std::process::id()))
        .join(test);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn profile_json_is_versioned_and_reads_back_equal() {
    let report = Report::new(&awkward_profile());
    let mut bytes = Vec::new();
    write_profile_json(&report, &mut bytes).unwrap();
    let json: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json["schema"], "profiler-profile");
    assert_eq!(json["version"], 1);
    assert_eq!(json["run"]["process_name"], "synthetic");
    assert_eq!(json["run"]["pid"], 4242);
    assert_eq!(json["run"]["duration_ns"], 100_000);
    assert_eq!(json["run"]["threads"][1]["name"], "worker, \"b\"");
    let names: BTreeSet<&str> = json["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for name in AWKWARD {
        assert!(names.contains(name), "{name:?} missing");
    }
    let fetch = json["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "client::fetch")
        .unwrap();
    assert_eq!(fetch["kind"], "async");
    assert_eq!(fetch["async"]["wall_ns"], 10_000);
    assert_eq!(json["call_tree"][0]["parent"], Value::Null);

    let back = Report::read(&bytes[..]).unwrap();
    assert_eq!(back, report);
}

#[test]
fn csv_has_a_header_and_one_row_per_function_with_rfc4180_quoting() {
    let profile = awkward_profile();
    let report = Report::new(&profile);
    let mut bytes = Vec::new();
    write_csv(&report, &mut bytes).unwrap();
    let mut reader = csv::Reader::from_reader(&bytes[..]);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, CSV_COLUMNS);
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), profile.functions.len());
    let column = |name: &str| CSV_COLUMNS.iter().position(|c| *c == name).unwrap();
    let by_name: BTreeMap<&str, &csv::StringRecord> =
        rows.iter().map(|r| (&r[column("name")], r)).collect();
    for stats in function_stats(&profile) {
        let row = by_name
            .get(stats.name.as_str())
            .unwrap_or_else(|| panic!("no row for {:?}", stats.name));
        assert_eq!(row[column("calls")].parse::<u64>().unwrap(), stats.calls);
        assert_eq!(
            row[column("total_ns")].parse::<u64>().unwrap(),
            stats.total_ns
        );
        assert_eq!(
            row[column("self_ns")].parse::<u64>().unwrap(),
            stats.self_ns
        );
        assert_eq!(row[column("p99_ns")].parse::<u64>().unwrap(), stats.p99_ns);
        assert_eq!(&row[column("kind")], stats.kind.as_str());
        let polls = &row[column("polls")];
        match &stats.async_stats {
            Some(a) => assert_eq!(polls.parse::<u64>().unwrap(), a.polls),
            None => assert_eq!(polls, ""),
        }
    }
    // Sorted by self time, largest first.
    let selfs: Vec<u64> = rows
        .iter()
        .map(|r| r[column("self_ns")].parse().unwrap())
        .collect();
    assert!(selfs.windows(2).all(|w| w[0] >= w[1]));
    // The quoting is RFC 4180's: fields with quotes are quoted and the quotes doubled.
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("\"say \"\"hi\"\", then leave\""));
    assert!(text.contains("\"std::collections::HashMap<K, V>::get\""));
}

#[test]
fn folded_stacks_add_up_to_the_recorded_time_and_names_round_trip() {
    let profile = awkward_profile();
    let report = Report::new(&profile);
    let mut bytes = Vec::new();
    write_folded(&report, &mut bytes).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let mut total = 0;
    let mut frames_seen = BTreeSet::new();
    let mut by_path: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    for line in text.lines() {
        let (stack, weight) = line.rsplit_once(' ').expect("`stack weight`");
        let weight: u64 = weight.parse().expect("integer weight");
        assert!(weight > 0);
        total += weight;
        let frames: Vec<String> = stack
            .split(';')
            .map(|f| unescape_frame(f).into_owned())
            .collect();
        frames_seen.extend(frames.iter().cloned());
        by_path.insert(frames, weight);
    }
    let recorded: u64 = function_stats(&profile).iter().map(|f| f.self_ns).sum();
    assert_eq!(total, recorded);
    for name in AWKWARD {
        assert!(frames_seen.contains(name), "{name:?} missing from\n{text}");
    }
    // main > HashMap<K, V>::get (5000 ns) minus its callee (1000 ns).
    let path = vec!["main".to_owned(), AWKWARD[0].to_owned()];
    assert_eq!(by_path[&path], 4_000);
    assert_eq!(by_path[&vec![AWKWARD[0].to_owned()]], 3_000);
    let sorted: Vec<&str> = {
        let mut v: Vec<&str> = text.lines().collect();
        v.sort_unstable();
        v
    };
    assert_eq!(sorted, text.lines().collect::<Vec<_>>());
}

/// The SVG parsed as XML (inferno writes the SVG 1.1 doctype, so DTDs are allowed).
fn parse_svg(svg: &str) -> roxmltree::Document<'_> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(svg, options).expect("well-formed XML")
}

/// Every `<title>` text of an SVG, parsed as XML.
fn svg_titles(svg: &str) -> Vec<String> {
    let doc = parse_svg(svg);
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.has_tag_name("title"))
        .filter_map(|n| n.text().map(str::to_owned))
        .collect()
}

#[test]
fn flamegraph_and_icicle_are_well_formed_svg_naming_every_function() {
    let profile = awkward_profile();
    let report = Report::new(&profile);
    for options in [
        FlamegraphOptions::new(),
        FlamegraphOptions::new()
            .icicle(true)
            .title("icicle <of> \"it\""),
    ] {
        let mut bytes = Vec::new();
        write_flamegraph(&report, &options, &mut bytes).unwrap();
        let svg = String::from_utf8(bytes).unwrap();
        let titles = svg_titles(&svg);
        for f in function_stats(&profile).iter().filter(|f| f.total_ns > 0) {
            // Frame names are the folded ones: `;` and line ends are %-escaped.
            let frame = profiler_runtime::export::escape_frame(&f.name);
            assert!(
                titles.iter().any(|t| t.starts_with(&format!("{frame} ("))),
                "{frame:?} has no frame"
            );
        }
        let doc = parse_svg(&svg);
        let heading = doc
            .descendants()
            .find(|n| n.attribute("id") == Some("title"))
            .and_then(|n| n.text())
            .unwrap();
        if options.is_icicle() {
            assert_eq!(heading, "icicle <of> \"it\"");
        } else {
            assert_eq!(heading, "synthetic: flame graph");
        }
    }
}

#[test]
fn an_empty_profile_still_writes_every_format() {
    let profile = ProfileBuilder::new(0).build();
    for &format in Format::ALL {
        let mut out = Vec::new();
        format.write(&profile, &mut out).unwrap();
        match format {
            Format::FlamegraphSvg | Format::IcicleSvg => {
                svg_titles(std::str::from_utf8(&out).unwrap());
            }
            Format::Csv => assert_eq!(out, format!("{}\n", CSV_COLUMNS.join(",")).into_bytes()),
            Format::Folded => assert!(out.is_empty()),
            _ => {
                serde_json::from_slice::<Value>(&out).unwrap();
            }
        }
    }
}

#[test]
fn the_longest_matching_file_ending_picks_the_format() {
    for (name, format) in [
        ("run.json", Some(Format::Json)),
        ("run.profile.json", Some(Format::Json)),
        ("run.trace.json", Some(Format::ChromeTrace)),
        ("run.chrome.json", Some(Format::ChromeTrace)),
        ("RUN.SPEEDSCOPE.JSON", Some(Format::Speedscope)),
        ("dir.json/run.csv", Some(Format::Csv)),
        ("run.folded", Some(Format::Folded)),
        ("run.collapsed", Some(Format::Folded)),
        ("run.svg", Some(Format::FlamegraphSvg)),
        ("run.icicle.svg", Some(Format::IcicleSvg)),
        ("run.txt", None),
        ("json", None),
    ] {
        assert_eq!(Format::from_path(name), format, "{name}");
    }
    for &format in Format::ALL {
        assert_eq!(Format::from_name(format.name()), Some(format));
        let first = format.extensions()[0];
        assert_eq!(Format::from_path(format!("x{first}")), Some(format));
    }
}

#[test]
fn export_profile_writes_every_format_by_file_name_and_reports_read_back() {
    let dir = temp_dir("by-name");
    let profile = awkward_profile();
    for &format in Format::ALL {
        let path = dir.join(format!("run{}", format.extensions()[0]));
        export_profile(&profile, &path, None).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 0 || format == Format::Folded);
    }
    // A report read back converts to everything but the timeline formats.
    let report = Report::load(dir.join("run.json")).unwrap();
    assert_eq!(report, Report::new(&profile).with_host_of(&report));
    export_profile(&report, dir.join("again.csv"), None).unwrap();
    export_profile(&report, dir.join("again.svg"), None).unwrap();
    match export_profile(&report, dir.join("again.trace.json"), None) {
        Err(e @ ExportError::NeedsTimeline { .. }) => {
            assert!(e.to_string().contains("again.trace.json"), "{e}");
        }
        other => panic!("expected NeedsTimeline, got {other:?}"),
    }
    assert!(!dir.join("again.trace.json").exists());
}

/// Lets a report made here compare equal to one read back (the host is this machine's in both,
/// but stays explicit).
trait WithHost {
    fn with_host_of(self, other: &Report) -> Report;
}

impl WithHost for Report {
    fn with_host_of(mut self, other: &Report) -> Report {
        self.run.host.clone_from(&other.run.host);
        self
    }
}

#[test]
fn chrome_traces_read_back_into_the_same_statistics() {
    let profile = awkward_profile();
    let mut trace = Vec::new();
    profiler_runtime::export::write_chrome_trace(&profile, &mut trace).unwrap();
    let back = read_chrome_trace(&trace).unwrap();
    back.validate().unwrap();
    assert_eq!(back.render_tree(), profile.render_tree());
    assert_eq!(
        (back.start_ns, back.end_ns, back.pid),
        (profile.start_ns, profile.end_ns, profile.pid)
    );
    let key = |p: &Profile| -> BTreeMap<String, (u64, u64, u64, u64)> {
        function_stats(p)
            .into_iter()
            .filter(|f| f.calls > 0)
            .map(|f| (f.name, (f.calls, f.total_ns, f.self_ns, f.p99_ns)))
            .collect()
    };
    assert_eq!(key(&back), key(&profile));
    let fetch = function_stats(&back)
        .into_iter()
        .find(|f| f.name == "client::fetch")
        .unwrap();
    assert_eq!(fetch.async_stats.unwrap().wall_ns, 10_000);
}

#[test]
fn saved_files_are_told_apart_by_content() {
    let dir = temp_dir("saved");
    let profile = awkward_profile();
    export_profile(&profile, dir.join("a.json"), None).unwrap();
    export_profile(&profile, dir.join("a.trace.json"), None).unwrap();
    export_profile(&profile, dir.join("a.speedscope.json"), None).unwrap();
    assert!(matches!(
        load_saved(dir.join("a.json")).unwrap(),
        SavedFile::Report(_)
    ));
    match load_saved(dir.join("a.trace.json")).unwrap() {
        SavedFile::Timeline(p) => assert_eq!(p.span_count(), profile.span_count()),
        SavedFile::Report(_) => panic!("a trace is a timeline"),
    }
    match load_saved(dir.join("a.speedscope.json")).unwrap() {
        SavedFile::Timeline(p) => assert_eq!(p.span_count(), profile.span_count()),
        SavedFile::Report(_) => panic!("a Speedscope file is a timeline"),
    }
    std::fs::write(
        dir.join("other.json"),
        br#"{"schema": "other-tool", "data": []}"#,
    )
    .unwrap();
    let e = load_saved(dir.join("other.json")).unwrap_err();
    assert!(
        matches!(e.kind(), ReadErrorKind::WrongSchema { found: Some(s) } if s == "other-tool"),
        "{e}"
    );
    for readable in ["profile JSON", "Chrome trace", "Speedscope file"] {
        assert!(e.to_string().contains(readable), "{e}");
    }
}

#[test]
fn speedscope_files_read_back_into_the_same_threads_and_statistics() {
    let profile = awkward_profile();
    let mut file = Vec::new();
    write_speedscope(&profile, &mut file).unwrap();
    let back = read_speedscope(&file).unwrap();
    back.validate().unwrap();
    assert_eq!(back.render_tree(), profile.render_tree());
    let threads = |p: &Profile| -> Vec<(u32, String, u64)> {
        p.threads
            .iter()
            .map(|t| (t.tid, t.name.clone(), t.dropped_events))
            .collect()
    };
    assert_eq!(threads(&back), threads(&profile));
    assert_eq!(
        (back.start_ns, back.end_ns, back.process_name.as_str()),
        (
            profile.start_ns,
            profile.end_ns,
            profile.process_name.as_str()
        )
    );
    // Every function, called or not, with its statistics; the file keeps no kinds, so an async
    // function's polls come back as a plain function's calls (and its p99 is of its polls, not
    // of its lifetimes, which the file does not keep).
    let key = |p: &Profile| -> BTreeMap<String, (u64, u64, u64)> {
        function_stats(p)
            .into_iter()
            .map(|f| (f.name, (f.calls, f.total_ns, f.self_ns)))
            .collect()
    };
    assert_eq!(key(&back), key(&profile));
}

#[test]
fn sampled_speedscope_profiles_become_spans() {
    // Another tool's file: two frames, samples of 1 ms.
    let file = br#"{"$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": [{"name": "app::main"}, {"name": "app::db::Pool::get"}]},
        "profiles": [{"type": "sampled", "name": "CPU 0", "unit": "milliseconds",
            "startValue": 0, "endValue": 4,
            "samples": [[0], [0, 1], [0, 1], [0]], "weights": [1, 1, 1, 1]}]}"#;
    let profile = read_speedscope(file).unwrap();
    profile.validate().unwrap();
    assert_eq!(
        profile.render_tree(),
        "thread CPU 0\n  app::main\n    app::db::Pool::get\n"
    );
    let spans = &profile.threads[0].spans;
    assert_eq!(
        (
            spans[0].start_ns,
            spans[0].end_ns,
            spans[1].start_ns,
            spans[1].end_ns
        ),
        (0, 4_000_000, 1_000_000, 3_000_000)
    );
    assert_eq!(profile.function(spans[1].function).module_path, "app::db");

    let bytes = br#"{"$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": [{"name": "a"}]},
        "profiles": [{"type": "sampled", "name": "heap", "unit": "bytes",
            "startValue": 0, "endValue": 4, "samples": [[0]], "weights": [4]}]}"#;
    let e = read_speedscope(bytes).unwrap_err();
    assert!(
        e.to_string().contains("\"bytes\", not a unit of time"),
        "{e}"
    );
    let unbalanced = br#"{"$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": [{"name": "a"}, {"name": "b"}]},
        "profiles": [{"type": "evented", "name": "t", "unit": "nanoseconds",
            "startValue": 0, "endValue": 9,
            "events": [{"type": "O", "frame": 0, "at": 0}, {"type": "O", "frame": 1, "at": 1},
                       {"type": "C", "frame": 0, "at": 2}]}]}"#;
    let e = read_speedscope(unbalanced).unwrap_err();
    assert!(
        e.to_string()
            .contains("closes frame 0 while frame 1 is open"),
        "{e}"
    );
}

/// A bad file: its name, its bytes, and the error kind expected.
type Case = (&'static str, Vec<u8>, fn(&ReadErrorKind) -> bool);

#[test]
fn bad_profile_files_are_clear_errors_naming_the_file() {
    let dir = temp_dir("bad");
    let report = Report::new(&awkward_profile());
    let mut good = Vec::new();
    write_profile_json(&report, &mut good).unwrap();
    let text = String::from_utf8(good.clone()).unwrap();
    let cases: Vec<Case> = vec![
        ("truncated.json", good[..good.len() / 2].to_vec(), |k| {
            matches!(k, ReadErrorKind::Truncated)
        }),
        ("empty.json", Vec::new(), |k| {
            matches!(k, ReadErrorKind::Truncated)
        }),
        ("garbage.json", b"name,calls\nmain,1\n".to_vec(), |k| {
            matches!(k, ReadErrorKind::Malformed { line: 1, .. })
        }),
        (
            "other.json",
            br#"{"schema":"something-else","version":1}"#.to_vec(),
            |k| matches!(k, ReadErrorKind::WrongSchema { found: Some(s) } if s == "something-else"),
        ),
        ("array.json", b"[1, 2]".to_vec(), |k| {
            matches!(k, ReadErrorKind::WrongSchema { found: None })
        }),
        (
            "newer.json",
            text.replacen("\"version\": 1", "\"version\": 7", 1)
                .into_bytes(),
            |k| {
                matches!(
                    k,
                    ReadErrorKind::NewerVersion {
                        found: 7,
                        supported: 1
                    }
                )
            },
        ),
        (
            "invalid.json",
            text.replacen("\"calls\": ", "\"calls\": -", 1).into_bytes(),
            |k| matches!(k, ReadErrorKind::Invalid(_)),
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        for error in [
            Report::load(&path).unwrap_err(),
            load_saved(&path).unwrap_err(),
        ] {
            assert!(expected(error.kind()), "{name}: {error:?}");
            assert_eq!(error.path(), Some(path.as_path()));
            let message = error.to_string();
            assert!(
                message.starts_with(&path.display().to_string()),
                "{message}"
            );
            assert!(!message.contains('\n'), "{message}");
        }
    }
    let missing = Report::load(dir.join("missing.json")).unwrap_err();
    assert!(matches!(missing.kind(), ReadErrorKind::Io(_)));
    assert!(missing.to_string().contains("missing.json"));
}

/// Compares `actual` with `tests/fixtures/<name>`; `PROFILER_BLESS=1` rewrites the file.
fn golden(name: &str, actual: &[u8]) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    if std::env::var_os("PROFILER_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (PROFILER_BLESS=1 creates it)", path.display()));
    assert!(
        expected == actual,
        "{} differs; if intended, run with PROFILER_BLESS=1\n--- actual ---\n{}",
        path.display(),
        String::from_utf8_lossy(actual)
    );
}

#[test]
fn csv_and_folded_match_their_golden_files() {
    let report = Report::new(&awkward_profile());
    let mut csv = Vec::new();
    write_csv(&report, &mut csv).unwrap();
    golden("awkward.csv", &csv);
    let mut folded = Vec::new();
    write_folded(&report, &mut folded).unwrap();
    golden("awkward.folded", &folded);
}

#[test]
fn foreign_chrome_traces_with_only_complete_events_load() {
    let trace = br#"{"traceEvents":[
        {"ph":"X","name":"outer","pid":1,"tid":9,"ts":10.0,"dur":5.0},
        {"ph":"i","name":"mark","pid":1,"tid":9,"ts":12.0},
        {"ph":"X","name":"late","pid":1,"tid":9,"ts":30.0,"dur":1.5},
        {"ph":"X","name":"inner","pid":1,"tid":9,"ts":11.0,"dur":10.0}
    ]}"#;
    let profile = read_chrome_trace(trace).unwrap();
    profile.validate().unwrap();
    assert_eq!(
        profile.render_tree(),
        "thread thread-9\n  outer\n    inner\n  late\n"
    );
    assert_eq!((profile.start_ns, profile.end_ns), (10_000, 31_500));
    let stats = function_stats(&profile);
    let inner = stats.iter().find(|f| f.name == "inner").unwrap();
    // It crossed its parent's end, so it is cut there.
    assert_eq!((inner.calls, inner.total_ns), (1, 4_000));

    let no_duration = br#"{"traceEvents":[{"ph":"X","name":"a","ts":1.0}]}"#;
    let error = read_chrome_trace(no_duration).unwrap_err();
    assert!(matches!(error.kind(), ReadErrorKind::Invalid(_)), "{error}");
    assert!(error.to_string().contains("without ts or dur"));
}

#[test]
fn async_pairs_are_read_back_by_their_id_and_its_scope() {
    // `id2.local` as written now, a plain `id` as written before issue 13 (and by other tools),
    // `id2.global`; the local and the global id of the same value are different async spans.
    let trace = br#"{"traceEvents":[
        {"ph":"b","name":"local","cat":"async","id2":{"local":"0x1"},"pid":1,"tid":1,"ts":1.0},
        {"ph":"b","name":"global","cat":"async","id2":{"global":"0x1"},"pid":1,"tid":1,"ts":2.0},
        {"ph":"b","name":"plain","cat":"async","id":"0x2","pid":1,"tid":1,"ts":3.0},
        {"ph":"e","name":"global","cat":"async","id2":{"global":"0x1"},"pid":1,"tid":2,"ts":4.0},
        {"ph":"e","name":"plain","cat":"async","id":"0x2","pid":1,"tid":2,"ts":5.0},
        {"ph":"e","name":"local","cat":"async","id2":{"local":"0x1"},"pid":1,"tid":2,"ts":6.0}
    ]}"#;
    let profile = read_chrome_trace(trace).unwrap();
    let mut spans: Vec<(&str, u64, u64)> = profile
        .async_spans
        .iter()
        .map(|s| {
            let name = profile.function(s.function).name.as_str();
            (name, s.start_ns, s.end_ns)
        })
        .collect();
    spans.sort_unstable();
    assert_eq!(
        spans,
        [
            ("global", 2_000, 4_000),
            ("local", 1_000, 6_000),
            ("plain", 3_000, 5_000)
        ]
    );
}

/// Issue 16: a trace of another tool in B/E events, in the array form, loaded as an empty
/// profile with success.
#[test]
fn begin_end_events_and_the_array_form_load() {
    let trace = br#"[
        {"ph":"B","name":"main","pid":1,"tid":1,"ts":0},
        {"ph":"B","name":"parse","pid":1,"tid":1,"ts":1},
        {"ph":"B","name":"work","pid":1,"tid":2,"ts":1.5},
        {"ph":"E","pid":1,"tid":1,"ts":3},
        {"ph":"X","name":"render","pid":1,"tid":1,"ts":4,"dur":2},
        {"ph":"E","name":"main","pid":1,"tid":1,"ts":6.5},
        {"ph":"B","name":"flush","pid":1,"tid":1,"ts":7},
        {"ph":"E","pid":1,"tid":2,"ts":9}
    ]"#;
    let profile = read_chrome_trace(trace).unwrap();
    profile.validate().unwrap();
    // `flush` never ends: it lasts to the trace's last event, and says so.
    assert_eq!(
        profile.render_tree(),
        "thread thread-1\n  main\n    parse\n    render\n  flush (incomplete)\n\
         thread thread-2\n  work\n"
    );
    let stats = function_stats(&profile);
    let total = |name: &str| stats.iter().find(|f| f.name == name).unwrap().total_ns;
    assert_eq!(
        [total("main"), total("parse"), total("work"), total("flush")],
        [6_500, 2_000, 7_500, 2_000]
    );

    // The object form reads the same events the same way, through the file loader too.
    let events = std::str::from_utf8(trace).unwrap();
    let dir = temp_dir("begin-end");
    let path = dir.join("other-tool.json");
    std::fs::write(&path, format!(r#"{{"traceEvents":{events}}}"#)).unwrap();
    match load_saved(&path).unwrap() {
        SavedFile::Timeline(object) => assert_eq!(object.render_tree(), profile.render_tree()),
        SavedFile::Report(_) => panic!("a trace has a timeline"),
    }
}

/// Issue 16: a trace whose events give no span is an error, never an empty success.
#[test]
fn traces_without_spans_are_errors() {
    for (trace, expected) in [
        (
            &br#"{"traceEvents":[{"ph":"i","name":"mark","ts":1},{"ph":"C","name":"heap","ts":2}]}"#[..],
            r#"no span in 2 trace events (phases "C", "i")"#,
        ),
        (br#"{"traceEvents":[]}"#, "no span in 0 trace events"),
        (br"[]", "no span in 0 trace events"),
    ] {
        let error = read_chrome_trace(trace).unwrap_err();
        assert!(matches!(error.kind(), ReadErrorKind::Invalid(_)), "{error}");
        assert!(error.to_string().contains(expected), "{error}");
    }
    // An empty profile of ours says so in `otherData`, and still reads back.
    let mut ours = Vec::new();
    Format::ChromeTrace
        .write(&ProfileBuilder::new(0).build(), &mut ours)
        .unwrap();
    assert_eq!(read_chrome_trace(&ours).unwrap().span_count(), 0);
}

/// Issue 16: negative durations and times of 1e300 were clamped silently.
#[test]
fn impossible_times_are_errors_naming_the_event() {
    let cases: [(&[u8], &str); 6] = [
        (
            br#"[{"ph":"X","name":"ok","ts":0,"dur":1},{"ph":"X","name":"back","ts":5,"dur":-2}]"#,
            r#"trace event 1 ("back", phase "X"): `dur` is -2.0 µs"#,
        ),
        (
            br#"[{"ph":"X","name":"far","ts":1e300,"dur":1}]"#,
            r#"trace event 0 ("far", phase "X"): `ts` is 1e300 µs"#,
        ),
        (
            br#"[{"ph":"B","name":"early","ts":-1}]"#,
            r#"trace event 0 ("early", phase "B"): `ts` is -1.0 µs"#,
        ),
        (
            br#"[{"ph":"X","name":"long","ts":1e16,"dur":9e15}]"#,
            r#"trace event 0 ("long", phase "X"): `ts` 1e16 µs plus `dur` 9000000000000000.0 µs is past"#,
        ),
        (
            br#"[{"ph":"B","name":"a","tid":3,"ts":5},{"ph":"E","name":"a","tid":3,"ts":4}]"#,
            r#"trace event 1 ("a", phase "E"): ends at 4.0 µs, before its begin (event 0, "a") at 5.0 µs"#,
        ),
        (
            br#"[{"ph":"X","name":"a","tid":3,"ts":5,"dur":1},{"ph":"E","tid":3,"ts":7}]"#,
            r#"trace event 1 ("", phase "E"): an end without a begin (B) on thread 3"#,
        ),
    ];
    for (trace, expected) in cases {
        let error = read_chrome_trace(trace).unwrap_err();
        assert!(matches!(error.kind(), ReadErrorKind::Invalid(_)), "{error}");
        assert!(error.to_string().contains(expected), "{error}");
    }
}

/// Issue 16: times and counts of a file that add up past `u64` wrapped in release builds and
/// panicked in debug ones (the tests' build); they saturate at `u64::MAX`.
#[test]
fn sums_past_u64_saturate() {
    // Two threads, each with a call of 1.5e19 ns and 1.5e19 dropped events.
    let trace = br#"[
        {"ph":"M","name":"thread_name","tid":1,"args":{"name":"a","dropped_events":15000000000000000000}},
        {"ph":"M","name":"thread_name","tid":2,"args":{"name":"b","dropped_events":15000000000000000000}},
        {"ph":"X","name":"huge","tid":1,"ts":0,"dur":1.5e16},
        {"ph":"X","name":"huge","tid":2,"ts":0,"dur":1.5e16}
    ]"#;
    let profile = read_chrome_trace(trace).unwrap();
    assert_eq!(profile.dropped_events, u64::MAX);
    let report = Report::new(&profile);
    let huge = &report.functions[0];
    assert_eq!(
        (huge.calls, huge.total_ns, huge.self_ns),
        (2, u64::MAX, u64::MAX)
    );
    assert_eq!(huge.mean_ns as u64, 15_000_000_000_000_000_000);
    assert_eq!(report.call_tree.nodes[0].total_ns, u64::MAX);
    let mut summary = Vec::new();
    let options = profiler_runtime::analyze::summary::SummaryOptions::default();
    profiler_runtime::analyze::summary::write_summary(&report, &options, &mut summary).unwrap();
    assert!(String::from_utf8(summary).unwrap().contains("huge"));

    let speedscope = br#"{"$schema":"https://www.speedscope.app/file-format-schema.json",
        "shared":{"frames":[{"name":"f"}]},
        "profiles":[
          {"type":"evented","name":"a (tid 1), 15000000000000000000 events dropped","unit":"nanoseconds","startValue":0,"endValue":1,"events":[]},
          {"type":"evented","name":"b (tid 2), 15000000000000000000 events dropped","unit":"nanoseconds","startValue":0,"endValue":1,"events":[]}
        ]}"#;
    assert_eq!(
        read_speedscope(speedscope).unwrap().dropped_events,
        u64::MAX
    );
}

/// The folded lines come out in byte order though they are written while the tree is walked,
/// also where a name sorts between its own line and its callees' (`a`, `a b`, `a::b`, `a;…`);
/// two functions of one name called from one place make one line (issue 16 rewrote the writer).
#[test]
fn folded_lines_are_sorted_and_identical_stacks_merge() {
    let mut b = ProfileBuilder::new(300);
    let a = b.function("a");
    let a_space_b = b.function("a b");
    let a_path_b = b.function("a::b");
    let c = b.function("c");
    let other_c = b.function("c");
    b.thread(
        "main",
        vec![
            call(
                a,
                0,
                100,
                vec![call(c, 10, 20, vec![]), call(other_c, 30, 40, vec![])],
            ),
            call(a_space_b, 100, 200, vec![call(c, 110, 120, vec![])]),
            call(a_path_b, 200, 300, vec![]),
        ],
    );
    let mut folded = Vec::new();
    write_folded(&Report::new(&b.build()), &mut folded).unwrap();
    assert_eq!(
        String::from_utf8(folded).unwrap(),
        "a 80\na b 90\na b;c 10\na::b 100\na;c 20\n"
    );
}

/// Issue 16: negative and huge times of Speedscope files were clamped silently too.
#[test]
fn impossible_speedscope_times_are_errors() {
    let file = |profile: &str| {
        format!(
            r#"{{"$schema":"https://www.speedscope.app/file-format-schema.json",
                "shared":{{"frames":[{{"name":"f"}}]}},"profiles":[{profile}]}}"#
        )
    };
    let evented = |end: &str, events: &str| {
        file(&format!(
            r#"{{"type":"evented","name":"t","unit":"microseconds","startValue":0,"endValue":{end},"events":[{events}]}}"#
        ))
    };
    let cases = [
        (
            evented(
                "10",
                r#"{"type":"O","frame":0,"at":-3},{"type":"C","frame":0,"at":5}"#,
            ),
            "event 0's `at` is -3.0",
        ),
        (
            evented(
                "10",
                r#"{"type":"O","frame":0,"at":5},{"type":"C","frame":0,"at":2}"#,
            ),
            "event 1 closes frame 0 at 2.0, before it opened (event 0)",
        ),
        (
            evented(
                "1e300",
                r#"{"type":"O","frame":0,"at":5},{"type":"C","frame":0,"at":6}"#,
            ),
            "`endValue` is 1e300",
        ),
        (
            evented("1", r#"{"type":"O","frame":0,"at":5}"#),
            "frame 0 opened (event 0) after `endValue` 1.0 and never closed",
        ),
        (
            file(
                r#"{"type":"sampled","name":"t","unit":"seconds","startValue":0,"endValue":3,"samples":[[0],[0]],"weights":[2,-1]}"#,
            ),
            "sample 1 weighs -1.0; a weight is a duration, not negative",
        ),
    ];
    for (text, expected) in cases {
        let error = read_speedscope(text.as_bytes()).unwrap_err();
        assert!(matches!(error.kind(), ReadErrorKind::Invalid(_)), "{error}");
        assert!(error.to_string().contains(expected), "{expected}: {error}");
    }
}

/// The array form may lack its closing `]` (the Trace Event Format allows it, for programs that
/// stop while writing): the events up to the end are the trace. An input cut inside an event is
/// still truncated, not quietly shortened.
#[test]
fn the_array_form_may_end_without_its_bracket() {
    let events = r#"[{"ph":"X","name":"a","tid":1,"ts":0,"dur":2},
                     {"ph":"X","name":"b","tid":1,"ts":3,"dur":1}"#;
    for unended in [
        events.to_owned(),
        format!("{events},"),
        format!("{events},\n  "),
    ] {
        let profile = read_chrome_trace(unended.as_bytes()).unwrap();
        assert_eq!(
            profile.render_tree(),
            "thread thread-1\n  a\n  b\n",
            "{unended}"
        );
    }
    for cut in [&events[..events.len() - 5], "[", r#"[{"ph":"X","na"#] {
        let error = read_chrome_trace(cut.as_bytes()).unwrap_err();
        assert!(
            matches!(error.kind(), ReadErrorKind::Truncated),
            "{cut}: {error}"
        );
    }
    // The object form has no such allowance.
    let object = format!(r#"{{"traceEvents":{events}"#);
    let error = read_chrome_trace(object.as_bytes()).unwrap_err();
    assert!(matches!(error.kind(), ReadErrorKind::Truncated), "{error}");
}
