//! The error of writing several files at once (the guard's formats, a flight-recorder dump):
//! every file is attempted, and every failure is reported, not only the first.

use std::fmt;
use std::path::PathBuf;

use super::ExportError;

/// Some files of one set could not be written: returned by
/// [`ProfilerGuard::finish`](crate::ProfilerGuard::finish) and
/// [`sampling::dump_flight_recorder`](crate::production::sampling::dump_flight_recorder). Every file was
/// attempted; [`failed`](Self::failed) holds the error of each one that was not written (each
/// names its file), [`written`](Self::written) the others.
///
/// `Display` writes a line with the count, then one line per failed file.
///
/// # Examples
///
/// ```
/// use profiler_runtime::{export::Format, Config};
/// // A file where the folder should be: no format can be written.
/// let blocker = std::env::temp_dir().join("profiler-doc-files-error");
/// std::fs::write(&blocker, b"")?;
/// let guard = Config::new()
///     .output(blocker.join("run"))
///     .formats(&[Format::ChromeTrace, Format::Csv])
///     .init();
/// let error = guard.finish().unwrap_err();
/// assert_eq!(error.failed().len(), 2);
/// assert!(error.written().is_empty());
/// assert!(error.to_string().starts_with("2 of 2 profile files not written:\n"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct ExportFilesError {
    written: Vec<PathBuf>,
    failed: Vec<ExportError>,
}

impl ExportFilesError {
    /// The files that were written, in the order asked for.
    pub fn written(&self) -> &[PathBuf] {
        &self.written
    }

    /// The error of each file that was not written, in the order asked for; never empty.
    pub fn failed(&self) -> &[ExportError] {
        &self.failed
    }

    /// The paths written when every result is `Ok`, else the error holding every failure.
    pub(crate) fn collect(
        results: impl IntoIterator<Item = (PathBuf, Result<(), ExportError>)>,
    ) -> Result<Vec<PathBuf>, ExportFilesError> {
        let mut written = Vec::new();
        let mut failed = Vec::new();
        for (path, result) in results {
            match result {
                Ok(()) => written.push(path),
                Err(e) => failed.push(e),
            }
        }
        if failed.is_empty() {
            Ok(written)
        } else {
            Err(ExportFilesError { written, failed })
        }
    }
}

impl fmt::Display for ExportFilesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} profile files not written:",
            self.failed.len(),
            self.failed.len() + self.written.len()
        )?;
        for e in &self.failed {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ExportFilesError {
    /// The first failure; [`failed`](Self::failed) has them all.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.failed
            .first()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::path::Path;

    fn denied(path: &str) -> (PathBuf, Result<(), ExportError>) {
        let source = io::Error::new(io::ErrorKind::PermissionDenied, "denied");
        let path = PathBuf::from(path);
        (path.clone(), Err(ExportError::Io { path, source }))
    }

    #[test]
    fn every_failure_is_kept_and_listed() {
        let results = vec![
            denied("out/run.trace.json"),
            (PathBuf::from("out/run.csv"), Ok(())),
            denied("out/run.json"),
        ];
        let error = ExportFilesError::collect(results).unwrap_err();
        assert_eq!(error.written(), [Path::new("out/run.csv")]);
        let failed: Vec<&Path> = error.failed().iter().map(ExportError::path).collect();
        assert_eq!(
            failed,
            [Path::new("out/run.trace.json"), Path::new("out/run.json")]
        );
        assert_eq!(
            error.to_string(),
            "2 of 3 profile files not written:\n  \
             cannot write out/run.trace.json: denied\n  \
             cannot write out/run.json: denied"
        );
    }

    #[test]
    fn no_failure_gives_the_paths_written() {
        let written = ExportFilesError::collect(vec![(PathBuf::from("a.csv"), Ok(()))]).unwrap();
        assert_eq!(written, [PathBuf::from("a.csv")]);
    }
}
