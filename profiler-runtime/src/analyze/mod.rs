//! Analyze: what a merged [`Profile`](crate::Profile) says. Per-function statistics
//! ([`stats`]), the merged call tree ([`tree`]), the report that the profile JSON holds
//! ([`report`]) and the text summary of the `profiler` command ([`summary`]). Uses the collected
//! profile below it; the exporters and the gate build on it.

pub mod report;
pub mod stats;
pub mod summary;
pub mod tree;
