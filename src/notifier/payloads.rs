//! The payload of each message type, field for field as rotki's backend sends it (snake_case
//! on the wire; rotki's UI turns keys into camelCase and checks them with a strict schema).
//!
//! Optional fields are left out when absent, as rotki leaves them out; fields rotki always
//! sends, even as `null`, are `Option`s that serialize as `null`. Parsing is strict (unknown
//! fields are refused), so a message that arrives as JSON (the `broadcast` command) is checked
//! against exactly these shapes.
use serde::{Deserialize, Serialize};

/// How serious a [`LegacyData`] message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verbosity {
    /// Something failed (shown to the user).
    Error,
    /// Something the user should know (kept in the notifications, not shown).
    Warning,
}

/// `legacy`: a user-facing error or warning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacyData {
    /// Error or warning.
    pub verbosity: Verbosity,
    /// The text shown to the user.
    pub value: String,
}

/// `balance_snapshot_error`: a balance snapshot could not be completed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotError {
    /// An exchange's name, or `"blockchain balances query"` for chain balances.
    pub location: String,
    /// What went wrong, naming the asset or the account.
    pub error: String,
}

/// The location rotki names for a failed chain balance query.
pub const BLOCKCHAIN_BALANCES_QUERY: &str = "blockchain balances query";

/// A step of a transaction query (`transaction_status.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // the names are the steps
pub enum TransactionStep {
    QueryingTransactionsStarted,
    QueryingTransactions,
    QueryingInternalTransactions,
    QueryingEvmTokensTransactions,
    QueryingTransactionsFinished,
    DecodingTransactionsStarted,
    DecodingTransactionsFinished,
}

/// `transaction_status`: progress of a chain's transaction query, by kind of chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "subtype", rename_all = "snake_case", deny_unknown_fields)]
pub enum TransactionStatus {
    /// An EVM chain.
    Evm {
        /// The account.
        address: String,
        /// The chain, upper-case as rotki sends it (`ETH`, `OPTIMISM`).
        chain: String,
        /// The time range queried, Unix seconds.
        period: [i64; 2],
        /// Where the query is.
        status: TransactionStep,
    },
    /// An EVM-like chain (zkSync Lite).
    Evmlike {
        /// The account.
        address: String,
        /// The chain.
        chain: String,
        /// The time range queried, Unix seconds.
        period: [i64; 2],
        /// Where the query is.
        status: TransactionStep,
    },
    /// Bitcoin or Bitcoin Cash, several addresses at once.
    Bitcoin {
        /// The accounts.
        addresses: Vec<String>,
        /// `BTC` or `BCH`.
        chain: String,
        /// The time range queried, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        period: Option<[i64; 2]>,
        /// Where the query is.
        status: TransactionStep,
    },
    /// Solana.
    Solana {
        /// The account.
        address: String,
        /// `SOLANA`.
        chain: String,
        /// The time range queried, Unix seconds.
        period: [i64; 2],
        /// Where the query is.
        status: TransactionStep,
    },
}

/// `premium_status_update`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PremiumStatus {
    /// Whether premium is active now.
    pub is_premium_active: bool,
    /// Whether the subscription expired.
    pub expired: bool,
    /// Why premium is off (a device limit), when rotki says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `db_upgrade_status`: a schema upgrade in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbUpgradeStatus {
    /// The version the database started at.
    pub start_version: u32,
    /// The version it will end at.
    pub target_version: u32,
    /// The upgrade running now.
    pub current_upgrade: UpgradeStep,
}

/// One upgrade of a [`DbUpgradeStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradeStep {
    /// The version this upgrade reaches.
    pub to_version: u32,
    /// Steps in this upgrade.
    pub total_steps: u32,
    /// The step running now.
    pub current_step: u32,
    /// What the upgrade does (always sent, possibly `null`).
    pub description: Option<String>,
}

/// `data_migration_status`: a data migration in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataMigrationStatus {
    /// The version the data started at.
    pub start_version: u32,
    /// The version it will end at.
    pub target_version: u32,
    /// The migration running now.
    pub current_migration: MigrationStep,
}

