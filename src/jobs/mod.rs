//! The daemon's main work: prices, balances and balance snapshots, as tracked periodic jobs.
//!
//! Owns the jobs' logic: which assets and accounts to query, batching, exact decimal
//! arithmetic (wei as integers, prices as decimal strings, never floats) and the snapshot. It
//! queries through [`http`](crate::http), writes through [`db`](crate::db) (a run's results in one
//! transaction, so a cancelled job leaves nothing half written), reports progress through the
//! task tracker and broadcasts through a sink the daemon connects to the notifier.
//!
//! May touch: `http`, `db`, the task tracker's progress, and its broadcast sink.
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::db::{Balance, Database, SnapshotEntry};
use crate::notifier::{MessageType, ProgressSubtype, SnapshotError};
use crate::tasks::TaskManager;

/// The CoinGecko id of Ethereum's native coin, the asset of every `eth` account.
pub const NATIVE_ASSET: &str = "ethereum";
/// Assets per price request.
pub const PRICE_BATCH: usize = 50;
/// Addresses per JSON-RPC batch.
pub const RPC_BATCH: usize = 100;
/// Decimal places of ether.
const WEI_SCALE: u32 = 18;

/// Sends a message to every client.
pub type Broadcast = Rc<dyn Fn(MessageType, Value)>;

/// What a job run needs. Built once by the daemon; jobs read the current database when they run.
pub struct JobContext {
    /// The shared outbound client.
    pub http: Rc<crate::http::Client>,
    /// The current database (the default one, or an unlocked user's).
    pub database: Rc<RefCell<Option<Database>>>,
    /// For progress reports.
    pub tasks: TaskManager,
    /// To every client.
    pub broadcast: Broadcast,
    /// Called after a balance query succeeded (rotki starts scheduling then).
    pub after_balances: Rc<dyn Fn()>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext").finish_non_exhaustive()
    }
}

impl JobContext {
    fn database(&self) -> Result<Database, String> {
        self.database.borrow().clone().ok_or_else(|| "no database is open".to_string())
    }
}

/// Reads a setting, or its default.
async fn setting(db: &Database, name: &str, default: &str) -> Result<String, String> {
    Ok(db.setting(name.into()).await.map_err(|e| crate::error_chain(&e))?.unwrap_or_else(|| default.into()))
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A JSON number as an exact decimal: the number's own text, so `2000.5` is 2000.5.
fn decimal_of(number: &serde_json::Number) -> Option<Decimal> {
    let text = number.to_string();
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(&text).ok()
    } else {
        Decimal::from_str(&text).ok()
    }
}

/// `query_prices`: current prices of the tracked assets (and of ether when accounts are
/// tracked) in the main currency, from a CoinGecko-compatible API, in batches.
pub async fn query_prices(ctx: Rc<JobContext>) -> Result<Value, String> {
    let db = ctx.database()?;
    let currency = setting(&db, "main_currency", "USD").await?;
    let base = setting(&db, "price_api_url", "https://api.coingecko.com/api/v3").await?;
    let mut assets: BTreeSet<String> =
        db.assets().await.map_err(|e| crate::error_chain(&e))?.into_iter().collect();
    if !db.accounts().await.map_err(|e| crate::error_chain(&e))?.is_empty() {
        assets.insert(NATIVE_ASSET.to_string());
    }
    let assets: Vec<String> = assets.into_iter().collect();
    let progress = ctx.tasks.progress(ProgressSubtype::MultiplePricesQueryStatus, assets.len() as u64);
    let vs = currency.to_ascii_lowercase();
    let mut prices = Vec::new();
    for batch in assets.chunks(PRICE_BATCH) {
        let url =
            format!("{}/simple/price?ids={}&vs_currencies={vs}", base.trim_end_matches('/'), batch.join(","));
        let quotes: HashMap<String, HashMap<String, serde_json::Number>> =
            ctx.http.get_json(&url).await.map_err(|e| e.to_string())?;
        for asset in batch {
            match quotes.get(asset).and_then(|q| q.get(&vs)).and_then(decimal_of) {
                Some(price) => prices.push((asset.clone(), price.normalize().to_string())),
                None => log::warn!("query_prices: no {currency} price for {asset}"),
            }
        }
        progress.advance(batch.len() as u64);
    }
    let count = prices.len();
    db.store_prices(currency.clone(), prices, now()).await.map_err(|e| crate::error_chain(&e))?;
    Ok(json!({ "prices": count, "currency": currency }))
}

#[derive(Deserialize)]
struct RpcReply {
    id: u64,
    result: Option<Value>,
    error: Option<Value>,
}

fn hex_u128(value: &Value) -> Option<u128> {
    u128::from_str_radix(value.as_str()?.trim_start_matches("0x"), 16).ok()
}

