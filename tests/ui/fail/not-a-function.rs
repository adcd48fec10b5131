use profiler_runtime::profile;

#[profile]
struct Pool {
    size: usize,
}

#[profile]
enum State {
    Idle,
}

#[profile]
const LIMIT: u32 = 3;

#[profile]
mod inner {}

fn main() {
    let _ = (Pool { size: 1 }.size, State::Idle, LIMIT);
}
