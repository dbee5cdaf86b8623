//! `query_prices`: current prices of the tracked assets from a CoinGecko-compatible API.
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{JobContext, NATIVE_ASSET, PRICES, Result, now, setting};

/// Assets per price request.
pub const PRICE_BATCH: usize = 50;

/// `query_prices`: current prices of the tracked assets (and of ether when accounts are
/// tracked) in the main currency, from a CoinGecko-compatible API, in batches.
pub async fn query_prices(ctx: Rc<JobContext>) -> Result<Value> {
    let db = ctx.database()?;
    let currency = setting(&db, "main_currency", "USD").await?;
    let base = setting(&db, "price_api_url", "https://api.coingecko.com/api/v3").await?;
    // Each price id with the assets it prices (a token is priced by its `price_id`).
    let mut priced: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for asset in db.asset_details().await? {
        match asset.price_key() {
            Some(id) => priced.entry(id.to_string()).or_default().push(asset.asset.clone()),
            None => log::warn!("query_prices: {} has no price_id; it cannot be priced", asset.asset),
        }
    }
    if !db.accounts().await?.is_empty() {
        let ether = priced.entry(NATIVE_ASSET.to_string()).or_default();
        if !ether.iter().any(|a| a == NATIVE_ASSET) {
            ether.push(NATIVE_ASSET.to_string());
        }
    }
    let ids: Vec<&String> = priced.keys().collect();
    let progress = ctx.tasks.progress(PRICES, ids.len() as u64);
    let vs = currency.to_ascii_lowercase();
    let mut prices = Vec::new();
    for batch in ids.chunks(PRICE_BATCH) {
        let list: Vec<&str> = batch.iter().map(|id| id.as_str()).collect();
        let url =
            format!("{}/simple/price?ids={}&vs_currencies={vs}", base.trim_end_matches('/'), list.join(","));
        let quotes: HashMap<String, HashMap<String, serde_json::Number>> = ctx.http.get_json(&url).await?;
        for id in batch {
            match quotes.get(*id).and_then(|q| q.get(&vs)).and_then(decimal_of) {
                Some(price) => {
                    let price = price.normalize().to_string();
                    prices.extend(priced[*id].iter().map(|asset| (asset.clone(), price.clone())));
                }
                None => log::warn!("query_prices: no {currency} price for {id}"),
            }
        }
        progress.advance(batch.len() as u64);
    }
    let count = prices.len();
    db.store_prices(currency.clone(), prices, now()).await?;
    Ok(json!({ "prices": count, "currency": currency }))
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
