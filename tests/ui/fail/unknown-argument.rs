use profiler_runtime::profile;

#[profile(nmae = "parse")]
fn parse() {}

fn main() {
    parse();
}
