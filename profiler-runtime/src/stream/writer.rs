//! The encoder: turns drained events into Perfetto `TracePacket`s (layout in the module docs of
//! [`crate::stream`]) and writes them to the file in deflate-compressed batches.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write as _};

use crate::collect::profile::FunctionEntry;
use crate::collect::{FunctionTable, StreamSink, ThreadBatch};
use crate::record::clock::Converter;
use crate::record::event::{Event, EventKind};
use crate::record::registry::FunctionInfo;
use crate::stream::proto::{
    self, Clock, ClockSnapshot, CounterDescriptor, DebugAnnotation, EventCategory, EventName,
    InternedData, ProcessDescriptor, SourceLocation, ThreadDescriptor, TracePacket,
    TracePacketDefaults, TrackDescriptor, TrackEvent, TrackEventDefaults,
};

/// The process track.
pub(crate) const PROCESS_TRACK: u64 = 1;
/// Thread `tid`'s track is `THREAD_TRACK_BASE + tid`.
pub(crate) const THREAD_TRACK_BASE: u64 = 1 << 32;
/// Async lane `n`'s track is `ASYNC_TRACK_BASE + n`.
pub(crate) const ASYNC_TRACK_BASE: u64 = 2 << 32;
/// Thread `tid`'s dropped-events counter track is `DROPPED_TRACK_BASE + tid`.
pub(crate) const DROPPED_TRACK_BASE: u64 = 3 << 32;
/// The process sequence: metadata, function definitions, async spans (absolute timestamps).
pub(crate) const PROCESS_SEQUENCE: u32 = 1;
/// The name of the instant event with the run's metadata, at its start.
pub(crate) const RUN_EVENT: &str = "profiler run";
/// The name of the instant event with the run's totals, at its end.
pub(crate) const RUN_END_EVENT: &str = "profiler run end";
/// The category of the profiler's own events (metadata, markers).
pub(crate) const PROFILER_CATEGORY: &str = "profiler";
/// The annotation on a slice that was still open when the file was completed.
pub(crate) const INCOMPLETE: &str = "incomplete";

/// Uncompressed bytes gathered before a compressed packet is cut (Perfetto's limit for one
/// compressed packet is 512 KiB; deflate only shrinks these).
const BATCH_BYTES: usize = 256 * 1024;

/// One recording thread's packet sequence.
#[derive(Debug)]
struct Sequence {
    id: u32,
    tid: u32,
    /// The incremental clock's position (ns): the last timestamp written on this sequence.
    last_ns: u64,
    /// Whether each function id has been interned on this sequence (index: id).
    interned: Vec<bool>,
    /// Sites of the slices open on the thread, outermost first.
    stack: Vec<&'static FunctionInfo>,
    /// An async event waiting for its payload (the id), which may come in the next drain.
    awaiting: Option<(EventKind, &'static FunctionInfo, u64)>,
    /// The thread's dropped count last written to its counter track.
    dropped_written: u64,
}

/// An async lane: a track reused by async spans of one function that do not overlap.
#[derive(Debug)]
struct Lane {
    track: u64,
    site: &'static FunctionInfo,
    /// The id of the span open on it.
    open: Option<u64>,
    /// When its last span ended (ns).
    free_from: u64,
}

/// Counts of what was written.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Written {
    /// Events encoded (enters, exits, async begins and ends).
    pub(crate) events: u64,
    /// Packets before compression, all sequences.
    pub(crate) packets: u64,
    /// Bytes of packets before compression.
    pub(crate) raw_bytes: u64,
    /// Bytes in the file.
    pub(crate) file_bytes: u64,
}

