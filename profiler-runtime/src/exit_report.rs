//! What the guard says on stderr when the program ends: the files it wrote, the spans and
//! dropped events they hold, and the error of each file it could not write. It is the only
//! message the library prints on success, so that a run never ends without saying where its
//! profile went; `Config::quiet` and `PROFILER_QUIET` silence it (but not the errors).

use std::fmt;
use std::path::PathBuf;

use crate::export::ExportError;

/// The facts of one exit, rendered by `Display` as the block to print (empty when there is
/// nothing to say).
#[derive(Debug)]
pub(crate) struct ExitReport<'a> {
    /// Each file and whether it was written.
    pub(crate) files: &'a [(PathBuf, Result<(), ExportError>)],
    /// Spans in the profile, all threads.
    pub(crate) spans: usize,
    /// Threads that recorded.
    pub(crate) threads: usize,
    /// Events lost to full buffers.
    pub(crate) dropped_events: u64,
    /// Whether the background collector drained the rings during the run.
    pub(crate) collected: bool,
    /// The ring capacity of each thread, in events.
    pub(crate) buffer_events: usize,
    /// The most events the collector holds between flushes.
    pub(crate) max_buffered_events: usize,
    /// Say only what went wrong.
    pub(crate) quiet: bool,
    /// The streamed trace, when the run streamed one.
    pub(crate) streamed: Option<Streamed<'a>>,
    /// Said after the files, whatever `quiet` says (a derived format the guard could not make).
    pub(crate) notes: &'a [String],
}

/// What the run streamed to disk.
#[derive(Debug)]
pub(crate) struct Streamed<'a> {
    pub(crate) path: &'a std::path::Path,
    /// Events written.
    pub(crate) events: u64,
    /// Bytes of the file.
    pub(crate) bytes: u64,
    /// The write error that stopped the stream, and the events it cost.
    pub(crate) error: Option<(&'a str, u64)>,
}

impl fmt::Display for ExitReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let written = self.files.iter().filter(|(_, r)| r.is_ok()).count();
        if !self.quiet && written > 0 {
            let threads = if self.threads == 1 {
                "thread"
            } else {
                "threads"
            };
            let dropped = match self.dropped_events {
                0 => "no events dropped".to_owned(),
                n => format!("{n} events DROPPED"),
            };
            write!(
                f,
                "profiler: {} spans on {} {threads}, {dropped}",
                self.spans, self.threads
            )?;
            writeln!(f, "{}", compiled_out_note())?;
            if let Some(s) = self.streamed.as_ref().filter(|s| s.error.is_none()) {
                writeln!(
                    f,
                    "profiler: wrote {} ({} events streamed, {} bytes)",
                    s.path.display(),
                    s.events,
                    s.bytes
                )?;
            }
            for (path, _) in self.files.iter().filter(|(_, r)| r.is_ok()) {
                writeln!(f, "profiler: wrote {}", path.display())?;
            }
            if self.dropped_events > 0 {
                self.write_drop_advice(f)?;
            }
        }
        if let Some(Streamed {
            path,
            error: Some((error, unwritten)),
            ..
        }) = &self.streamed
        {
            writeln!(
                f,
                "profiler: writing {} failed ({error}): {unwritten} events not written; it holds what came before",
                path.display()
            )?;
        }
        for (_, result) in self.files {
            if let Err(e) = result {
                writeln!(f, "profiler: {e}")?;
            }
        }
        for note in self.notes {
            writeln!(f, "profiler: {note}")?;
        }
        Ok(())
    }
}

/// Said after the counts when nothing could record: zero spans is then no mystery.
fn compiled_out_note() -> &'static str {
    if cfg!(feature = "enable") {
        ""
    } else {
        " (profiling is compiled out: the `enable` feature is off)"
    }
}

impl ExitReport<'_> {
    /// Why calls were lost and which setting keeps them. With the collector running, a ring
    /// fills only if it fills within one drain interval or the collector holds its maximum;
    /// without it, a ring fills as soon as a thread records more than it holds.
    fn write_drop_advice(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "profiler: buffers were full, so the profile misses {} events (whole calls) and its times are lower bounds; to keep them, raise PROFILER_BUFFER_EVENTS (now {} per thread)",
            self.dropped_events, self.buffer_events
        )?;
        if self.streamed.is_some() {
            writeln!(
                f,
                ", or let the collector drain more often (PROFILER_COLLECT_INTERVAL_MS, default 10)"
            )
        } else if self.collected {
            writeln!(
                f,
                " or PROFILER_MAX_BUFFERED_EVENTS (now {})",
                self.max_buffered_events
            )
        } else {
            writeln!(
                f,
                ", or let the background collector drain the rings during the run (PROFILER_COLLECT_INTERVAL_MS, default 10)"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(files: &[(PathBuf, Result<(), ExportError>)], dropped: u64, quiet: bool) -> String {
        ExitReport {
            files,
            spans: 12,
            threads: 2,
            dropped_events: dropped,
            collected: true,
            buffer_events: 1024,
            max_buffered_events: 4096,
            quiet,
            streamed: None,
            notes: &[],
        }
        .to_string()
    }

    fn failed(path: &str) -> (PathBuf, Result<(), ExportError>) {
        let source = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        (
            PathBuf::from(path),
            Err(ExportError::Io {
                path: PathBuf::from(path),
                source,
            }),
        )
    }

    #[test]
    fn lists_the_files_with_the_spans_and_drops_they_hold() {
        let files = [
            (PathBuf::from("out/run.trace.json"), Ok(())),
            (PathBuf::from("out/run.csv"), Ok(())),
        ];
        let text = report(&files, 0, false);
        let expected = format!(
            "profiler: 12 spans on 2 threads, no events dropped{}\n\
             profiler: wrote out/run.trace.json\n\
             profiler: wrote out/run.csv\n",
            compiled_out_note()
        );
        assert_eq!(text, expected);
        assert_eq!(report(&files, 0, true), "");
    }

    #[test]
    fn drops_name_the_settings_that_avoid_them() {
        let files = [(PathBuf::from("run.trace.json"), Ok(()))];
        let text = report(&files, 40, false);
        assert!(text.contains("40 events DROPPED"), "{text}");
        assert!(
            text.contains("PROFILER_BUFFER_EVENTS (now 1024 per thread)")
                && text.contains("PROFILER_MAX_BUFFERED_EVENTS (now 4096)"),
            "{text}"
        );
    }

    #[test]
    fn failed_files_are_reported_even_when_quiet() {
        let files = [(PathBuf::from("run.trace.json"), Ok(())), failed("run.csv")];
        for quiet in [false, true] {
            let text = report(&files, 0, quiet);
            assert!(
                text.ends_with("profiler: cannot write run.csv: denied\n"),
                "{text}"
            );
            assert_eq!(text.contains("wrote run.trace.json"), !quiet, "{text}");
        }
        assert_eq!(
            report(&[failed("a.json")], 0, false),
            "profiler: cannot write a.json: denied\n"
        );
    }
}
