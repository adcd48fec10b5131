//! Flush and export throughput, and memory: a measurement, not a test. Prints a table.
//!
//! 1. One thread records `--flat-events` events (default 10^8) with a flush after every 2^19
//!    calls (2^20 events, the default ring); resident memory is sampled after each flush and must
//!    stay flat.
//! 2. Four threads record 10 million events (5 million spans, nested 10 deep) into rings large
//!    enough to hold them all; the resident-memory growth per buffered event is compared with
//!    `size_of` of an event (16 bytes).
//! 3. `flush()` merges them into one `Profile`; the Chrome JSON and Speedscope writers then write
//!    it to files in the temporary directory (through a `BufWriter`), each timed on its own, with
//!    the peak resident memory after each step.
//!
//! Usage: `export_throughput [--events N] [--flat-events N] [--keep]` (`--keep` leaves the files).

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use profiler_benches::measure::{mib, peak_rss_bytes, rss_bytes, Stopwatch};
use profiler_benches::{nested10, recorded};

const THREADS: u64 = 4;

#[derive(Debug)]
struct Options {
    events: u64,
    flat_events: u64,
    keep: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        events: 10_000_000,
        flat_events: 100_000_000,
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let value = args
                .next()
                .ok_or_else(|| format!("{name} needs a number"))?;
            value
                .replace('_', "")
                .parse::<f64>()
                .map(|v| v as u64)
                .map_err(|_| format!("{name}: not a number: {value}"))
        };
        match arg.as_str() {
            "--events" => options.events = number("--events")?,
            "--flat-events" => options.flat_events = number("--flat-events")?,
            "--keep" => options.keep = true,
            other => {
                return Err(format!(
                    "unknown argument `{other}`; expected --events N, --flat-events N or --keep"
                ))
            }
        }
    }
    Ok(options)
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn rate(events: u64, d: Duration) -> String {
    format!("{:.1}", events as f64 / d.as_secs_f64() / 1e6)
}

fn row(step: &str, wall: Duration, cpu: Duration, events: u64, bytes: Option<u64>) {
    println!(
        "| {step} | {} | {} | {} | {} | {} | {} |",
        secs(wall),
        secs(cpu),
        rate(events, wall),
        bytes.map_or_else(|| "-".to_owned(), |b| mib(Some(b))),
        mib(rss_bytes()),
        mib(peak_rss_bytes()),
    );
}

fn write_file(
    path: &PathBuf,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    write(&mut out)?;
    out.flush()?;
    drop(out);
    Ok(std::fs::metadata(path)?.len())
}

/// Bytes per buffered event, and the peak over the start against the events' own size.
fn report_memory(events: u64, rss_start: Option<u64>, rss_buffered: Option<u64>) {
    let event_size = std::mem::size_of::<[u64; 2]>();
    if let (Some(before), Some(after)) = (rss_start, rss_buffered) {
        println!(
            "buffered: RSS grew {} MiB for {events} events = {:.2} bytes per event (an event is 16 bytes: \
             `Event` is asserted to be 16 in recorder.rs, here {event_size})",
            mib(Some(after.saturating_sub(before))),
            after.saturating_sub(before) as f64 / events as f64,
        );
    }
    if let (Some(peak), Some(before)) = (peak_rss_bytes(), rss_start) {
        let own = events * 16;
        println!(
            "peak RSS over the start: {} MiB = {:.2}x the events' own size ({} MiB)",
            mib(Some(peak.saturating_sub(before))),
            peak.saturating_sub(before) as f64 / own as f64,
            mib(Some(own)),
        );
    }
}

