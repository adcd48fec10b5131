//! One recorded event: what the rings hold, 16 bytes each.

use crate::record::registry::FunctionInfo;

/// What an [`Event`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum EventKind {
    /// A span begins on this thread.
    Enter = 0,
    /// The innermost open span of `site` ends.
    Exit = 1,
    /// An async span begins; the next event is its [`EventKind::Payload`] with the id.
    AsyncBegin = 2,
    /// An async span ends; followed by a payload.
    AsyncEnd = 3,
    /// An async span ends because its future was dropped before completion; followed by a payload.
    AsyncCancel = 4,
    /// Carries the id of the async event before it in place of ticks.
    Payload = 5,
}

/// One recorded event: 16 bytes, the kind packed into the top bits of the timestamp.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    /// `kind << KIND_SHIFT | ticks` (or `| id` for a payload).
    word: u64,
    site: &'static FunctionInfo,
}

const _: () = assert!(std::mem::size_of::<Event>() == 16);

impl Event {
    const KIND_SHIFT: u32 = 60;
    const VALUE_MASK: u64 = (1 << Self::KIND_SHIFT) - 1;

    #[inline(always)]
    pub(crate) fn new(kind: EventKind, value: u64, site: &'static FunctionInfo) -> Self {
        Event {
            word: (kind as u64) << Self::KIND_SHIFT | (value & Self::VALUE_MASK),
            site,
        }
    }

    pub(crate) fn kind(self) -> EventKind {
        match self.word >> Self::KIND_SHIFT {
            0 => EventKind::Enter,
            1 => EventKind::Exit,
            2 => EventKind::AsyncBegin,
            3 => EventKind::AsyncEnd,
            4 => EventKind::AsyncCancel,
            _ => EventKind::Payload,
        }
    }

    /// Ticks, or the id for a payload.
    pub(crate) fn value(self) -> u64 {
        self.word & Self::VALUE_MASK
    }

    pub(crate) fn site(self) -> &'static FunctionInfo {
        self.site
    }
}
