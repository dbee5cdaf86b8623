//! Where a backup may go: the caller's target, the live data it must leave alone, and the
//! checks that turn a target into a [`Destination`] to write to. Blocking, on the pool.
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, RenameFlags};
use rustix::io::Errno;

use crate::db::{Database, Error, Result};

/// Where the kernel defines what a file is.
const KERNEL_DIRS: [&str; 3] = ["/proc", "/dev", "/sys"];

/// Files SQLite creates beside a database at times (and beside a backup being written).
pub(in crate::db) const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Where a backup goes, and what it must leave alone.
///
/// # Examples
///
/// ```no_run
/// use robin::db::{BackupTarget, Database, LiveArea};
///
/// # async fn run(db: Database) -> robin::db::Result<()> {
/// let live = LiveArea::new().with_dir("/var/lib/robin").with_backup_dir("/var/lib/robin/backups");
/// let target = BackupTarget { overwrite: true, live, ..BackupTarget::new("/srv/copies/robin.db") };
/// db.backup(target, None).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct BackupTarget {
    /// The file to write; absolute. A symlink is followed: the file it points to is replaced.
    pub path: PathBuf,
    /// Whether an existing file at `path` may be replaced. Default false.
    pub overwrite: bool,
    /// What, besides the database's own files, the backup must not replace or be written into.
    pub live: LiveArea,
}

impl BackupTarget {
    /// A new file at `path`; only the database's own files are protected.
    pub fn new(path: impl Into<PathBuf>) -> BackupTarget {
        BackupTarget { path: path.into(), overwrite: false, live: LiveArea::default() }
    }
}

/// Files and directories holding live data, which no backup may replace or be written into.
///
/// A database always protects its own files; a `LiveArea` adds what only its owner knows,
/// such as the daemon's lock file and the other databases in its data directory. The paths
/// need not exist; those that do not are skipped.
#[derive(Clone, Debug, Default)]
pub struct LiveArea {
    /// Files never replaced, each with what it is, for the refusal ("lock file").
    files: Vec<(PathBuf, &'static str)>,
    /// Directories nothing is written in, nor anywhere below them, except in `backup_dirs`.
    dirs: Vec<PathBuf>,
    /// Directories inside `dirs` that take backups after all.
    backup_dirs: Vec<PathBuf>,
}

impl LiveArea {
    /// An empty area: only the database's own files are protected.
    pub fn new() -> LiveArea {
        LiveArea::default()
    }

    /// Adds a file that must never be replaced; `what` names it in the refusal ("lock file").
    pub fn with_file(mut self, path: impl Into<PathBuf>, what: &'static str) -> LiveArea {
        self.files.push((path.into(), what));
        self
    }

    /// Adds a database's files (see [`Database::files`]).
    pub fn with_database(mut self, db: &Database) -> LiveArea {
        self.files.extend(db.files().into_iter().map(|file| (file, "database file")));
        self
    }

    /// Adds a directory that nothing may be written in, nor below.
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> LiveArea {
        self.dirs.push(dir.into());
        self
    }

    /// Lets backups go into `dir` (and below) although it lies inside a live directory.
    pub fn with_backup_dir(mut self, dir: impl Into<PathBuf>) -> LiveArea {
        self.backup_dirs.push(dir.into());
        self
    }

