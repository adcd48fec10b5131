use profiler_runtime::profile;

#[profile(skip)]
fn alone() {}

struct Pool;

#[profile(skip)]
impl Pool {
    fn get(&self) {}
}

#[profile]
impl Pool {
    #[profile(skip, name = "put")]
    fn put(&self) {}
}

fn main() {
    alone();
    Pool.get();
    Pool.put();
}
