//! A workload of known cost for testing the regression gate: each function spins for a fixed
//! number of iterations per call, and is called a fixed number of times. Run as separate
//! processes by `profiler compare --runs N -- A -- B` and by `gate_benchmark`.
//!
//! Arguments change one function on purpose:
//!
//! - `--slow FUNCTION=FACTOR` multiplies that function's own work by FACTOR (`checksum=1.05`
//!   makes `checksum` 5% slower);
//! - `--extra-calls FUNCTION=N` calls it N more times per batch;
//! - `--scale X` multiplies every function's work (default 1).
//!
//! Without `PROFILER_OUTPUT`, the profile goes to `gate_workload.json` in the working directory.

use std::hint::black_box;

// `profile_scope!` rather than `#[profile]` so the workload does not depend on the attribute's
// expansion; each scope covers the whole function body.
use profiler_runtime::profile_scope;

/// Iterations per call of each function, and calls per batch.
const PARSE: (u64, u64) = (40_000, 4);
const CHECKSUM: (u64, u64) = (60_000, 4);
const LOOKUP: (u64, u64) = (2_000, 40);
const RENDER: (u64, u64) = (30_000, 2);
const BATCHES: u64 = 10;

#[derive(Clone, Copy, Debug)]
struct Knobs {
    parse: f64,
    checksum: f64,
    lookup: f64,
    render: f64,
    extra: [u64; 4],
    scale: f64,
}

fn spin(iterations: f64, seed: u64) -> u64 {
    let mut x = seed | 1;
    for i in 0..iterations.round() as u64 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
        x ^= x >> 29;
    }
    black_box(x)
}

fn parse_records(k: &Knobs, seed: u64) -> u64 {
    profile_scope!("parse_records");
    spin(PARSE.0 as f64 * k.parse * k.scale, seed)
}

fn checksum(k: &Knobs, seed: u64) -> u64 {
    profile_scope!("checksum");
    spin(CHECKSUM.0 as f64 * k.checksum * k.scale, seed)
}

fn lookup(k: &Knobs, seed: u64) -> u64 {
    profile_scope!("lookup");
    spin(LOOKUP.0 as f64 * k.lookup * k.scale, seed)
}

fn render(k: &Knobs, seed: u64) -> u64 {
    profile_scope!("render");
    spin(RENDER.0 as f64 * k.render * k.scale, seed)
}

fn batch(k: &Knobs, seed: u64) -> u64 {
    profile_scope!("batch");
    let mut acc = seed;
    for i in 0..PARSE.1 + k.extra[0] {
        acc ^= parse_records(k, acc.wrapping_add(i));
    }
    for i in 0..CHECKSUM.1 + k.extra[1] {
        acc ^= checksum(k, acc.wrapping_add(i));
    }
    for i in 0..LOOKUP.1 + k.extra[2] {
        acc ^= lookup(k, acc.wrapping_add(i));
    }
    for i in 0..RENDER.1 + k.extra[3] {
        acc ^= render(k, acc.wrapping_add(i));
    }
    acc
}

const NAMES: [&str; 4] = ["parse_records", "checksum", "lookup", "render"];

fn parse_args() -> Result<Knobs, String> {
    let mut k = Knobs {
        parse: 1.0,
        checksum: 1.0,
        lookup: 1.0,
        render: 1.0,
        extra: [0; 4],
        scale: 1.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let pair = || -> Result<(usize, &str), String> {
            let (name, v) = value
                .split_once('=')
                .ok_or(format!("{flag} expects FUNCTION=VALUE"))?;
            let index = NAMES.iter().position(|n| *n == name).ok_or(format!(
                "unknown function `{name}`; expected one of {NAMES:?}"
            ))?;
            Ok((index, v))
        };
        match flag.as_str() {
            "--slow" => {
                let (i, v) = pair()?;
                let factor: f64 = v.parse().map_err(|_| format!("bad factor `{v}`"))?;
                *[&mut k.parse, &mut k.checksum, &mut k.lookup, &mut k.render][i] = factor;
            }
            "--extra-calls" => {
                let (i, v) = pair()?;
                k.extra[i] = v.parse().map_err(|_| format!("bad count `{v}`"))?;
            }
            "--scale" => k.scale = value.parse().map_err(|_| format!("bad scale `{value}`"))?,
            _ => return Err(format!("unknown argument `{flag}`")),
        }
    }
    Ok(k)
}

fn main() {
    let knobs = match parse_args() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("gate_workload: {e}");
            std::process::exit(2);
        }
    };
    let _profiler = profiler_runtime::Config::new()
        .output("gate_workload")
        .formats(&[profiler_runtime::export::Format::Json])
        .init();
    let mut acc = 0_u64;
    for b in 0..BATCHES {
        acc ^= batch(&knobs, acc.wrapping_add(b));
    }
    black_box(acc);
}