fn throughput(options: &Options) -> std::io::Result<()> {
    let calls_per_thread = options.events / 20 / THREADS;
    let events = calls_per_thread * 20 * THREADS;
    profiler_runtime::set_buffer_capacity((calls_per_thread * 20).next_power_of_two() as usize);
    let rss_start = rss_bytes();
    println!(
        "\n## Flush and export: {events} events ({} spans, depth 10) from {THREADS} threads\n",
        events / 2
    );
    println!("| step | wall s | process CPU s | M events/s | output MiB | RSS after MiB | peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let watch = Stopwatch::start();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            std::thread::Builder::new()
                .name(format!("recorder-{t}"))
                .spawn_scoped(s, move || {
                    for i in 0..calls_per_thread {
                        black_box(nested10(black_box(i)));
                    }
                })
                .expect("spawn a recorder");
        }
    });
    let recorded_in = watch.elapsed();
    let rss_buffered = rss_bytes();
    row(
        "record (4 threads)",
        recorded_in.wall,
        recorded_in.cpu,
        events,
        None,
    );

    let watch = Stopwatch::start();
    let profile = profiler_runtime::flush();
    let merged = watch.elapsed();
    row(
        "flush (drain + merge)",
        merged.wall,
        merged.cpu,
        events,
        None,
    );
    assert_eq!(profile.span_count() as u64, events / 2, "every span merged");
    assert_eq!(profile.dropped_events, 0);

    let dir = std::env::temp_dir();
    let chrome = dir.join(format!(
        "profiler-benches-{}.trace.json",
        std::process::id()
    ));
    let speedscope = dir.join(format!(
        "profiler-benches-{}.speedscope.json",
        std::process::id()
    ));
    let watch = Stopwatch::start();
    let bytes = write_file(&chrome, |out| {
        profiler_runtime::export::write_chrome_trace(&profile, out)
    })?;
    let chrome_time = watch.elapsed();
    row(
        "write Chrome JSON (file)",
        chrome_time.wall,
        chrome_time.cpu,
        events,
        Some(bytes),
    );
    let watch = Stopwatch::start();
    let bytes = write_file(&speedscope, |out| {
        profiler_runtime::export::write_speedscope(&profile, out)
    })?;
    let speedscope_time = watch.elapsed();
    row(
        "write Speedscope (file)",
        speedscope_time.wall,
        speedscope_time.cpu,
        events,
        Some(bytes),
    );
    let total = merged.wall + chrome_time.wall;
    println!(
        "\nflush + Chrome: {} s; flush + Speedscope: {} s",
        secs(total),
        secs(merged.wall + speedscope_time.wall)
    );

    report_memory(events, rss_start, rss_buffered);
    println!(
        "`Span` in the merged profile: {} bytes",
        std::mem::size_of::<profiler_runtime::Span>()
    );
    drop(profile);
    if options.keep {
        println!("kept {} and {}", chrome.display(), speedscope.display());
    } else {
        let _ = std::fs::remove_file(&chrome);
        let _ = std::fs::remove_file(&speedscope);
    }
    Ok(())
}

/// Records `total` events on a fresh thread (default ring), flushing every 2^19 calls.
fn flat_memory(total: u64) {
    profiler_runtime::set_buffer_capacity(profiler_runtime::DEFAULT_BUFFER_EVENTS);
    let batch = (profiler_runtime::DEFAULT_BUFFER_EVENTS / 2) as u64;
    let flushes = total.div_ceil(batch * 2);
    println!(
        "\n## Resident memory with periodic flushes: {} events, {flushes} flushes of {} events\n",
        flushes * batch * 2,
        batch * 2
    );
    let (samples, elapsed, spans) = std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("flat-recorder".into())
            .spawn_scoped(s, move || {
                let mut samples = Vec::new();
                let mut spans = 0u64;
                let watch = Stopwatch::start();
                for f in 0..flushes {
                    for i in 0..batch {
                        black_box(recorded(black_box(i)));
                    }
                    let profile = profiler_runtime::flush();
                    spans += profile.span_count() as u64;
                    assert_eq!(profile.dropped_events, 0);
                    drop(profile);
                    if f % (flushes / 20).max(1) == 0 || f + 1 == flushes {
                        samples.push((f + 1, rss_bytes().unwrap_or(0)));
                    }
                }
                (samples, watch.elapsed(), spans)
            })
            .expect("spawn the recorder")
            .join()
            .expect("recorder")
    });
    assert_eq!(spans, flushes * batch);
    println!("| after flush | RSS MiB |");
    println!("|---:|---:|");
    for (f, rss) in &samples {
        println!("| {f} | {} |", mib(Some(*rss)));
    }
    let rss: Vec<u64> = samples.iter().skip(1).map(|s| s.1).collect();
    if let (Some(min), Some(max)) = (rss.iter().min(), rss.iter().max()) {
        println!(
            "\nRSS from the 2nd sample on: min {} MiB, max {} MiB (spread {} MiB); {} s wall, {} s process CPU, {:.1} ns per event recorded+flushed",
            mib(Some(*min)),
            mib(Some(*max)),
            mib(Some(max - min)),
            secs(elapsed.wall),
            secs(elapsed.cpu),
            elapsed.wall.as_nanos() as f64 / (flushes * batch * 2) as f64,
        );
    }
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("export_throughput: {e}");
            return ExitCode::from(2);
        }
    };
    // The flat-memory run goes first, so that its figures do not include the large rings and
    // the freed profile of the throughput run (rings are reused, never freed).
    if options.flat_events > 0 {
        flat_memory(options.flat_events);
    }
    if let Err(e) = throughput(&options) {
        eprintln!("export_throughput: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
