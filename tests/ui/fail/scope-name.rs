// The same errors with the `enable` feature on or off: a number is not a name, and a name is
// not empty (as with `#[profile(name = "")]`).
fn number() {
    profiler_runtime::profile_scope!(42);
}

fn empty() {
    profiler_runtime::profile_scope!("");
}

fn main() {
    number();
    empty();
}
