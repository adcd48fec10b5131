//! `profiler`: summarise, convert and draw saved profiles (a profile JSON, a Chrome trace or a
//! Speedscope file written by `profiler-runtime`), and gate CI on regressions (`baseline save`, `compare`). A
//! thin wrapper over the library; errors are one line on stderr and exit code 1 (2 for bad
//! arguments). `compare` exits 0 when clean, 1 when the gate fails (a regression, a budget
//! violation, a missing function, nothing recorded), 2 on any error.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use profiler_runtime::analyze::summary::{write_summary, SortKey, SummaryOptions};
use profiler_runtime::export::{export_profile, ExportError, FlamegraphOptions, Format};
use profiler_runtime::import::{load_saved, SavedFile};

/// `baseline save` and `compare`: the regression gate.
#[path = "cli/gate.rs"]
mod gate;

/// Summarise, convert and draw profiles saved by profiler-runtime.
///
/// Inputs are a profile JSON (`.json`), a Chrome trace (`.trace.json`) or a Speedscope file
/// (`.speedscope.json`); the kind is read from the content.
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

#[derive(Debug, Subcommand)]
enum ProfileCommand {
    /// Print the run, the top functions as a table, and the hottest paths of the call tree.
    Summary {
        /// The saved profile.
        file: PathBuf,
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
    /// From a profile JSON: json, csv, folded, flamegraph, icicle. From a Chrome trace or a
    /// Speedscope file: all of those, plus chrome and speedscope.
    Convert {
        /// The saved profile.
        input: PathBuf,
        /// The file to write.
        output: PathBuf,
        /// chrome, speedscope, json, csv, folded, flamegraph or icicle.
        #[arg(long, short, value_parser = parse_format)]
        format: Option<Format>,
    },
    /// Draw a saved profile as an SVG flamegraph.
    Flamegraph {
        /// The saved profile.
        input: PathBuf,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Profile(command) => match run(command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("profiler: {message}");
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
            file,
            top,
            sort,
            paths,
        } => {
            let report = load_saved(&file).map_err(|e| e.to_string())?.to_report();
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
            let saved = load_saved(&input).map_err(|e| e.to_string())?;
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
                    input.display()
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
            let report = load_saved(&input).map_err(|e| e.to_string())?.to_report();
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

/// `profiler summary | head` closes the pipe early: that is not an error.
fn ignore_broken_pipe(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e)
    }
}
