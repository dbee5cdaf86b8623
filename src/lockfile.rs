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
//!     Err(Error::AlreadyRunning { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
//!     other => panic!("expected AlreadyRunning, got {other:?}"),
//! }
//! drop(first);
//! DataDirLock::acquire(dir.path()).unwrap();
//! ```
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

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
    #[error("another robind{} is already running with data directory {}", pid_text(*.pid), .dir.display())]
    AlreadyRunning {
        /// The contested data directory.
        dir: PathBuf,
        /// The pid written by the owner, when readable.
        pid: Option<u32>,
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

fn pid_text(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
}

/// Holds the data directory for this process until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    /// The open, locked file; closing it releases the lock.
    _file: File,
    /// The locked directory.
    dir: PathBuf,
}

impl DataDirLock {
    /// Creates `dir` (mode 0700) if needed and takes its lock without waiting.
    pub fn acquire(dir: &Path) -> Result<DataDirLock> {
        let io = |source| Error::Io { dir: dir.to_path_buf(), source };
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
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
                let mut text = String::new();
                let pid = file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
                return Err(Error::AlreadyRunning { dir: dir.to_path_buf(), pid });
            }
            Err(errno) => return Err(io(errno.into())),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DataDirLock { _file: file, dir: dir.to_path_buf() })
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
