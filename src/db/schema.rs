//! The schema and its migrations, versioned by `PRAGMA user_version`.
use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::{Error, Result};

/// One step of the schema. Steps run in order, each in its own transaction.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// The `user_version` after this step.
    pub version: u32,
    /// What it does, for logs and `db_upgrade_status`.
    pub description: &'static str,
    /// The statements.
    pub sql: &'static str,
}

/// robin's schema, oldest step first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "key-value cache and settings",
        sql: "CREATE TABLE key_value_cache (name TEXT NOT NULL PRIMARY KEY, value TEXT);
              CREATE TABLE settings (name TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL);",
    },
    Migration {
        version: 2,
        description: "tracked assets and accounts",
        sql: "CREATE TABLE assets (identifier TEXT NOT NULL PRIMARY KEY);
              CREATE TABLE accounts (
                  chain TEXT NOT NULL,
                  address TEXT NOT NULL,
                  label TEXT,
                  PRIMARY KEY (chain, address)
              );",
    },
    Migration {
        version: 3,
        description: "prices, balances and balance snapshots",
        sql: "CREATE TABLE prices (
                  asset TEXT NOT NULL,
                  currency TEXT NOT NULL,
                  price TEXT NOT NULL,
                  queried_at INTEGER NOT NULL,
                  PRIMARY KEY (asset, currency)
              );
              CREATE TABLE balances (
                  chain TEXT NOT NULL,
                  address TEXT NOT NULL,
                  asset TEXT NOT NULL,
                  amount TEXT NOT NULL,
                  block_number INTEGER NOT NULL,
                  block_time INTEGER NOT NULL,
                  PRIMARY KEY (chain, address, asset)
              );
              CREATE TABLE snapshots (
                  id INTEGER PRIMARY KEY,
                  taken_at INTEGER NOT NULL,
                  currency TEXT NOT NULL,
                  total TEXT NOT NULL
              );
              CREATE TABLE snapshot_entries (
                  snapshot_id INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
                  asset TEXT NOT NULL,
                  amount TEXT NOT NULL,
                  price TEXT NOT NULL,
                  value TEXT NOT NULL,
                  PRIMARY KEY (snapshot_id, asset)
              );",
    },
    Migration {
        version: 4,
        description: "tokens, unpriced snapshot entries and snapshot history by time",
        // SQLite cannot drop NOT NULL from a column: the entries move to a new table, one row
        // per asset per snapshot as before, clustered by snapshot (WITHOUT ROWID).
        sql: "ALTER TABLE assets ADD COLUMN decimals INTEGER;
              ALTER TABLE assets ADD COLUMN symbol TEXT;
              ALTER TABLE assets ADD COLUMN price_id TEXT;
              CREATE TABLE snapshot_entries_v4 (
                  snapshot_id INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
                  asset TEXT NOT NULL,
                  amount TEXT NOT NULL,
                  price TEXT,
                  value TEXT,
                  PRIMARY KEY (snapshot_id, asset)
              ) WITHOUT ROWID;
              INSERT INTO snapshot_entries_v4 (snapshot_id, asset, amount, price, value)
                  SELECT snapshot_id, asset, amount, price, value FROM snapshot_entries;
              DROP TABLE snapshot_entries;
              ALTER TABLE snapshot_entries_v4 RENAME TO snapshot_entries;
              CREATE INDEX snapshots_by_time ON snapshots (taken_at);",
    },
];

/// Progress of a schema upgrade, reported before each step.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MigrationProgress {
    /// The version the database started at.
    pub start_version: u32,
    /// The version being reached now.
    pub current_version: u32,
    /// The version it will end at.
    pub target_version: u32,
    /// What this step does.
    pub description: &'static str,
}

/// Brings the database to the newest version in `migrations`; refuses a newer database.
pub(crate) fn migrate(
    conn: &mut Connection,
    path: &Path,
    migrations: &[Migration],
    progress: &dyn Fn(MigrationProgress),
) -> Result<u32> {
    let supported = migrations.last().map_or(0, |m| m.version);
    let found: u32 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > supported {
        return Err(Error::TooNew { path: path.to_path_buf(), found, supported });
    }
    for step in migrations.iter().filter(|m| m.version > found) {
        progress(MigrationProgress {
            start_version: found,
            current_version: step.version,
            target_version: supported,
            description: step.description,
        });
        log::info!(
            "database {}: migrating to schema version {} ({})",
            path.display(),
            step.version,
            step.description
        );
        let migration_err =
            |source| Error::Migration { path: path.to_path_buf(), version: step.version, source };
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(migration_err)?;
        tx.execute_batch(step.sql).map_err(migration_err)?;
        tx.pragma_update(None, "user_version", step.version).map_err(migration_err)?;
        tx.commit().map_err(migration_err)?;
    }
    Ok(supported.max(found))
}
