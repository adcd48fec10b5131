//! A small tmpfs mounted for one test: a disk that fills up after a few KiB, or a read-only one,
//! without touching the machine's real disks.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a fresh folder, unmounted (and the folder removed) when dropped.
#[derive(Debug)]
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size_kib` KiB for the test `test`.
    ///
    /// # Errors
    ///
    /// The reason, where this machine does not let the test mount one (not root, a container
    /// without the capability).
    pub fn mount(test: &str, size_kib: u32) -> Result<Tmpfs, String> {
        let dir =
            std::env::temp_dir().join(format!("profiler-tmpfs-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mounted = Tmpfs { dir };
        mounted.mount_command(&format!("size={size_kib}k"))?;
        Ok(mounted)
    }

    /// The mounted folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Remounts it read-only: its files stay, nothing can be written.
    ///
    /// # Errors
    ///
    /// What `mount` said when it refused.
    pub fn make_read_only(&self) -> Result<(), String> {
        self.mount_command("remount,ro")
    }

    fn mount_command(&self, options: &str) -> Result<(), String> {
        let mut mount = Command::new("mount");
        if !options.starts_with("remount") {
            mount.args(["-t", "tmpfs"]);
        }
        let out = mount
            .args(["-o", options, "tmpfs"])
            .arg(&self.dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).output();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Mounts a tmpfs as [`Tmpfs::mount`] does, or says on stderr why the test is skipped and
/// returns `None`: only a refused mount skips a test, never a failing assertion.
pub fn mount_or_skip(test: &str, size_kib: u32) -> Option<Tmpfs> {
    match Tmpfs::mount(test, size_kib) {
        Ok(tmpfs) => Some(tmpfs),
        Err(reason) => {
            eprintln!("skipped {test}: cannot mount a tmpfs here ({reason})");
            None
        }
    }
}
