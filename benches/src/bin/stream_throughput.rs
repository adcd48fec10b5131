//! The streaming sink (issue 15) measured: a measurement, not a test. Prints markdown tables.
//!
//! 1. `--file F`: bytes per event of a streamed file on disk (the main example's:
//!    `target/profiles/basic_profiling.perfetto-trace` after
//!    `cargo run --release -p profiler-examples --example basic_profiling`).
//! 2. The collector's CPU time to stream `--events` events (default 10^7) recorded by one thread
//!    (the collector thread's own time, from `/proc/self/task/<tid>/schedstat`), with the events
//!    written, dropped and the file's size.
//! 3. The sustained rate: one and two threads record at set rates (then as fast as they can)
//!    for a second each; the events dropped at each rate.
//! 4. Resident memory over a long stream, `--long-events` (default 10^8) at `--long-rate` events
//!    per second (default 5*10^6, the main example's rate: 300,000 events in 63 ms), sampled
//!    every 10^7 events.
//! 5. The file of step 2 converted to a Chrome JSON trace (read back into a `Profile`, then
//!    written), and summarised as a stream.
//!
//! Usage: `stream_throughput [--file F] [--events N] [--long-events N] [--long-rate N] [--skip-rates]
//! [--keep]`.

use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use profiler_benches::measure::{mib, peak_rss_bytes, rss_bytes};
use profiler_benches::recorded;
use profiler_runtime::Config;

#[derive(Debug)]
struct Options {
    file: Option<PathBuf>,
    events: u64,
    long_events: u64,
    long_rate: u64,
    keep: bool,
    skip_rates: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        file: None,
        events: 10_000_000,
        long_events: 100_000_000,
        long_rate: 5_000_000,
        keep: false,
        skip_rates: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, v: String| -> Result<u64, String> {
            v.replace('_', "")
                .parse::<f64>()
                .map(|v| v as u64)
                .map_err(|_| format!("{name}: not a number: {v}"))
        };
        match arg.as_str() {
            "--file" => options.file = Some(PathBuf::from(value("--file")?)),
            "--events" => options.events = number("--events", value("--events")?)?,
            "--long-events" => {
                options.long_events = number("--long-events", value("--long-events")?)?;
            }
            "--long-rate" => options.long_rate = number("--long-rate", value("--long-rate")?)?,
            "--keep" => options.keep = true,
            "--skip-rates" => options.skip_rates = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(options)
}

/// CPU time of this process's thread named `name` (the first 15 bytes, as the kernel keeps it).
fn thread_cpu(name: &str) -> Option<Duration> {
    let short = &name[..name.len().min(15)];
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != short {
            continue;
        }
        // schedstat: nanoseconds on the CPU first; stat's utime and stime are in clock ticks.
        if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) {
            if let Some(ns) = text.split_whitespace().next().and_then(|n| n.parse().ok()) {
                return Some(Duration::from_nanos(ns));
            }
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        return Some(Duration::from_millis(ticks * 10));
    }
    None
}

/// Streams to `path` while `work` runs; returns (events written, file bytes, dropped) and the
/// collector's CPU time (read before the guard's last drain, which the guard's thread does).
fn stream_run(
    path: &Path,
    interval_ms: u64,
    work: impl FnOnce(),
) -> ((u64, u64, u64), Duration, Duration) {
    let _ = profiler_runtime::flush();
    let guard = Config::new()
        .output(path.with_extension(""))
        .stream_to(path)
        .formats(&[])
        .quiet(true)
        .signals(false)
        .collect_interval(Some(Duration::from_millis(interval_ms)))
        .init();
    let start = Instant::now();
    work();
    // Until the collector has written what the rings held (the count stops moving for five
    // intervals): what the guard's last drain writes is done on this thread, not counted.
    let mut last = (u64::MAX, 0);
    while last.1 < 5 {
        std::thread::sleep(Duration::from_millis(interval_ms));
        let now = profiler_runtime::__private::stream_totals().map_or(0, |t| t.0);
        last = if now == last.0 {
            (now, last.1 + 1)
        } else {
            (now, 0)
        };
    }
    let collector = thread_cpu("profiler-collector").unwrap_or_default();
    let wall = start.elapsed();
    guard.finish().expect("finish the stream");
    let totals = profiler_runtime::__private::stream_totals().expect("a stream");
    (totals, collector, wall)
}

