//! Writing profiles: one module per format, each a streaming writer over [`std::io::Write`], and
//! one entry point, [`export_profile`], that picks the format from an enum or a file name.
//!
//! Export sits above collect and analyze: it writes a [`Profile`] (the Chrome and Speedscope
//! writers need nothing else) or an analysed `Report` (feature `analysis`), and uses no
//! module above it.

mod chrome;
#[cfg(feature = "analysis")]
mod csv;
mod files_error;
#[cfg(feature = "flamegraph")]
mod flamegraph;
#[cfg(feature = "analysis")]
mod folded;
pub(crate) mod json;
#[cfg(feature = "analysis")]
mod profile_json;
mod speedscope;

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[cfg(feature = "analysis")]
pub use self::csv::{write_csv, CSV_COLUMNS};
pub use chrome::write_chrome_trace;
pub use files_error::ExportFilesError;
#[cfg(feature = "flamegraph")]
pub use flamegraph::{write_flamegraph, FlamegraphOptions};
#[cfg(feature = "analysis")]
pub use folded::write_folded;
// The folded format's escaping of frame names, for tests that parse folded lines back: not part
// of the documented API.
#[cfg(feature = "analysis")]
#[doc(hidden)]
pub use folded::{escape_frame, unescape_frame};
#[cfg(feature = "analysis")]
pub use profile_json::write_profile_json;
pub use speedscope::write_speedscope;

#[cfg(feature = "analysis")]
use crate::analyze::report::Report;
use crate::collect::profile::Profile;

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Chrome Tracing / Trace Event Format JSON: Perfetto UI, `chrome://tracing`.
    /// File names ending in `.trace.json` (or `.chrome.json`).
    ChromeTrace,
    /// Speedscope's file format: <https://www.speedscope.app>. File names ending in
    /// `.speedscope.json`.
    Speedscope,
    /// The profile JSON: run metadata, per-function statistics and the call tree, versioned and
    /// readable back ([`report`](crate::analyze::report) documents it). File names ending in `.json`
    /// (other than the two above). Feature `analysis` (on with `enable`).
    #[cfg(feature = "analysis")]
    Json,
    /// One row per function with its statistics, RFC 4180 quoting. File names ending in `.csv`.
    /// Feature `analysis` (on with `enable`).
    #[cfg(feature = "analysis")]
    Csv,
    /// Folded stacks (`a;b;c 1234`, self time in ns), the input of flamegraph tools. File names
    /// ending in `.folded` or `.collapsed`. Feature `analysis` (on with `enable`).
    #[cfg(feature = "analysis")]
    Folded,
    /// An SVG flamegraph (feature `flamegraph`). File names ending in `.svg`.
    #[cfg(feature = "flamegraph")]
    FlamegraphSvg,
    /// An SVG icicle graph, roots at the top (feature `flamegraph`). File names ending in
    /// `.icicle.svg`.
    #[cfg(feature = "flamegraph")]
    IcicleSvg,
}

