//! Reading a native Perfetto trace back into a [`Profile`]: the streamed file of this crate (its
//! layout is described in the docs of the `stream` module, summarised in the book's formats page),
//! and track-event traces of other tools as far as they use the same messages (slices on thread
//! tracks, named inline or interned).
//!
//! The file is read as a stream of packets, a compressed batch inflated at a time: memory follows
//! the size of the profile, not of the file. A file cut inside a packet (a run killed while
//! writing, a copy cut short) loads every complete packet before the cut.

use std::collections::HashMap;
use std::io::{self, Read};

use prost::bytes::Buf as _;
use prost::Message as _;

use crate::analyze::report::{ReadError, ReadErrorKind, Report};
use crate::analyze::stats::kind_name;
use crate::analyze::stats::{FastMap, StreamingStats};
use crate::collect::profile::{
    AsyncSpan, ClockInfo, FunctionEntry, Profile, Span, SpanFlags, ThreadTimeline,
};
use crate::record::clock::ClockKind;
use crate::record::registry::FunctionKind;
use crate::stream::proto::{self, DebugAnnotation, TracePacket};
use crate::stream::writer::{
    INCOMPLETE, PROCESS_SEQUENCE, RUN_END_EVENT, RUN_EVENT, THREAD_TRACK_BASE,
};

/// Whether `first` can start a Perfetto trace: the key of field 1 (`packet`), length-delimited.
pub(crate) fn is_perfetto_start(first: u8) -> bool {
    first == 0x0a
}

/// A function as the file defines it, assembled from its interned entries.
#[derive(Default)]
struct Definition {
    name: Option<String>,
    file: Option<String>,
    module_path: Option<String>,
    line: u32,
    kind: Option<FunctionKind>,
    budget_ns: Option<u64>,
}

#[derive(Default)]
struct SequenceState {
    /// The incremental clock's position and its offset to the trace clock, once snapshotted.
    incremental: Option<u64>,
    incremental_offset: i128,
    default_clock: Option<u32>,
    default_track: Option<u64>,
    /// Event names interned on this sequence.
    names: FastMap<u64, String>,
}

enum Track {
    Thread {
        tid: u32,
    },
    /// An async lane: slices of one function's futures (their names come with the events).
    Async,
    Dropped {
        tid: u32,
    },
    Other,
}

/// A slice open on a thread: what its end needs.
struct Open {
    /// What the visitor returned at its begin.
    token: u32,
    function: u32,
    start_ns: u64,
    /// The time of its children that ended so far.
    children_ns: u64,
}

#[derive(Default)]
struct ThreadState {
    name: String,
    stack: Vec<Open>,
    /// Slices begun on it.
    spans: u64,
    dropped: u64,
}

/// A slice on a thread, as its end delivers it to a [`Visitor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ended {
    pub(crate) function: u32,
    pub(crate) kind: FunctionKind,
    pub(crate) start_ns: u64,
    pub(crate) end_ns: u64,
    pub(crate) depth: u32,
    /// The function of the enclosing slice, `None` for a root.
    pub(crate) parent_function: Option<u32>,
    /// Its duration less its children's.
    pub(crate) self_ns: u64,
    /// Its end was lost, or the file ended before it.
    pub(crate) incomplete: bool,
}

/// What the decoder delivers as it reads: slices on threads at their begin and end, async spans
/// when they end. Memory beyond the functions, threads and open slices is the visitor's choice:
/// [`read_perfetto`] keeps every span, a summary keeps statistics only.
pub(crate) trait Visitor {
    /// A slice of `function` begins on thread `tid` at `start_ns`, `depth` slices deep, inside the
    /// slice whose begin returned `parent`. Returns the token its end and its children get.
    fn begin(
        &mut self,
        tid: u32,
        function: u32,
        start_ns: u64,
        depth: u32,
        parent: Option<u32>,
    ) -> u32;
    /// The slice whose begin returned `token` ends (slices end innermost first).
    fn end(&mut self, tid: u32, token: u32, span: &Ended);
    /// An async span ended (or, at the end of the file, was left open: incomplete).
    fn async_span(&mut self, span: AsyncSpan);
}

