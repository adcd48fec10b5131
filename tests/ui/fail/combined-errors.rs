use profiler_runtime::profile;

// Every mistake is reported at once, each on its own tokens.
#[profile(nmae = "x", budget = "soon", skip)]
const fn everything_wrong() {}

fn main() {
    everything_wrong();
}
