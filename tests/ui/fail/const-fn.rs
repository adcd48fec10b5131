use profiler_runtime::profile;

#[profile]
const fn square(x: u32) -> u32 {
    x * x
}

struct Pool;

#[profile]
impl Pool {
    // A block's attribute leaves a `const fn` alone, unless asked for it by name.
    #[profile(name = "pool size")]
    const fn size(&self) -> u32 {
        1
    }
}

fn main() {
    let _ = square(2) + Pool.size();
}
