//! The database: SQLite, or SQLCipher when a password is given, on the blocking pool.
//!
//! Owns the connections, the schema and its migrations, and every SQL string; it is the only
//! part that names rusqlite. There is one writer connection, owned by a thread of its own, and
//! a small pool of read-only readers, each kept in a [`blocking::Unblock`] on the blocking
//! pool, so no statement ever runs on the event-loop thread. A write joins the writer's queue
//! (in order, with a time limit when it has to wait), runs in `BEGIN IMMEDIATE`, and commits
//! when its closure returns `Ok`; `Err` or a panic rolls it back. Readers see only committed data (WAL). Code on other threads uses the
//! same closures through [`Database::read_ctx`] and [`Database::write_ctx`], which refuse to
//! block the loop thread.
//!
//! May touch: its own database file (and its `-wal`/`-shm` companions), and backup files.
//!
//! # Examples
//!
//! ```
//! use robin::db::{Database, Options};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("robin.db");
//! futures_lite::future::block_on(async {
//!     let db = Database::open(&path, None, Options::default()).await.unwrap();
//!     db.write(|tx| {
//!         tx.execute("INSERT INTO settings (name, value) VALUES ('main_currency', 'EUR')", [])?;
//!         Ok(())
//!     })
//!     .await
//!     .unwrap();
//!     let currency: String = db
//!         .read(|tx| Ok(tx.query_row("SELECT value FROM settings WHERE name = 'main_currency'", [], |r| r.get(0))?))
//!         .await
//!         .unwrap();
//!     assert_eq!(currency, "EUR");
//!     db.close().await;
//! });
//! ```
mod backup;
mod connection;
mod error;
mod schema;
mod store;
mod tx;
mod writer;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::{AcqRel, Acquire};

use blocking::Unblock;
use rusqlite::{Connection, Transaction, TransactionBehavior};

pub use backup::{BACKUP_PREFIX, BACKUPS_DIR_NAME, BackupTarget, LiveArea, remove_backup_leftovers};
pub use connection::{DEFAULT_BUSY_TIMEOUT, Password};
pub use error::{Error, Result};
pub use rusqlite::{OptionalExtension, params};
pub use schema::{MIGRATIONS, Migration, MigrationProgress};
pub use store::{Account, Asset, Balance, HistoryRange, Snapshot, SnapshotEntry, SnapshotSummary};
pub use tx::WriteTx;

/// How hard SQLite syncs to disk on commit (`synchronous = "normal"|"full"` in the config file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Durable across application crashes; a power loss may lose the last commits (WAL).
    #[default]
    Normal,
    /// Durable across power loss too, at a cost per commit.
    Full,
}

/// How often the current database is backed up automatically, and how many backups it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackupPolicy {
    /// Time between automatic backups; none turns them off. Default a day.
    pub interval: Option<Duration>,
    /// Backups kept per database; the oldest beyond this are removed. Default 7.
    pub keep: usize,
}

impl Default for BackupPolicy {
    fn default() -> Self {
        BackupPolicy { interval: Some(Duration::from_secs(24 * 3600)), keep: 7 }
    }
}

/// How a database is opened. The defaults suit a desktop app.
#[derive(Clone)]
pub struct Options {
    /// Read-only connections kept open. Default 2.
    pub readers: usize,
    /// How long a write may wait for the write slot before failing. Default 30 s.
    pub write_timeout: Duration,
    /// How long a statement waits on another connection's lock. Default 5 s.
    pub busy_timeout: Duration,
    /// Page cache per connection of a plain database, in KiB. Default 2048. Pages are
    /// allocated as they are read, so an idle connection holds almost none of it.
    pub cache_kib: u32,
    /// Page cache per connection of an encrypted database, in KiB. Default 8192: a page read
    /// back from the OS costs SQLCipher a decryption and an HMAC check each time (a plain
    /// page only a copy), so keeping the working set decrypted in memory is what makes an
    /// encrypted database as fast as a plain one once warm (bench/db_bench.rs reports scans
    /// cold and hot). The bound: (readers + 1) x this, reached only by reading that much.
    pub encrypted_cache_kib: u32,
    /// `PRAGMA synchronous`. Default NORMAL.
    pub synchronous: Synchronous,
    /// The schema steps to apply. Default [`MIGRATIONS`].
    pub migrations: &'static [Migration],
    /// Called on the pool thread before each migration step (the daemon broadcasts it).
    pub on_migration: Arc<dyn Fn(MigrationProgress) + Send + Sync>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            readers: 2,
            write_timeout: Duration::from_secs(30),
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            cache_kib: 2048,
            encrypted_cache_kib: 8192,
            synchronous: Synchronous::Normal,
            migrations: MIGRATIONS,
            on_migration: Arc::new(|_| {}),
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("readers", &self.readers)
            .field("write_timeout", &self.write_timeout)
            .field("synchronous", &self.synchronous)
            .finish_non_exhaustive()
    }
}

