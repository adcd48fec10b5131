//! The profile JSON: run metadata, per-function statistics and the call tree, versioned so that
//! it can be read back ([`Report::load`](crate::analyze::report::Report::load)). The schema
//! is documented in [`report`](crate::analyze::report).

use std::io::{self, Write};

use serde::Serialize;

use crate::analyze::report::{Report, PROFILE_SCHEMA, PROFILE_VERSION};

/// The document as written: the header, then the report's fields.
#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    version: u32,
    #[serde(flatten)]
    report: &'a Report,
}

/// Writes `report` as profile JSON (indented, for people and diffs) to `out`.
///
/// # Errors
///
/// Any error of `out`.
pub fn write_profile_json<W: Write + ?Sized>(report: &Report, out: &mut W) -> io::Result<()> {
    let document = Document {
        schema: PROFILE_SCHEMA,
        version: PROFILE_VERSION,
        report,
    };
    serde_json::to_writer_pretty(&mut *out, &document).map_err(io::Error::from)?;
    out.write_all(b"\n")
}
