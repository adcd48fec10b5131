//! `profiler`: summarise, convert and draw saved profiles (a profile JSON, a Chrome trace or a
//! Speedscope file written by `profiler-runtime`), and gate CI on regressions (`baseline save`, `compare`). A
//! thin wrapper over the library; errors are one line on stderr and exit code 1 (2 for bad
//! arguments). `compare` exits 0 when clean, 1 when the gate fails (a regression, a budget
//! violation, a missing function, nothing recorded), 2 on any error.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use profiler_runtime::analyze::report::ReadErrorKind;
use profiler_runtime::analyze::report::{ReadError, Report};
use profiler_runtime::analyze::summary::{write_summary, SortKey, SummaryOptions};
use profiler_runtime::export::{export_profile, ExportError, FlamegraphOptions, Format};
use profiler_runtime::import::{
    load_report_limited, load_saved_limited, read_report, read_saved, SavedFile,
};

/// `baseline save` and `compare`: the regression gate.
#[path = "cli/gate.rs"]
mod gate;

/// Summarise, convert and draw profiles saved by profiler-runtime.
///
/// Inputs are a profile JSON (`.json`), a Chrome trace (`.trace.json`), a Speedscope file
/// (`.speedscope.json`) or a streamed Perfetto trace (`.perfetto-trace`, what `init()` writes
/// while the program runs); the kind is read from the content. `summary` and `flamegraph` read a
/// Perfetto trace as a stream, in memory that does not grow with its length.
#[derive(Debug, Parser)]
#[command(name = "profiler", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Profile(ProfileCommand),
    /// Save baselines: several runs' results with their machine and build fingerprint.
    Baseline {
        #[command(subcommand)]
        command: gate::BaselineCommand,
    },
    /// Compare new runs with a baseline, or run two builds alternately and compare them.
    /// Exit code 0: no regression; 1: a regression or budget violation; 2: an error.
    Compare(gate::CompareArgs),
}

/// Where a saved profile is read from, and how much of it.
#[derive(Debug, clap::Args)]
struct Input {
    /// The saved profile; `-` reads standard input (a pipe: only regular files are opened by
    /// name, so that a named pipe or a device cannot hang the tool).
    input: PathBuf,
    /// Read at most this many bytes (a number, or with K, M, G, T: powers of 1024); a larger
    /// input is an error rather than a process that grows without end.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    max_input_size: u64,
}

#[derive(Debug, Subcommand)]
enum ProfileCommand {
    /// Print the run, the top functions as a table, and the hottest paths of the call tree.
    Summary {
        #[command(flatten)]
        input: Input,
        /// Rows of the function table.
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// The column the table is sorted by.
        #[arg(long, value_enum, default_value_t = Sort::SelfTime)]
        sort: Sort,
        /// Rows of the hottest-paths list (0: leave the list out).
        #[arg(long, default_value_t = 10)]
        paths: usize,
    },
    /// Convert a saved profile to another format (chosen by OUT's name, or --format).
    ///
    /// From a profile JSON: json, csv, folded, flamegraph, icicle. From a Chrome trace, a
    /// Speedscope file or a Perfetto trace: all of those, plus chrome and speedscope (from a
    /// Perfetto trace, only these two hold the whole timeline in memory).
    Convert {
        #[command(flatten)]
        input: Input,
        /// The file to write.
        output: PathBuf,
        /// chrome, speedscope, json, csv, folded, flamegraph or icicle.
        #[arg(long, short, value_parser = parse_format)]
        format: Option<Format>,
    },
    /// Draw a saved profile as an SVG flamegraph.
    Flamegraph {
        #[command(flatten)]
        input: Input,
        /// The SVG file to write.
        output: PathBuf,
        /// Draw an icicle graph: roots at the top.
        #[arg(long)]
        icicle: bool,
        /// The title above the graph.
        #[arg(long)]
        title: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Sort {
    /// Exclusive time.
    #[value(name = "self")]
    SelfTime,
    /// Inclusive time.
    Total,
    /// Number of calls.
    Count,
    /// Mean duration of a call.
    Mean,
    /// 99th percentile of call durations.
    P99,
}

impl From<Sort> for SortKey {
    fn from(sort: Sort) -> SortKey {
        match sort {
            Sort::SelfTime => SortKey::SelfTime,
            Sort::Total => SortKey::Total,
            Sort::Count => SortKey::Calls,
            Sort::Mean => SortKey::Mean,
            Sort::P99 => SortKey::P99,
        }
    }
}

/// The values `--format` takes.
fn format_names() -> Vec<&'static str> {
    Format::ALL.iter().map(|f| f.name()).collect()
}

fn parse_format(name: &str) -> Result<Format, String> {
    Format::from_name(name).ok_or_else(|| {
        format!(
            "unknown format `{name}`; expected one of {}",
            format_names().join(", ")
        )
    })
}

/// A size in bytes: `1073741824`, `512K`, `64M`, `2G`, `1T` (powers of 1024; `KiB`, `MB` and
/// the like are read the same).
fn parse_size(text: &str) -> Result<u64, String> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("unknown unit `{unit}`; expected K, M, G or T")),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size: expected a whole number of bytes, optionally followed by K, M, G or T"))?;
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Reads the saved profile `input` names; errors say which option settles them.
fn load(input: &Input) -> Result<SavedFile, String> {
    let stdin = input.input == Path::new("-");
    let result = if stdin {
        read_saved(io::stdin().lock(), input.max_input_size)
    } else {
        load_saved_limited(&input.input, input.max_input_size)
    };
    result.map_err(|e| load_error(&e, stdin))
}