/// An open database. `Clone + Send + Sync`: clones share the connections.
#[derive(Clone, Debug)]
pub struct Database {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The database file.
    path: PathBuf,
    /// Whether it is SQLCipher-encrypted.
    encrypted: bool,
    /// The schema version after migrations.
    schema_version: u32,
    /// Idle readers; a reader in use is out of the channel. Declared before the writer so that
    /// on drop they close first: the writer's connection, closing last, checkpoints the WAL
    /// and removes it (a read-only connection cannot).
    idle_readers: (async_channel::Sender<Unblock<Connection>>, async_channel::Receiver<Unblock<Connection>>),
    /// The writer's queue and thread, which owns the writer connection.
    writer: writer::Writer,
    /// Bounds and behaviour.
    options: Options,
}

thread_local! {
    /// Set on a pool thread while it runs a write closure, to catch a nested `write_ctx`
    /// (which would wait for the slot its own caller holds).
    static IN_WRITE: Cell<bool> = const { Cell::new(false) };
}

impl Database {
    /// Opens (creating if needed) the database at `path`, encrypted with `password` when given,
    /// and migrates it. All the work, key derivation included, runs on the blocking pool.
    pub async fn open(path: &Path, password: Option<Password>, options: Options) -> Result<Database> {
        let path = path.to_path_buf();
        let opened = blocking::unblock(move || open_blocking(path, password, options)).await?;
        Ok(Database { inner: Arc::new(opened) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether the database is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.inner.encrypted
    }

    /// The schema version.
    pub fn schema_version(&self) -> u32 {
        self.inner.schema_version
    }

    /// Runs `f` in a read transaction on a reader connection, on the blocking pool.
    pub async fn read<R, F>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&Transaction<'_>) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let mut reader = ReaderGuard::take(&self.inner).await?;
        reader.conn().with_mut(move |conn| run_read(conn, f)).await
    }

    /// Runs `f` in a write transaction (`BEGIN IMMEDIATE`): its writes are committed when it
    /// returns `Ok`, undone on `Err` or panic, and the result arrives after the commit. Writes
    /// queued together share one commit, each in its own savepoint (see the `writer` module).
    /// A write that has not started within `Options::write_timeout` fails with `WriteTimeout`
    /// and never runs; dropping the future before it starts also withdraws it.
    pub async fn write<R, F>(&self, f: F) -> Result<R>
    where
        F: for<'c> FnOnce(&mut WriteTx<'c>) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let claim = Arc::new(AtomicU8::new(writer::QUEUED));
        let _withdraw_on_drop = Withdraw(claim.clone());
        let writer::Submitted { answer, behind_other_work } = self.inner.writer.submit(f, claim.clone());
        if !behind_other_work {
            // The writer was idle: this write is the next thing it takes, so there is no wait
            // to bound with a timer (see the `writer` module).
            return self.inner.writer.answer(answer).await;
        }
        let limit = self.inner.options.write_timeout;
        let waited = crate::runtime::timeout(limit, answer.recv()).await;
        match waited {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(Error::Closed),
            // Too late to start: withdraw it, unless the writer took it this very moment.
            None if claim.compare_exchange(writer::QUEUED, writer::ABANDONED, AcqRel, Acquire).is_ok() => {
                Err(Error::WriteTimeout(limit))
            }
            None => answer.recv().await.unwrap_or(Err(Error::Closed)),
        }
    }

    /// [`read`](Self::read) for synchronous code on other threads; an error on the loop thread.
    pub fn read_ctx<R, F>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&Transaction<'_>) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        if crate::runtime::on_loop_thread() {
            return Err(Error::OnLoopThread);
        }
        futures_lite::future::block_on(self.read(f))
    }

    /// [`write`](Self::write) for synchronous code on other threads; an error on the loop
    /// thread, and inside another write (use `tx.savepoint` there).
    pub fn write_ctx<R, F>(&self, f: F) -> Result<R>
    where
        F: for<'c> FnOnce(&mut WriteTx<'c>) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        if crate::runtime::on_loop_thread() {
            return Err(Error::OnLoopThread);
        }
        if IN_WRITE.with(Cell::get) {
            return Err(Error::NestedWrite);
        }
        futures_lite::future::block_on(self.write(f))
    }

    /// Closes every connection (the writer on its thread, the readers on the pool),
    /// checkpointing the WAL. Writes queued before it finish first; later calls get `Closed`.
    pub async fn close(&self) {
        self.inner.writer.close().await;
        self.inner.idle_readers.1.close();
        while let Ok(reader) = self.inner.idle_readers.1.try_recv() {
            let conn = reader.into_inner().await;
            blocking::unblock(move || drop(conn)).await;
        }
    }

    /// Resolves with the reason if the writer fails for good (a fault in robin itself, never a
    /// failed write): a supervisor's cue to stop the daemon instead of leaving it half alive.
    pub async fn writer_failed(&self) -> String {
        self.inner.writer.failed().await
    }

    /// Transactions the writer has committed since the database was opened. Writes queued
    /// together share one (group commit), so this grows slower than the number of writes.
    pub fn commits(&self) -> u64 {
        self.inner.writer.commits()
    }

    /// The state for `status`: path, encryption and schema version.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "path": self.inner.path.display().to_string(),
            "encrypted": self.inner.encrypted,
            "schema_version": self.inner.schema_version,
            "readers": self.inner.options.readers,
            "commits": self.commits(),
        })
    }
}