/// The streaming encoder and its file.
#[derive(Debug)]
pub(crate) struct Writer {
    file: File,
    pid: i32,
    /// Uncompressed packets not yet written.
    buf: Vec<u8>,
    /// The compressed packet being built.
    out: Vec<u8>,
    sequences: HashMap<u32, Sequence>,
    next_sequence: u32,
    functions: FunctionTable,
    lanes: Vec<Lane>,
    /// Async span id to its lane's index.
    open_async: HashMap<u64, usize>,
    /// Async ends seen before their begins (the begin's thread not drained yet), by id.
    early_ends: HashMap<u64, (u64, bool, u32)>,
    written: Written,
    /// `written.events` at the last cut batch.
    events_cut: u64,
    /// Compression level (0-9); `None` writes packets uncompressed.
    level: Option<u32>,
    /// The first write error; after it nothing more is written.
    pub(crate) error: Option<io::Error>,
    /// Events not written because of `error`.
    pub(crate) unwritten: u64,
}

/// What the run's metadata event says.
#[derive(Debug, Default)]
pub(crate) struct RunInfo {
    pub(crate) process_name: String,
    pub(crate) start_ns: u64,
    pub(crate) epoch_unix_ns: u64,
    /// Name-value pairs for the metadata event.
    pub(crate) annotations: Vec<(String, Value)>,
}

/// A value of a debug annotation.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Str(String),
    Uint(u64),
    Float(f64),
    Bool(bool),
}

pub(crate) fn annotation(name: &str, value: Value) -> DebugAnnotation {
    let mut a = DebugAnnotation {
        name: Some(name.to_owned()),
        ..DebugAnnotation::default()
    };
    match value {
        Value::Str(s) => a.string_value = Some(s),
        Value::Uint(n) => a.uint_value = Some(n),
        Value::Float(x) => a.double_value = Some(x),
        Value::Bool(b) => a.bool_value = Some(b),
    }
    a
}

/// The category of a function definition: its kind, and its budget when it has one.
pub(crate) fn definition_category(entry: &FunctionEntry) -> String {
    match entry.budget_ns {
        Some(ns) => format!("{} budget_ns={ns}", entry.kind.as_str()),
        None => entry.kind.as_str().to_owned(),
    }
}

impl Writer {
    /// A writer to `file` (already created, empty), compressing at `level`.
    pub(crate) fn new(file: File, level: Option<u32>) -> Self {
        Writer {
            file,
            pid: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
            buf: Vec::with_capacity(BATCH_BYTES + 4096),
            out: Vec::new(),
            sequences: HashMap::new(),
            next_sequence: PROCESS_SEQUENCE + 1,
            functions: FunctionTable::default(),
            lanes: Vec::new(),
            open_async: HashMap::new(),
            early_ends: HashMap::new(),
            written: Written::default(),
            events_cut: 0,
            level,
            error: None,
            unwritten: 0,
        }
    }

    /// What has been written so far.
    pub(crate) fn written(&self) -> Written {
        self.written
    }

    /// Events the rings dropped, all threads, as written to their counters.
    pub(crate) fn dropped_total(&self) -> u64 {
        self.sequences.values().map(|s| s.dropped_written).sum()
    }

    fn push(&mut self, packet: &TracePacket) {
        prost::encoding::message::encode(proto::TRACE_PACKET_FIELD, packet, &mut self.buf);
        self.written.packets += 1;
    }

