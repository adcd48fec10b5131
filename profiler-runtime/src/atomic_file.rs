//! Writing a file so that a failure never destroys the previous one: every file the profiler
//! writes (exports, baselines, the guard's files, the flight-recorder dump, the `profiler` tool's
//! outputs but the summary `compare --markdown` appends to) goes through [`write`].
//!
//! The content goes to a new temporary file beside the destination (`.<name>.tmp-<pid>-<n>`),
//! which is flushed, synced to disk and only then renamed over the destination. A rename within
//! one folder replaces the file whole, so readers see the old file or the new one, never a part.
//! On a full disk, a missing folder, a failing writer or a panic, the temporary file is removed
//! and the old file stays as it was.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Tells apart the temporary files of one process; the pid tells processes apart.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// Writes the file at `path` with `content`, replacing it only once the new content is complete
/// and on disk: if anything fails, the file `path` named before is intact and no temporary file
/// is left. `content` writes through a buffer; it need not flush.
///
/// A destination that exists and is not a regular file (`/dev/stdout`, a named pipe) cannot be
/// replaced and is written in place. A symbolic link is followed: the file it points to is
/// replaced, and the link kept.
///
/// # Errors
///
/// The first error of creating, writing, flushing, syncing or renaming the temporary file, or
/// `content`'s own. It does not name the file: the callers' errors do.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// let path = std::env::temp_dir().join("profiler-doc-atomic.txt");
/// profiler_runtime::atomic_file::write(&path, |out| out.write_all(b"complete"))?;
/// assert_eq!(std::fs::read(&path)?, b"complete");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write(
    path: impl AsRef<Path>,
    content: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let path = path.as_ref();
    let existing = fs::metadata(path).ok();
    let destination = match &existing {
        Some(meta) if !meta.is_file() && !meta.is_dir() => return write_in_place(path, content),
        // Renaming over the link would replace the link itself with a plain file.
        Some(_) if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) => {
            fs::canonicalize(path)?
        }
        _ => path.to_owned(),
    };
    let temp = TempFile::create(&destination)?;
    if let Some(meta) = existing.filter(fs::Metadata::is_file) {
        // A replaced file keeps its mode, as it did when it was truncated and rewritten.
        temp.file.set_permissions(meta.permissions())?;
    }
    let mut out = BufWriter::with_capacity(1 << 20, &temp.file);
    content(&mut out)?;
    out.flush()?;
    drop(out);
    temp.file.sync_all()?;
    temp.persist(&destination)
}

/// `/dev/null`, a pipe, a terminal: nothing to replace, nothing partial to keep.
fn write_in_place(
    path: &Path,
    content: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut out = BufWriter::new(OpenOptions::new().write(true).open(path)?);
    content(&mut out)?;
    out.flush()
}

/// A temporary file that removes itself unless [`persist`](TempFile::persist)ed.
struct TempFile {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl TempFile {
    /// Creates `.<name>.tmp-<pid>-<n>` in the folder of `destination`. `create_new` never opens a
    /// file someone else made, so two writers cannot share one.
    fn create(destination: &Path) -> io::Result<TempFile> {
        let name = destination
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
        let dir = destination.parent().unwrap_or(Path::new(""));
        loop {
            let mut temp_name = OsString::from(".");
            temp_name.push(name);
            temp_name.push(format!(
                ".tmp-{}-{}",
                std::process::id(),
                NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
            ));
            let path = dir.join(temp_name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file,
                        persisted: false,
                    })
                }
                // A leftover of an earlier process with the same pid: take the next number.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Renames the file over `destination`, then syncs the folder so that the rename itself
    /// survives a crash.
    fn persist(mut self, destination: &Path) -> io::Result<()> {
        fs::rename(&self.path, destination)?;
        self.persisted = true;
        let dir = destination
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // Best effort: the file is complete either way, and some systems cannot sync a folder.
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            // Nothing better to do if this fails: the error that got us here is the one to report.
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, empty folder for one test.
    fn temp_dir(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("profiler-atomic-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_whole_and_leaves_no_temporary_file() {
        let dir = temp_dir("replace");
        let path = dir.join("out.json");
        write(&path, |out| out.write_all(b"a longer first version")).unwrap();
        write(&path, |out| out.write_all(b"second")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(names_in(&dir), ["out.json"]);
    }

    #[test]
    fn a_failing_writer_keeps_the_old_file_and_removes_the_temporary_one() {
        let dir = temp_dir("failing-writer");
        let path = dir.join("out.json");
        fs::write(&path, b"good").unwrap();
        let result = write(&path, |out| {
            out.write_all(&vec![b'x'; 2 << 20])?;
            Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
        });
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::StorageFull);
        assert_eq!(fs::read(&path).unwrap(), b"good");
        assert_eq!(names_in(&dir), ["out.json"]);
    }

    #[test]
    fn a_panicking_writer_keeps_the_old_file_and_removes_the_temporary_one() {
        let dir = temp_dir("panicking-writer");
        let path = dir.join("out.json");
        fs::write(&path, b"good").unwrap();
        let result = std::panic::catch_unwind(|| {
            write(&path, |out| {
                out.write_all(b"partial")?;
                panic!("writer bug")
            })
        });
        assert!(result.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"good");
        assert_eq!(names_in(&dir), ["out.json"]);
    }

    #[test]
    fn a_destination_that_is_a_folder_is_an_error_and_stays_a_folder() {
        let dir = temp_dir("folder");
        let path = dir.join("out.json");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), b"kept").unwrap();
        assert!(write(&path, |out| out.write_all(b"new")).is_err());
        assert_eq!(fs::read(path.join("inside")).unwrap(), b"kept");
        assert_eq!(names_in(&dir), ["out.json"]);
    }

    #[test]
    fn a_missing_folder_is_an_error_and_creates_nothing() {
        let dir = temp_dir("missing");
        let err = write(dir.join("absent/out.json"), |out| out.write_all(b"new")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(names_in(&dir).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_keeps_pointing_at_the_replaced_file() {
        let dir = temp_dir("symlink");
        let target = dir.join("target.json");
        fs::write(&target, b"old").unwrap();
        let link = dir.join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write(&link, |out| out.write_all(b"new")).unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(names_in(&dir), ["link.json", "target.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_replaced_file_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("mode");
        let path = dir.join("out.json");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write(&path, |out| out.write_all(b"new")).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "{mode:o}");
    }

    #[cfg(unix)]
    #[test]
    fn a_device_is_written_in_place() {
        write("/dev/null", |out| out.write_all(b"discarded")).unwrap();
        assert!(Path::new("/dev/null").exists());
    }
}