/// The visitor of [`read_perfetto`]: every span, in the order they began.
#[derive(Default)]
struct Timelines {
    threads: FastMap<u32, Vec<Span>>,
    async_spans: Vec<AsyncSpan>,
}

impl Visitor for Timelines {
    fn begin(
        &mut self,
        tid: u32,
        function: u32,
        start_ns: u64,
        depth: u32,
        parent: Option<u32>,
    ) -> u32 {
        let spans = self.threads.entry(tid).or_default();
        spans.push(Span {
            function,
            start_ns,
            end_ns: start_ns,
            depth,
            parent,
            flags: SpanFlags::default(),
        });
        (spans.len() - 1) as u32
    }

    fn end(&mut self, tid: u32, token: u32, ended: &Ended) {
        if let Some(span) = self
            .threads
            .get_mut(&tid)
            .and_then(|s| s.get_mut(token as usize))
        {
            span.end_ns = ended.end_ns;
            span.flags.incomplete = ended.incomplete;
        }
    }

    fn async_span(&mut self, span: AsyncSpan) {
        self.async_spans.push(span);
    }
}

/// What a whole file gave: the profile without its spans (functions, threads with names and
/// dropped events, bounds, clock, process), the spans each thread began, and the visitor.
pub(crate) struct Decoded<V> {
    pub(crate) profile: Profile,
    /// Slices begun on each of `profile.threads`, in its order.
    pub(crate) span_counts: Vec<u64>,
    pub(crate) visitor: V,
}

struct OpenAsync {
    function: u32,
    id: u64,
    start_ns: u64,
    start_tid: u32,
}

/// Decodes a trace packet by packet, telling `visitor` what it finds.
struct Rebuild<V> {
    visitor: V,
    definitions: FastMap<u64, Definition>,
    /// Function index by definition iid (ours) or by name (other tools').
    by_iid: FastMap<u64, u32>,
    by_name: HashMap<String, u32>,
    functions: Vec<FunctionEntry>,
    sequences: FastMap<u32, SequenceState>,
    tracks: FastMap<u64, Track>,
    threads: FastMap<u32, ThreadState>,
    async_open: FastMap<u64, OpenAsync>,
    async_ended: u64,
    /// The buffer a compressed batch is inflated into, kept for the next.
    inflated: Vec<u8>,
    process_name: Option<String>,
    pid: u32,
    start_ns: Option<u64>,
    end_ns: Option<u64>,
    first_ns: Option<u64>,
    last_ns: u64,
    realtime_offset: Option<i128>,
    clock_kind: Option<ClockKind>,
    ticks_per_second: Option<f64>,
    dropped_total: Option<u64>,
    build: Option<crate::BuildInfo>,
    packets: u64,
}

/// Reads a Perfetto trace from `reader`, at most `max_bytes` bytes, into a [`Profile`].
///
/// # Errors
///
/// [`ReadError`] when the input cannot be read, holds more than `max_bytes`, is not a Perfetto
/// trace (its first packet cannot be decoded), or holds no slice at all.
pub fn read_perfetto(reader: impl Read, max_bytes: u64) -> Result<Profile, ReadError> {
    let Decoded {
        mut profile,
        visitor: mut timelines,
        ..
    } = decode(reader, max_bytes, Timelines::default())?;
    for thread in &mut profile.threads {
        thread.spans = timelines.threads.remove(&thread.tid).unwrap_or_default();
    }
    profile.async_spans = timelines.async_spans;
    profile.async_spans.sort_by_key(|s| (s.start_ns, s.id));
    Ok(profile)
}