/// One migration of a [`DataMigrationStatus`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationStep {
    /// The migration's version.
    pub version: u32,
    /// Steps in this migration.
    pub total_steps: u32,
    /// The step running now.
    pub current_step: u32,
    /// What the migration does (always sent, possibly `null`).
    pub description: Option<String>,
}

/// One account found by `evmlike_accounts_detection` (the message's data is a list of these).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectedAccount {
    /// The chain, lower-case (`optimism`, `zksync_lite`).
    pub chain: String,
    /// The address.
    pub address: String,
}

/// What kind of token `new_token_detected` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum TokenKind {
    Evm,
    Solana,
}

/// `new_token_detected`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// The token's asset identifier (`eip155:1/erc20:0x...`).
    pub token_identifier: String,
    /// EVM or Solana.
    pub token_kind: TokenKind,
    /// Present (and true) only when the token is spam.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_ignored: Option<bool>,
    /// The transaction it was seen in, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_tx_reference: Option<String>,
    /// Where else it was seen, when there is no transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_description: Option<String>,
}

/// `missing_api_key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissingApiKey {
    /// The external service that needs a key.
    pub service: String,
    /// Where it was needed, when rotki says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// A step of `history_events_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum HistoryEventsStep {
    QueryingEventsStarted,
    QueryingEventsStatusUpdate,
    QueryingEventsFinished,
}

/// What `history_events_status` queries (rotki has one kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum HistoryQueryType {
    HistoryQuery,
}

/// `history_events_status`: an exchange's history query in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEventsStatus {
    /// Where the query is.
    pub status: HistoryEventsStep,
    /// The exchange's location (`kraken`).
    pub location: String,
    /// Always `history_query`.
    pub event_type: HistoryQueryType,
    /// The exchange account's name.
    pub name: String,
    /// The time range, on status updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<[i64; 2]>,
}

/// A chain as rotki's UI knows it (`refresh_balances.blockchain`); any other value would make
/// the UI drop the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Blockchain {
    Eth,
    Eth2,
    Btc,
    Bch,
    Ksm,
    Dot,
    Solana,
    BinanceSc,
    Avax,
    Optimism,
    PolygonPos,
    ArbitrumOne,
    Base,
    Gnosis,
    Scroll,
    Monad,
    ZksyncLite,
    Hyperliquid,
}

impl Blockchain {
    /// The chain robin calls `name` (`eth`), if rotki's UI knows it.
    pub fn from_name(name: &str) -> Option<Blockchain> {
        serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
    }
}

/// What `refresh_balances` asks to refresh (rotki has one kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum RefreshKind {
    BlockchainBalances,
}

/// `refresh_balances`: one chain's balances changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshBalances {
    /// Always `blockchain_balances`.
    #[serde(rename = "type")]
    pub kind: RefreshKind,
    /// The chain whose balances changed.
    pub blockchain: Blockchain,
}

impl RefreshBalances {
    /// The message for `chain`'s balances.
    pub fn blockchain(chain: Blockchain) -> RefreshBalances {
        RefreshBalances { kind: RefreshKind::BlockchainBalances, blockchain: chain }
    }
}

/// `database_upload_result`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseUploadResult {
    /// Whether the upload happened.
    pub uploaded: bool,
    /// Whether the user can do something about a failure.
    pub actionable: bool,
    /// Why not (always sent, `null` on success).
    pub message: Option<String>,
}

/// `accounting_rule_conflict`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountingRuleConflict {
    /// How many rules conflict.
    pub num_of_conflicts: u64,
}

/// The reminder part of a `calendar_reminder`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reminder {
    /// The reminder's id.
    pub identifier: i64,
    /// How long before the event it fires.
    pub secs_before: i64,
}

/// `calendar_reminder`: a calendar entry whose reminder is due. Absent fields are left out,
/// never `null`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // the entry's own fields
pub struct CalendarReminder {
    pub identifier: i64,
    pub name: String,
    pub timestamp: i64,
    pub auto_delete: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blockchain: Option<String>,
    /// The reminder that fired.
    pub reminder: Reminder,
}

