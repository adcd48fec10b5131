//! The production overhead benchmark: a service-like request handler making 100 profiled calls
//! per request (about 1 million profiled calls per second on one core), run without profiling
//! and in each production mode, in the same process.
//!
//! ```text
//! cargo bench -p profiler-runtime --features enable --bench production
//! ```
//!
//! Criterion measures each mode; then an interleaved run (every mode timed in turn, many rounds,
//! medians) prints the overhead of each mode relative to the uninstrumented handler, which is the
//! figure published in `docs/production.md`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use profiler_runtime::{production::aggregate, production::sampling, ProfileContext};

/// Spends roughly `rounds` * 4 ns computing.
#[inline(always)]
fn compute(seed: u64, rounds: u32) -> u64 {
    let mut x = seed | 1;
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = black_box(x);
    }
    x
}

macro_rules! scoped {
    ($name:literal) => {
        profiler_runtime::profile_scope!($name);
    };
}

macro_rules! unscoped {
    ($name:literal) => {};
}

/// The same handler twice: `$scope` is `scoped` (profiled) or `unscoped` (not).
macro_rules! service {
    ($module:ident, $scope:ident) => {
        mod $module {
            use super::compute;

            #[inline(never)]
            pub(crate) fn validate(seed: u64) -> u64 {
                $scope!("service::validate");
                compute(seed, 150)
            }

            #[inline(never)]
            pub(crate) fn query(seed: u64) -> u64 {
                $scope!("service::query");
                compute(seed, 250)
            }

            #[inline(never)]
            pub(crate) fn render(seed: u64, items: u64) -> u64 {
                $scope!("service::render");
                (0..items).fold(seed, |acc, i| acc ^ validate(acc.wrapping_add(i)))
            }

            /// 100 profiled calls: 1 render wrapping 9 validates, 45 queries, 45 validates.
            /// A slow request does ten times the work.
            pub(crate) fn handle(seed: u64, slow: bool) -> u64 {
                let repeat = if slow { 10 } else { 1 };
                let mut acc = seed;
                for _ in 0..repeat {
                    for i in 0..45 {
                        acc ^= query(acc.wrapping_add(i));
                        acc ^= validate(acc);
                    }
                    acc ^= render(acc, 9);
                }
                acc
            }
        }
    };
}

service!(plain, unscoped);
service!(profiled, scoped);

/// The production modes compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Built without profiling.
    Baseline,
    /// Profiling compiled in, switched off at run time.
    Disabled,
    /// 1% of requests recorded.
    Head1,
    /// Every request recorded and held; the 1% slow ones kept.
    Tail1,
    /// Per-function aggregation, no traces.
    Aggregate,
}

const MODES: [Mode; 5] = [
    Mode::Baseline,
    Mode::Disabled,
    Mode::Head1,
    Mode::Tail1,
    Mode::Aggregate,
];

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Baseline => "no profiling",
            Mode::Disabled => "runtime-disabled",
            Mode::Head1 => "head sampling 1%",
            Mode::Tail1 => "tail, 1% slow",
            Mode::Aggregate => "always-on aggregation",
        }
    }

    fn root(self) -> &'static str {
        match self {
            Mode::Baseline | Mode::Disabled => "bench_disabled",
            Mode::Head1 => "bench_head",
            Mode::Tail1 => "bench_tail",
            Mode::Aggregate => "bench_aggregate",
        }
    }

    /// Switches the process into this mode.
    fn apply(self) {
        aggregate::set_per_function(self == Mode::Aggregate);
        if self == Mode::Disabled {
            profiler_runtime::disable();
        } else {
            profiler_runtime::enable();
        }
    }
}

/// One service: requests numbered in sequence, every 100th slow; the collector drains the
/// buffers every 4096 requests, as a production deployment would (its cost is measured too).
struct Service {
    next: u64,
}

impl Service {
    fn request(&mut self, mode: Mode) -> u64 {
        self.next += 1;
        let slow = self.next % 100 == 0;
        if self.next % 4096 == 0 {
            drop(black_box(profiler_runtime::flush()));
        }
        if mode == Mode::Baseline {
            return plain::handle(self.next, slow);
        }
        let _request = ProfileContext::request(mode.root());
        profiled::handle(self.next, slow)
    }
}

