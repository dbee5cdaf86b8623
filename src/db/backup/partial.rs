//! The file a backup is written to before it gets its name, and the removal of those that a
//! crash left behind.
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use super::destination::{COMPANIONS, Destination, with_suffix};
use crate::db::Result;

/// What marks a backup still being written: `.<name>.robin-partial-<pid>-<random>`.
const PARTIAL_MARK: &str = ".robin-partial-";
/// How much of the destination's name goes into the temporary name, which must stay within
/// the file system's 255-byte limit.
const PARTIAL_NAME_KEEP: usize = 64;
/// Temporary names tried before giving up; a clash needs the same 64 random bits.
const PARTIAL_ATTEMPTS: usize = 4;

/// Temporary names of the backups this process is writing right now, which
/// [`remove_backup_leftovers`] must not take for a crash's leftovers. A name, not a pid: in a
/// container every run of the daemon may be pid 1.
static WRITING: Mutex<BTreeSet<OsString>> = Mutex::new(BTreeSet::new());

/// A backup being written under a temporary name in its destination's directory. Dropping it
/// removes the file and any SQLite companions; [`persist`](Self::persist) moves it into place.
pub(super) struct Partial<'d> {
    /// Where it goes.
    destination: &'d Destination,
    /// Its temporary name in the destination's directory.
    name: OsString,
    /// The same file by path, for SQLite, which opens files by name.
    pub(super) path: PathBuf,
    /// Set once the file has its final name, so that drop leaves it there.
    persisted: bool,
}

impl<'d> Partial<'d> {
    /// Creates the empty file, mode 0600, under a name nobody else uses.
    pub(super) fn create(destination: &'d Destination) -> Result<Partial<'d>> {
        crate::runtime::assert_off_loop("creating a backup file");
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
        let mut attempt = 1;
        loop {
            let name = partial_name(&destination.name);
            // Registered first, so a cleanup running meanwhile never takes it for a leftover.
            writing().insert(name.clone());
            match rustix::fs::openat(&destination.dir_fd, &name, flags, Mode::from_raw_mode(0o600)) {
                Ok(_closed_here) => {
                    let path = destination.dir.join(&name);
                    return Ok(Partial { destination, name, path, persisted: false });
                }
                Err(errno) => {
                    writing().remove(&name);
                    if errno != Errno::EXIST || attempt == PARTIAL_ATTEMPTS {
                        return Err(destination.file_error(errno));
                    }
                }
            }
            attempt += 1;
        }
    }

    /// Syncs the copy, renames it over the destination and syncs the directory, so that the
    /// new name survives a power loss too.
    pub(super) fn persist(mut self) -> Result<()> {
        let destination = self.destination;
        let sync_err = |errno| destination.file_error(errno);
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        let file =
            rustix::fs::openat(&destination.dir_fd, &self.name, flags, Mode::empty()).map_err(sync_err)?;
        rustix::fs::fsync(&file).map_err(sync_err)?;
        destination.rename_from(&self.name)?;
        self.persisted = true;
        rustix::fs::fsync(&destination.dir_fd).map_err(sync_err)
    }
}

impl Drop for Partial<'_> {
    fn drop(&mut self) {
        if !self.persisted {
            let dir = &self.destination.dir_fd;
            // SQLite's companions first: with the main file gone a journal means nothing.
            for suffix in COMPANIONS {
                let _ =
                    rustix::fs::unlinkat(dir, with_suffix(Path::new(&self.name), suffix), AtFlags::empty());
            }
            let _ = rustix::fs::unlinkat(dir, &self.name, AtFlags::empty());
        }
        writing().remove(&self.name);
    }
}

