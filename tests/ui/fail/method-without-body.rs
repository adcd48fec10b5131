use profiler_runtime::profile;

trait Source {
    #[profile]
    fn get(&self) -> u32;
}

#[profile]
trait Sink {
    #[profile(name = "put")]
    fn put(&self, value: u32);
}

fn main() {}
