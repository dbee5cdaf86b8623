//! Typed reads and writes of robin's own tables. Every SQL string of the daemon lives in `db`;
//! other parts call these functions and get typed rows back.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::{Database, OptionalExtension, Result, params};

/// A tracked EVM account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    /// The chain, such as `eth`.
    pub chain: String,
    /// The address, lower-case `0x` + 40 hex digits.
    pub address: String,
    /// A user's label, if any.
    pub label: Option<String>,
}

const LAST_RUN_PREFIX: &str = "last_run:";

impl Database {
    /// Tracks an asset; false if it was tracked already.
    pub async fn add_asset(&self, asset: String) -> Result<bool> {
        self.write(move |tx| {
            Ok(tx.execute("INSERT OR IGNORE INTO assets (identifier) VALUES (?1)", [asset])? == 1)
        })
        .await
    }

    /// Stops tracking an asset; false if it was not tracked.
    pub async fn remove_asset(&self, asset: String) -> Result<bool> {
        self.write(move |tx| Ok(tx.execute("DELETE FROM assets WHERE identifier = ?1", [asset])? == 1)).await
    }

    /// The tracked assets, sorted.
    pub async fn assets(&self) -> Result<Vec<String>> {
        self.read(|tx| {
            let mut stmt = tx.prepare("SELECT identifier FROM assets ORDER BY identifier")?;
            Ok(stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?)
        })
        .await
    }

    /// Tracks an account; false if it was tracked already.
    pub async fn add_account(&self, account: Account) -> Result<bool> {
        self.write(move |tx| {
            let added = tx.execute(
                "INSERT OR IGNORE INTO accounts (chain, address, label) VALUES (?1, ?2, ?3)",
                params![account.chain, account.address, account.label],
            )?;
            Ok(added == 1)
        })
        .await
    }

    /// Stops tracking an account; false if it was not tracked.
    pub async fn remove_account(&self, chain: String, address: String) -> Result<bool> {
        self.write(move |tx| {
            Ok(tx.execute("DELETE FROM accounts WHERE chain = ?1 AND address = ?2", [chain, address])? == 1)
        })
        .await
    }

    /// The tracked accounts, sorted by chain and address.
    pub async fn accounts(&self) -> Result<Vec<Account>> {
        self.read(|tx| {
            let mut stmt =
                tx.prepare("SELECT chain, address, label FROM accounts ORDER BY chain, address")?;
            let rows = stmt
                .query_map([], |r| Ok(Account { chain: r.get(0)?, address: r.get(1)?, label: r.get(2)? }))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Every stored setting, sorted by name.
    pub async fn settings(&self) -> Result<Vec<(String, String)>> {
        self.read(|tx| {
            let mut stmt = tx.prepare("SELECT name, value FROM settings ORDER BY name")?;
            Ok(stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// One stored setting.
    pub async fn setting(&self, name: String) -> Result<Option<String>> {
        self.read(move |tx| {
            Ok(tx.query_row("SELECT value FROM settings WHERE name = ?1", [name], |r| r.get(0)).optional()?)
        })
        .await
    }

    /// Stores a setting (validation is the caller's).
    pub async fn set_setting(&self, name: String, value: String) -> Result<()> {
        self.write(move |tx| {
            tx.execute("INSERT OR REPLACE INTO settings (name, value) VALUES (?1, ?2)", [name, value])?;
            Ok(())
        })
        .await
    }

    /// The scheduler's last-run times, by job name.
    pub async fn last_runs(&self) -> Result<Vec<(String, SystemTime)>> {
        self.read(|tx| {
            let mut stmt =
                tx.prepare("SELECT name, value FROM key_value_cache WHERE name LIKE 'last_run:%'")?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)))?;
            let mut runs = Vec::new();
            for row in rows {
                let (name, secs) = row?;
                let (Some(job), Some(secs)) =
                    (name.strip_prefix(LAST_RUN_PREFIX), secs.and_then(|s| s.parse().ok()))
                else {
                    continue;
                };
                runs.push((job.to_string(), UNIX_EPOCH + Duration::from_secs_f64(secs)));
            }
            Ok(runs)
        })
        .await
    }

    /// Records a job's last run.
    pub async fn set_last_run(&self, job: &str, at: SystemTime) -> Result<()> {
        let key = format!("{LAST_RUN_PREFIX}{job}");
        let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64().to_string();
        self.write(move |tx| {
            tx.execute("INSERT OR REPLACE INTO key_value_cache (name, value) VALUES (?1, ?2)", [key, secs])?;
            Ok(())
        })
        .await
    }
}