/// Removes what interrupted backups left in `dir`: files named like a backup being written
/// (`.<name>.robin-partial-<pid>-<random>`, with any SQLite companions), except the ones this
/// process is writing right now. Returns how many went. Blocking: call it on the pool.
///
/// # Examples
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let leftover = dir.path().join(".robin-1.db.robin-partial-4242-00000000deadbeef");
/// std::fs::write(&leftover, b"half a backup").unwrap();
/// assert_eq!(robin::db::remove_backup_leftovers(dir.path()), 1);
/// assert!(!leftover.exists());
/// ```
pub fn remove_backup_leftovers(dir: &Path) -> usize {
    crate::runtime::assert_off_loop("removing leftovers of interrupted backups");
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let in_progress = writing().clone();
    let removed = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter(|entry| {
            let name = entry.file_name();
            is_partial_name(&name) && !in_progress.iter().any(|w| name.as_bytes().starts_with(w.as_bytes()))
        })
        .filter(|entry| std::fs::remove_file(entry.path()).is_ok())
        .count();
    if removed > 0 {
        log::info!("removed {removed} files left by interrupted backups in {}", dir.display());
    }
    removed
}

/// The names being written; a panic elsewhere while it was held leaves a usable set.
fn writing() -> std::sync::MutexGuard<'static, BTreeSet<OsString>> {
    WRITING.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A fresh temporary name for a backup to `destination`: `.<name>.robin-partial-<pid>-<random>`.
fn partial_name(destination: &OsStr) -> OsString {
    // Lossy and shortened: the name only has to be recognisable, and ATTACH needs UTF-8.
    let kept: String = destination.to_string_lossy().chars().take(PARTIAL_NAME_KEEP).collect();
    format!(".{kept}{PARTIAL_MARK}{}-{:016x}", std::process::id(), fastrand::u64(..)).into()
}

/// Whether `name` is a temporary backup name or one of its SQLite companions.
fn is_partial_name(name: &OsStr) -> bool {
    let Some(name) = name.to_str().filter(|n| n.starts_with('.')) else { return false };
    let Some((_, owner)) = name.rsplit_once(PARTIAL_MARK) else { return false };
    owner.split('-').next().is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_interrupted_backups_are_removed_and_nothing_else() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let leftovers = [
            ".robin-00000000001700000000.db.robin-partial-1234-00000000000000ff",
            ".robin-00000000001700000000.db.robin-partial-1234-00000000000000ff-journal",
            ".mine.db.robin-partial-1-abcdef0123456789-wal",
        ];
        let kept = [
            "robin-00000000001700000000.db",
            "notes.robin-partial-1-ff",
            ".hidden.db",
            ".x.robin-partial-pid-ff",
        ];
        for name in leftovers.iter().chain(&kept) {
            std::fs::write(dir.path().join(name), b"x")?;
        }
        // A directory is never a backup's leftover, whatever its name.
        std::fs::create_dir(dir.path().join(".d.robin-partial-1-ff"))?;
        // One this process is writing right now stays, companions included.
        let in_progress = partial_name(OsStr::new("now.db"));
        std::fs::write(dir.path().join(&in_progress), b"in progress")?;
        std::fs::write(with_suffix(&dir.path().join(&in_progress), "-journal"), b"in progress")?;
        writing().insert(in_progress.clone());

        let removed = remove_backup_leftovers(dir.path());
        writing().remove(&in_progress);
        assert_eq!(removed, leftovers.len());
        let mut left = std::fs::read_dir(dir.path())?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<Vec<_>, _>>()?;
        left.sort();
        let in_progress = in_progress.to_string_lossy();
        let mut expected: Vec<String> = kept.iter().map(|k| k.to_string()).collect();
        expected.extend([
            ".d.robin-partial-1-ff".into(),
            in_progress.to_string(),
            format!("{in_progress}-journal"),
        ]);
        expected.sort();
        assert_eq!(left, expected);
        Ok(())
    }

    #[test]
    fn temporary_names_are_hidden_unique_and_short() {
        let name = partial_name(OsStr::new(&"b".repeat(250)));
        assert!(name.len() < 120, "{}", name.len());
        assert!(is_partial_name(&name));
        assert_ne!(partial_name(OsStr::new("a.db")), partial_name(OsStr::new("a.db")));
        assert!(partial_name(OsStr::new("a.db")).to_str().unwrap().starts_with(".a.db.robin-partial-"));
    }
}
