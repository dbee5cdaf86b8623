//! The message catalogue: what robin broadcasts, with rotki's wire names.
//!
//! Every message goes out as `{"type": <name>, "data": <payload>, "seq": <u64>}`. [`Message`] is
//! the one list of types, rotki's current `WSMessageType` (26 types) and robin's extensions:
//! each variant carries its payload struct ([`payloads`](super::payloads)), so a message of the
//! wrong shape cannot be built, and the same enum parses (and so checks) messages that arrive
//! as JSON.
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::payloads::*;

/// Declares [`Message`] and its wire names from one list, so a type is written once.
macro_rules! catalogue {
    ($( $(#[$doc:meta])* $variant:ident($payload:ty) = $wire:literal, )*) => {
        /// One broadcast message: its type and its payload.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "data")]
        #[non_exhaustive]
        pub enum Message {
            $( $(#[$doc])* #[serde(rename = $wire)] $variant($payload), )*
        }

        impl Message {
            /// Every wire name, in catalogue order.
            pub const NAMES: &[&str] = &[$($wire),*];

            /// The wire name, as in `{"type": "legacy"}`.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Message::$variant(_) => $wire, )*
                }
            }

            /// Builds a message from its wire name and payload (a client's `broadcast`), or
            /// says which field of the payload does not fit the type.
            pub fn from_parts(name: &str, data: serde_json::Value) -> Result<Message, PayloadError> {
                match name {
                    $( $wire => serde_path_to_error::deserialize::<_, $payload>(&data)
                        .map(Message::$variant)
                        .map_err(|err| PayloadError::from_path(err, &data)), )*
                    other => Err(PayloadError::UnknownType(other.to_string())),
                }
            }
        }
    };
}

catalogue! {
    /// A user-facing error or warning.
    Legacy(LegacyData) = "legacy",
    /// A balance snapshot could not be completed.
    BalanceSnapshotError(SnapshotError) = "balance_snapshot_error",
    /// Progress of a chain's transaction query.
    TransactionStatus(TransactionStatus) = "transaction_status",
    /// Premium subscription state changed.
    PremiumStatusUpdate(PremiumStatus) = "premium_status_update",
    /// Progress of a database schema upgrade.
    DbUpgradeStatus(DbUpgradeStatus) = "db_upgrade_status",
    /// Accounts found on other EVM-like chains.
    EvmlikeAccountsDetection(Vec<DetectedAccount>) = "evmlike_accounts_detection",
    /// A new token was detected.
    NewTokenDetected(NewToken) = "new_token_detected",
    /// Progress of a data migration.
    DataMigrationStatus(DataMigrationStatus) = "data_migration_status",
    /// A provider needs an API key.
    MissingApiKey(MissingApiKey) = "missing_api_key",
    /// Progress of an exchange's history query.
    HistoryEventsStatus(HistoryEventsStatus) = "history_events_status",
    /// A chain's balances changed; the UI should refresh them.
    RefreshBalances(RefreshBalances) = "refresh_balances",
    /// Result of a database upload.
    DatabaseUploadResult(DatabaseUploadResult) = "database_upload_result",
    /// Accounting rules conflict.
    AccountingRuleConflict(AccountingRuleConflict) = "accounting_rule_conflict",
    /// A calendar reminder is due.
    CalendarReminder(CalendarReminder) = "calendar_reminder",
    /// An exchange returned an asset rotki does not know.
    ExchangeUnknownAsset(UnknownAsset) = "exchange_unknown_asset",
    /// Progress of a long task.
    ProgressUpdates(Progress) = "progress_updates",
    /// The Gnosis Pay session key expired.
    GnosispaySessionkeyExpired(SessionKeyExpired) = "gnosispay_sessionkey_expired",
    /// The Monerium session key expired.
    MoneriumSessionkeyExpired(SessionKeyExpired) = "monerium_sessionkey_expired",
    /// Solana tokens that need migrating.
    SolanaTokensMigration(SolanaTokensMigration) = "solana_tokens_migration",
    /// Progress of a database upload.
    DatabaseUploadProgress(DatabaseUploadProgress) = "database_upload_progress",
    /// Binance pairs are missing.
    BinancePairsMissing(BinancePairsMissing) = "binance_pairs_missing",
    /// Asset movements without a match.
    UnmatchedAssetMovements(Unmatched) = "unmatched_asset_movements",
    /// Bridge transactions without a match.
    UnmatchedBridgeTransactions(Unmatched) = "unmatched_bridge_transactions",
    /// A balance went negative while processing history.
    NegativeBalanceDetected(NegativeBalance) = "negative_balance_detected",
    /// No indexer is available for a chain.
    NoAvailableIndexers(NoAvailableIndexers) = "no_available_indexers",
    /// An internal transaction conflict was fixed.
    InternalTxFixed(InternalTxFixed) = "internal_tx_fixed",
    /// robin extension: messages a reconnecting client asked for are no longer kept.
    ReplayGap(ReplayGap) = "replay_gap",
}

impl Message {
    /// The types robin adds to rotki's catalogue; rotki's UI drops them.
    pub const EXTENSIONS: &[&str] = &["replay_gap"];

    /// A `legacy` error.
    pub fn error(value: impl Into<String>) -> Message {
        Message::Legacy(LegacyData { verbosity: Verbosity::Error, value: value.into() })
    }

    /// A `refresh_balances` for `chain`'s balances.
    pub fn refresh_balances(chain: Blockchain) -> Message {
        Message::RefreshBalances(RefreshBalances::blockchain(chain))
    }

    /// A `legacy` warning.
    pub fn warning(value: impl Into<String>) -> Message {
        Message::Legacy(LegacyData { verbosity: Verbosity::Warning, value: value.into() })
    }
}

/// Why a payload is not a message of its type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// No message has this type.
    #[error("unknown message type '{0}' (known: {known})", known = Message::NAMES.join(", "))]
    UnknownType(String),
    /// A field is missing, unknown or of the wrong type.
    #[error("{field}: {reason}")]
    Field {
        /// Where, from the message: `data`, `data.total`, `data.current_upgrade.to_version`.
        field: String,
        /// What is wrong there.
        reason: String,
    },
}

impl PayloadError {
    fn from_path(
        err: serde_path_to_error::Error<serde_json::Error>,
        data: &serde_json::Value,
    ) -> PayloadError {
        let path = err.path().to_string();
        let reason = err.into_inner().to_string();
        let field = match path.as_str() {
            // serde buffers an internally tagged payload (`{"subtype": .., ...}`) before it
            // picks the variant, which loses the path: find the field by the value it names.
            "." => culprit(data, &reason).map_or_else(|| "data".to_string(), |key| format!("data.{key}")),
            _ => format!("data.{path}"),
        };
        PayloadError::Field { field, reason }
    }
}

/// The one top-level field whose value a "invalid type: string \"3\", ..." reason quotes.
fn culprit<'a>(data: &'a serde_json::Value, reason: &str) -> Option<&'a str> {
    use serde::de::Unexpected;
    let quoted = reason.strip_prefix("invalid type: ").or_else(|| reason.strip_prefix("invalid value: "))?;
    let described = |value: &serde_json::Value| {
        let unexpected = match value {
            serde_json::Value::String(s) => Unexpected::Str(s),
            serde_json::Value::Bool(b) => Unexpected::Bool(*b),
            serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Unexpected::Unsigned(u),
                (None, Some(i), _) => Unexpected::Signed(i),
                (None, None, Some(f)) => Unexpected::Float(f),
                _ => return None,
            },
            serde_json::Value::Null => return Some("null".to_string()),
            serde_json::Value::Array(_) => Unexpected::Seq,
            serde_json::Value::Object(_) => Unexpected::Map,
        };
        Some(unexpected.to_string())
    };
    let mut matching = data
        .as_object()?
        .iter()
        .filter(|(_, value)| described(value).is_some_and(|text| quoted.starts_with(&format!("{text},"))));
    match (matching.next(), matching.next()) {
        (Some((key, _)), None) => Some(key),
        _ => None,
    }
}

