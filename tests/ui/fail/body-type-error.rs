use profiler_runtime::profile;

#[profile]
fn count() -> u32 {
    "three"
}

#[profile]
async fn load() -> Result<u32, String> {
    let value: u32 = "4".parse().map_err(|_| 5u8)?;
    Ok(value)
}

#[profile]
async fn label() -> u32 {
    "four"
}

struct Pool;

#[profile]
impl Pool {
    async fn size(&self) -> usize {
        self.missing_field
    }
}

fn main() {
    let _ = count();
    let _ = load();
    let _ = label();
    let _ = Pool.size();
}
