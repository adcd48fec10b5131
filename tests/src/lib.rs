//! Integration tests of the profiler live in `tests/`.
