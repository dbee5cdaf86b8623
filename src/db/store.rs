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

/// A tracked asset: a price API id such as `bitcoin`, or an ERC-20 token in rotki's form
/// `eip155:1/erc20:<contract>` with what it takes to read and price it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Asset {
    /// `bitcoin`, or `eip155:1/erc20:0x...` (contract lower-cased).
    pub asset: String,
    /// A token's decimals (its smallest units per whole token, as a power of ten).
    pub decimals: Option<u32>,
    /// What people call it (`USDC`).
    pub symbol: Option<String>,
    /// The price API id it is priced by; a plain asset is priced by its own id.
    pub price_id: Option<String>,
}

impl Asset {
    /// The prefix of an Ethereum mainnet ERC-20 token's identifier.
    pub const ERC20_PREFIX: &'static str = "eip155:1/erc20:";

    /// A plain asset, priced by its own id.
    pub fn plain(id: impl Into<String>) -> Asset {
        Asset { asset: id.into(), ..Asset::default() }
    }

    /// The token's contract address, for an ERC-20 token.
    pub fn contract(&self) -> Option<&str> {
        self.asset.strip_prefix(Self::ERC20_PREFIX)
    }

    /// The id the price API knows it by, if any.
    pub fn price_key(&self) -> Option<&str> {
        match self.contract() {
            Some(_) => self.price_id.as_deref(),
            None => Some(self.price_id.as_deref().unwrap_or(&self.asset)),
        }
    }
}

impl From<&str> for Asset {
    fn from(id: &str) -> Asset {
        Asset::plain(id)
    }
}

impl From<String> for Asset {
    fn from(id: String) -> Asset {
        Asset::plain(id)
    }
}

/// One asset's line in a balance snapshot. Amounts are exact decimal strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SnapshotEntry {
    /// The asset (a price API id, or a token's identifier).
    pub asset: String,
    /// Its symbol, when known (read from the tracked assets; `ETH` for ether).
    pub symbol: Option<String>,
    /// How much of it, in whole units.
    pub amount: String,
    /// Its price in the snapshot's currency; none when no price was known.
    pub price: Option<String>,
    /// amount x price; none without a price (and then not in the total).
    pub value: Option<String>,
}

/// A balance snapshot: what the tracked accounts held, valued in one currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// Its row id; snapshots are numbered in the order they were taken.
    pub id: i64,
    /// When it was taken (Unix seconds).
    pub time: i64,
    /// The currency prices and values are in.
    pub currency: String,
    /// The sum of the priced entries' values.
    pub total: String,
    /// One line per asset held.
    pub entries: Vec<SnapshotEntry>,
}

/// A snapshot in the history: when, and the net value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SnapshotSummary {
    /// Its row id.
    pub id: i64,
    /// When it was taken (Unix seconds).
    pub time: i64,
    /// The currency of the total.
    pub currency: String,
    /// The net value of the priced holdings.
    pub total: String,
}

/// Which snapshots the history holds: taken from `from` to `to` (Unix seconds, inclusive),
/// the latest `limit` of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryRange {
    /// The earliest time, inclusive.
    pub from: Option<i64>,
    /// The latest time, inclusive.
    pub to: Option<i64>,
    /// At most this many (the latest ones in the range).
    pub limit: u32,
}

/// A native balance at a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Balance {
    /// The chain.
    pub chain: String,
    /// The address.
    pub address: String,
    /// The asset (CoinGecko id of the chain's native coin).
    pub asset: String,
    /// Whole units, exact.
    pub amount: String,
    /// The block the balance was read at.
    pub block_number: u64,
    /// That block's time (Unix seconds).
    pub block_time: i64,
}

