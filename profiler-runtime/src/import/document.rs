//! One saved document read from a stream in a single pass, whatever its kind.
//!
//! The kind is known only from the content (`schema`, `$schema`, `traceEvents`, or an array of
//! events), and the keys of an object come in any order, so the document is parsed once with a
//! visitor: a Chrome trace's events go to the [`Rebuild`] one at a time as they are parsed, never
//! held as JSON; every other member is kept as a JSON value and the kind decided at the end. The
//! large files are the traces; profile JSON and Speedscope files are read as values, as before.

use std::cell::Cell;
use std::fmt;
use std::io::{self, BufReader, Read};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{speedscope, Event, OtherData, Rebuild, SavedFile};
use crate::analyze::report::{json_error_kind, ReadErrorKind, Report, PROFILE_SCHEMA};
use crate::collect::profile::Profile;

/// What a document turned out to be.
#[allow(clippy::large_enum_variant)] // one per file read
pub(super) enum Found {
    Report(Report),
    Chrome(Profile),
    Speedscope(Profile),
}

impl Found {
    pub(super) fn into_saved(self) -> SavedFile {
        match self {
            Found::Report(report) => SavedFile::Report(report),
            Found::Chrome(profile) | Found::Speedscope(profile) => SavedFile::Timeline(profile),
        }
    }
}

/// Reads one document from `reader`, failing after `max_bytes` bytes.
pub(super) fn read(reader: impl Read, max_bytes: u64) -> Result<Found, ReadErrorKind> {
    let exceeded = Cell::new(false);
    let capped = Capped {
        inner: reader,
        left: max_bytes,
        exceeded: &exceeded,
    };
    // serde_json reads a byte at a time: the buffer goes outside the cap, which then counts
    // whole buffers.
    let mut de = serde_json::Deserializer::from_reader(BufReader::new(capped));
    let state = State::default();
    let parsed = (&mut de)
        .deserialize_any(DocumentVisitor { state: &state })
        .and_then(|document| de.end().map(|()| document));
    let document = match parsed {
        Ok(document) => document,
        Err(e) => {
            if exceeded.get() {
                return Err(ReadErrorKind::TooLarge { limit: max_bytes });
            }
            if let Some(kind) = state.failure.take() {
                return Err(kind);
            }
            // The array form may end without its `]` (a program that stopped while writing it):
            // the events before the end are the trace, if it ended between two of them.
            let unended = state.array.take();
            match unended {
                Some(rebuild)
                    if e.classify() == serde_json::error::Category::Eof
                        && !state.in_event.get() =>
                {
                    Document::Trace(rebuild, Map::new())
                }
                _ => return Err(classify(e, state.event.get())),
            }
        }
    };
    document.decide()
}

/// Sorts a parse error: a value of the wrong type is an invalid profile (and names the trace
/// event it was in), the rest as for any JSON.
fn classify(e: serde_json::Error, event: Option<usize>) -> ReadErrorKind {
    if e.classify() != serde_json::error::Category::Data {
        return json_error_kind(e);
    }
    match event {
        Some(position) => ReadErrorKind::Invalid(format!("trace event {position}: {e}")),
        None => ReadErrorKind::Invalid(e.to_string()),
    }
}

/// A reader that fails once more than `limit` bytes have been read from it, so that an input
/// that never ends (a device, a stream) stops with an error instead of filling memory.
struct Capped<'e, R> {
    inner: R,
    left: u64,
    /// Set when the limit was passed (the parser reports only an I/O error).
    exceeded: &'e Cell<bool>,
}

impl<R: Read> Read for Capped<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more tells an input of exactly the limit from a longer one.
            let mut probe = [0_u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.exceeded.set(true);
            return Err(io::Error::other("input larger than its limit"));
        }
        let room = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..room])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// What the visitors share: an error of ours (kept whole, since serde can only carry a message),
/// and the trace event being parsed, for errors in its JSON.
#[derive(Default)]
struct State {
    failure: Cell<Option<ReadErrorKind>>,
    event: Cell<Option<usize>>,
    /// Whether an event's JSON is being parsed, to tell an input cut inside an event from one
    /// that ends between two.
    in_event: Cell<bool>,
    /// The array form's events so far, kept when the parse fails in case the input only lacks
    /// its closing `]`.
    array: Cell<Option<Box<Rebuild>>>,
}

impl State {
    /// Keeps `kind` and gives serde an error that stops the parse.
    fn fail<E: de::Error>(&self, kind: ReadErrorKind) -> E {
        let message = match &kind {
            ReadErrorKind::Invalid(message) => message.clone(),
            _ => "not a profile".to_owned(),
        };
        self.failure.set(Some(kind));
        E::custom(message)
    }
}

/// A document as parsed, before its kind is decided.
enum Document {
    /// A Chrome trace: its events already rebuilt, and the other members of its object.
    Trace(Box<Rebuild>, Map<String, Value>),
    /// An object without `traceEvents`.
    Object(Map<String, Value>),
    /// Not an object, nor an array of trace events.
    Other,
}