    /// The process sequence's opening: the process track, the clocks, the run's metadata, and
    /// every function known now.
    pub(crate) fn begin(
        &mut self,
        run: RunInfo,
        sites: impl IntoIterator<Item = &'static FunctionInfo>,
    ) {
        self.push(&TracePacket {
            trusted_packet_sequence_id: Some(PROCESS_SEQUENCE),
            sequence_flags: Some(proto::SEQ_INCREMENTAL_STATE_CLEARED),
            first_packet_on_sequence: Some(true),
            track_descriptor: Some(TrackDescriptor {
                uuid: Some(PROCESS_TRACK),
                process: Some(ProcessDescriptor {
                    pid: Some(self.pid),
                    process_name: Some(run.process_name.clone()),
                }),
                ..TrackDescriptor::default()
            }),
            ..TracePacket::default()
        });
        self.push(&TracePacket {
            trusted_packet_sequence_id: Some(PROCESS_SEQUENCE),
            timestamp: Some(run.start_ns),
            timestamp_clock_id: Some(proto::CLOCK_BOOTTIME),
            clock_snapshot: Some(ClockSnapshot {
                clocks: vec![
                    Clock {
                        clock_id: Some(proto::CLOCK_BOOTTIME),
                        timestamp: Some(run.start_ns),
                        is_incremental: None,
                    },
                    Clock {
                        clock_id: Some(proto::CLOCK_REALTIME),
                        timestamp: Some(run.epoch_unix_ns.saturating_add(run.start_ns)),
                        is_incremental: None,
                    },
                ],
            }),
            ..TracePacket::default()
        });
        let annotations = run
            .annotations
            .into_iter()
            .map(|(n, v)| annotation(&n, v))
            .collect();
        self.instant(run.start_ns, RUN_EVENT, annotations);
        for site in sites {
            self.function_id(site);
        }
    }

    /// An instant event on the process track (absolute time).
    pub(crate) fn instant(&mut self, ns: u64, name: &str, annotations: Vec<DebugAnnotation>) {
        self.push(&TracePacket {
            trusted_packet_sequence_id: Some(PROCESS_SEQUENCE),
            timestamp: Some(ns),
            timestamp_clock_id: Some(proto::CLOCK_BOOTTIME),
            track_event: Some(TrackEvent {
                r#type: Some(proto::TYPE_INSTANT),
                track_uuid: Some(PROCESS_TRACK),
                name: Some(name.to_owned()),
                categories: vec![PROFILER_CATEGORY.to_owned()],
                debug_annotations: annotations,
                ..TrackEvent::default()
            }),
            ..TracePacket::default()
        });
    }

    /// The id of `site` (its index + 1), defining it on the process sequence at first sight.
    fn function_id(&mut self, site: &'static FunctionInfo) -> u64 {
        let before = self.functions.len();
        let index = self.functions.index(site);
        let id = u64::from(index) + 1;
        if index as usize >= before {
            self.define(id, index);
        }
        id
    }

    #[cold]
    #[inline(never)]
    fn define(&mut self, id: u64, index: u32) {
        let entry = self.functions.entry(index);
        let packet = TracePacket {
            trusted_packet_sequence_id: Some(PROCESS_SEQUENCE),
            sequence_flags: Some(proto::SEQ_NEEDS_INCREMENTAL_STATE),
            interned_data: Some(InternedData {
                event_names: vec![EventName {
                    iid: Some(id),
                    name: Some(entry.name.clone()),
                }],
                source_locations: vec![SourceLocation {
                    iid: Some(id),
                    file_name: Some(entry.file.clone()),
                    function_name: Some(entry.module_path.clone()),
                    line_number: Some(entry.line),
                }],
                event_categories: vec![EventCategory {
                    iid: Some(id),
                    name: Some(definition_category(entry)),
                }],
            }),
            ..TracePacket::default()
        };
        self.push(&packet);
    }

