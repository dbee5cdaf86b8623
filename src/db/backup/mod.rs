//! Backups: a copy of the open database in one self-contained file, written where it cannot
//! hurt live data.
//!
//! Owns [`Database::backup`](crate::db::Database::backup) and its shorthands, the checks on a
//! destination ([`BackupTarget`], [`LiveArea`]), the rotation of the `backups/` directory
//! beside each database, and the removal of what an interrupted backup left behind.
//!
//! A destination is checked first, on the blocking pool. The path must be absolute and its
//! directory must exist. After following symlinks it must not be one of the database's own
//! files (the file, `-wal`, `-shm`, `-journal`) nor anything the caller's [`LiveArea`] names.
//! An existing file is replaced only with `overwrite`, and a directory or device never.
//! Files and directories are compared by device and inode as well as by name, so a hard link
//! or a bind mount of live data is refused like the original.
//!
//! The copy is then written under a temporary name in the destination's directory
//! (`.<name>.robin-partial-<pid>-<random>`, created 0600 before SQLite opens it: SQLite keeps
//! an existing file's mode). It is synced, renamed into place through the directory that was
//! checked (held open, so a directory swapped meanwhile cannot redirect the rename), and the
//! directory is synced. Every error path removes the temporary file. A crash can still leave
//! one; [`remove_backup_leftovers`] clears those, at start-up and after each rotation.
//!
//! The parts: `destination` decides where a backup may go, `partial` owns the temporary file,
//! `copy` fills it (online backup API or `sqlcipher_export`) and rotates the `backups/`
//! directories.
//!
//! May touch: the destination's directory and the `backups/` directories; the database's own
//! directory and the live area are only looked at.
mod copy;
mod destination;
mod partial;

pub use copy::{BACKUP_PREFIX, BACKUPS_DIR_NAME};
pub use destination::{BackupTarget, LiveArea};
pub(in crate::db) use destination::{COMPANIONS, with_suffix};
pub use partial::remove_backup_leftovers;
