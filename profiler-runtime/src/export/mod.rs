//! Writing profiles: one module per format, each a streaming writer over [`std::io::Write`], and
//! one entry point, [`export_profile`], that picks the format from an enum or a file name.

mod chrome;
pub(crate) mod json;
mod speedscope;

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub use chrome::write_chrome_trace;
pub use speedscope::write_speedscope;

use crate::profile::Profile;

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
}

impl Format {
    /// Every format, in the order of this enum.
    pub const ALL: &'static [Format] = &[Format::ChromeTrace, Format::Speedscope];

    /// The format a file name implies, by its ending.
    ///
    /// # Examples
    ///
    /// ```
    /// use profiler_runtime::export::Format;
    /// assert_eq!(Format::from_path("out/run.speedscope.json"), Some(Format::Speedscope));
    /// assert_eq!(Format::from_path("run.trace.json"), Some(Format::ChromeTrace));
    /// assert_eq!(Format::from_path("run.txt"), None);
    /// ```
    pub fn from_path(path: impl AsRef<Path>) -> Option<Format> {
        let name = path.as_ref().file_name()?.to_str()?.to_ascii_lowercase();
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.extensions().iter().any(|ext| name.ends_with(ext)))
    }

    /// File-name endings of this format; the first is the one used for new files.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Format::ChromeTrace => &[".trace.json", ".chrome.json"],
            Format::Speedscope => &[".speedscope.json"],
        }
    }

    /// A short lowercase name: `chrome`, `speedscope`.
    pub fn name(self) -> &'static str {
        match self {
            Format::ChromeTrace => "chrome",
            Format::Speedscope => "speedscope",
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
            ExportError::UnknownFormat { path } => write!(
                f,
                "cannot tell the export format of {}: use a name ending in .trace.json or .speedscope.json, or give the format",
                path.display()
            ),
            ExportError::Io { path, source } => write!(f, "cannot write {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for ExportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExportError::Io { source, .. } => Some(source),
            ExportError::UnknownFormat { .. } => None,
        }
    }
}

/// Writes `profile` to the file `path` in `format`, or in the format its name implies when
/// `format` is `None`. The file is written through a buffer and flushed; on error the partial
/// file is left for inspection and the error names it.
///
/// # Errors
///
/// [`ExportError::UnknownFormat`] when no format is given and the name implies none;
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
/// # Ok::<(), profiler_runtime::export::ExportError>(())
/// ```
pub fn export_profile(
    profile: &Profile,
    path: impl AsRef<Path>,
    format: Option<Format>,
) -> Result<(), ExportError> {
    let path = path.as_ref();
    let format = format
        .or_else(|| Format::from_path(path))
        .ok_or_else(|| ExportError::UnknownFormat {
            path: path.to_owned(),
        })?;
    let io_error = |source| ExportError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::create(path).map_err(io_error)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    format.write(profile, &mut out).map_err(io_error)?;
    out.flush().map_err(io_error)?;
    Ok(())
}

/// `profiler-runtime <version>`, written into every export.
pub(crate) const EXPORTER: &str = concat!("profiler-runtime ", env!("CARGO_PKG_VERSION"));