/// Serializes one message to its JSON text, `type` first as rotki's frontend expects, and
/// `seq` last when given.
pub fn encode(message: &Message, seq: Option<u64>) -> serde_json::Result<String> {
    let mut json = serde_json::to_string(message)?;
    if let Some(seq) = seq {
        // `{"type":..,"data":..}` always ends in its closing brace: splicing `seq` in before it
        // is exact and avoids a second, flattening serializer on the broadcast hot path.
        json.pop();
        let _ = write!(json, ",\"seq\":{seq}}}");
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_payload_that_does_not_fit_names_its_field() {
        let ok = Message::from_parts("legacy", json!({"verbosity": "warning", "value": "w"})).unwrap();
        assert_eq!(ok, Message::warning("w"));
        let wrong_type = Message::from_parts(
            "progress_updates",
            json!({"subtype": "multiple_prices_query_status", "total": "3", "processed": 1}),
        );
        let err = wrong_type.unwrap_err().to_string();
        assert!(err.starts_with("data.total: invalid type: string \"3\", expected u64"), "{err}");
        let nested = Message::from_parts(
            "db_upgrade_status",
            json!({"start_version": 1, "target_version": 2, "current_upgrade": {"to_version": -1, "total_steps": 1, "current_step": 1}}),
        );
        assert!(nested.unwrap_err().to_string().starts_with("data.current_upgrade.to_version:"));
        let missing = Message::from_parts("legacy", json!({"value": "v"})).unwrap_err().to_string();
        assert!(missing.starts_with("data: missing field `verbosity`"), "{missing}");
        let unknown = Message::from_parts("legacy", json!({"verbosity": "error", "value": "v", "extra": 1}));
        assert!(unknown.unwrap_err().to_string().contains("unknown field `extra`"));
        let no_such = Message::from_parts("evm_transaction_status", json!({})).unwrap_err().to_string();
        assert!(
            no_such.starts_with("unknown message type 'evm_transaction_status' (known: legacy,"),
            "{no_such}"
        );
    }

    #[test]
    fn legacy_message_is_exactly_rotkis_shape() {
        assert_eq!(
            encode(&Message::error("boom"), Some(7)).unwrap(),
            r#"{"type":"legacy","data":{"verbosity":"error","value":"boom"},"seq":7}"#
        );
        assert_eq!(Message::warning("w").name(), "legacy");
    }

    #[test]
    fn the_catalogue_is_rotkis_twenty_six_and_robins_extensions() {
        let rotki: Vec<&str> =
            Message::NAMES.iter().copied().filter(|n| !Message::EXTENSIONS.contains(n)).collect();
        assert_eq!(rotki.len(), 26);
        for renamed in ["transaction_status", "new_token_detected", "monerium_sessionkey_expired"] {
            assert!(rotki.contains(&renamed), "{renamed}");
        }
        assert!(!Message::NAMES.contains(&"evm_transaction_status"));
    }

    #[test]
    fn payloads_serialize_as_rotki_sends_them() {
        let refresh = Message::RefreshBalances(RefreshBalances::blockchain(Blockchain::Eth));
        assert_eq!(
            encode(&refresh, None).unwrap(),
            r#"{"type":"refresh_balances","data":{"type":"blockchain_balances","blockchain":"eth"}}"#
        );
        let progress =
            Message::ProgressUpdates(Progress::MultiplePricesQueryStatus { total: 3, processed: 1 });
        assert_eq!(
            serde_json::to_value(&progress).unwrap(),
            json!({"type": "progress_updates", "data": {"subtype": "multiple_prices_query_status", "total": 3, "processed": 1}})
        );
        let upgrade = Message::DbUpgradeStatus(DbUpgradeStatus {
            start_version: 0,
            target_version: 3,
            current_upgrade: UpgradeStep {
                to_version: 1,
                total_steps: 1,
                current_step: 1,
                description: None,
            },
        });
        assert_eq!(
            serde_json::to_value(&upgrade).unwrap()["data"]["current_upgrade"]["description"],
            json!(null)
        );
        let upload = Message::DatabaseUploadProgress(DatabaseUploadProgress::Uploading {
            current_chunk: 1,
            total_chunks: 4,
        });
        assert_eq!(
            serde_json::to_value(&upload).unwrap()["data"],
            json!({"type": "uploading", "current_chunk": 1, "total_chunks": 4})
        );
        let premium = Message::PremiumStatusUpdate(PremiumStatus {
            is_premium_active: true,
            expired: false,
            reason: None,
        });
        assert_eq!(
            serde_json::to_value(&premium).unwrap()["data"],
            json!({"is_premium_active": true, "expired": false})
        );
    }

    #[test]
    fn parsing_checks_the_shape_and_names_the_field() {
        let parse = |v: serde_json::Value| serde_json::from_value::<Message>(v).map_err(|e| e.to_string());
        let missing = parse(json!({"type": "legacy", "data": {"verbosity": "error"}})).unwrap_err();
        assert!(missing.contains("missing field `value`"), "{missing}");
        let extra =
            parse(json!({"type": "balance_snapshot_error", "data": {"location": "x", "eror": "typo"}}))
                .unwrap_err();
        assert!(extra.contains("eror"), "{extra}");
        let chain = parse(json!({"type": "refresh_balances", "data": {"type": "blockchain_balances", "blockchain": "ethereum"}}))
            .unwrap_err();
        assert!(chain.contains("ethereum"), "{chain}");
        assert!(parse(json!({"type": "nope", "data": {}})).is_err());
        let progress = json!({"type": "progress_updates", "data": {"subtype": "stats_price_query", "total": 2, "processed": 1, "counterparty": "uniswap"}});
        assert!(parse(progress).is_ok());
        let transaction = json!({"type": "transaction_status", "data": {"subtype": "evm", "address": "0x1", "chain": "ETH", "period": [0, 1], "status": "querying_transactions_started"}});
        assert!(parse(transaction).is_ok());
        let list =
            json!({"type": "evmlike_accounts_detection", "data": [{"chain": "optimism", "address": "0x1"}]});
        assert!(parse(list).is_ok());
    }
}
