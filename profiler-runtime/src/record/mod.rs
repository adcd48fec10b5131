//! Record: the hot path and what it stands on. Owns the clock, the per-thread rings of events,
//! the recorder (enter, exit, guards), the async wrapper and the static registry of
//! instrumented sites. Uses nothing above it: the collector and production mode reach in from
//! above, through the narrow interfaces this layer defines.

pub(crate) mod clock;
pub(crate) mod event;
pub(crate) mod future;
pub(crate) mod recorder;
pub(crate) mod registry;
pub(crate) mod ring;
pub(crate) mod threads;
