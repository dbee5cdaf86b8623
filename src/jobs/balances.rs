//! `query_balances`: ether balances of the tracked accounts at one block, and a snapshot.
use std::collections::HashMap;
use std::rc::Rc;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{BALANCES, Error, JobContext, NATIVE_ASSET, Result, now, setting};
use crate::db::{Asset, Balance, SnapshotEntry};
use crate::notifier::Message;
use crate::notifier::payloads::{BLOCKCHAIN_BALANCES_QUERY, Blockchain, RefreshBalances, SnapshotError};
use crate::tasks::Progress;

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

/// `query_balances`: native and ERC-20 balances of the tracked `eth` accounts at one block,
/// through Ethereum JSON-RPC batches (`eth_getBalance`, and `eth_call` of `balanceOf` for each
/// tracked token), then a snapshot valued in the main currency, written together in one
/// transaction, then `refresh_balances`. An asset without a price is in the snapshot with no
/// price or value, left out of the total and named in a `balance_snapshot_error`, never a
/// zero; a token call that fails is the job's error, naming the token and the account.
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
    let tokens: Vec<Asset> =
        db.asset_details().await?.into_iter().filter(|a| a.contract().is_some()).collect();
    // One block for every address and token, so the snapshot is consistent.
    let block = latest_block(&ctx, &rpc).await?;
    let progress = ctx.tasks.progress(BALANCES, (accounts.len() * (1 + tokens.len())) as u64);
    let (mut balances, total_wei) = ether_balances(&ctx, &rpc, &accounts, block, &progress).await?;
    let mut held = vec![(NATIVE_ASSET.to_string(), ether(total_wei, "the balance total")?)];
    let (token_balances, token_totals) =
        token_balances(&ctx, &rpc, &accounts, &tokens, block, &progress).await?;
    balances.extend(token_balances);
    held.extend(token_totals);

    let prices: HashMap<String, Decimal> = db
        .prices(currency.clone())
        .await?
        .into_iter()
        .filter_map(|(asset, price)| Some((asset, Decimal::from_str(&price).ok()?)))
        .collect();
    let (entries, total, unpriced) = value_holdings(&held, &prices)?;
    for asset in &unpriced {
        let error = format!(
            "No {currency} price for {asset}: it is in the snapshot without a value, left out of the total"
        );
        let location = BLOCKCHAIN_BALANCES_QUERY.to_string();
        (ctx.broadcast)(Message::BalanceSnapshotError(SnapshotError { location, error }));
    }
    let total = total.to_string();
    let id =
        db.store_balances_and_snapshot(balances, currency.clone(), total.clone(), entries, now()).await?;
    (ctx.broadcast)(Message::RefreshBalances(RefreshBalances::blockchain(Blockchain::Eth)));
    (ctx.after_balances)();
    Ok(json!({
        "accounts": accounts.len(), "tokens": tokens.len(), "snapshot": id, "total": total,
        "currency": currency, "unpriced": unpriced,
    }))
}

