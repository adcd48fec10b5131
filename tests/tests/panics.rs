//! A panic inside a profiled region still closes its span, and the program goes on.

use profiler_runtime::profile_scope;
use profiler_tests::{record, this_thread, tree};

fn inner(fail: bool) -> u32 {
    profile_scope!("inner");
    assert!(!fail, "boom");
    1
}

fn outer(fail: bool) -> u32 {
    profile_scope!("outer");
    inner(fail) + 1
}

#[test]
fn a_panic_closes_every_span_it_unwinds_through() {
    let profile = record(|| {
        let caught = std::panic::catch_unwind(|| outer(true));
        assert!(caught.is_err());
        assert_eq!(outer(false), 2, "recording goes on after the panic");
    });
    let thread = this_thread(&profile);
    assert_eq!(tree(&profile, thread), "outer\n  inner\nouter\n  inner\n");
    assert!(thread.spans.iter().all(|s| !s.flags.incomplete));
}