fn configure() {
    // Tail threshold between a normal and a slow request: 3x a normal one.
    let mut service = Service { next: 1 };
    let start = Instant::now();
    for _ in 0..200 {
        black_box(plain::handle(service.next, false));
        service.next += 1;
    }
    let normal = start.elapsed() / 200;
    sampling::set_sample_rate("bench_disabled", 0.0);
    sampling::set_sample_rate("bench_head", 0.01);
    sampling::set_sample_rate("bench_tail", 0.0);
    sampling::set_tail_threshold("bench_tail", Some(normal * 3));
    sampling::set_sample_rate("bench_aggregate", 0.0);
    println!(
        "normal request: {normal:?}; tail threshold {:?}",
        normal * 3
    );
}

fn modes(c: &mut Criterion) {
    configure();
    let mut group = c.benchmark_group("production");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(30);
    let mut service = Service { next: 0 };
    for mode in MODES {
        mode.apply();
        group.bench_function(mode.name(), |b| b.iter(|| service.request(mode)));
    }
    group.finish();
    profiler_runtime::enable();
}

/// Interleaved rounds: each mode handles a batch of requests in turn (the order rotating from
/// round to round), so that drift of the machine hits every mode alike. Each round gives each
/// mode's ratio to the baseline's batch of the same round; the table shows the median ratio and
/// the interquartile range over rounds.
fn overhead_table() {
    const ROUNDS: usize = 61;
    const BATCH: u64 = 500;
    let mut service = Service { next: 0 };
    let mut ratios: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); MODES.len()];
    let mut baseline = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS + 2 {
        let mut times = [0.0; MODES.len()];
        for k in 0..MODES.len() {
            let i = (k + round) % MODES.len();
            let mode = MODES[i];
            mode.apply();
            // Wall time: std has no per-thread CPU clock, and /proc's schedstat only moves at
            // scheduler ticks, too coarse for 20 ms batches.
            let start = Instant::now();
            for _ in 0..BATCH {
                black_box(service.request(mode));
            }
            times[i] = start.elapsed().as_secs_f64();
        }
        // The first rounds warm up.
        if round >= 2 {
            baseline.push(times[0]);
            for (i, t) in times.iter().enumerate() {
                ratios[i].push(t / times[0]);
            }
        }
    }
    profiler_runtime::enable();
    let quartiles = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 4], v[v.len() / 2], v[v.len() * 3 / 4])
    };
    let (_, per_batch, _) = quartiles(&mut baseline);
    let per_request = per_batch / BATCH as f64;
    println!();
    println!(
        "overhead per mode (wall time): median over {ROUNDS} interleaved rounds of {BATCH} requests each"
    );
    println!(
        "(100 profiled calls per request; {:.1} us per request without profiling = {:.2} M calls/s)",
        per_request * 1e6,
        100.0 / per_request / 1e6
    );
    println!("| mode | ratio to no profiling | overhead | interquartile range |");
    println!("|---|---|---|---|");
    for (mode, r) in MODES.iter().zip(&mut ratios) {
        let (low, median, high) = quartiles(r);
        println!(
            "| {} | {median:.4} | {:+.2}% | {:+.2}% .. {:+.2}% |",
            mode.name(),
            (median - 1.0) * 100.0,
            (low - 1.0) * 100.0,
            (high - 1.0) * 100.0
        );
    }
    let snapshot = aggregate::snapshot();
    println!(
        "\nself-overhead estimate: {} probes x {:.1} ns = {:.3} s (profiler_overhead_seconds_total)",
        snapshot.probes,
        snapshot.probe_cost_ns,
        snapshot.estimated_overhead_seconds()
    );
}

criterion_group!(benches, modes);

/// `--mode NAME --requests N`: handles N requests in one mode and exits, for instruction counts
/// under `valgrind --tool=callgrind` (NAME: baseline, disabled, head, tail, aggregate).
fn single_mode(args: &[String]) -> bool {
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let (Some(name), Some(requests)) = (value("--mode"), value("--requests")) else {
        return false;
    };
    let mode = match name.as_str() {
        "baseline" => Mode::Baseline,
        "disabled" => Mode::Disabled,
        "head" => Mode::Head1,
        "tail" => Mode::Tail1,
        "aggregate" => Mode::Aggregate,
        other => panic!("unknown mode {other}"),
    };
    let requests: u64 = requests.parse().expect("--requests takes a number");
    // The tail threshold comes from the speed measured here, under valgrind too.
    configure();
    sampling::seed_sampler(1);
    mode.apply();
    let mut service = Service { next: 0 };
    for _ in 0..requests {
        black_box(service.request(mode));
    }
    true
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if single_mode(&args) {
        return;
    }
    let table_only = args.iter().any(|a| a == "--overhead-table-only");
    if !table_only {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    configure();
    overhead_table();
}
