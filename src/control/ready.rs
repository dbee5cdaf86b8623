//! The ready line: the one JSON object that tells a companion app the daemon is serving and
//! how to reach it. Printed on stdout by the daemon that owns the data directory, answered by
//! the `ready` command, and printed again by a robind that attaches to a running daemon.
//!
//! The fields are a versioned contract, documented in `docs/companion.md`: a field may be
//! added within a version; renaming, removing or changing the meaning of one bumps
//! [`READY_VERSION`].
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Endpoints;

/// The version of the ready line's contract.
pub const READY_VERSION: u32 = 1;

/// What a companion app needs to connect, and who provides it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyLine {
    /// Always `"ready"`.
    pub event: String,
    /// The contract's version, [`READY_VERSION`].
    pub ready_version: u32,
    /// The serving daemon's version.
    pub version: String,
    /// The serving daemon's pid (not the attaching process's).
    pub pid: u32,
    /// Whether the process that printed the line is the daemon itself (`true`), or a robind
    /// that found one already serving this data directory and exited (`false`).
    pub owner: bool,
    /// The data directory being served.
    pub data_dir: PathBuf,
    /// The HTTP listener, `IP:PORT`.
    pub http: Option<String>,
    /// The WebSocket URL, when the `websockets` feature is on.
    pub ws: Option<String>,
    /// The control socket, when the `ipc` feature is on.
    pub ipc: Option<PathBuf>,
    /// The file holding the API token, when one is required.
    pub api_token_file: Option<PathBuf>,
}

impl ReadyLine {
    /// The line for this daemon's endpoints, as their owner.
    pub fn owned(endpoints: &Endpoints) -> ReadyLine {
        ReadyLine {
            event: "ready".to_string(),
            ready_version: READY_VERSION,
            version: crate::VERSION.to_string(),
            pid: std::process::id(),
            owner: true,
            data_dir: endpoints.data_dir.clone(),
            http: endpoints.http.map(|a| a.to_string()),
            ws: endpoints.http.filter(|_| endpoints.websockets).map(|a| format!("ws://{a}/ws")),
            ipc: endpoints.ipc.clone(),
            api_token_file: endpoints.api_token_file.clone(),
        }
    }

    /// The line as one JSON object without line breaks.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|err| format!("{{\"event\":\"ready\",\"error\":\"{err}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_every_field_and_round_trips() {
        let endpoints = Endpoints {
            http: Some("127.0.0.1:5042".parse().unwrap()),
            ipc: Some("/run/user/1000/robin/robind.sock".into()),
            api_token_file: None,
            data_dir: "/home/u/.local/share/robin".into(),
            websockets: true,
        };
        let line = ReadyLine::owned(&endpoints);
        let value: serde_json::Value = serde_json::from_str(&line.to_line()).unwrap();
        assert_eq!(value["ws"], "ws://127.0.0.1:5042/ws");
        assert_eq!(value["api_token_file"], serde_json::Value::Null);
        assert_eq!(value.as_object().unwrap().len(), 10);
        assert_eq!(serde_json::from_value::<ReadyLine>(value).unwrap(), line);
        let without_ws = ReadyLine::owned(&Endpoints { websockets: false, ..endpoints });
        assert_eq!(without_ws.ws, None);
    }
}