/// `calls` recorded calls (2 events each), spread so as not to pass `rate` events per second
/// (`u64::MAX`: as fast as possible).
fn record_at(calls: u64, rate: u64) {
    let start = Instant::now();
    let mut done = 0u64;
    while done < calls {
        let chunk = (calls - done).min(1024);
        for i in 0..chunk {
            black_box(recorded(black_box(done + i)));
        }
        done += chunk;
        if rate != u64::MAX {
            let due = Duration::from_secs_f64((done * 2) as f64 / rate as f64);
            while start.elapsed() < due {
                std::hint::spin_loop();
            }
        }
    }
}

/// Records `options.long_events` events at `options.long_rate` a second, sampling RSS every
/// 10^7 events into `samples`.
fn long_run(options: &Options, samples: &std::sync::Mutex<Vec<(u64, Option<u64>)>>) {
    let step = 10_000_000u64.min(options.long_events);
    let start = Instant::now();
    let mut done = 0;
    while done < options.long_events {
        let calls = step.min(options.long_events - done) / 2;
        // The rate over the whole run, not per step.
        let target = Duration::from_secs_f64((done + calls * 2) as f64 / options.long_rate as f64);
        let before = start.elapsed();
        let rate =
            ((calls * 2) as f64 / (target.saturating_sub(before)).as_secs_f64().max(1e-3)) as u64;
        record_at(calls, rate);
        done += calls * 2;
        samples.lock().unwrap().push((done, rss_bytes()));
    }
}

