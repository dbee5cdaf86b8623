//! The optional TOML file, as written: every key optional, unknown keys an error.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Error, Result};

/// The optional TOML file, as written. Unknown keys are an error, not a silent no-op.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) listen: Option<String>,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) runtime_dir: Option<PathBuf>,
    pub(super) log_level: Option<String>,
    pub(super) ws_origins: Option<Vec<String>>,
    pub(super) ipc_allow_uids: Option<Vec<u32>>,
    pub(super) api_token_file: Option<PathBuf>,
    pub(super) generate_api_token: Option<bool>,
    #[serde(default)]
    pub(super) websocket: WebSocketTable,
    #[serde(default)]
    pub(super) database: DatabaseTable,
    #[serde(default)]
    pub(super) scheduler: SchedulerTable,
    #[serde(default)]
    pub(super) http: HttpTable,
    #[serde(default)]
    pub(super) features: BTreeMap<String, bool>,
}

/// The `[database]` table, each key optional (the database part has defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DatabaseTable {
    /// Read-only connections kept open (default 2).
    pub(super) readers: Option<usize>,
    /// `synchronous = "full"` makes commits survive power loss too (default "normal").
    pub(super) synchronous: Option<crate::db::Synchronous>,
    /// Seconds a write may wait for its turn before failing (default 30).
    pub(super) write_timeout_secs: Option<u64>,
    /// Hours between automatic backups into DATA_DIR/backups (default 24; 0 turns them off).
    pub(super) backup_interval_hours: Option<u64>,
    /// Automatic backups kept (default 7).
    pub(super) backup_keep: Option<usize>,
}

/// The `[http]` table: the outbound client's bounds, each optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpTable {
    /// Seconds to connect (default 10).
    pub(super) connect_timeout_secs: Option<u64>,
    /// Seconds for a whole request (default 30).
    pub(super) timeout_secs: Option<u64>,
    /// Extra attempts for idempotent requests (default 3).
    pub(super) retries: Option<u32>,
    /// Requests in flight per host (default 4).
    pub(super) per_host_concurrency: Option<usize>,
    /// Milliseconds between request starts to one host (default 0).
    pub(super) per_host_interval_ms: Option<u64>,
}

/// The `[scheduler]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SchedulerTable {
    /// Most tasks running at once (default 2, as rotki).
    pub(super) max_tasks: Option<usize>,
    /// Seconds between scheduling passes (default 10).
    pub(super) tick_secs: Option<u64>,
    /// Whether scheduling starts on (default false: rotki turns it on after the first balance query).
    pub(super) start_on: Option<bool>,
}

/// The `[websocket]` table: notifier bounds, each optional (the notifier has defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WebSocketTable {
    /// Messages kept for `since` replay.
    pub(super) replay_messages: Option<usize>,
    /// Bytes kept for `since` replay.
    pub(super) replay_bytes: Option<usize>,
    /// Frames queued per client past which it must keep reading or be closed (soft bound).
    pub(super) client_queue_messages: Option<usize>,
    /// Bytes queued per client past which it must keep reading or be closed (soft bound).
    pub(super) client_queue_bytes: Option<usize>,
    /// Frames queued per client past which it is closed at once (hard bound).
    pub(super) client_queue_max_messages: Option<usize>,
    /// Bytes queued per client past which it is closed at once (hard bound).
    pub(super) client_queue_max_bytes: Option<usize>,
    /// Seconds a client past the soft bounds may take nothing before it is closed (default 5).
    pub(super) slow_client_grace_secs: Option<u64>,
    /// Largest message a client may send.
    pub(super) max_message_bytes: Option<usize>,
    /// Seconds a client may take no bytes before it is closed (default 30).
    pub(super) write_timeout_secs: Option<u64>,
}

pub(super) fn read_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| Error::ReadFile { path: path.to_path_buf(), source })?;
    toml::from_str(&text).map_err(|source| Error::ParseFile { path: path.to_path_buf(), source })
}
