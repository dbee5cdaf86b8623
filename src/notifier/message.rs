//! The message catalogue: what robin broadcasts, with rotki's wire names.
//!
//! Every message goes out as `{"type": <MessageType>, "data": <payload>, "seq": <u64>}`. The
//! payloads robin itself produces are typed structs here, so a field cannot be misspelled.
use serde::Serialize;

/// The `type` of a broadcast message. Wire names are rotki's (`WSMessageType`, lower-cased).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MessageType {
    /// A user-facing error or warning from the messages aggregator ([`LegacyData`]).
    Legacy,
    /// A balance snapshot could not be completed.
    BalanceSnapshotError,
    /// Progress of EVM transaction queries.
    EvmTransactionStatus,
    /// Premium subscription state changed.
    PremiumStatusUpdate,
    /// Progress of a database schema upgrade.
    DbUpgradeStatus,
    /// Accounts found on other EVM-like chains.
    EvmlikeAccountsDetection,
    /// A new token was detected while processing transactions.
    NewEvmTokenDetected,
    /// Progress of a data migration.
    DataMigrationStatus,
    /// A provider needs an API key.
    MissingApiKey,
    /// Progress of history event queries.
    HistoryEventsStatus,
    /// Balances changed; the UI should refresh them.
    RefreshBalances,
    /// Result of a database upload.
    DatabaseUploadResult,
    /// An accounting rule conflicts with another.
    AccountingRuleConflict,
    /// A calendar reminder is due.
    CalendarReminder,
    /// An exchange returned an asset robin does not know.
    ExchangeUnknownAsset,
    /// Progress of a long task, with a [`ProgressSubtype`].
    ProgressUpdates,
    /// The Gnosis Pay session key expired.
    GnosispaySessionkeyExpired,
    /// robin: messages between a reconnecting client's `since` and the replay ring were lost
    /// ([`ReplayGap`]). Sent to that client only, without a `seq`.
    ReplayGap,
    /// robin: the end marker of the `ws_fanout` benchmark protocol.
    BenchDone,
}

impl MessageType {
    /// The wire name, as in `{"type": "legacy"}`; the same string serde writes.
    pub fn name(self) -> &'static str {
        use MessageType::*;
        match self {
            Legacy => "legacy",
            BalanceSnapshotError => "balance_snapshot_error",
            EvmTransactionStatus => "evm_transaction_status",
            PremiumStatusUpdate => "premium_status_update",
            DbUpgradeStatus => "db_upgrade_status",
            EvmlikeAccountsDetection => "evmlike_accounts_detection",
            NewEvmTokenDetected => "new_evm_token_detected",
            DataMigrationStatus => "data_migration_status",
            MissingApiKey => "missing_api_key",
            HistoryEventsStatus => "history_events_status",
            RefreshBalances => "refresh_balances",
            DatabaseUploadResult => "database_upload_result",
            AccountingRuleConflict => "accounting_rule_conflict",
            CalendarReminder => "calendar_reminder",
            ExchangeUnknownAsset => "exchange_unknown_asset",
            ProgressUpdates => "progress_updates",
            GnosispaySessionkeyExpired => "gnosispay_sessionkey_expired",
            ReplayGap => "replay_gap",
            BenchDone => "bench_done",
        }
    }

    /// Every variant, for look-ups by name.
    pub const ALL: [MessageType; 19] = {
        use MessageType::*;
        [
            Legacy,
            BalanceSnapshotError,
            EvmTransactionStatus,
            PremiumStatusUpdate,
            DbUpgradeStatus,
            EvmlikeAccountsDetection,
            NewEvmTokenDetected,
            DataMigrationStatus,
            MissingApiKey,
            HistoryEventsStatus,
            RefreshBalances,
            DatabaseUploadResult,
            AccountingRuleConflict,
            CalendarReminder,
            ExchangeUnknownAsset,
            ProgressUpdates,
            GnosispaySessionkeyExpired,
            ReplayGap,
            BenchDone,
        ]
    };

    /// Looks a type up by its wire name.
    pub fn from_name(name: &str) -> Option<MessageType> {
        MessageType::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// The `subtype` of a `progress_updates` message (rotki's `ProgressUpdateSubType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verbosity {
    /// Something failed.
    Error,
    /// Something the user should know.
    Warning,
}

/// The payload of a `legacy` message: `{"verbosity": "error", "value": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LegacyData {
    /// Error or warning.
    pub verbosity: Verbosity,
    /// The text shown to the user.
    pub value: String,
}

/// The payload of a `replay_gap` message: the sequence numbers that can no longer be replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ReplayGap {
    /// First lost sequence number.
    pub from: u64,
    /// Last lost sequence number.
    pub to: u64,
}

/// The payload of a `balance_snapshot_error` message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SnapshotError {
    /// What went wrong, naming the asset.
    pub error: String,
}

/// The payload of a `progress_updates` message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProgressData {
    /// Which kind of progress.
    pub subtype: ProgressSubtype,
    /// Units to do.
    pub total: u64,
    /// Units done.
    pub processed: u64,
}

/// Serializes one broadcast message to its JSON text, `type` first as rotki's frontend expects.
pub fn encode(kind: MessageType, data: &impl Serialize, seq: Option<u64>) -> serde_json::Result<String> {
    #[derive(Serialize)]
    struct Envelope<'a, D> {
        #[serde(rename = "type")]
        kind: MessageType,
        data: &'a D,
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
    }
    serde_json::to_string(&Envelope { kind, data, seq })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_message_is_exactly_rotkis_shape() {
        let data = LegacyData { verbosity: Verbosity::Error, value: "boom".into() };
        assert_eq!(
            encode(MessageType::Legacy, &data, Some(7)).unwrap(),
            r#"{"type":"legacy","data":{"verbosity":"error","value":"boom"},"seq":7}"#
        );
    }

    #[test]
    fn name_table_matches_serde() {
        for kind in MessageType::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
            assert_eq!(MessageType::from_name(kind.name()), Some(kind));
        }
    }

    #[test]
    fn wire_names_are_rotkis() {
        assert_eq!(MessageType::GnosispaySessionkeyExpired.name(), "gnosispay_sessionkey_expired");
        assert_eq!(MessageType::EvmlikeAccountsDetection.name(), "evmlike_accounts_detection");
        assert_eq!(MessageType::NewEvmTokenDetected.name(), "new_evm_token_detected");
        let progress =
            ProgressData { subtype: ProgressSubtype::MultiplePricesQueryStatus, total: 3, processed: 1 };
        assert_eq!(
            encode(MessageType::ProgressUpdates, &progress, None).unwrap(),
            r#"{"type":"progress_updates","data":{"subtype":"multiple_prices_query_status","total":3,"processed":1}}"#
        );
    }
}
