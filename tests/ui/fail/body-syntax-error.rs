use profiler_runtime::profile;

// A body that does not parse goes to rustc as written: one error, at the user's token.
#[profile]
fn broken() -> u32 {
    let x = ;
    x
}

fn main() {
    let _ = broken();
}