impl Format {
    /// Every format, in the order of this enum.
    pub const ALL: &'static [Format] = &[
        Format::ChromeTrace,
        Format::Speedscope,
        #[cfg(feature = "analysis")]
        Format::Json,
        #[cfg(feature = "analysis")]
        Format::Csv,
        #[cfg(feature = "analysis")]
        Format::Folded,
        #[cfg(feature = "flamegraph")]
        Format::FlamegraphSvg,
        #[cfg(feature = "flamegraph")]
        Format::IcicleSvg,
    ];

    /// The format a file name implies, by its ending; the longest matching ending wins, so
    /// `.trace.json` is a Chrome trace while other `.json` names are the profile JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// use profiler_runtime::export::Format;
    /// assert_eq!(Format::from_path("out/run.speedscope.json"), Some(Format::Speedscope));
    /// assert_eq!(Format::from_path("run.trace.json"), Some(Format::ChromeTrace));
    /// assert_eq!(Format::from_path("run.json"), Some(Format::Json));
    /// assert_eq!(Format::from_path("run.CSV"), Some(Format::Csv));
    /// assert_eq!(Format::from_path("run.txt"), None);
    /// ```
    pub fn from_path(path: impl AsRef<Path>) -> Option<Format> {
        let name = path.as_ref().file_name()?.to_str()?.to_ascii_lowercase();
        Format::ALL
            .iter()
            .flat_map(|&f| f.extensions().iter().map(move |ext| (f, ext)))
            .filter(|(_, ext)| name.ends_with(*ext))
            .max_by_key(|(_, ext)| ext.len())
            .map(|(f, _)| f)
    }

    /// Looks a format up by its [`name`](Self::name), ignoring case.
    ///
    /// # Examples
    ///
    /// ```
    /// use profiler_runtime::export::Format;
    /// assert_eq!(Format::from_name("CSV"), Some(Format::Csv));
    /// assert_eq!(Format::from_name("xml"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Format> {
        let name = name.trim().to_ascii_lowercase();
        Format::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// Whether the format needs the timeline (every span), which a profile JSON does not keep:
    /// Chrome traces and Speedscope files.
    pub fn needs_timeline(self) -> bool {
        matches!(self, Format::ChromeTrace | Format::Speedscope)
    }

    /// File-name endings of this format; the first is the one used for new files.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Format::ChromeTrace => &[".trace.json", ".chrome.json"],
            Format::Speedscope => &[".speedscope.json"],
            #[cfg(feature = "analysis")]
            Format::Json => &[".json"],
            #[cfg(feature = "analysis")]
            Format::Csv => &[".csv"],
            #[cfg(feature = "analysis")]
            Format::Folded => &[".folded", ".collapsed"],
            #[cfg(feature = "flamegraph")]
            Format::FlamegraphSvg => &[".svg"],
            #[cfg(feature = "flamegraph")]
            Format::IcicleSvg => &[".icicle.svg"],
        }
    }

    /// A short lowercase name: `chrome`, `speedscope`, `json`, `csv`, `folded`, `flamegraph`,
    /// `icicle`.
    pub fn name(self) -> &'static str {
        match self {
            Format::ChromeTrace => "chrome",
            Format::Speedscope => "speedscope",
            #[cfg(feature = "analysis")]
            Format::Json => "json",
            #[cfg(feature = "analysis")]
            Format::Csv => "csv",
            #[cfg(feature = "analysis")]
            Format::Folded => "folded",
            #[cfg(feature = "flamegraph")]
            Format::FlamegraphSvg => "flamegraph",
            #[cfg(feature = "flamegraph")]
            Format::IcicleSvg => "icicle",
        }
    }

    /// Writes `profile` in this format to `out`.
    ///
    /// # Errors
    ///
    /// Any error of `out`.
    pub fn write(self, profile: &Profile, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Format::ChromeTrace => write_chrome_trace(profile, out),
            Format::Speedscope => write_speedscope(profile, out),
            #[cfg(feature = "analysis")]
            _ => self.write_report(&Report::new(profile), out),
        }
    }

    /// Writes an analysed profile in this format to `out`.
    #[cfg(feature = "analysis")]
    ///
    /// # Errors
    ///
    /// Any error of `out`; an error of kind [`io::ErrorKind::Unsupported`] for the formats that
    /// [need the timeline](Self::needs_timeline).
    pub fn write_report(self, report: &Report, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Format::ChromeTrace | Format::Speedscope => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{self} needs the timeline, which a profile report does not keep"),
            )),
            Format::Json => write_profile_json(report, out),
            Format::Csv => write_csv(report, out),
            Format::Folded => write_folded(report, out),
            #[cfg(feature = "flamegraph")]
            Format::FlamegraphSvg => write_flamegraph(report, &FlamegraphOptions::new(), out),
            #[cfg(feature = "flamegraph")]
            Format::IcicleSvg => {
                write_flamegraph(report, &FlamegraphOptions::new().icicle(true), out)
            }
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an export failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ExportError {
    /// The format could not be told from the file name.
    UnknownFormat {
        /// The file name given.
        path: PathBuf,
    },
    /// The format needs the timeline (every span), and only a report was given: a profile JSON
    /// keeps statistics and the call tree, not the spans.
    NeedsTimeline {
        /// The file name given.
        path: PathBuf,
        /// The format asked for.
        format: Format,
    },
    /// Creating or writing the file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::UnknownFormat { path } => {
                let endings: Vec<&str> = Format::ALL.iter().flat_map(|f| f.extensions().iter().copied()).collect();
                write!(
                    f,
                    "cannot tell the export format of {}: use a name ending in {}, or give the format",
                    path.display(),
                    endings.join(", ")
                )
            }
            ExportError::NeedsTimeline { path, format } => write!(
                f,
                "cannot write {} as {format}: that format needs the timeline, which a profile JSON does not keep (convert a .trace.json instead)",
                path.display()
            ),
            ExportError::Io { path, source } => write!(f, "cannot write {}: {source}", path.display()),
        }
    }
}