impl Visitor for StreamingStats {
    fn begin(
        &mut self,
        tid: u32,
        function: u32,
        _start_ns: u64,
        _depth: u32,
        parent: Option<u32>,
    ) -> u32 {
        StreamingStats::begin(self, tid, function, parent)
    }

    fn end(&mut self, tid: u32, token: u32, span: &Ended) {
        let duration = span.end_ns - span.start_ns;
        StreamingStats::end(self, tid, token, span.kind, duration, span.self_ns);
    }

    fn async_span(&mut self, span: AsyncSpan) {
        StreamingStats::async_span(self, &span);
    }
}

/// Reads a Perfetto trace from `reader`, at most `max_bytes` bytes, into its statistics and call
/// tree (what `profiler summary` prints), without keeping its spans: memory follows the number of
/// functions, threads and distinct call paths, not the length of the trace. Percentiles are exact
/// up to 4096 calls of a function, and within 0.8% beyond (a histogram). Equal otherwise to
/// `Report::new(&read_perfetto(..)?)` with no host.
///
/// # Errors
///
/// As [`read_perfetto`].
pub fn summarize_perfetto(reader: impl Read, max_bytes: u64) -> Result<Report, ReadError> {
    let Decoded {
        profile,
        span_counts,
        visitor,
    } = decode(reader, max_bytes, StreamingStats::default())?;
    let (functions, call_tree) = visitor.finish(&profile.functions);
    let mut run = Report::run_info(&profile);
    run.host = None;
    for (thread, spans) in run.threads.iter_mut().zip(span_counts) {
        thread.spans = spans;
    }
    Ok(Report {
        run,
        functions,
        call_tree,
    })
}

/// Reads a Perfetto trace from `reader`, at most `max_bytes` bytes, telling `visitor` each span.
/// Memory is the functions, threads, open slices and one compressed batch, and what `visitor`
/// keeps.
///
/// # Errors
///
/// As [`read_perfetto`].
pub(crate) fn decode<V: Visitor>(
    reader: impl Read,
    max_bytes: u64,
    visitor: V,
) -> Result<Decoded<V>, ReadError> {
    let mut input = io::BufReader::with_capacity(1 << 16, reader.take(max_bytes.saturating_add(1)));
    let mut rebuild = Rebuild {
        visitor,
        definitions: FastMap::default(),
        by_iid: FastMap::default(),
        by_name: HashMap::new(),
        functions: Vec::new(),
        sequences: FastMap::default(),
        tracks: FastMap::default(),
        threads: FastMap::default(),
        async_open: FastMap::default(),
        async_ended: 0,
        inflated: Vec::new(),
        process_name: None,
        pid: 0,
        start_ns: None,
        end_ns: None,
        first_ns: None,
        last_ns: 0,
        realtime_offset: None,
        clock_kind: None,
        ticks_per_second: None,
        dropped_total: None,
        build: None,
        packets: 0,
    };
    let mut consumed = 0u64;
    let mut packet_bytes = Vec::new();
    #[allow(clippy::while_let_loop)] // the loop reads as the format: header, then body
    loop {
        // The packet's key and length: a cut here (or anywhere in the packet) ends the trace.
        let Some((field, wire, len)) = read_header(&mut input, &mut consumed)? else {
            break;
        };
        if consumed + len > max_bytes {
            return Err(ReadError::new(ReadErrorKind::TooLarge { limit: max_bytes }));
        }
        if wire != 2 {
            if rebuild.packets == 0 {
                return Err(not_perfetto());
            }
            break;
        }
        packet_bytes.clear();
        packet_bytes.resize(len as usize, 0);
        match input.read_exact(&mut packet_bytes) {
            Ok(()) => consumed += len,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(ReadError::new(ReadErrorKind::Io(e))),
        }
        if field != proto::TRACE_PACKET_FIELD {
            continue;
        }
        match TracePacket::decode(&packet_bytes[..]) {
            Ok(packet) => rebuild.packet(&packet)?,
            Err(_) if rebuild.packets == 0 => return Err(not_perfetto()),
            Err(e) => {
                return Err(ReadError::new(ReadErrorKind::Invalid(format!(
                    "packet at byte {}: {e}",
                    consumed - len
                ))))
            }
        }
    }
    if consumed > max_bytes {
        return Err(ReadError::new(ReadErrorKind::TooLarge { limit: max_bytes }));
    }
    rebuild.finish()
}