    /// The sequence of thread `tid`, opened (descriptor, defaults, clock) at first sight.
    fn sequence(&mut self, tid: u32, name: &str, first_ns: u64) -> u32 {
        if self.sequences.contains_key(&tid) {
            return tid;
        }
        let id = self.next_sequence;
        self.next_sequence += 1;
        let track = THREAD_TRACK_BASE + u64::from(tid);
        self.push(&TracePacket {
            trusted_packet_sequence_id: Some(id),
            sequence_flags: Some(proto::SEQ_INCREMENTAL_STATE_CLEARED),
            first_packet_on_sequence: Some(true),
            trace_packet_defaults: Some(TracePacketDefaults {
                timestamp_clock_id: Some(proto::CLOCK_INCREMENTAL),
                track_event_defaults: Some(TrackEventDefaults {
                    track_uuid: Some(track),
                }),
            }),
            track_descriptor: Some(TrackDescriptor {
                uuid: Some(track),
                parent_uuid: Some(PROCESS_TRACK),
                thread: Some(ThreadDescriptor {
                    pid: Some(self.pid),
                    tid: Some(i32::try_from(tid).unwrap_or(i32::MAX)),
                    thread_name: Some(name.to_owned()),
                }),
                ..TrackDescriptor::default()
            }),
            ..TracePacket::default()
        });
        self.push(&TracePacket {
            trusted_packet_sequence_id: Some(id),
            sequence_flags: Some(proto::SEQ_NEEDS_INCREMENTAL_STATE),
            timestamp: Some(first_ns),
            timestamp_clock_id: Some(proto::CLOCK_BOOTTIME),
            clock_snapshot: Some(ClockSnapshot {
                clocks: vec![
                    Clock {
                        clock_id: Some(proto::CLOCK_INCREMENTAL),
                        timestamp: Some(first_ns),
                        is_incremental: Some(true),
                    },
                    Clock {
                        clock_id: Some(proto::CLOCK_BOOTTIME),
                        timestamp: Some(first_ns),
                        is_incremental: None,
                    },
                ],
            }),
            ..TracePacket::default()
        });
        self.sequences.insert(
            tid,
            Sequence {
                id,
                tid,
                last_ns: first_ns,
                interned: Vec::new(),
                stack: Vec::new(),
                awaiting: None,
                dropped_written: 0,
            },
        );
        tid
    }

    /// A slice begin or end on the thread's own track, `delta` ns after its last packet.
    #[inline]
    fn slice_event(
        buf: &mut Vec<u8>,
        seq: u32,
        delta: u64,
        kind: i32,
        name: Option<(u64, Option<&str>)>,
    ) {
        match name {
            Some((_, Some(_))) => Self::slice_event_interning(buf, seq, delta, kind, name),
            _ => Self::slice_event_plain(buf, seq, delta, kind, name.map(|(iid, _)| iid)),
        }
    }

    /// [`Self::slice_event`] without a name to intern, the packet of nearly every event, written
    /// field by field into a stack buffer: the same bytes prost writes for that `TracePacket`
    /// (fields in tag order, `Some` fields always present; a unit test compares them), without
    /// building and dropping the message (the collector spent most of its time there).
    #[inline]
    fn slice_event_plain(buf: &mut Vec<u8>, seq: u32, delta: u64, kind: i32, iid: Option<u64>) {
        /// A varint at `at` in `out`; returns the position after it.
        #[inline(always)]
        fn varint(out: &mut [u8; 64], mut at: usize, mut value: u64) -> usize {
            while value >= 0x80 {
                out[at] = (value as u8) | 0x80;
                value >>= 7;
                at += 1;
            }
            out[at] = value as u8;
            at + 1
        }
        // The body after its two-byte key and length: TracePacket's timestamp (8),
        // trusted_packet_sequence_id (10), track_event (11: type (9; an int32 is sign-extended),
        // name_iid (10)), sequence_flags (13). At most 11 + 6 + 2 + 11 + 11 + 2 bytes.
        let mut out = [0u8; 64];
        out[0] = 8 << 3;
        let mut at = varint(&mut out, 1, delta);
        out[at] = 10 << 3;
        at = varint(&mut out, at + 1, u64::from(seq));
        out[at] = 11 << 3 | 2;
        let event_at = at + 2;
        out[event_at] = 9 << 3;
        let mut end = varint(&mut out, event_at + 1, i64::from(kind) as u64);
        if let Some(iid) = iid {
            out[end] = 10 << 3;
            end = varint(&mut out, end + 1, iid);
        }
        // The event is at most 22 bytes: its length is one byte.
        out[at + 1] = (end - event_at) as u8;
        out[end] = 13 << 3;
        end = varint(
            &mut out,
            end + 1,
            u64::from(proto::SEQ_NEEDS_INCREMENTAL_STATE),
        );
        // The packet is at most 45 bytes: its length is one byte too.
        buf.extend_from_slice(&[(proto::TRACE_PACKET_FIELD << 3 | 2) as u8, end as u8]);
        buf.extend_from_slice(&out[..end]);
    }

