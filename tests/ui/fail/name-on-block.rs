use profiler_runtime::profile;

struct Pool;

#[profile(name = "pool")]
impl Pool {
    fn get(&self) {}
}

fn main() {
    Pool.get();
}
