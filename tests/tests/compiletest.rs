//! The compile errors of `#[profile]` (`ui/fail`, each with its `.stderr`) and the forms that
//! must compile and run (`ui/pass`). Diagnostics change between compilers: the `.stderr` files
//! are blessed on the pinned stable toolchain with `TRYBUILD=overwrite`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/fail/*.rs");
    cases.pass("ui/pass/*.rs");
}