    /// [`Self::slice_event`] through prost's message, for a name interned at its first use.
    #[cold]
    fn slice_event_interning(
        buf: &mut Vec<u8>,
        seq: u32,
        delta: u64,
        kind: i32,
        name: Option<(u64, Option<&str>)>,
    ) {
        let packet = TracePacket {
            trusted_packet_sequence_id: Some(seq),
            sequence_flags: Some(proto::SEQ_NEEDS_INCREMENTAL_STATE),
            timestamp: Some(delta),
            interned_data: match name {
                Some((iid, Some(text))) => Some(InternedData {
                    event_names: vec![EventName {
                        iid: Some(iid),
                        name: Some(text.to_owned()),
                    }],
                    ..InternedData::default()
                }),
                _ => None,
            },
            track_event: Some(TrackEvent {
                r#type: Some(kind),
                name_iid: name.map(|(iid, _)| iid),
                ..TrackEvent::default()
            }),
            ..TracePacket::default()
        };
        prost::encoding::message::encode(proto::TRACE_PACKET_FIELD, &packet, buf);
    }

    /// An end on the thread's track marked incomplete (its exit was lost, or it was open when the
    /// file was completed).
    fn incomplete_end(buf: &mut Vec<u8>, seq: u32, delta: u64) {
        let packet = TracePacket {
            trusted_packet_sequence_id: Some(seq),
            sequence_flags: Some(proto::SEQ_NEEDS_INCREMENTAL_STATE),
            timestamp: Some(delta),
            track_event: Some(TrackEvent {
                r#type: Some(proto::TYPE_SLICE_END),
                debug_annotations: vec![annotation(INCOMPLETE, Value::Bool(true))],
                ..TrackEvent::default()
            }),
            ..TracePacket::default()
        };
        prost::encoding::message::encode(proto::TRACE_PACKET_FIELD, &packet, buf);
    }

    /// Encodes one thread's drained events.
    #[allow(clippy::too_many_lines)] // the hot loop over one thread's events, kept in one piece
    fn encode_thread(&mut self, batch: &ThreadBatch<'_>, converter: &mut Converter, limit_ns: u64) {
        let Some(first) = batch
            .events
            .runs()
            .flat_map(|r| r.iter())
            .find(|e| e.kind() != EventKind::Payload)
        else {
            self.write_dropped(batch);
            return;
        };
        let first_ns = converter.convert(first.value()).min(limit_ns);
        let tid = self.sequence(batch.tid, batch.name, first_ns);
        let mut seq = self.sequences.remove(&tid).expect("sequence just opened");
        let mut last_ns = seq.last_ns;
        let mut count = 0u64;
        for run in batch.events.runs() {
            for &event in run {
                let kind = event.kind();
                if kind == EventKind::Payload {
                    if let Some((kind, site, ns)) = seq.awaiting.take() {
                        self.async_event(kind, site, event.value(), ns, seq.tid);
                    }
                    continue;
                }
                let ns = converter.convert(event.value()).max(last_ns).min(limit_ns);
                let delta = ns - last_ns;
                match kind {
                    EventKind::Enter => {
                        let site = event.site();
                        let id = self.function_id(site);
                        let slot = id as usize;
                        if seq.interned.len() <= slot {
                            seq.interned.resize(slot + 1, false);
                        }
                        let name = if seq.interned[slot] {
                            None
                        } else {
                            seq.interned[slot] = true;
                            Some(self.functions.entry(id as u32 - 1).name.as_str())
                        };
                        Self::slice_event(
                            &mut self.buf,
                            seq.id,
                            delta,
                            proto::TYPE_SLICE_BEGIN,
                            Some((id, name)),
                        );
                        seq.stack.push(site);
                        last_ns = ns;
                        count += 1;
                    }
                    EventKind::Exit => {
                        let site = event.site();
                        match seq.stack.last() {
                            Some(top) if std::ptr::eq(*top, site) => {
                                seq.stack.pop();
                                Self::slice_event(
                                    &mut self.buf,
                                    seq.id,
                                    delta,
                                    proto::TYPE_SLICE_END,
                                    None,
                                );
                                last_ns = ns;
                                count += 1;
                            }
                            _ => {
                                // Exits lost above it: close those as incomplete first. An exit
                                // that matches nothing open (its enter was dropped) is skipped.
                                if let Some(pos) =
                                    seq.stack.iter().rposition(|s| std::ptr::eq(*s, site))
                                {
                                    let mut d = delta;
                                    for _ in pos + 1..seq.stack.len() {
                                        Self::incomplete_end(&mut self.buf, seq.id, d);
                                        d = 0;
                                    }
                                    seq.stack.truncate(pos);
                                    Self::slice_event(
                                        &mut self.buf,
                                        seq.id,
                                        d,
                                        proto::TYPE_SLICE_END,
                                        None,
                                    );
                                    last_ns = ns;
                                    count += 1;
                                }
                            }
                        }
                    }
                    _ => {
                        // Async begin, end or cancel: its id is the next event.
                        seq.awaiting = Some((kind, event.site(), ns));
                        count += 1;
                    }
                }
            }
            if self.buf.len() >= BATCH_BYTES {
                self.cut_batch();
            }
        }
        seq.last_ns = last_ns;
        self.written.events += count;
        self.sequences.insert(tid, seq);
        self.write_dropped(batch);
    }