impl ExportError {
    /// The file that was not written.
    pub fn path(&self) -> &Path {
        match self {
            ExportError::UnknownFormat { path }
            | ExportError::NeedsTimeline { path, .. }
            | ExportError::Io { path, .. } => path,
        }
    }
}

impl std::error::Error for ExportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExportError::Io { source, .. } => Some(source),
            ExportError::UnknownFormat { .. } | ExportError::NeedsTimeline { .. } => None,
        }
    }
}

/// What [`export_profile`] can write: a [`Profile`] (every format) or a [`Report`] read back
/// from a profile JSON (every format but those that [need the
/// timeline](Format::needs_timeline)). Sealed.
pub trait Exportable: sealed::Sealed {
    /// Whether this can be written in `format`.
    fn supports(&self, format: Format) -> bool;
    /// Writes this in `format` to `out`.
    ///
    /// # Errors
    ///
    /// Any error of `out`.
    fn write_as(&self, format: Format, out: &mut dyn Write) -> io::Result<()>;
}

impl Exportable for Profile {
    fn supports(&self, _: Format) -> bool {
        true
    }
    fn write_as(&self, format: Format, out: &mut dyn Write) -> io::Result<()> {
        format.write(self, out)
    }
}

#[cfg(feature = "analysis")]
impl Exportable for Report {
    fn supports(&self, format: Format) -> bool {
        !format.needs_timeline()
    }
    fn write_as(&self, format: Format, out: &mut dyn Write) -> io::Result<()> {
        format.write_report(self, out)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::collect::profile::Profile {}
    #[cfg(feature = "analysis")]
    impl Sealed for crate::analyze::report::Report {}
}

/// Writes `profile` (a [`Profile`], or a [`Report`]) to the file `path` in `format`, or in
/// the format its name implies when `format` is `None`. The file is replaced only once the new
/// one is complete and on disk ([`atomic_file::write`](crate::atomic_file::write)): on error, the
/// file that was there is intact, no partial file is left, and the error names the file.
///
/// # Errors
///
/// [`ExportError::UnknownFormat`] when no format is given and the name implies none;
/// [`ExportError::NeedsTimeline`] for a report and a format that needs every span;
/// [`ExportError::Io`] when the file cannot be created or written (a missing directory, no
/// permission, a full disk).
///
/// # Examples
///
/// ```
/// use profiler_runtime::export::{export_profile, Format};
/// let dir = std::env::temp_dir();
/// let profile = profiler_runtime::flush();
/// export_profile(&profile, dir.join("doc.trace.json"), None)?;
/// export_profile(&profile, dir.join("doc.json"), Some(Format::Speedscope))?;
/// export_profile(&profile, dir.join("doc.csv"), None)?;
/// # Ok::<(), profiler_runtime::export::ExportError>(())
/// ```
pub fn export_profile<P: Exportable + ?Sized>(
    profile: &P,
    path: impl AsRef<Path>,
    format: Option<Format>,
) -> Result<(), ExportError> {
    let path = path.as_ref();
    let format =
        format
            .or_else(|| Format::from_path(path))
            .ok_or_else(|| ExportError::UnknownFormat {
                path: path.to_owned(),
            })?;
    if !profile.supports(format) {
        return Err(ExportError::NeedsTimeline {
            path: path.to_owned(),
            format,
        });
    }
    let io_error = |source| ExportError::Io {
        path: path.to_owned(),
        source,
    };
    crate::atomic_file::write(path, |out| profile.write_as(format, out)).map_err(io_error)
}

pub(crate) use crate::collect::build_info::EXPORTER;