fn not_perfetto() -> ReadError {
    ReadError::new(ReadErrorKind::WrongSchema { found: None })
}

/// A varint from `input`; `None` at the end of the input (or a cut inside the varint).
fn read_varint(input: &mut impl Read, consumed: &mut u64) -> Result<Option<u64>, ReadError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8];
        match input.read(&mut byte) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::new(ReadErrorKind::Io(e))),
        }
        *consumed += 1;
        value |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(Some(value));
        }
    }
    Err(ReadError::new(ReadErrorKind::Invalid(
        "a varint longer than 10 bytes".into(),
    )))
}

/// A top-level field's number, wire type and (for length-delimited fields) length.
fn read_header(
    input: &mut impl Read,
    consumed: &mut u64,
) -> Result<Option<(u32, u8, u64)>, ReadError> {
    let Some(key) = read_varint(input, consumed)? else {
        return Ok(None);
    };
    let wire = (key & 7) as u8;
    let field = (key >> 3) as u32;
    if wire != 2 {
        return Ok(Some((field, wire, 0)));
    }
    Ok(read_varint(input, consumed)?.map(|len| (field, wire, len)))
}

fn annotation_uint(annotations: &[DebugAnnotation], name: &str) -> Option<u64> {
    annotations
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
        .and_then(|a| {
            a.uint_value
                .or(a.int_value.and_then(|v| u64::try_from(v).ok()))
        })
}

fn annotation_str<'a>(annotations: &'a [DebugAnnotation], name: &str) -> Option<&'a str> {
    annotations
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
        .and_then(|a| a.string_value.as_deref())
}

fn annotation_flag(annotations: &[DebugAnnotation], name: &str) -> bool {
    annotations
        .iter()
        .any(|a| a.name.as_deref() == Some(name) && a.bool_value == Some(true))
}

impl<V: Visitor> Rebuild<V> {
    fn packet(&mut self, packet: &TracePacket) -> Result<(), ReadError> {
        self.packets += 1;
        if let Some(compressed) = &packet.compressed_packets {
            return self.compressed(compressed);
        }
        let seq_id = packet.trusted_packet_sequence_id.unwrap_or(0);
        if packet.sequence_flags.unwrap_or(0) & proto::SEQ_INCREMENTAL_STATE_CLEARED != 0 {
            self.sequences.insert(seq_id, SequenceState::default());
        }
        let seq = self.sequences.entry(seq_id).or_default();
        if let Some(defaults) = &packet.trace_packet_defaults {
            seq.default_clock = defaults.timestamp_clock_id;
            seq.default_track = defaults
                .track_event_defaults
                .as_ref()
                .and_then(|d| d.track_uuid);
        }
        if let Some(interned) = &packet.interned_data {
            for name in &interned.event_names {
                if let (Some(iid), Some(text)) = (name.iid, &name.name) {
                    seq.names.insert(iid, text.clone());
                }
            }
        }
        if let (PROCESS_SEQUENCE, Some(interned)) = (seq_id, &packet.interned_data) {
            self.define(interned);
        }
        let seq = self.sequences.entry(seq_id).or_default();
        if let Some(snapshot) = &packet.clock_snapshot {
            let boot = snapshot
                .clocks
                .iter()
                .find(|c| c.clock_id == Some(proto::CLOCK_BOOTTIME))
                .and_then(|c| c.timestamp);
            for clock in &snapshot.clocks {
                match (clock.clock_id, clock.timestamp, boot) {
                    (Some(proto::CLOCK_INCREMENTAL), Some(ts), Some(boot)) => {
                        seq.incremental = Some(ts);
                        seq.incremental_offset = i128::from(boot) - i128::from(ts);
                    }
                    (Some(proto::CLOCK_REALTIME), Some(ts), Some(boot)) => {
                        self.realtime_offset = Some(i128::from(ts) - i128::from(boot));
                    }
                    _ => {}
                }
            }
        }
        // The packet's time on the trace clock.
        let clock = packet.timestamp_clock_id.or(seq.default_clock);
        let ns = packet.timestamp.map(|ts| match clock {
            Some(proto::CLOCK_INCREMENTAL) => {
                let at = seq.incremental.unwrap_or(0).saturating_add(ts);
                seq.incremental = Some(at);
                (i128::from(at) + seq.incremental_offset).clamp(0, i128::from(u64::MAX)) as u64
            }
            _ => ts,
        });
        let default_track = seq.default_track;
        if let Some(descriptor) = &packet.track_descriptor {
            self.track(descriptor.clone());
        }
        if let (Some(event), Some(ns)) = (&packet.track_event, ns) {
            let track = event.track_uuid.or(default_track).unwrap_or(0);
            self.event(seq_id, track, ns, event)?;
        }
        Ok(())
    }

