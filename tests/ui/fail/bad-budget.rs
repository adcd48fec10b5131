use profiler_runtime::profile;

#[profile(budget = "2min")]
fn unknown_unit() {}

#[profile(budget = "1.5ns")]
fn fraction_of_a_nanosecond() {}

#[profile(budget = "0s")]
fn zero() {}

#[profile(budget = "2")]
fn no_unit() {}

#[profile(budget = 2)]
fn not_a_string() {}

fn main() {
    unknown_unit();
    fraction_of_a_nanosecond();
    zero();
    no_unit();
    not_a_string();
}
