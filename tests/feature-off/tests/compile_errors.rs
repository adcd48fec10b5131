//! Turning the `enable` feature on never reveals a new error: every misuse in the workspace's
//! `tests/ui/fail` fails to compile with the feature off too (`ui/fail/*.rs` here are links to
//! those files; the `.stderr` beside them are this side's), with the same error messages.

use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn misuses_fail_with_the_feature_off() {
    trybuild::TestCases::new().compile_fail("ui/fail/*.rs");
}

/// The `error...: message` lines of a `.stderr`, in order: what a user reads first.
fn error_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|line| line.starts_with("error"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_same_errors_with_the_feature_on_and_off() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let on_dir = here.join("../ui/fail");
    let mut compared = BTreeMap::new();
    for entry in std::fs::read_dir(&on_dir).unwrap() {
        let on = entry.unwrap().path();
        if on.extension().is_some_and(|e| e == "rs") {
            let name = on.file_name().unwrap().to_owned();
            let off = here.join("ui/fail").join(&name);
            assert!(
                off.exists(),
                "{} has no link in tests/feature-off/ui/fail",
                on.display()
            );
            let on_errors = error_lines(&on.with_extension("stderr"));
            let off_errors = error_lines(&off.with_extension("stderr"));
            assert_eq!(on_errors, off_errors, "{}", name.to_string_lossy());
            compared.insert(name, on_errors.len());
        }
    }
    assert!(compared.len() >= 10, "compared {compared:?}");
}