    /// The thread's dropped-events counter, when it moved.
    fn write_dropped(&mut self, batch: &ThreadBatch<'_>) {
        let Some(seq) = self.sequences.get_mut(&batch.tid) else {
            return;
        };
        let dropped = batch.dropped_total;
        if dropped == seq.dropped_written {
            return;
        }
        let track = DROPPED_TRACK_BASE + u64::from(seq.tid);
        let first = seq.dropped_written == 0;
        seq.dropped_written = dropped;
        let id = seq.id;
        // At the thread's last timestamp (delta 0): its incremental clock cannot go back.
        let delta = 0;
        if first {
            self.push(&TracePacket {
                trusted_packet_sequence_id: Some(id),
                track_descriptor: Some(TrackDescriptor {
                    uuid: Some(track),
                    parent_uuid: Some(THREAD_TRACK_BASE + u64::from(batch.tid)),
                    name: Some("dropped events".to_owned()),
                    counter: Some(CounterDescriptor {
                        unit: Some(proto::UNIT_COUNT),
                    }),
                    ..TrackDescriptor::default()
                }),
                ..TracePacket::default()
            });
        }
        self.push(&TracePacket {
            trusted_packet_sequence_id: Some(id),
            sequence_flags: Some(proto::SEQ_NEEDS_INCREMENTAL_STATE),
            timestamp: Some(delta),
            track_event: Some(TrackEvent {
                r#type: Some(proto::TYPE_COUNTER),
                track_uuid: Some(track),
                counter_value: Some(i64::try_from(dropped).unwrap_or(i64::MAX)),
                ..TrackEvent::default()
            }),
            ..TracePacket::default()
        });
    }