/// `query_balances`: native balances of the tracked `eth` accounts at one block, through
/// Ethereum JSON-RPC batches, then a snapshot valued in the main currency, written together
/// in one transaction, then `refresh_balances`. A missing price is a `balance_snapshot_error`
/// naming the asset (the balances are kept, no snapshot is made), never a zero.
pub async fn query_balances(ctx: Rc<JobContext>) -> Result<Value, String> {
    let db = ctx.database()?;
    let accounts: Vec<String> = db
        .accounts()
        .await
        .map_err(|e| crate::error_chain(&e))?
        .into_iter()
        .filter(|a| a.chain == "eth")
        .map(|a| a.address)
        .collect();
    if accounts.is_empty() {
        return Ok(json!({ "accounts": 0 }));
    }
    let rpc = setting(&db, "rpc_url", "").await?;
    if rpc.is_empty() {
        return Err("no Ethereum RPC endpoint is set (settings.set rpc_url)".into());
    }
    let currency = setting(&db, "main_currency", "USD").await?;

    // One block for every address, so the snapshot is consistent.
    let head =
        json!({ "jsonrpc": "2.0", "id": 0, "method": "eth_getBlockByNumber", "params": ["latest", false] });
    let block: RpcReply = ctx.http.post_json(&rpc, &head, true).await.map_err(|e| e.to_string())?;
    let block = block.result.ok_or_else(|| format!("{rpc} returned no latest block: {:?}", block.error))?;
    let (Some(number), Some(time)) = (hex_u128(&block["number"]), hex_u128(&block["timestamp"])) else {
        return Err(format!("{rpc} returned a block without number or timestamp"));
    };
    let block_tag = format!("0x{number:x}");

    let progress = ctx.tasks.progress(ProgressSubtype::BalancesQueryStatus, accounts.len() as u64);
    let mut balances = Vec::with_capacity(accounts.len());
    let mut total_wei: u128 = 0;
    for batch in accounts.chunks(RPC_BATCH) {
        let requests: Vec<Value> = batch
            .iter()
            .enumerate()
            .map(|(i, address)| {
                json!({ "jsonrpc": "2.0", "id": i + 1, "method": "eth_getBalance", "params": [address, block_tag] })
            })
            .collect();
        let replies: Vec<RpcReply> =
            ctx.http.post_json(&rpc, &requests, true).await.map_err(|e| e.to_string())?;
        let by_id: HashMap<u64, &RpcReply> = replies.iter().map(|r| (r.id, r)).collect();
        for (i, address) in batch.iter().enumerate() {
            let reply =
                by_id.get(&(i as u64 + 1)).ok_or_else(|| format!("{rpc} sent no balance for {address}"))?;
            let wei = reply.result.as_ref().and_then(hex_u128).ok_or_else(|| {
                format!(
                    "{rpc} could not give the balance of {address}: {}",
                    reply.error.clone().unwrap_or_default()
                )
            })?;
            total_wei = total_wei.checked_add(wei).ok_or("balance total overflows")?;
            let amount = Decimal::from_i128_with_scale(
                i128::try_from(wei).map_err(|_| "balance too large")?,
                WEI_SCALE,
            );
            balances.push(Balance {
                chain: "eth".into(),
                address: address.clone(),
                asset: NATIVE_ASSET.into(),
                amount: amount.normalize().to_string(),
                block_number: number as u64,
                block_time: time as i64,
            });
        }
        progress.advance(batch.len() as u64);
    }

    let price = db
        .prices(currency.clone())
        .await
        .map_err(|e| crate::error_chain(&e))?
        .into_iter()
        .find(|(asset, _)| asset == NATIVE_ASSET)
        .and_then(|(_, price)| Decimal::from_str(&price).ok());
    let total_amount =
        Decimal::from_i128_with_scale(i128::try_from(total_wei).map_err(|_| "total too large")?, WEI_SCALE);
    let result = match price {
        Some(price) => {
            let value = total_amount.checked_mul(price).ok_or("snapshot value overflows")?.normalize();
            let entries = vec![SnapshotEntry {
                asset: NATIVE_ASSET.into(),
                amount: total_amount.normalize().to_string(),
                price: price.normalize().to_string(),
                value: value.to_string(),
            }];
            let id = db
                .store_balances_and_snapshot(balances, currency.clone(), value.to_string(), entries, now())
                .await
                .map_err(|e| crate::error_chain(&e))?;
            json!({ "accounts": accounts.len(), "snapshot": id, "total": value.to_string(), "currency": currency })
        }
        None => {
            let error = format!("No {currency} price for {NATIVE_ASSET}: balances stored, no snapshot taken");
            (ctx.broadcast)(MessageType::BalanceSnapshotError, json!(SnapshotError { error: error.clone() }));
            db.store_balances(balances).await.map_err(|e| crate::error_chain(&e))?;
            json!({ "accounts": accounts.len(), "snapshot": null, "error": error })
        }
    };
    (ctx.broadcast)(MessageType::RefreshBalances, json!({}));
    (ctx.after_balances)();
    Ok(result)
}
