//! Writing a backup: the online backup API or `sqlcipher_export` into a checked destination,
//! and the rotation of the `backups/` directory beside each database.
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use super::destination::{BackupTarget, Destination, parent_dir};
use super::partial::{Partial, remove_backup_leftovers};
use crate::db::{Database, Error, Options, Password, ReaderGuard, Result, connection};

/// The file-name prefix of rotated backups.
pub const BACKUP_PREFIX: &str = "robin-";
/// The directory beside each database that holds its backups.
pub const BACKUPS_DIR_NAME: &str = "backups";
/// Pages the online backup copies per step; writers may go on between steps.
const PAGES_PER_STEP: i32 = 256;
/// The pause between two steps of the online backup.
const STEP_PAUSE: Duration = Duration::from_millis(1);

impl Database {
    /// The `backups/` directory beside the database, where the `db_backup` job writes.
    pub fn backups_dir(&self) -> PathBuf {
        parent_dir(self.path()).join(BACKUPS_DIR_NAME)
    }

    /// [`backup`](Self::backup) to a new file at `destination`.
    pub async fn backup_to(&self, destination: &Path, password: Option<Password>) -> Result<()> {
        self.backup(BackupTarget::new(destination), password).await
    }

    /// Copies the database to `target.path` with SQLite's online backup API, a few pages at a
    /// time on a reader connection, so writes go on meanwhile. An encrypted database gives an
    /// encrypted copy under the same key. The copy is one self-contained file of mode 0600.
    ///
    /// The destination is refused, before anything is written, when it is one of this
    /// database's files, is in `target.live`, exists without `target.overwrite`, or is not a
    /// regular file; symlinks are followed and files compared by inode, so no other name for
    /// live data gets through. On any error nothing is left behind.
    pub async fn backup(&self, mut target: BackupTarget, password: Option<Password>) -> Result<()> {
        let live = std::mem::take(&mut target.live).with_database(self);
        let destination = blocking::unblock(move || Destination::check(target, &live)).await?;
        if self.inner.encrypted && password.is_none() {
            return self.export_encrypted(destination).await;
        }
        let mut reader = ReaderGuard::take(&self.inner).await?;
        let options = self.inner.options.clone();
        reader
            .conn()
            .with_mut(move |conn| {
                let partial = Partial::create(&destination)?;
                copy_online(conn, &partial.path, password.as_ref(), &options, &destination.requested)?;
                partial.persist()
            })
            .await
    }

    /// Copies an encrypted database under its own key without knowing the password: the
    /// writer connection holds the key, `ATTACH` without `KEY` gives the copy the same key, and
    /// `sqlcipher_export` fills it. Runs on the writer, between write groups.
    async fn export_encrypted(&self, destination: Destination) -> Result<()> {
        let answer = self.inner.writer.submit_raw(move |conn| {
            let partial = Partial::create(&destination)?;
            export_keyed(conn, &partial.path, &destination.requested)?;
            partial.persist()
        });
        answer.recv().await.unwrap_or(Err(Error::Closed))
    }

    /// Writes a backup named `robin-<unix seconds>.db` into `dir` (created 0700 if needed),
    /// removes the oldest ones beyond `keep` and any leftovers of interrupted backups. Returns
    /// the new backup's path. The periodic `db_backup` job runs this.
    pub async fn rotate_backup(
        &self,
        dir: &Path,
        keep: usize,
        password: Option<Password>,
    ) -> Result<PathBuf> {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let name = format!("{BACKUP_PREFIX}{:020}.db", stamp.as_secs());
        let create = dir.to_path_buf();
        let absolute = blocking::unblock(move || {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&create)?;
            std::path::absolute(create)
        })
        .await
        .map_err(|source| Error::BackupFile { path: dir.to_path_buf(), source })?;
        // Two runs within a second share a name; the newer copy replacing the older is what a
        // rotation wants.
        self.backup(BackupTarget { overwrite: true, ..BackupTarget::new(absolute.join(&name)) }, password)
            .await?;
        let removed = blocking::unblock(move || {
            remove_backup_leftovers(&absolute);
            prune_backups(&absolute, keep)
        })
        .await;
        if removed > 0 {
            log::info!("database backups: removed {removed} old ones, keeping {keep}");
        }
        Ok(dir.join(name))
    }
}

/// Removes the oldest `robin-*.db` files in `dir` beyond `keep`; returns how many went.
fn prune_backups(dir: &Path, keep: usize) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut backups: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(BACKUP_PREFIX) && name.ends_with(".db")
        })
        .collect();
    // Zero-padded timestamps: the name order is the age order.
    backups.sort();
    let excess = backups.len().saturating_sub(keep);
    backups.into_iter().take(excess).filter(|p| std::fs::remove_file(p).is_ok()).count()
}

/// Copies `conn`'s database into the file at `to` with SQLite's online backup API.
fn copy_online(
    conn: &Connection,
    to: &Path,
    password: Option<&Password>,
    options: &Options,
    requested: &Path,
) -> Result<()> {
    let backup_err = |source| Error::Backup { path: requested.to_path_buf(), source };
    let mut target = match password {
        Some(password) => connection::open(to, Some(password), options, connection::Role::Writer)?,
        None => Connection::open(to).map_err(backup_err)?,
    };
    let backup = rusqlite::backup::Backup::new(conn, &mut target).map_err(backup_err)?;
    backup.run_to_completion(PAGES_PER_STEP, STEP_PAUSE, None).map_err(backup_err)?;
    drop(backup);
    // The copy carries the source's WAL flag; a backup should be one self-contained file that
    // opening does not surround with -wal and -shm files.
    target.execute_batch("PRAGMA journal_mode = DELETE;").map_err(backup_err)?;
    target.close().map_err(|(_, source)| backup_err(source))
}

/// Fills the file at `to` through the writer connection `conn`, which holds the key.
fn export_keyed(conn: &Connection, to: &Path, requested: &Path) -> Result<()> {
    let backup_err = |source| Error::Backup { path: requested.to_path_buf(), source };
    let to = to.to_str().ok_or_else(|| Error::BackupPath {
        path: requested.to_path_buf(),
        reason: "ATTACH needs a UTF-8 path",
    })?;
    conn.execute("ATTACH DATABASE ?1 AS robin_backup", [to]).map_err(backup_err)?;
    // An attached database starts in DELETE mode and the export copies rows, not the
    // header, so the copy is one self-contained file without a conversion step.
    let exported = conn.query_row("SELECT sqlcipher_export('robin_backup')", [], |_| Ok(())).and_then(|()| {
        // sqlcipher_export copies schema and rows, not the schema version.
        let version: u32 = conn.query_row("PRAGMA main.user_version", [], |r| r.get(0))?;
        conn.execute_batch(&format!("PRAGMA robin_backup.user_version = {version}"))
    });
    let detached = conn.execute_batch("DETACH DATABASE robin_backup");
    exported.map_err(backup_err)?;
    detached.map_err(backup_err)
}