    /// An async begin, end or cancel, on the process sequence (absolute time), on a lane track.
    #[cold]
    #[inline(never)]
    fn async_event(
        &mut self,
        kind: EventKind,
        site: &'static FunctionInfo,
        id: u64,
        ns: u64,
        tid: u32,
    ) {
        if kind == EventKind::AsyncBegin {
            let lane = self.lane_for(site, ns);
            self.lanes[lane].open = Some(id);
            self.open_async.insert(id, lane);
            let fid = self.function_id(site);
            let track = self.lanes[lane].track;
            self.push(&TracePacket {
                trusted_packet_sequence_id: Some(PROCESS_SEQUENCE),
                sequence_flags: Some(proto::SEQ_NEEDS_INCREMENTAL_STATE),
                timestamp: Some(ns),
                timestamp_clock_id: Some(proto::CLOCK_BOOTTIME),
                track_event: Some(TrackEvent {
                    r#type: Some(proto::TYPE_SLICE_BEGIN),
                    track_uuid: Some(track),
                    name_iid: Some(fid),
                    debug_annotations: vec![
                        annotation("id", Value::Uint(id)),
                        annotation("tid", Value::Uint(u64::from(tid))),
                    ],
                    ..TrackEvent::default()
                }),
                ..TracePacket::default()
            });
            if let Some((end_ns, cancelled, end_tid)) = self.early_ends.remove(&id) {
                self.async_end(id, end_ns.max(ns), cancelled, false, end_tid);
            }
        } else {
            let cancelled = kind == EventKind::AsyncCancel;
            if self.open_async.contains_key(&id) {
                self.async_end(id, ns, cancelled, false, tid);
            } else {
                self.early_ends.insert(id, (ns, cancelled, tid));
            }
        }
    }

    fn async_end(&mut self, id: u64, ns: u64, cancelled: bool, incomplete: bool, tid: u32) {
        let Some(lane) = self.open_async.remove(&id) else {
            return;
        };
        let lane_ref = &mut self.lanes[lane];
        lane_ref.open = None;
        lane_ref.free_from = ns;
        let track = lane_ref.track;
        let mut annotations = Vec::new();
        if tid != 0 {
            annotations.push(annotation("tid", Value::Uint(u64::from(tid))));
        }
        if cancelled {
            annotations.push(annotation("cancelled", Value::Bool(true)));
        }
        if incomplete {
            annotations.push(annotation(INCOMPLETE, Value::Bool(true)));
        }
        self.push(&TracePacket {
            trusted_packet_sequence_id: Some(PROCESS_SEQUENCE),
            sequence_flags: Some(proto::SEQ_NEEDS_INCREMENTAL_STATE),
            timestamp: Some(ns),
            timestamp_clock_id: Some(proto::CLOCK_BOOTTIME),
            track_event: Some(TrackEvent {
                r#type: Some(proto::TYPE_SLICE_END),
                track_uuid: Some(track),
                debug_annotations: annotations,
                ..TrackEvent::default()
            }),
            ..TracePacket::default()
        });
    }

    /// A lane of `site`'s that is free at `ns` (nothing open on it, its last span ended by then),
    /// or a new one.
    fn lane_for(&mut self, site: &'static FunctionInfo, ns: u64) -> usize {
        if let Some(i) = self
            .lanes
            .iter()
            .position(|l| std::ptr::eq(l.site, site) && l.open.is_none() && l.free_from <= ns)
        {
            return i;
        }
        let track = ASYNC_TRACK_BASE + self.lanes.len() as u64;
        let name = site.name().into_owned();
        self.push(&TracePacket {
            trusted_packet_sequence_id: Some(PROCESS_SEQUENCE),
            track_descriptor: Some(TrackDescriptor {
                uuid: Some(track),
                parent_uuid: Some(PROCESS_TRACK),
                name: Some(name),
                ..TrackDescriptor::default()
            }),
            ..TracePacket::default()
        });
        self.lanes.push(Lane {
            track,
            site,
            open: None,
            free_from: 0,
        });
        self.lanes.len() - 1
    }

    /// Ends every slice still open (marked incomplete) at `end_ns`, and the run-end event.
    pub(crate) fn end(&mut self, end_ns: u64, annotations: Vec<DebugAnnotation>) {
        let mut tids: Vec<u32> = self.sequences.keys().copied().collect();
        tids.sort_unstable();
        for tid in tids {
            let seq = self.sequences.get_mut(&tid).expect("listed");
            let ns = end_ns.max(seq.last_ns);
            let mut delta = ns - seq.last_ns;
            seq.last_ns = ns;
            let id = seq.id;
            for _ in 0..seq.stack.len() {
                Self::incomplete_end(&mut self.buf, id, delta);
                delta = 0;
            }
            seq.stack.clear();
        }
        let open: Vec<u64> = self.open_async.keys().copied().collect();
        for id in open {
            self.async_end(id, end_ns, false, true, 0);
        }
        self.instant(end_ns, RUN_END_EVENT, annotations);
    }