fn open_blocking(path: PathBuf, password: Option<Password>, options: Options) -> Result<Inner> {
    keep_private(&path);
    let mut writer = connection::open(&path, password.as_ref(), &options, connection::Role::Writer)?;
    let schema_version = schema::migrate(&mut writer, &path, options.migrations, &*options.on_migration)?;
    let idle_readers = async_channel::unbounded();
    for _ in 0..options.readers.max(1) {
        let reader = connection::open(&path, password.as_ref(), &options, connection::Role::Reader)?;
        let _ = idle_readers.0.try_send(Unblock::new(reader));
    }
    // The password is dropped (and zeroed) here: connections keep their derived keys.
    drop(password);
    Ok(Inner {
        encrypted: options_encrypted(&writer),
        path,
        schema_version,
        writer: writer::Writer::new(writer),
        idle_readers,
        options,
    })
}

/// Makes the database's files readable by their owner only. SQLite creates a database with
/// mode 0644 (less the umask) and gives its `-wal` and `-shm` the database's mode, so creating
/// the file first, 0600, keeps all three private whatever the umask; files an older robind left
/// readable by others are tightened, and said so. Best effort: SQLite reports what matters.
fn keep_private(path: &Path) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let created = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
    if created.is_ok() {
        return;
    }
    let files = std::iter::once(path.to_path_buf())
        .chain(backup::COMPANIONS.iter().map(|suffix| backup::with_suffix(path, suffix)));
    for file in files {
        let Ok(meta) = std::fs::metadata(&file) else { continue };
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_file() && mode & 0o077 != 0 {
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700)) {
                Ok(()) => log::warn!(
                    "{} was readable by other users (mode {mode:04o}); it is now {:04o}",
                    file.display(),
                    mode & 0o700
                ),
                Err(err) => {
                    log::warn!("{} is readable by other users and cannot be changed: {err}", file.display())
                }
            }
        }
    }
}

fn options_encrypted(conn: &Connection) -> bool {
    // `cipher_status` is 1 on a keyed SQLCipher connection.
    conn.query_row("PRAGMA cipher_status", [], |row| row.get::<_, String>(0)).is_ok_and(|s| s == "1")
}

fn run_read<R>(conn: &mut Connection, f: impl FnOnce(&Transaction<'_>) -> Result<R>) -> Result<R> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    match catch_unwind(AssertUnwindSafe(|| f(&tx))) {
        Ok(result) => result,
        Err(panic) => Err(Error::Panicked(crate::runtime::panic_message(&panic))),
    }
    // `tx` drops here and rolls back: a read transaction has nothing to keep.
}

/// Withdraws a write that has not started when its caller goes away (cancelled task).
struct Withdraw(Arc<AtomicU8>);

impl Drop for Withdraw {
    fn drop(&mut self) {
        let _ = self.0.compare_exchange(writer::QUEUED, writer::ABANDONED, AcqRel, Acquire);
    }
}

/// A reader taken from the pool; goes back on drop, even if the future using it is cancelled
/// mid-statement (the `Unblock` finishes the statement before serving the next caller).
struct ReaderGuard<'a> {
    inner: &'a Inner,
    conn: Option<Unblock<Connection>>,
}

impl<'a> ReaderGuard<'a> {
    async fn take(inner: &'a Inner) -> Result<ReaderGuard<'a>> {
        let conn = inner.idle_readers.1.recv().await.map_err(|_| Error::Closed)?;
        Ok(ReaderGuard { inner, conn: Some(conn) })
    }

    fn conn(&mut self) -> &mut Unblock<Connection> {
        self.conn.as_mut().expect("present until drop")
    }
}

impl Drop for ReaderGuard<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if let Err(closed) = self.inner.idle_readers.0.try_send(conn) {
                // The database was closed meanwhile: close this reader on the pool too.
                let conn = closed.into_inner();
                blocking::unblock(move || drop(conn)).detach();
            }
        }
    }
}
