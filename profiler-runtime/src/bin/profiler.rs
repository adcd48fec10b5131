//! `profiler`: work with saved profiles. `profiler baseline save` and `profiler compare` are the
//! regression gate (exit code 0 clean, 1 regression, 2 error). A thin wrapper over the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[path = "cli/gate.rs"]
mod gate;

/// Work with profiles saved by profiler-runtime.
#[derive(Debug, Parser)]
#[command(name = "profiler", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Save baselines: several runs' results with their machine and build fingerprint.
    Baseline {
        #[command(subcommand)]
        command: gate::BaselineCommand,
    },
    /// Compare new runs with a baseline, or run two builds alternately and compare them.
    /// Exit code 0: no regression; 1: a regression or budget violation; 2: an error.
    Compare(gate::CompareArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Baseline { command } => gate::baseline(command),
        Command::Compare(args) => gate::compare_command(args),
    }
}