/// The snapshot's entries for the assets held (amount above zero), the total of the priced
/// ones, and the assets without a price.
fn value_holdings(
    held: &[(String, Decimal)],
    prices: &HashMap<String, Decimal>,
) -> Result<(Vec<SnapshotEntry>, Decimal, Vec<String>)> {
    let (mut entries, mut total, mut unpriced) = (Vec::new(), Decimal::ZERO, Vec::new());
    for (asset, amount) in held.iter().filter(|(_, amount)| !amount.is_zero()) {
        let price = prices.get(asset);
        let value = match price {
            Some(price) => {
                let value = amount.checked_mul(*price).ok_or(Error::Overflow("the snapshot value"))?;
                total = total.checked_add(value).ok_or(Error::Overflow("the snapshot total"))?;
                Some(value.normalize().to_string())
            }
            None => {
                unpriced.push(asset.clone());
                None
            }
        };
        entries.push(SnapshotEntry {
            asset: asset.clone(),
            symbol: None,
            amount: amount.normalize().to_string(),
            price: price.map(|p| p.normalize().to_string()),
            value,
        });
    }
    Ok((entries, total.normalize(), unpriced))
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
    progress: &Progress,
) -> Result<(Vec<Balance>, u128)> {
    let block_tag = format!("0x{:x}", block.number);
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

/// `balanceOf(address)`'s selector.
const BALANCE_OF: &str = "0x70a08231";

/// Every account's balance of every token at `block` (`eth_call` of `balanceOf`, in batches),
/// and each token's total.
async fn token_balances(
    ctx: &JobContext,
    rpc: &str,
    accounts: &[String],
    tokens: &[Asset],
    block: Block,
    progress: &Progress,
) -> Result<(Vec<Balance>, Vec<(String, Decimal)>)> {
    let block_tag = format!("0x{:x}", block.number);
    // (the token's index in `tokens` and `totals`, the token, the account)
    let calls: Vec<(usize, &Asset, &String)> = tokens
        .iter()
        .enumerate()
        .flat_map(|(t, token)| accounts.iter().map(move |account| (t, token, account)))
        .collect();
    let mut balances = Vec::with_capacity(calls.len());
    let mut totals: Vec<(String, Decimal)> =
        tokens.iter().map(|t| (t.asset.clone(), Decimal::ZERO)).collect();
    for batch in calls.chunks(RPC_BATCH) {
        let requests: Vec<Value> = batch
            .iter()
            .enumerate()
            .map(|(i, (_, token, account))| {
                let data = format!("{BALANCE_OF}{:0>64}", account.trim_start_matches("0x"));
                let call = json!({ "to": token.contract(), "data": data });
                json!({ "jsonrpc": "2.0", "id": i + 1, "method": "eth_call", "params": [call, block_tag] })
            })
            .collect();
        let replies: Vec<RpcReply> = ctx.http.post_json(rpc, &requests, true).await?;
        let by_id: HashMap<u64, &RpcReply> = replies.iter().map(|r| (r.id, r)).collect();
        for (i, (t, token, account)) in batch.iter().enumerate() {
            let failed = |why: String| Error::TokenCall {
                token: token.asset.clone(),
                account: (*account).clone(),
                why,
            };
            let reply = by_id.get(&(i as u64 + 1)).ok_or_else(|| failed("the node sent no answer".into()))?;
            if let Some(error) = &reply.error {
                return Err(failed(format!("the call failed: {error}")));
            }
            let units =
                reply.result.as_ref().and_then(Value::as_str).ok_or_else(|| failed("no result".into()))?;
            let units = uint256(units).map_err(|why| failed(why.into()))?;
            let decimals = token.decimals.unwrap_or(0);
            let amount = i128::try_from(units)
                .ok()
                .and_then(|units| Decimal::try_from_i128_with_scale(units, decimals).ok())
                .ok_or(Error::Overflow("a token balance"))?;
            let total = &mut totals[*t].1;
            *total = total.checked_add(amount).ok_or(Error::Overflow("a token total"))?;
            balances.push(Balance {
                chain: "eth".into(),
                address: (*account).clone(),
                asset: token.asset.clone(),
                amount: amount.normalize().to_string(),
                block_number: block.number,
                block_time: block.time,
            });
        }
        progress.advance(batch.len() as u64);
    }
    Ok((balances, totals))
}

/// An ABI-encoded `uint256` (`0x` and 64 hex digits) that fits in 128 bits.
fn uint256(hex: &str) -> std::result::Result<u128, &'static str> {
    let digits = hex.strip_prefix("0x").ok_or("the result is not hex")?;
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the result is not one 32-byte number (is the address a token contract?)");
    }
    let (high, low) = digits.split_at(32);
    if high.bytes().any(|b| b != b'0') {
        return Err("the balance is larger than robin can count");
    }
    u128::from_str_radix(low, 16).map_err(|_| "the result is not hex")
}

/// Wei as an exact number of ether; an error (not a panic) past `Decimal`'s 96 bits.
fn ether(wei: u128, what: &'static str) -> Result<Decimal> {
    let wei = i128::try_from(wei).map_err(|_| Error::Overflow(what))?;
    Decimal::try_from_i128_with_scale(wei, WEI_SCALE).map_err(|_| Error::Overflow(what))
}

fn rpc_error(url: &str, problem: String) -> Error {
    Error::Rpc { url: url.to_string(), problem }
}
