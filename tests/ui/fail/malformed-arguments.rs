use profiler_runtime::profile;

#[profile(name = 3)]
fn number() {}

#[profile(name)]
fn bare_name() {}

#[profile("parse")]
fn literal() {}

#[profile(skip = true)]
fn skip_value() {}

#[profile(name = "a" budget = "1ms")]
fn missing_comma() {}

#[profile(name = "")]
fn empty_name() {}

#[profile(crate)]
fn bare_crate() {}

fn main() {
    number();
    bare_name();
    literal();
    skip_value();
    missing_comma();
    empty_name();
    bare_crate();
}