    /// Compresses the packets gathered so far into one packet and writes it.
    pub(crate) fn cut_batch(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        self.written.raw_bytes += self.buf.len() as u64;
        let events = self.written.events - self.events_cut;
        self.events_cut = self.written.events;
        if self.error.is_none() {
            self.out.clear();
            let result = self
                .encode_batch()
                .and_then(|()| self.file.write_all(&self.out));
            match result {
                Ok(()) => self.written.file_bytes += self.out.len() as u64,
                Err(e) => self.error = Some(e),
            }
        }
        if self.error.is_some() {
            self.unwritten += events;
        }
        self.buf.clear();
    }

    /// The batch as it goes to the file: one `compressed_packets` packet, or the packets as they
    /// are.
    fn encode_batch(&mut self) -> io::Result<()> {
        let Some(level) = self.level else {
            self.out.extend_from_slice(&self.buf);
            return Ok(());
        };
        let mut z = flate2::write::ZlibEncoder::new(
            Vec::with_capacity(self.buf.len() / 4 + 64),
            flate2::Compression::new(level),
        );
        z.write_all(&self.buf)?;
        let packet = TracePacket {
            compressed_packets: Some(z.finish()?),
            ..TracePacket::default()
        };
        prost::encoding::message::encode(proto::TRACE_PACKET_FIELD, &packet, &mut self.out);
        Ok(())
    }

    /// Writes what is gathered and makes the file durable.
    pub(crate) fn sync(&mut self) {
        self.cut_batch();
        if self.error.is_none() {
            if let Err(e) = self.file.flush().and_then(|()| self.file.sync_data()) {
                self.error = Some(e);
            }
        }
    }
}

impl StreamSink for Writer {
    fn thread(&mut self, batch: &ThreadBatch<'_>, converter: &mut Converter, limit_ns: u64) {
        self.encode_thread(batch, converter, limit_ns);
    }

    fn spilled(&mut self, events: &[(Event, u64)], converter: &mut Converter, limit_ns: u64) {
        for &(event, id) in events {
            let ns = converter.convert(event.value()).min(limit_ns);
            self.async_event(event.kind(), event.site(), id, ns, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{proto, TracePacket, TrackEvent, Writer};

    /// The field-by-field packet is byte for byte the one prost writes for the same message.
    #[test]
    fn plain_slice_events_are_encoded_as_prost_encodes_them() {
        for delta in [0, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            for seq in [1, 2, 200, u32::MAX] {
                for kind in [proto::TYPE_SLICE_BEGIN, proto::TYPE_SLICE_END] {
                    for iid in [None, Some(1), Some(128), Some(u64::MAX)] {
                        let mut fast = Vec::new();
                        Writer::slice_event_plain(&mut fast, seq, delta, kind, iid);
                        let packet = TracePacket {
                            trusted_packet_sequence_id: Some(seq),
                            sequence_flags: Some(proto::SEQ_NEEDS_INCREMENTAL_STATE),
                            timestamp: Some(delta),
                            track_event: Some(TrackEvent {
                                r#type: Some(kind),
                                name_iid: iid,
                                ..TrackEvent::default()
                            }),
                            ..TracePacket::default()
                        };
                        let mut slow = Vec::new();
                        prost::encoding::message::encode(
                            proto::TRACE_PACKET_FIELD,
                            &packet,
                            &mut slow,
                        );
                        assert_eq!(
                            fast, slow,
                            "delta {delta} seq {seq} kind {kind} iid {iid:?}"
                        );
                    }
                }
            }
        }
    }
}