/// The statistics and call tree of the saved profile `input` names: a Perfetto trace is
/// summarised as it is read, without holding its spans.
fn load_report(input: &Input) -> Result<Report, String> {
    let stdin = input.input == Path::new("-");
    let result = if stdin {
        read_report(io::stdin().lock(), input.max_input_size)
    } else {
        load_report_limited(&input.input, input.max_input_size)
    };
    result.map_err(|e| load_error(&e, stdin))
}

/// A read error, with the option that settles it (the library cannot name it).
fn load_error(e: &ReadError, stdin: bool) -> String {
    let name = if stdin { "<stdin>: " } else { "" };
    let hint = match e.kind() {
        ReadErrorKind::TooLarge { .. } => "; raise it with --max-input-size",
        ReadErrorKind::NotAFile { .. } => {
            "; to read a stream, pipe it to standard input and give `-` as the file"
        }
        _ => "",
    };
    format!("{name}{e}{hint}")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Profile(command) => match run(command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("profiler: {}", escape_controls(&message));
                ExitCode::FAILURE
            }
        },
        Command::Baseline { command } => gate::baseline(command),
        Command::Compare(args) => gate::compare_command(&args),
    }
}

fn run(command: ProfileCommand) -> Result<(), String> {
    match command {
        ProfileCommand::Summary {
            input,
            top,
            sort,
            paths,
        } => {
            let report = load_report(&input)?;
            let options = SummaryOptions {
                top,
                sort: sort.into(),
                paths,
            };
            let stdout = io::stdout().lock();
            let mut out = BufWriter::new(stdout);
            write_summary(&report, &options, &mut out)
                .and_then(|()| out.flush())
                .or_else(ignore_broken_pipe)
                .map_err(|e| format!("cannot write the summary: {e}"))
        }
        ProfileCommand::Convert {
            input,
            output,
            format,
        } => {
            // Formats without the timeline need only the statistics and the call tree: read
            // as a stream (a Perfetto trace of any length); the others need the whole profile.
            let timeline = format
                .or_else(|| Format::from_path(&output))
                .is_none_or(Format::needs_timeline);
            let saved = if timeline {
                load(&input)?
            } else {
                SavedFile::Report(load_report(&input)?)
            };
            let result = match &saved {
                SavedFile::Timeline(profile) => export_profile(profile, &output, format),
                SavedFile::Report(report) => export_profile(report, &output, format),
            };
            result.map_err(|e| match e {
                // The library's message cannot name the option that settles it.
                ExportError::UnknownFormat { path } => format!(
                    "cannot tell the format of {} from its name: end it in {}, or give --format with one of {}",
                    path.display(),
                    Format::ALL
                        .iter()
                        .flat_map(|f| f.extensions().iter().copied())
                        .collect::<Vec<_>>()
                        .join(", "),
                    format_names().join(", ")
                ),
                ExportError::NeedsTimeline { format, .. } => format!(
                    "{} is a profile JSON, which keeps statistics and the call tree but not the timeline that {format} needs: convert the run's .trace.json instead",
                    input.input.display()
                ),
                e => e.to_string(),
            })
        }
        ProfileCommand::Flamegraph {
            input,
            output,
            icicle,
            title,
        } => {
            let report = load_report(&input)?;
            let mut options = FlamegraphOptions::new().icicle(icicle);
            if let Some(title) = title {
                options = options.title(title);
            }
            profiler_runtime::atomic_file::write(&output, |out| {
                profiler_runtime::export::write_flamegraph(&report, &options, out)
            })
            .map_err(|e| format!("cannot write {}: {e}", output.display()))
        }
    }
}

/// `message` with its control characters as Rust escapes (`\u{1b}`): parse errors can quote text
/// from the file (an unknown Speedscope event type), which must not reach the terminal as it is.
fn escape_controls(message: &str) -> String {
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `profiler summary | head` closes the pipe early: that is not an error.
fn ignore_broken_pipe(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2gb"), Ok(2 << 30));
        // The option's default is the library's.
        assert_eq!(
            parse_size("1G"),
            Ok(profiler_runtime::import::DEFAULT_MAX_INPUT_SIZE)
        );
        assert!(parse_size("3X").unwrap_err().contains("unknown unit `X`"));
        assert!(parse_size("G").unwrap_err().contains("not a size"));
        assert!(parse_size("-1").unwrap_err().contains("not a size"));
        assert!(parse_size("99999999T").unwrap_err().contains("too large"));
    }
}