impl Document {
    fn decide(self) -> Result<Found, ReadErrorKind> {
        let schema = |members: &Map<String, Value>, key: &str| {
            members.get(key).and_then(Value::as_str).map(str::to_owned)
        };
        match self {
            Document::Trace(rebuild, mut members) => {
                if let Some(found) = schema(&members, "schema") {
                    return Err(ReadErrorKind::WrongSchema { found: Some(found) });
                }
                let other: OtherData = match members.remove("otherData") {
                    Some(value) => serde_json::from_value(value)
                        .map_err(|e| ReadErrorKind::Invalid(format!("`otherData`: {e}")))?,
                    None => OtherData::default(),
                };
                rebuild.finish(&other).map(Found::Chrome)
            }
            Document::Object(members) => {
                let found = schema(&members, "schema");
                if found.as_deref() == Some(PROFILE_SCHEMA) {
                    return Report::from_value(Value::Object(members)).map(Found::Report);
                }
                let dollar = schema(&members, "$schema");
                if dollar.as_deref() == Some(speedscope::SCHEMA) {
                    let file: speedscope::File = serde_json::from_value(Value::Object(members))
                        .map_err(|e| ReadErrorKind::Invalid(e.to_string()))?;
                    return file.into_profile().map(Found::Speedscope);
                }
                Err(ReadErrorKind::WrongSchema {
                    found: found.or(dollar),
                })
            }
            Document::Other => Err(ReadErrorKind::WrongSchema { found: None }),
        }
    }
}

struct DocumentVisitor<'s> {
    state: &'s State,
}

impl<'de> Visitor<'de> for DocumentVisitor<'_> {
    type Value = Document;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object or array")
    }

    /// The array form of the Trace Event Format: the events alone.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Document, A::Error> {
        let mut rebuild = Rebuild::default();
        // The first element tells a trace from any other array.
        self.state.event.set(Some(0));
        let Some(first) = seq.next_element::<Value>()? else {
            self.state.event.set(None);
            return Ok(Document::Trace(Box::new(rebuild), Map::new()));
        };
        if first.get("ph").is_none() {
            self.state.event.set(None);
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Document::Other);
        }
        let first: Event = serde_json::from_value(first).map_err(|e| {
            self.state
                .fail(ReadErrorKind::Invalid(format!("trace event 0: {e}")))
        })?;
        rebuild
            .event(0, first)
            .map_err(|kind| self.state.fail(kind))?;
        let mut rebuild = Box::new(rebuild);
        if let Err(e) = Events::rest(&mut rebuild, 1, self.state, &mut seq) {
            self.state.array.set(Some(rebuild));
            return Err(e);
        }
        Ok(Document::Trace(rebuild, Map::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
        let mut members = Map::new();
        let mut rebuild: Option<Rebuild> = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "traceEvents" && rebuild.is_none() {
                let mut events = Rebuild::default();
                map.next_value_seed(Events {
                    rebuild: &mut events,
                    state: self.state,
                })?;
                rebuild = Some(events);
            } else {
                let value: Value = map.next_value()?;
                members.insert(key, value);
            }
        }
        Ok(match rebuild {
            Some(rebuild) => Document::Trace(Box::new(rebuild), members),
            None => Document::Object(members),
        })
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Document, E> {
        Ok(Document::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Document, E> {
        Ok(Document::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Document, E> {
        Ok(Document::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Document, E> {
        Ok(Document::Other)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Document, E> {
        Ok(Document::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Document, E> {
        Ok(Document::Other)
    }
}

/// `traceEvents`, rebuilt event by event.
struct Events<'r, 's> {
    rebuild: &'r mut Rebuild,
    state: &'s State,
}

impl Events<'_, '_> {
    /// Rebuilds the remaining events of `seq`, the first of them at `position`.
    fn rest<'de, A: SeqAccess<'de>>(
        rebuild: &mut Rebuild,
        mut position: usize,
        state: &State,
        seq: &mut A,
    ) -> Result<(), A::Error> {
        loop {
            state.event.set(Some(position));
            let Some(event) = seq.next_element_seed(EventSeed { state })? else {
                break;
            };
            rebuild
                .event(position, event)
                .map_err(|kind| state.fail(kind))?;
            position += 1;
        }
        state.event.set(None);
        Ok(())
    }
}

/// One trace event, parsed while [`State::in_event`] says so.
struct EventSeed<'s> {
    state: &'s State,
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_> {
    type Value = Event;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Event, D::Error> {
        self.state.in_event.set(true);
        let event = Event::deserialize(deserializer)?;
        self.state.in_event.set(false);
        Ok(event)
    }
}

impl<'de> DeserializeSeed<'de> for Events<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Events<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of trace events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        Events::rest(self.rebuild, 0, self.state, &mut seq)
    }
}
