//! One daemon per data directory, enforced with an advisory `flock(2)` on `robind.lock`.
//!
//! Owns the lock file. The lock is released by the kernel when the process dies, however it
//! dies, so a crashed daemon never leaves a stale lock behind. The file holds the owner's pid
//! so the second daemon can say who is running. It is never deleted: unlinking a lock file
//! while another process opens it is a classic race.
//!
//! May touch: its own file in the data directory. Called before the loop starts.
//!
//! # Examples
//!
//! ```
//! use robin::lockfile::{DataDirLock, Error};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let first = DataDirLock::acquire(dir.path()).unwrap();
//! match DataDirLock::acquire(dir.path()) {
//!     Err(Error::AlreadyRunning { owner, .. }) => assert_eq!(owner.pid, Some(std::process::id())),
//!     other => panic!("expected AlreadyRunning, got {other:?}"),
//! }
//! drop(first);
//! DataDirLock::acquire(dir.path()).unwrap();
//! ```
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rustix::fs::{FlockOperation, flock};

/// The lock file's name inside the data directory.
pub const LOCK_FILE_NAME: &str = "robind.lock";

/// `Result` with this part's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the data directory could not be claimed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another process holds the lock.
    #[error(
        "another robind{} is already running with data directory {}; stop it first, or start with \
         --attach-existing to print how to reach it",
        pid_text(.owner.pid), .dir.display()
    )]
    AlreadyRunning {
        /// The contested data directory.
        dir: PathBuf,
        /// What the owner wrote into the lock file.
        owner: Owner,
    },
    /// Another user could replace or delete what is in the directory.
    #[error(
        "data directory {} {reason}: another user could replace or delete the database; use a \
         directory only you can write (--data-dir), robin does not change its mode",
        .dir.display()
    )]
    UnsafeDir {
        /// The data directory.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The directory or the lock file could not be created or locked.
    #[error("cannot lock data directory {}", .dir.display())]
    Io {
        /// The data directory.
        dir: PathBuf,
        /// What the file system reported.
        #[source]
        source: std::io::Error,
    },
}

/// Refuses a directory that belongs to another user or that others may write: either could
/// delete the database or swap it for another. Readable by others is allowed (the database
/// files themselves are 0600).
fn check_private(dir: &Path) -> Result<()> {
    let meta = std::fs::metadata(dir).map_err(|source| Error::Io { dir: dir.to_path_buf(), source })?;
    match crate::ownership::shared_reason(&meta) {
        Some(reason) => Err(Error::UnsafeDir { dir: dir.to_path_buf(), reason }),
        None => Ok(()),
    }
}

fn pid_text(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
}

/// What the lock file says about the process holding it; any part may be missing (a lock
/// file from an older robind, or one read while its owner was still writing it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    /// The owner's pid.
    pub pid: Option<u32>,
    /// The owner's control socket, once it is bound.
    pub control_socket: Option<PathBuf>,
    /// When the owner last wrote the file: at start, and when its socket was bound.
    pub since: Option<SystemTime>,
}

impl Owner {
    fn read(file: &mut File) -> Owner {
        let mut text = String::new();
        let since = file.metadata().and_then(|m| m.modified()).ok();
        if file.read_to_string(&mut text).is_err() {
            return Owner { since, ..Owner::default() };
        }
        let mut lines = text.lines();
        let pid = lines.next().and_then(|line| line.trim().parse().ok());
        let control_socket =
            lines.next().and_then(|line| line.strip_prefix("control_socket=")).map(PathBuf::from);
        Owner { pid, control_socket, since }
    }
}

/// Holds the data directory for this process until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    /// The open, locked file; closing it releases the lock.
    file: File,
    /// The locked directory.
    dir: PathBuf,
}

impl DataDirLock {
    /// Creates `dir` (mode 0700) if needed and takes its lock without waiting.
    pub fn acquire(dir: &Path) -> Result<DataDirLock> {
        let io = |source| Error::Io { dir: dir.to_path_buf(), source };
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
        check_private(dir)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join(LOCK_FILE_NAME))
            .map_err(io)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(Error::AlreadyRunning { dir: dir.to_path_buf(), owner: Owner::read(&mut file) });
            }
            Err(errno) => return Err(io(errno.into())),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DataDirLock { file, dir: dir.to_path_buf() })
    }

    /// Notes where this daemon's control socket is, for a second robind to find it.
    pub fn record_control_socket(&mut self, socket: &Path) -> Result<()> {
        let io = |source| Error::Io { dir: self.dir.clone(), source };
        let line =
            socket.to_str().ok_or_else(|| io(std::io::Error::other("the socket path is not UTF-8")))?;
        if line.contains('\n') {
            return Err(io(std::io::Error::other("the socket path contains a line break")));
        }
        self.file.set_len(0).map_err(io)?;
        self.file.rewind().map_err(io)?;
        write!(self.file, "{}\ncontrol_socket={line}\n", std::process::id()).map_err(io)
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_learns_the_owner_and_its_socket() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|source| Error::Io { dir: PathBuf::new(), source })?;
        let mut lock = DataDirLock::acquire(dir.path())?;
        let owner = |dir| match DataDirLock::acquire(dir) {
            Err(Error::AlreadyRunning { owner, .. }) => owner,
            other => panic!("expected AlreadyRunning, got {other:?}"),
        };
        let before = owner(dir.path());
        assert_eq!((before.pid, before.control_socket), (Some(std::process::id()), None));
        assert!(before.since.is_some());
        lock.record_control_socket(Path::new("/run/user/1000/robin/robind.sock"))?;
        let after = owner(dir.path());
        assert_eq!(after.pid, Some(std::process::id()));
        assert_eq!(after.control_socket.as_deref(), Some(Path::new("/run/user/1000/robin/robind.sock")));
        Ok(())
    }

    #[test]
    fn a_directory_others_can_write_is_refused_and_left_as_it_is() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = DataDirLock::acquire(dir.path()).unwrap_err();
        assert!(err.to_string().contains("is writable by other users (mode 1777)"), "{err}");
        assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o7777, 0o1777);
        // Readable is fine: the files inside are private.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
