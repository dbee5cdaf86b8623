//! The database part's error type.
use std::path::PathBuf;
use std::time::Duration;

/// `Result` with this part's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong with the database, in terms a user or caller can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The password does not open this database. Nothing on disk was changed.
    #[error("wrong password for database {}", .0.display())]
    WrongPassword(PathBuf),
    /// The database is encrypted and no password was given.
    #[error("database {} is encrypted: a password is needed to open it", .0.display())]
    PasswordNeeded(PathBuf),
    /// A password was given but this build has no SQLCipher: refusing to write plaintext.
    #[error(
        "this build of robin has no SQLCipher support; refusing to open an encrypted database in plaintext"
    )]
    NoEncryption,
    /// The database was written by a newer robin.
    #[error("database {} has schema version {found}, newer than the {supported} this robin supports; upgrade robin", .path.display())]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: u32,
        /// The newest version this binary knows.
        supported: u32,
    },
    /// A schema migration failed; the database stays at the version before it.
    #[error("migration of {} to schema version {version} failed", .path.display())]
    Migration {
        /// The database file.
        path: PathBuf,
        /// The version that could not be reached.
        version: u32,
        /// The statement of the migration that failed.
        #[source]
        source: rusqlite::Error,
    },
    /// The database file could not be opened or prepared.
    #[error("cannot open database {}", .path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite reported.
        #[source]
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    /// A write waited longer than the configured limit for the single write slot.
    #[error("a database write waited more than {0:?} for its turn; the database is busy")]
    WriteTimeout(Duration),
    /// The closure panicked; the transaction was rolled back.
    #[error("a database closure panicked and its transaction was rolled back: {0}")]
    Panicked(String),
    /// The closure asked for a rollback with its own error.
    #[error("transaction rolled back: {0}")]
    Rollback(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// `read_ctx`/`write_ctx` was called on the event-loop thread, where it would block.
    #[error("blocking database call on the event-loop thread; use the async read/write there")]
    OnLoopThread,
    /// `write_ctx` was called inside a write closure, which already holds the write slot.
    #[error("nested database write: use tx.savepoint() inside a write")]
    NestedWrite,
    /// A savepoint name that is not active.
    #[error("no active savepoint named '{0}'")]
    UnknownSavepoint(String),
    /// A savepoint name that is already active.
    #[error("a savepoint named '{0}' is already active")]
    DuplicateSavepoint(String),
    /// A savepoint name that is not a plain identifier.
    #[error("invalid savepoint name '{0}': use letters, digits and _")]
    InvalidSavepointName(String),
    /// The transaction carrying this write could not begin or commit (disk full, I/O error);
    /// the write is not in the database.
    #[error("the write could not be committed")]
    WriteFailed(#[source] std::sync::Arc<rusqlite::Error>),
    /// The writer stopped for good after a fault in robin itself; the daemon is shutting down.
    #[error("the database writer failed ({0}); robind is restarting")]
    WriterFailed(String),
    /// The writer thread could not be started (the system is out of threads or memory).
    #[error("cannot start the database writer thread")]
    WriterThread(#[source] std::io::Error),
    /// The database was closed (logout or shutdown).
    #[error("the database is closed")]
    Closed,
    /// SQLite could not copy the database into a backup.
    #[error("backup to {} failed", .path.display())]
    Backup {
        /// The backup's destination.
        path: PathBuf,
        /// What SQLite reported.
        #[source]
        source: rusqlite::Error,
    },
    /// A backup's file or directory could not be created, synced or renamed into place.
    #[error("backup to {} failed", .path.display())]
    BackupFile {
        /// The file or directory involved.
        path: PathBuf,
        /// What the file system reported.
        #[source]
        source: std::io::Error,
    },
    /// A backup was asked to replace a file the running daemon uses (a database, its `-wal`,
    /// `-shm` or `-journal`, the lock file), directly or through a symlink or hard link.
    /// Nothing was written.
    #[error("refusing to back up onto the live {what} {}; choose a path outside the data directory", .path.display())]
    BackupOntoLiveFile {
        /// The live file, as the daemon knows it.
        path: PathBuf,
        /// What it is ("database file", "lock file").
        what: &'static str,
    },
    /// A backup was asked to go into a directory holding live data (the data directory, a
    /// user's directory), outside the `backups/` directories. Nothing was written.
    #[error(
        "refusing to back up to {}: {} holds live data; choose a path outside it, or in the backups directory beside a database",
        .path.display(), .dir.display()
    )]
    BackupIntoLiveDir {
        /// The destination asked for.
        path: PathBuf,
        /// The live directory it lies in.
        dir: PathBuf,
    },
    /// The backup's destination exists and replacing it was not asked for. Nothing was written.
    #[error("{} exists; pass \"overwrite\": true to replace it", .0.display())]
    BackupExists(PathBuf),
    /// The backup's destination is a directory, device, socket or pipe, which a backup never
    /// replaces. Nothing was written.
    #[error("{} is a {kind}, not a file; name a file for the backup", .path.display())]
    BackupNotAFile {
        /// The destination asked for.
        path: PathBuf,
        /// What is there instead.
        kind: &'static str,
    },
    /// The directory of the backup's destination is missing or not a directory.
    #[error("cannot back up to {}: its directory does not exist or is not a directory", .path.display())]
    BackupDirectory {
        /// The destination asked for.
        path: PathBuf,
        /// What the file system reported.
        #[source]
        source: std::io::Error,
    },
    /// The backup's path is unusable as given (relative, with a NUL byte, naming no file).
    #[error("cannot back up to {path:?}: {reason}")]
    BackupPath {
        /// The destination asked for.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl Error {
    /// Wraps a caller's error to roll the transaction back with it.
    pub fn rollback(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error::Rollback(err.into())
    }

    /// Whether the request was refused before anything was written (a backup onto live data,
    /// over an existing file, to an unusable path): the caller must change it, and the
    /// database is fine.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Error::BackupOntoLiveFile { .. }
                | Error::BackupIntoLiveDir { .. }
                | Error::BackupExists(_)
                | Error::BackupNotAFile { .. }
                | Error::BackupDirectory { .. }
                | Error::BackupPath { .. }
        )
    }
}

impl From<rusqlite::types::FromSqlError> for Error {
    fn from(err: rusqlite::types::FromSqlError) -> Error {
        Error::Sqlite(err.into())
    }
}
