use profiler_runtime::profile;

// `crate` takes a path, not a string.
#[profile(crate = "profiler_runtime")]
fn quoted() {}

#[profile(crate = "not a path")]
fn quoted_nonsense() {}

#[profile(krate = ::profiler_runtime)]
fn misspelt() {}

fn main() {
    quoted();
    quoted_nonsense();
    misspelt();
}
