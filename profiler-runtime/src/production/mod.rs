//! Production mode: requests ([`ProfileContext`](crate::ProfileContext)), head sampling and
//! tail capture with a flight recorder ([`sampling`]), always-on latency histograms
//! ([`aggregate`]), SLA alerts ([`alert`]) and Prometheus metrics ([`prometheus`]). Built on the
//! recorder and the collector; nothing below reaches into it except through the narrow hooks
//! the record layer owns.

pub mod aggregate;
pub mod alert;
pub(crate) mod context;
pub mod prometheus;
pub mod sampling;