impl Database {
    /// Tracks an asset, or updates a tracked one's token details; false if it was tracked
    /// already.
    pub async fn add_asset(&self, asset: impl Into<Asset>) -> Result<bool> {
        let asset = asset.into();
        self.write(move |tx| {
            let existed: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM assets WHERE identifier = ?1)",
                [&asset.asset],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO assets (identifier, decimals, symbol, price_id) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (identifier) DO UPDATE
                 SET decimals = excluded.decimals, symbol = excluded.symbol, price_id = excluded.price_id",
                params![asset.asset, asset.decimals, asset.symbol, asset.price_id],
            )?;
            Ok(!existed)
        })
        .await
    }

    /// Stops tracking an asset; false if it was not tracked.
    pub async fn remove_asset(&self, asset: String) -> Result<bool> {
        self.write(move |tx| Ok(tx.execute("DELETE FROM assets WHERE identifier = ?1", [asset])? == 1)).await
    }

    /// The tracked assets' identifiers, sorted.
    pub async fn assets(&self) -> Result<Vec<String>> {
        Ok(self.asset_details().await?.into_iter().map(|a| a.asset).collect())
    }

    /// The tracked assets with their token details, sorted by identifier.
    pub async fn asset_details(&self) -> Result<Vec<Asset>> {
        self.read(|tx| {
            let mut stmt =
                tx.prepare("SELECT identifier, decimals, symbol, price_id FROM assets ORDER BY identifier")?;
            let rows = stmt.query_map([], |r| {
                Ok(Asset { asset: r.get(0)?, decimals: r.get(1)?, symbol: r.get(2)?, price_id: r.get(3)? })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
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

    /// Stores quotes: `(asset, price)` in `currency`, all quoted at `at` (Unix seconds).
    pub async fn store_prices(&self, currency: String, prices: Vec<(String, String)>, at: i64) -> Result<()> {
        self.write(move |tx| {
            let mut stmt = tx.prepare(
                "INSERT OR REPLACE INTO prices (asset, currency, price, queried_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (asset, price) in prices {
                stmt.execute(params![asset, currency, price, at])?;
            }
            Ok(())
        })
        .await
    }

    /// The stored prices in `currency`: `(asset, price)`.
    pub async fn prices(&self, currency: String) -> Result<Vec<(String, String)>> {
        self.read(move |tx| {
            let mut stmt =
                tx.prepare("SELECT asset, price FROM prices WHERE currency = ?1 ORDER BY asset")?;
            Ok(stmt.query_map([currency], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Stores balances and, in the same transaction, a snapshot valued in `currency` (entries
    /// without a price keep `price` and `value` empty): either all of it is committed or none
    /// (a cancelled job leaves no partial snapshot).
    pub async fn store_balances_and_snapshot(
        &self,
        balances: Vec<Balance>,
        currency: String,
        total: String,
        entries: Vec<SnapshotEntry>,
        at: i64,
    ) -> Result<i64> {
        self.write(move |tx| {
            insert_balances(tx, &balances)?;
            tx.execute("INSERT INTO snapshots (taken_at, currency, total) VALUES (?1, ?2, ?3)", params![at, currency, total])?;
            let id = tx.last_insert_rowid();
            let mut stmt = tx.prepare(
                "INSERT INTO snapshot_entries (snapshot_id, asset, amount, price, value) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for e in &entries {
                stmt.execute(params![id, e.asset, e.amount, e.price, e.value])?;
            }
            Ok(id)
        })
        .await
    }

    /// Stores balances alone (no price, so no snapshot), in one transaction.
    pub async fn store_balances(&self, balances: Vec<Balance>) -> Result<()> {
        self.write(move |tx| insert_balances(tx, &balances)).await
    }

    /// The stored balances.
    pub async fn balances(&self) -> Result<Vec<Balance>> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT chain, address, asset, amount, block_number, block_time FROM balances ORDER BY chain, address",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(Balance {
                    chain: r.get(0)?,
                    address: r.get(1)?,
                    asset: r.get(2)?,
                    amount: r.get(3)?,
                    block_number: r.get::<_, i64>(4)? as u64,
                    block_time: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// The latest snapshot, its entries sorted by value (unpriced last), then asset.
    pub async fn latest_snapshot(&self) -> Result<Option<Snapshot>> {
        self.read(|tx| {
            let head = tx
                .query_row(
                    "SELECT id, taken_at, currency, total FROM snapshots ORDER BY id DESC LIMIT 1",
                    [],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    },
                )
                .optional()?;
            let Some((id, time, currency, total)) = head else { return Ok(None) };
            let mut stmt = tx.prepare(
                // Ether is held through accounts, often without being tracked as an asset.
                "SELECT e.asset, COALESCE(a.symbol, CASE e.asset WHEN 'ethereum' THEN 'ETH' END),
                        e.amount, e.price, e.value
                 FROM snapshot_entries e LEFT JOIN assets a ON a.identifier = e.asset
                 WHERE e.snapshot_id = ?1 ORDER BY e.asset",
            )?;
            let mut entries = stmt
                .query_map([id], |r| {
                    Ok(SnapshotEntry {
                        asset: r.get(0)?,
                        symbol: r.get(1)?,
                        amount: r.get(2)?,
                        price: r.get(3)?,
                        value: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            entries.sort_by(|a, b| by_value(b).cmp(&by_value(a)).then_with(|| a.asset.cmp(&b.asset)));
            Ok(Some(Snapshot { id, time, currency, total, entries }))
        })
        .await
    }

    /// The net value over time: the snapshots in `range`, oldest first.
    pub async fn snapshot_history(&self, range: HistoryRange) -> Result<Vec<SnapshotSummary>> {
        self.read(move |tx| {
            // The latest `limit` in the range (by the time index), then oldest first.
            let mut stmt = tx.prepare(
                "SELECT id, taken_at, currency, total FROM snapshots
                 WHERE taken_at >= ?1 AND taken_at <= ?2 ORDER BY taken_at DESC, id DESC LIMIT ?3",
            )?;
            let from = range.from.unwrap_or(i64::MIN);
            let to = range.to.unwrap_or(i64::MAX);
            let mut rows = stmt
                .query_map(params![from, to, range.limit], |r| {
                    Ok(SnapshotSummary {
                        id: r.get(0)?,
                        time: r.get(1)?,
                        currency: r.get(2)?,
                        total: r.get(3)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.reverse();
            Ok(rows)
        })
        .await
    }

    /// How many snapshots there are.
    pub async fn snapshot_count(&self) -> Result<i64> {
        self.read(|tx| Ok(tx.query_row("SELECT count(*) FROM snapshots", [], |r| r.get(0))?)).await
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
                // A value that is not a time (a damaged row) is skipped: the job counts as due.
                let at = secs
                    .and_then(|s| s.parse::<f64>().ok())
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .and_then(|d| UNIX_EPOCH.checked_add(d));
                let (Some(job), Some(at)) = (name.strip_prefix(LAST_RUN_PREFIX), at) else { continue };
                runs.push((job.to_string(), at));
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

/// An entry's value for sorting: unpriced entries (and unreadable values) sort last.
fn by_value(entry: &SnapshotEntry) -> Option<rust_decimal::Decimal> {
    entry.value.as_deref().and_then(|v| v.parse().ok())
}

fn insert_balances(tx: &super::WriteTx<'_>, balances: &[Balance]) -> Result<()> {
    let mut stmt = tx.prepare(
        "INSERT OR REPLACE INTO balances (chain, address, asset, amount, block_number, block_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for b in balances {
        stmt.execute(params![b.chain, b.address, b.asset, b.amount, b.block_number as i64, b.block_time])?;
    }
    Ok(())
}