#[allow(clippy::too_many_lines)] // one report, its measurements in the order printed
fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("stream_throughput: {e}");
            return ExitCode::from(2);
        }
    };
    let dir = std::env::temp_dir().join(format!("stream-throughput-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");

    if let Some(file) = &options.file {
        let bytes = std::fs::metadata(file).expect("the file").len();
        let profile =
            profiler_runtime::import::read_perfetto(std::fs::File::open(file).unwrap(), u64::MAX)
                .expect("a Perfetto trace");
        let events = 2 * (profile.span_count() as u64 + profile.async_spans.len() as u64);
        println!(
            "## Bytes per event on disk\n\n{}: {bytes} bytes, {events} events: **{:.2} bytes per event**\n",
            file.display(),
            bytes as f64 / events as f64
        );
    }

    // 2. Collector CPU.
    println!(
        "## Collector CPU time, {} events from one thread\n",
        options.events
    );
    println!("| interval ms | events written | dropped | file MiB | bytes/event | collector CPU s | ns/event | wall s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let cpu_file = dir.join("cpu.perfetto-trace");
    for interval in [10, 1] {
        profiler_runtime::set_buffer_capacity(1 << 24);
        let ((events, bytes, _), cpu, wall) = stream_run(&cpu_file, interval, || {
            record_at(options.events / 2, u64::MAX);
        });
        // Recorded less written: the writer's own count of a pooled ring's drops is cumulative.
        let dropped = (options.events / 2 * 2).saturating_sub(events);
        println!(
            "| {interval} | {events} | {dropped} | {} | {:.2} | {:.3} | {:.1} | {:.3} |",
            mib(Some(bytes)),
            bytes as f64 / events.max(1) as f64,
            cpu.as_secs_f64(),
            cpu.as_nanos() as f64 / events.max(1) as f64,
            wall.as_secs_f64()
        );
    }
    profiler_runtime::set_buffer_capacity(profiler_runtime::DEFAULT_BUFFER_EVENTS);

    // 3. Sustained rate.
    println!(
        "\n## Sustained rate: one second at each rate, default ring, collect interval 10 ms\n"
    );
    println!(
        "| threads | target M events/s (all threads) | recorded M events/s | written | dropped |"
    );
    println!("|---:|---:|---:|---:|---:|");
    let rate_file = dir.join("rate.perfetto-trace");
    for threads in [1u64, 2].into_iter().filter(|_| !options.skip_rates) {
        for rate in [10_000_000u64, 20_000_000, 40_000_000, 80_000_000, u64::MAX] {
            let per_thread = rate / threads;
            let calls = if rate == u64::MAX {
                40_000_000 / threads
            } else {
                per_thread / 2
            };
            let mut elapsed = Duration::ZERO;
            let ((events, _, _), _, _) = stream_run(&rate_file, 10, || {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| record_at(calls, per_thread));
                    }
                });
                elapsed = start.elapsed();
            });
            let recorded = calls * 2 * threads;
            let dropped = recorded.saturating_sub(events);
            println!(
                "| {threads} | {} | {:.1} | {events} | {dropped} |",
                if rate == u64::MAX {
                    "max".to_owned()
                } else {
                    format!("{}", rate / 1_000_000)
                },
                recorded as f64 / elapsed.as_secs_f64() / 1e6
            );
        }
    }

    // 4. Memory over a long stream.
    println!(
        "\n## Resident memory over {} events at {} M events/s (one thread)\n",
        options.long_events,
        options.long_rate as f64 / 1e6
    );
    let long_file = dir.join("long.perfetto-trace");
    let samples = std::sync::Mutex::new(Vec::new());
    let ((events, bytes, _), cpu, wall) = stream_run(&long_file, 10, || {
        // On a thread of its own: a ring of the default size (this thread's is 16 Mi events
        // from step 2, whose blocks the long run would touch one after another).
        std::thread::scope(|s| {
            s.spawn(|| long_run(&options, &samples));
        });
    });
    let samples = samples.into_inner().unwrap();
    let dropped = samples.last().map_or(0, |s| s.0).saturating_sub(events);
    let rss: Vec<u64> = samples.iter().filter_map(|s| s.1).collect();
    println!(
        "{events} events written, {dropped} dropped, file {} MiB ({:.2} bytes/event), collector CPU {:.1} s, wall {:.1} s",
        mib(Some(bytes)),
        bytes as f64 / events.max(1) as f64,
        cpu.as_secs_f64(),
        wall.as_secs_f64()
    );
    if let (Some(first), Some(min), Some(max)) = (
        rss.get(1),
        rss.iter().skip(1).min(),
        rss.iter().skip(1).max(),
    ) {
        println!(
            "RSS over {} samples: first {} MiB, from the 2nd to the last between {} and {} MiB (last {} MiB)",
            rss.len(),
            mib(rss.first().copied()),
            mib(Some(*min)),
            mib(Some(*max)),
            mib(rss.last().copied()),
        );
        let _ = first;
    }
    let line: Vec<String> = samples
        .iter()
        .map(|(n, r)| format!("{:.0}M:{}", *n as f64 / 1e6, mib(*r)))
        .collect();
    println!("samples (events: RSS MiB): {}", line.join(" "));
    let _ = std::fs::remove_file(&long_file);

    // 5. Convert to Chrome JSON, summary as a stream.
    let size = std::fs::metadata(&cpu_file).map_or(0, |m| m.len());
    println!(
        "\n## The {} MiB file of {} events read back\n",
        mib(Some(size)),
        options.events
    );
    println!("| step | wall s | peak RSS MiB |");
    println!("|---|---:|---:|");
    let start = Instant::now();
    let report = profiler_runtime::import::summarize_perfetto(
        std::fs::File::open(&cpu_file).unwrap(),
        u64::MAX,
    )
    .expect("summary");
    black_box(&report);
    println!(
        "| summarize_perfetto (streaming statistics) | {:.3} | {} |",
        start.elapsed().as_secs_f64(),
        mib(peak_rss_bytes())
    );
    let start = Instant::now();
    let profile =
        profiler_runtime::import::read_perfetto(std::fs::File::open(&cpu_file).unwrap(), u64::MAX)
            .expect("read back");
    let read = start.elapsed();
    println!(
        "| read_perfetto (Profile, {} spans) | {:.3} | {} |",
        profile.span_count(),
        read.as_secs_f64(),
        mib(peak_rss_bytes())
    );
    let chrome = dir.join("cpu.trace.json");
    let start = Instant::now();
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&chrome).unwrap());
    profiler_runtime::export::Format::ChromeTrace
        .write(&profile, &mut out)
        .expect("write");
    out.flush().unwrap();
    drop(out);
    let write = start.elapsed();
    println!(
        "| write Chrome JSON ({} MiB) | {:.3} | {} |",
        mib(std::fs::metadata(&chrome).map(|m| m.len()).ok()),
        write.as_secs_f64(),
        mib(peak_rss_bytes())
    );
    println!(
        "| read + write (convert) | {:.3} | |",
        (read + write).as_secs_f64()
    );
    if options.keep {
        println!("\nfiles kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    ExitCode::SUCCESS
}
