//! `query_balances`: ether balances of the tracked accounts at one block, and a snapshot.
use std::collections::HashMap;
use std::rc::Rc;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{BALANCES, Error, JobContext, NATIVE_ASSET, Result, now, setting};
use crate::db::{Balance, SnapshotEntry};
use crate::notifier::Message;
use crate::notifier::payloads::{BLOCKCHAIN_BALANCES_QUERY, Blockchain, RefreshBalances, SnapshotError};

/// Addresses per JSON-RPC batch.
pub const RPC_BATCH: usize = 100;
/// Decimal places of ether.
const WEI_SCALE: u32 = 18;

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
pub async fn query_balances(ctx: Rc<JobContext>) -> Result<Value> {
    let db = ctx.database()?;
    let accounts: Vec<String> =
        db.accounts().await?.into_iter().filter(|a| a.chain == "eth").map(|a| a.address).collect();
    if accounts.is_empty() {
        return Ok(json!({ "accounts": 0 }));
    }
    let rpc = setting(&db, "rpc_url", "").await?;
    if rpc.is_empty() {
        return Err(Error::NoRpcUrl);
    }
    let currency = setting(&db, "main_currency", "USD").await?;
    // One block for every address, so the snapshot is consistent.
    let block = latest_block(&ctx, &rpc).await?;
    let (balances, total_wei) = ether_balances(&ctx, &rpc, &accounts, block).await?;

    let price = db
        .prices(currency.clone())
        .await?
        .into_iter()
        .find(|(asset, _)| asset == NATIVE_ASSET)
        .and_then(|(_, price)| Decimal::from_str(&price).ok());
    let total_amount = ether(total_wei, "the balance total")?;
    let result = match price {
        Some(price) => {
            let value =
                total_amount.checked_mul(price).ok_or(Error::Overflow("the snapshot value"))?.normalize();
            let entries = vec![SnapshotEntry {
                asset: NATIVE_ASSET.into(),
                amount: total_amount.normalize().to_string(),
                price: price.normalize().to_string(),
                value: value.to_string(),
            }];
            let id = db
                .store_balances_and_snapshot(balances, currency.clone(), value.to_string(), entries, now())
                .await?;
            json!({ "accounts": accounts.len(), "snapshot": id, "total": value.to_string(), "currency": currency })
        }
        None => {
            let error = format!("No {currency} price for {NATIVE_ASSET}: balances stored, no snapshot taken");
            let location = BLOCKCHAIN_BALANCES_QUERY.to_string();
            (ctx.broadcast)(Message::BalanceSnapshotError(SnapshotError { location, error: error.clone() }));
            db.store_balances(balances).await?;
            json!({ "accounts": accounts.len(), "snapshot": null, "error": error })
        }
    };
    (ctx.broadcast)(Message::RefreshBalances(RefreshBalances::blockchain(Blockchain::Eth)));
    (ctx.after_balances)();
    Ok(result)
}

/// A block: its number and time (Unix seconds).
#[derive(Clone, Copy, Debug)]
struct Block {
    number: u64,
    time: i64,
}

/// The node's latest block.
async fn latest_block(ctx: &JobContext, rpc: &str) -> Result<Block> {
    let head =
        json!({ "jsonrpc": "2.0", "id": 0, "method": "eth_getBlockByNumber", "params": ["latest", false] });
    let reply: RpcReply = ctx.http.post_json(rpc, &head, true).await?;
    let block =
        reply.result.ok_or_else(|| rpc_error(rpc, format!("returned no latest block: {:?}", reply.error)))?;
    match (hex_u128(&block["number"]), hex_u128(&block["timestamp"])) {
        (Some(number), Some(time)) => Ok(Block { number: number as u64, time: time as i64 }),
        _ => Err(rpc_error(rpc, "returned a block without number or timestamp".into())),
    }
}

/// Every account's ether balance at `block`, in batches, and their sum in wei.
async fn ether_balances(
    ctx: &JobContext,
    rpc: &str,
    accounts: &[String],
    block: Block,
) -> Result<(Vec<Balance>, u128)> {
    let block_tag = format!("0x{:x}", block.number);
    let progress = ctx.tasks.progress(BALANCES, accounts.len() as u64);
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
        let replies: Vec<RpcReply> = ctx.http.post_json(rpc, &requests, true).await?;
        let by_id: HashMap<u64, &RpcReply> = replies.iter().map(|r| (r.id, r)).collect();
        for (i, address) in batch.iter().enumerate() {
            let reply = by_id
                .get(&(i as u64 + 1))
                .ok_or_else(|| rpc_error(rpc, format!("sent no balance for {address}")))?;
            let wei = reply.result.as_ref().and_then(hex_u128).ok_or_else(|| {
                let error = reply.error.clone().unwrap_or_default();
                rpc_error(rpc, format!("could not give the balance of {address}: {error}"))
            })?;
            total_wei = total_wei.checked_add(wei).ok_or(Error::Overflow("the balance total"))?;
            balances.push(Balance {
                chain: "eth".into(),
                address: address.clone(),
                asset: NATIVE_ASSET.into(),
                amount: ether(wei, "a balance")?.normalize().to_string(),
                block_number: block.number,
                block_time: block.time,
            });
        }
        progress.advance(batch.len() as u64);
    }
    Ok((balances, total_wei))
}

/// Wei as an exact number of ether; an error (not a panic) past `Decimal`'s 96 bits.
fn ether(wei: u128, what: &'static str) -> Result<Decimal> {
    let wei = i128::try_from(wei).map_err(|_| Error::Overflow(what))?;
    Decimal::try_from_i128_with_scale(wei, WEI_SCALE).map_err(|_| Error::Overflow(what))
}

fn rpc_error(url: &str, problem: String) -> Error {
    Error::Rpc { url: url.to_string(), problem }
}