    /// Refuses `name` in `dir` (canonical, `dir_id` its identity) when it is a live file, or
    /// lies in a live directory outside every backups directory. `existing` is the identity of
    /// the file already there, if any.
    fn refuse(
        &self,
        requested: &Path,
        (dir, dir_id): (&Path, FileId),
        name: &OsStr,
        existing: Option<FileId>,
    ) -> Result<()> {
        for (file, what) in &self.files {
            let same_name = file.file_name() == Some(name) && FileId::of(parent_dir(file)) == Some(dir_id);
            let same_file = existing.is_some() && existing == FileId::of(file);
            if same_name || same_file {
                return Err(Error::BackupOntoLiveFile { path: file.clone(), what });
            }
        }
        let live: Vec<(FileId, &PathBuf)> =
            self.dirs.iter().filter_map(|d| Some((FileId::of(d)?, d))).collect();
        // A backups directory that is a symlink is not followed: pointing at live data it must
        // not let that in; pointing elsewhere, its target is outside the live area anyway.
        let allowed: Vec<FileId> = self.backup_dirs.iter().filter_map(|d| FileId::of_entry(d)).collect();
        // `dir` is canonical, so its ancestors are the real ones; the nearest that is named
        // decides, which lets `DATA/backups` in while `DATA` keeps everything else out.
        for ancestor in dir.ancestors() {
            let Some(id) = FileId::of(ancestor) else { continue };
            if allowed.contains(&id) {
                return Ok(());
            }
            if let Some((_, live_dir)) = live.iter().find(|(live_id, _)| *live_id == id) {
                return Err(Error::BackupIntoLiveDir {
                    path: requested.to_path_buf(),
                    dir: (*live_dir).clone(),
                });
            }
        }
        Ok(())
    }
}

impl Database {
    /// The files this database uses: the database, then its `-wal`, `-shm` and `-journal`
    /// (which exist only at times).
    pub fn files(&self) -> Vec<PathBuf> {
        let path = self.path();
        let mut files = vec![path.to_path_buf()];
        files.extend(COMPANIONS.iter().map(|suffix| with_suffix(path, suffix)));
        files
    }
}

/// A destination that passed the checks.
#[derive(Debug)]
pub(super) struct Destination {
    /// The path as the caller gave it, for messages.
    pub(super) requested: PathBuf,
    /// The directory the backup goes into, canonical.
    pub(super) dir: PathBuf,
    /// The same directory, held open: the temporary file, the rename and the sync go through
    /// it, so they happen in the directory that was checked.
    pub(super) dir_fd: File,
    /// The file name in `dir` (the symlink's target's, when the destination was a symlink).
    pub(super) name: OsString,
    /// Whether a file already there may be replaced.
    overwrite: bool,
}

impl Destination {
    /// Checks `target` against the rules in the module doc, with `live` (which includes the
    /// database's own files) as the live data. Blocking.
    pub(super) fn check(target: BackupTarget, live: &LiveArea) -> Result<Destination> {
        crate::runtime::assert_off_loop("checking a backup destination");
        let BackupTarget { path: requested, overwrite, .. } = target;
        let invalid = |reason| Error::BackupPath { path: requested.clone(), reason };
        if requested.as_os_str().as_bytes().contains(&0) {
            return Err(invalid("the path contains a NUL byte"));
        }
        if !requested.is_absolute() {
            return Err(invalid("the path must be absolute"));
        }
        let (Some(parent), Some(name)) = (requested.parent(), requested.file_name()) else {
            return Err(invalid("the path names no file"));
        };
        let no_dir = |source| Error::BackupDirectory { path: requested.clone(), source };
        let parent = std::fs::canonicalize(parent).map_err(no_dir)?;
        // What a name there means depends on the process or the kernel (`/dev/stdout`,
        // `/proc/self/exe`): never a place for a backup.
        if KERNEL_DIRS.iter().any(|dir| parent.starts_with(dir)) {
            return Err(invalid("files under /proc, /dev and /sys belong to the kernel or a process"));
        }
        if !std::fs::metadata(&parent).map_err(no_dir)?.is_dir() {
            return Err(no_dir(std::io::ErrorKind::NotADirectory.into()));
        }
        let file_err = |source| Error::BackupFile { path: requested.clone(), source };
        let in_parent = parent.join(name);
        // `metadata` follows a symlink: what it points to is what the rename would replace.
        let existing = match std::fs::metadata(&in_parent) {
            Ok(meta) => Some(meta),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(file_err(source)),
        };
        let (dir, name) = match existing {
            Some(_) => {
                let real = std::fs::canonicalize(&in_parent).map_err(file_err)?;
                (parent_dir(&real).to_path_buf(), real.file_name().unwrap_or(name).to_os_string())
            }
            None => (parent, name.to_os_string()),
        };
        let dir_fd = File::open(&dir).map_err(no_dir)?;
        let dir_id = FileId::from(&dir_fd.metadata().map_err(no_dir)?);
        live.refuse(&requested, (&dir, dir_id), &name, existing.as_ref().map(FileId::from))?;
        match &existing {
            Some(meta) if meta.is_dir() => {
                return Err(Error::BackupNotAFile { path: requested, kind: "directory" });
            }
            Some(meta) if !meta.is_file() => {
                return Err(Error::BackupNotAFile { path: requested, kind: "device, socket or pipe" });
            }
            Some(_) if !overwrite => return Err(Error::BackupExists(requested)),
            // A symlink that points nowhere is still a file in the way.
            None if !overwrite && std::fs::symlink_metadata(&in_parent).is_ok() => {
                return Err(Error::BackupExists(requested));
            }
            _ => {}
        }
        Ok(Destination { requested, dir, dir_fd, name, overwrite })
    }

    /// A file system error about this destination.
    pub(super) fn file_error(&self, errno: Errno) -> Error {
        Error::BackupFile { path: self.requested.clone(), source: errno.into() }
    }

    /// Renames `from` (in the same directory) to the destination's name. Without `overwrite`
    /// the kernel refuses to replace a file, even one created since the check.
    pub(super) fn rename_from(&self, from: &OsStr) -> Result<()> {
        let flags = if self.overwrite { RenameFlags::empty() } else { RenameFlags::NOREPLACE };
        match rustix::fs::renameat_with(&self.dir_fd, from, &self.dir_fd, &self.name, flags) {
            Ok(()) => Ok(()),
            Err(Errno::EXIST) => Err(Error::BackupExists(self.requested.clone())),
            // Some file systems (NFS, older FUSE) lack RENAME_NOREPLACE: look, then rename. A
            // file created in between is replaced there; nothing better exists for them.
            Err(Errno::INVAL | Errno::NOSYS) if !self.overwrite => {
                match rustix::fs::statat(&self.dir_fd, &self.name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(_) => Err(Error::BackupExists(self.requested.clone())),
                    Err(Errno::NOENT) => rustix::fs::renameat(&self.dir_fd, from, &self.dir_fd, &self.name)
                        .map_err(|errno| self.file_error(errno)),
                    Err(errno) => Err(self.file_error(errno)),
                }
            }
            Err(errno) => Err(self.file_error(errno)),
        }
    }
}

/// A file's identity: two paths name the same file when these match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    /// The device it lives on.
    dev: u64,
    /// Its inode there.
    ino: u64,
}

impl FileId {
    /// The identity of what `path` names (following symlinks), if it exists.
    fn of(path: &Path) -> Option<FileId> {
        std::fs::metadata(path).ok().as_ref().map(FileId::from)
    }

    /// The identity of the entry `path` itself (a symlink's own), if it exists.
    fn of_entry(path: &Path) -> Option<FileId> {
        std::fs::symlink_metadata(path).ok().as_ref().map(FileId::from)
    }
}

impl From<&Metadata> for FileId {
    fn from(meta: &Metadata) -> FileId {
        FileId { dev: meta.dev(), ino: meta.ino() }
    }
}

/// `path` with `suffix` appended to its file name (`robin.db` → `robin.db-wal`).
pub(in crate::db) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// The directory holding `path`; `.` for a bare file name.
pub(super) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}
