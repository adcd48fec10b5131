use profiler_runtime::profile;

#[profile(name = "a", name = "b")]
fn twice() {}

struct Pool;

#[profile]
impl Pool {
    #[profile(name = "get")]
    #[profile(skip)]
    fn get(&self) {}
}

fn main() {
    twice();
    Pool.get();
}