/// `exchange_unknown_asset`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnknownAsset {
    /// The exchange's location.
    pub location: String,
    /// The exchange account's name.
    pub name: String,
    /// The exchange's identifier of the asset.
    pub identifier: String,
    /// Where it was seen.
    pub details: String,
}

/// One line of a CSV import's report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvImportMessage {
    /// The message.
    pub msg: String,
    /// The rows it is about.
    #[serde(default)]
    pub rows: Vec<u64>,
    /// Present (and true) for errors only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

/// `progress_updates`: a long task's progress, by kind. `total` and `processed` count units of
/// work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "subtype", rename_all = "snake_case", deny_unknown_fields)]
#[allow(missing_docs)] // total and processed in every variant
pub enum Progress {
    /// Decoding of undecoded transactions of a chain (`ethereum`, `solana`).
    UndecodedTransactions { chain: String, total: u64, processed: u64 },
    /// Refresh of a protocol's cache on a chain.
    ProtocolCacheUpdates { chain: String, protocol: String, total: u64, processed: u64 },
    /// A CSV import, with its report.
    CsvImportResult { source_name: String, total: u64, processed: u64, messages: Vec<CsvImportMessage> },
    /// Historical price queries.
    HistoricalPriceQueryStatus { total: u64, processed: u64 },
    /// Current price queries for several assets (robin's `query_prices`).
    MultiplePricesQueryStatus { total: u64, processed: u64 },
    /// Price queries for a counterparty's statistics.
    StatsPriceQuery { total: u64, processed: u64, counterparty: String },
    /// Liquity staking queries.
    LiquityStakingQuery { total: u64, processed: u64 },
    /// Historical balance processing.
    HistoricalBalanceProcessing { total: u64, processed: u64 },
    /// robin extension: balance queries of the tracked accounts (`query_balances`). rotki has
    /// no subtype for it; its UI drops these.
    BalancesQueryStatus { total: u64, processed: u64 },
    /// robin extension: progress of a task a client runs and reports through the control
    /// socket (`tasks.progress`). rotki has no such subtype; its UI drops these.
    TaskStatus { task_id: u64, name: String, total: u64, processed: u64 },
}

/// `gnosispay_sessionkey_expired` and `monerium_sessionkey_expired`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionKeyExpired {
    /// What the user should do.
    pub error: String,
}

/// `solana_tokens_migration`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolanaTokensMigration {
    /// The tokens that need the user's attention.
    pub identifiers: Vec<String>,
}

/// `database_upload_progress`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DatabaseUploadProgress {
    /// Compressing the database.
    Compressing,
    /// Encrypting it.
    Encrypting,
    /// Uploading a chunk.
    Uploading {
        /// The chunk being sent, from 1.
        current_chunk: u64,
        /// Chunks in all.
        total_chunks: u64,
    },
}

/// `binance_pairs_missing`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinancePairsMissing {
    /// `binance` or `binanceus`.
    pub location: String,
    /// The exchange account's name.
    pub name: String,
}

/// `unmatched_asset_movements` and `unmatched_bridge_transactions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unmatched {
    /// How many are unmatched.
    pub count: u64,
}

/// The balance bucket of a `negative_balance_detected`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct BalanceBucket {
    pub asset: String,
    pub protocol: Option<String>,
    pub location: String,
    pub location_label: Option<String>,
}

/// `negative_balance_detected`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct NegativeBalance {
    pub event_identifier: i64,
    pub group_identifier: String,
    pub asset: String,
    pub bucket: BalanceBucket,
    /// An exact decimal, as a string.
    pub balance_before: String,
    pub last_run_ts: Option<i64>,
}

/// `no_available_indexers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoAvailableIndexers {
    /// The chain, upper-case as rotki sends it (`ETH`).
    pub chain: String,
}

/// `internal_tx_fixed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternalTxFixed {
    /// The chain (`ethereum`).
    pub chain: String,
    /// The transaction's hash.
    pub tx_hash: String,
}

/// robin extension `replay_gap`: the sequence numbers a reconnecting client asked for that are
/// no longer kept. Sent to that client only, without a `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayGap {
    /// First lost sequence number.
    pub from: u64,
    /// Last lost sequence number.
    pub to: u64,
}
