//! The message catalogue: what robin broadcasts, with rotki's wire names.
//!
//! Every message goes out as `{"type": <name>, "data": <payload>, "seq": <u64>}`. [`Message`] is
//! the one list of types: each variant carries its payload struct, so a message of the wrong
//! shape cannot be built, and the same enum parses (and so validates) messages that arrive as
//! JSON.
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
        }
    };
}

catalogue! {
    /// A user-facing error or warning from the messages aggregator.
    Legacy(LegacyData) = "legacy",
    /// A balance snapshot could not be completed.
    BalanceSnapshotError(SnapshotError) = "balance_snapshot_error",
    /// Progress of EVM transaction queries.
    EvmTransactionStatus(Value) = "evm_transaction_status",
    /// Premium subscription state changed.
    PremiumStatusUpdate(Value) = "premium_status_update",
    /// Progress of a database schema upgrade.
    DbUpgradeStatus(Value) = "db_upgrade_status",
    /// Accounts found on other EVM-like chains.
    EvmlikeAccountsDetection(Value) = "evmlike_accounts_detection",
    /// A new token was detected while processing transactions.
    NewEvmTokenDetected(Value) = "new_evm_token_detected",
    /// Progress of a data migration.
    DataMigrationStatus(Value) = "data_migration_status",
    /// A provider needs an API key.
    MissingApiKey(Value) = "missing_api_key",
    /// Progress of history event queries.
    HistoryEventsStatus(Value) = "history_events_status",
    /// Balances changed; the UI should refresh them.
    RefreshBalances(Value) = "refresh_balances",
    /// Result of a database upload.
    DatabaseUploadResult(Value) = "database_upload_result",
    /// An accounting rule conflicts with another.
    AccountingRuleConflict(Value) = "accounting_rule_conflict",
    /// A calendar reminder is due.
    CalendarReminder(Value) = "calendar_reminder",
    /// An exchange returned an asset robin does not know.
    ExchangeUnknownAsset(Value) = "exchange_unknown_asset",
    /// Progress of a long task.
    ProgressUpdates(ProgressData) = "progress_updates",
    /// The Gnosis Pay session key expired.
    GnosispaySessionkeyExpired(Value) = "gnosispay_sessionkey_expired",
    /// robin: messages between a reconnecting client's `since` and the replay ring were lost.
    /// Sent to that client only, without a `seq`.
    ReplayGap(ReplayGap) = "replay_gap",
}

/// The `subtype` of a `progress_updates` message (rotki's `ProgressUpdateSubType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProgressSubtype {
    /// Decoding of undecoded EVM transactions.
    EvmUndecodedTransactions,
    /// Refresh of protocol caches.
    ProtocolCacheUpdates,
    /// A CSV import finished.
    CsvImportResult,
    /// Historical price queries.
    HistoricalPriceQueryStatus,
    /// Current price queries for several assets.
    MultiplePricesQueryStatus,
    /// Price queries for statistics.
    StatsPriceQuery,
    /// Liquity staking queries.
    LiquityStakingQuery,
    /// robin: native balance queries of the tracked accounts.
    BalancesQueryStatus,
}

/// How serious a [`LegacyData`] message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verbosity {
    /// Something failed.
    Error,
    /// Something the user should know.
    Warning,
}

/// The payload of a `legacy` message: `{"verbosity": "error", "value": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacyData {
    /// Error or warning.
    pub verbosity: Verbosity,
    /// The text shown to the user.
    pub value: String,
}

/// The payload of a `replay_gap` message: the sequence numbers that can no longer be replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayGap {
    /// First lost sequence number.
    pub from: u64,
    /// Last lost sequence number.
    pub to: u64,
}

/// The payload of a `balance_snapshot_error` message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotError {
    /// What went wrong, naming the asset.
    pub error: String,
}

/// The payload of a `progress_updates` message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressData {
    /// Which kind of progress.
    pub subtype: ProgressSubtype,
    /// Units to do.
    pub total: u64,
    /// Units done.
    pub processed: u64,
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
    fn legacy_message_is_exactly_rotkis_shape() {
        let message = Message::Legacy(LegacyData { verbosity: Verbosity::Error, value: "boom".into() });
        assert_eq!(
            encode(&message, Some(7)).unwrap(),
            r#"{"type":"legacy","data":{"verbosity":"error","value":"boom"},"seq":7}"#
        );
        assert_eq!(message.name(), "legacy");
    }

    #[test]
    fn every_name_round_trips_through_serde() {
        for name in Message::NAMES {
            let data = match *name {
                "legacy" => json!({"verbosity": "warning", "value": "x"}),
                "balance_snapshot_error" => json!({"error": "x"}),
                "progress_updates" => json!({"subtype": "csv_import_result", "total": 1, "processed": 0}),
                "replay_gap" => json!({"from": 1, "to": 2}),
                _ => json!({}),
            };
            let message: Message = serde_json::from_value(json!({"type": name, "data": data})).unwrap();
            assert_eq!(message.name(), *name);
            assert_eq!(serde_json::to_value(&message).unwrap()["type"], *name);
        }
    }

    #[test]
    fn a_wrong_shape_is_refused_by_name() {
        let err = serde_json::from_value::<Message>(json!({"type": "legacy", "data": {"verbosity": "loud"}}))
            .unwrap_err();
        assert!(err.to_string().contains("loud"), "{err}");
        assert!(serde_json::from_value::<Message>(json!({"type": "nope", "data": {}})).is_err());
    }

    #[test]
    fn progress_is_encoded_with_its_subtype() {
        let progress =
            ProgressData { subtype: ProgressSubtype::MultiplePricesQueryStatus, total: 3, processed: 1 };
        assert_eq!(
            encode(&Message::ProgressUpdates(progress), None).unwrap(),
            r#"{"type":"progress_updates","data":{"subtype":"multiple_prices_query_status","total":3,"processed":1}}"#
        );
    }
}