    fn compressed(&mut self, compressed: &[u8]) -> Result<(), ReadError> {
        let mut inflated = std::mem::take(&mut self.inflated);
        inflated.clear();
        let result = self.inflate_and_decode(compressed, &mut inflated);
        self.inflated = inflated;
        result
    }

    fn inflate_and_decode(
        &mut self,
        compressed: &[u8],
        inflated: &mut Vec<u8>,
    ) -> Result<(), ReadError> {
        if flate2::read::ZlibDecoder::new(compressed)
            .read_to_end(inflated)
            .is_err()
        {
            // A batch cut inside: what inflated before the damage is kept, packet by packet.
            inflated.clear();
            let mut decoder = flate2::read::ZlibDecoder::new(compressed);
            let mut chunk = [0u8; 4096];
            while let Ok(n) = decoder.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                inflated.extend_from_slice(&chunk[..n]);
            }
        }
        let mut rest = &inflated[..];
        let mut packet = TracePacket::default();
        while !rest.is_empty() {
            let Ok(key) = prost::encoding::decode_varint(&mut rest) else {
                break;
            };
            if key & 7 != 2 {
                break;
            }
            let Ok(len) = prost::encoding::decode_varint(&mut rest) else {
                break;
            };
            let Ok(len) = usize::try_from(len) else {
                break;
            };
            if len > rest.len() {
                break;
            }
            let (body, tail) = rest.split_at(len);
            if key >> 3 == u64::from(proto::TRACE_PACKET_FIELD) {
                // One packet decoded in place after another: no large value moved per event.
                packet.clear();
                packet.merge(body).map_err(|e| {
                    ReadError::new(ReadErrorKind::Invalid(format!("compressed packet: {e}")))
                })?;
                self.packet(&packet)?;
            }
            rest = tail;
            rest.advance(0);
        }
        Ok(())
    }

    fn define(&mut self, interned: &proto::InternedData) {
        for name in &interned.event_names {
            if let Some(iid) = name.iid {
                self.definitions
                    .entry(iid)
                    .or_default()
                    .name
                    .clone_from(&name.name);
            }
        }
        for location in &interned.source_locations {
            if let Some(iid) = location.iid {
                let d = self.definitions.entry(iid).or_default();
                d.file.clone_from(&location.file_name);
                d.module_path.clone_from(&location.function_name);
                d.line = location.line_number.unwrap_or(0);
            }
        }
        for category in &interned.event_categories {
            if let (Some(iid), Some(text)) = (category.iid, &category.name) {
                let d = self.definitions.entry(iid).or_default();
                let mut words = text.split(' ');
                d.kind = words.next().and_then(kind_name::parse);
                d.budget_ns = words
                    .find_map(|w| w.strip_prefix("budget_ns="))
                    .and_then(|n| n.parse().ok());
            }
        }
        // A definition complete with its name gets its function now, so that every function the
        // file defines is in the profile, called or not.
        let iids: Vec<u64> = interned.event_names.iter().filter_map(|n| n.iid).collect();
        for iid in iids {
            self.function_of_definition(iid);
        }
    }

    fn function_of_definition(&mut self, iid: u64) -> Option<u32> {
        if let Some(&index) = self.by_iid.get(&iid) {
            return Some(index);
        }
        let d = self.definitions.get(&iid)?;
        let name = d.name.clone()?;
        let index = self.functions.len() as u32;
        self.functions.push(FunctionEntry {
            module_path: d.module_path.clone().unwrap_or_default(),
            file: d.file.clone().unwrap_or_default(),
            line: d.line,
            kind: d.kind.unwrap_or(FunctionKind::Function),
            budget_ns: d.budget_ns,
            name,
        });
        self.by_iid.insert(iid, index);
        Some(index)
    }

    fn function_by_name(&mut self, name: &str) -> u32 {
        if let Some(&index) = self.by_name.get(name) {
            return index;
        }
        let index = self.functions.len() as u32;
        self.functions.push(FunctionEntry {
            name: name.to_owned(),
            module_path: String::new(),
            file: String::new(),
            line: 0,
            kind: FunctionKind::Function,
            budget_ns: None,
        });
        self.by_name.insert(name.to_owned(), index);
        index
    }

    fn track(&mut self, descriptor: proto::TrackDescriptor) {
        let Some(uuid) = descriptor.uuid else {
            return;
        };
        let track = if let Some(process) = descriptor.process {
            self.process_name = process.process_name.or(self.process_name.take());
            self.pid = process
                .pid
                .and_then(|p| u32::try_from(p).ok())
                .unwrap_or(self.pid);
            Track::Other
        } else if let Some(thread) = descriptor.thread {
            let tid = thread
                .tid
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or((uuid.wrapping_sub(THREAD_TRACK_BASE)) as u32);
            let build = self.threads.entry(tid).or_default();
            build.name = thread
                .thread_name
                .or(descriptor.name)
                .unwrap_or_else(|| format!("thread-{tid}"));
            Track::Thread { tid }
        } else if descriptor.counter.is_some() {
            match descriptor.parent_uuid.and_then(|p| self.tracks.get(&p)) {
                Some(Track::Thread { tid }) => Track::Dropped { tid: *tid },
                _ => Track::Other,
            }
        } else {
            Track::Async
        };
        self.tracks.insert(uuid, track);
    }

    #[allow(clippy::too_many_lines)] // one match over the track kinds, each a few lines
    fn event(
        &mut self,
        seq_id: u32,
        track: u64,
        ns: u64,
        event: &proto::TrackEvent,
    ) -> Result<(), ReadError> {
        let kind = event.r#type.unwrap_or(0);
        if seq_id == PROCESS_SEQUENCE && kind == proto::TYPE_INSTANT {
            match event.name.as_deref() {
                Some(RUN_EVENT) => self.run_event(ns, &event.debug_annotations),
                Some(RUN_END_EVENT) => {
                    self.end_ns = Some(ns);
                    self.dropped_total =
                        annotation_uint(&event.debug_annotations, "dropped_events");
                    self.ticks_per_second = event
                        .debug_annotations
                        .iter()
                        .find(|a| a.name.as_deref() == Some("ticks_per_second"))
                        .and_then(|a| a.double_value);
                }
                _ => {}
            }
            return Ok(());
        }
        if kind == proto::TYPE_SLICE_BEGIN || kind == proto::TYPE_SLICE_END {
            self.first_ns = Some(self.first_ns.map_or(ns, |f| f.min(ns)));
            self.last_ns = self.last_ns.max(ns);
        }
        let function = |this: &mut Self| -> Option<u32> {
            if let Some(iid) = event.name_iid {
                if seq_id == PROCESS_SEQUENCE || this.definitions.contains_key(&iid) {
                    if let Some(index) = this.function_of_definition(iid) {
                        return Some(index);
                    }
                }
                let name = this
                    .sequences
                    .get(&seq_id)
                    .and_then(|s| s.names.get(&iid))
                    .cloned()?;
                return Some(this.function_by_name(&name));
            }
            event.name.as_deref().map(|n| this.function_by_name(n))
        };
        match self.tracks.get(&track) {
            Some(Track::Thread { tid }) => {
                let tid = *tid;
                if kind == proto::TYPE_SLICE_BEGIN {
                    let Some(function) = function(self) else {
                        return Err(ReadError::new(ReadErrorKind::Invalid(format!(
                            "a slice begins at {ns} ns on thread {tid} with a name that is not defined"
                        ))));
                    };
                    let thread = self.threads.entry(tid).or_default();
                    let parent = thread.stack.last().map(|o| o.token);
                    let depth = thread.stack.len() as u32;
                    let token = self.visitor.begin(tid, function, ns, depth, parent);
                    thread.spans += 1;
                    thread.stack.push(Open {
                        token,
                        function,
                        start_ns: ns,
                        children_ns: 0,
                    });
                } else if kind == proto::TYPE_SLICE_END {
                    let incomplete = annotation_flag(&event.debug_annotations, INCOMPLETE);
                    self.end_slice(tid, ns, incomplete);
                }
            }
            Some(Track::Dropped { tid }) => {
                let tid = *tid;
                if let Some(value) = event.counter_value {
                    self.threads.entry(tid).or_default().dropped =
                        u64::try_from(value).unwrap_or(0);
                }
            }
            Some(Track::Async) => {
                let tid = annotation_uint(&event.debug_annotations, "tid").unwrap_or(0) as u32;
                if kind == proto::TYPE_SLICE_BEGIN {
                    if let Some(function) = function(self) {
                        let id = annotation_uint(&event.debug_annotations, "id").unwrap_or(track);
                        self.async_open.insert(
                            track,
                            OpenAsync {
                                function,
                                id,
                                start_ns: ns,
                                start_tid: tid,
                            },
                        );
                    }
                } else if kind == proto::TYPE_SLICE_END {
                    if let Some(open) = self.async_open.remove(&track) {
                        self.async_ended += 1;
                        self.visitor.async_span(AsyncSpan {
                            function: open.function,
                            id: open.id,
                            start_ns: open.start_ns,
                            end_ns: ns.max(open.start_ns),
                            start_tid: open.start_tid,
                            end_tid: if tid == 0 { open.start_tid } else { tid },
                            cancelled: annotation_flag(&event.debug_annotations, "cancelled"),
                            flags: SpanFlags {
                                incomplete: annotation_flag(&event.debug_annotations, INCOMPLETE),
                                continued: false,
                            },
                        });
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn run_event(&mut self, ns: u64, annotations: &[DebugAnnotation]) {
        self.start_ns = Some(ns);
        self.clock_kind = Some(match annotation_str(annotations, "clock") {
            Some("tsc") => ClockKind::Tsc { invariant: true },
            Some("tsc (not invariant)") => ClockKind::Tsc { invariant: false },
            _ => ClockKind::Monotonic,
        });
        let field = |name| annotation_str(annotations, name).map(str::to_owned);
        if let (Some(rustc), Some(target), Some(profile), Some(features)) = (
            field("rustc"),
            field("target"),
            field("profile"),
            field("features"),
        ) {
            self.build = Some(crate::BuildInfo {
                rustc,
                target,
                profile,
                features,
            });
        }
    }

    /// Ends the innermost open slice of thread `tid` at `ns`.
    fn end_slice(&mut self, tid: u32, ns: u64, incomplete: bool) {
        let Some(thread) = self.threads.get_mut(&tid) else {
            return;
        };
        let Some(open) = thread.stack.pop() else {
            return;
        };
        let end_ns = ns.max(open.start_ns);
        let duration = end_ns - open.start_ns;
        let parent = thread.stack.last_mut().map(|p| {
            p.children_ns = p.children_ns.saturating_add(duration);
            p.function
        });
        let ended = Ended {
            function: open.function,
            kind: self
                .functions
                .get(open.function as usize)
                .map_or(FunctionKind::Function, |f| f.kind),
            start_ns: open.start_ns,
            end_ns,
            depth: thread.stack.len() as u32,
            parent_function: parent,
            self_ns: duration.saturating_sub(open.children_ns),
            incomplete,
        };
        self.visitor.end(tid, open.token, &ended);
    }

    fn finish(mut self) -> Result<Decoded<V>, ReadError> {
        let first_ns = self.first_ns;
        let last_ns = self.last_ns;
        let start_ns = self.start_ns.or(first_ns).unwrap_or(0);
        let end_ns = self.end_ns.unwrap_or(last_ns).max(last_ns).max(start_ns);
        // Async spans the file never ended (cut short): incomplete, up to its end.
        let mut open_async: Vec<OpenAsync> =
            std::mem::take(&mut self.async_open).into_values().collect();
        open_async.sort_by_key(|o| (o.start_ns, o.id));
        for open in open_async {
            self.async_ended += 1;
            self.visitor.async_span(AsyncSpan {
                function: open.function,
                id: open.id,
                start_ns: open.start_ns,
                end_ns,
                start_tid: open.start_tid,
                end_tid: open.start_tid,
                cancelled: false,
                flags: SpanFlags {
                    incomplete: true,
                    continued: false,
                },
            });
        }
        // Slices the file never ended (cut short): incomplete, up to the last time seen.
        let mut tids: Vec<u32> = self.threads.keys().copied().collect();
        tids.sort_unstable();
        for &tid in &tids {
            while self.threads[&tid].stack.last().is_some() {
                self.end_slice(tid, end_ns, true);
            }
        }
        let mut span_counts = Vec::new();
        let mut timelines: Vec<ThreadTimeline> = Vec::new();
        for tid in tids {
            let t = self.threads.remove(&tid).expect("listed above");
            if t.spans == 0 && t.dropped == 0 {
                continue;
            }
            span_counts.push(t.spans);
            timelines.push(ThreadTimeline {
                tid,
                name: t.name,
                spans: Vec::new(),
                dropped_events: t.dropped,
                exited: false,
            });
        }
        let thread_dropped = timelines
            .iter()
            .fold(0u64, |n, t| n.saturating_add(t.dropped_events));
        if span_counts.iter().all(|&n| n == 0) && self.async_ended == 0 && self.start_ns.is_none() {
            return Err(ReadError::new(ReadErrorKind::Invalid(
                "the Perfetto trace holds no slice on a thread track".into(),
            )));
        }
        let epoch_unix_ns = self
            .realtime_offset
            .map_or(0, |o| o.clamp(0, i128::from(u64::MAX)) as u64);
        let profile = Profile {
            functions: self.functions,
            threads: timelines,
            async_spans: Vec::new(),
            start_ns,
            end_ns,
            epoch_unix_ns,
            clock: ClockInfo {
                kind: self.clock_kind.unwrap_or(ClockKind::Monotonic),
                ticks_per_second: self.ticks_per_second.unwrap_or(1e9),
            },
            dropped_events: self
                .dropped_total
                .unwrap_or(thread_dropped)
                .max(thread_dropped),
            process_name: self.process_name.unwrap_or_else(|| "process".to_owned()),
            pid: self.pid,
            build: self.build,
        };
        Ok(Decoded {
            profile,
            span_counts,
            visitor: self.visitor,
        })
    }
}
