//! A synchronous client of the control socket, for `robinctl`, scripts and tests.
//!
//! Owns nothing of the daemon: it speaks the control protocol ([`wire`](super::wire)) over
//! a `UnixStream` with plain blocking I/O, so it needs no executor.
//!
//! May touch: the control socket it is pointed at.
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

/// How long a call waits for its answer.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No daemon answers on the socket.
    #[error("cannot connect to {} ({source}); is robind running?", .path.display())]
    Connect {
        /// The control socket's path.
        path: PathBuf,
        /// Why connecting failed (no such file: no daemon; refused: a stale socket).
        source: std::io::Error,
    },
    /// The connection broke or timed out.
    #[error("no answer from robind")]
    Io(#[from] std::io::Error),
    /// The answer was not the protocol.
    #[error("unreadable answer from robind: {0}")]
    Protocol(String),
    /// The daemon answered with an error.
    #[error("{message}")]
    Daemon {
        /// The error's code (JSON-RPC numbering; see `control::wire`).
        code: i64,
        /// The daemon's explanation, meant for the user.
        message: String,
    },
}

/// One connection to the daemon.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<UnixStream>,
    next_id: u64,
}

impl Client {
    /// Connects to the control socket at `path`.
    pub fn connect(path: &Path) -> Result<Client, Error> {
        let stream = UnixStream::connect(path)
            .map_err(|source| Error::Connect { path: path.to_path_buf(), source })?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        Ok(Client { reader: BufReader::new(stream), next_id: 1 })
    }

    /// Calls `method` with `params`; the daemon's result, or its error.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, Error> {
        let id = self.next_id;
        self.next_id += 1;
        let sent = self.send(&json!({ "id": id, "method": method, "params": params }));
        // A daemon that refuses a client (credentials, too many clients) answers and closes at
        // once, so the request may meet a closed socket; its answer is still there to read.
        let reply = match (sent, self.next_message()) {
            (_, Ok(Some(reply))) => reply,
            (Err(err), _) => return Err(err),
            (Ok(()), Ok(None)) => return Err(Error::Protocol("connection closed".into())),
            (Ok(()), Err(err)) => return Err(err),
        };
        if let Some(error) = reply.get("error") {
            return Err(Error::Daemon {
                code: error["code"].as_i64().unwrap_or(0),
                message: error["message"].as_str().unwrap_or("unknown error").to_string(),
            });
        }
        Ok(reply.get("result").cloned().unwrap_or(Value::Null))
    }

    /// Turns this connection into a stream of notifications (see [`Client::next_message`]).
    pub fn subscribe(&mut self, since: Option<u64>) -> Result<(), Error> {
        let params = since.map_or(json!({}), |since| json!({ "since": since }));
        self.call(super::wire::SUBSCRIBE, params).map(drop)
    }

    /// The next JSON object from the daemon; `None` when it closed the connection. Waits
    /// without a time limit after `subscribe`.
    pub fn next_message(&mut self) -> Result<Option<Value>, Error> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        serde_json::from_str(&line).map(Some).map_err(|e| Error::Protocol(e.to_string()))
    }

    /// Waits at most `limit` for each read and write from now on.
    pub fn set_timeout(&mut self, limit: Duration) -> Result<(), Error> {
        let stream = self.reader.get_ref();
        stream.set_read_timeout(Some(limit))?;
        Ok(stream.set_write_timeout(Some(limit))?)
    }

    /// Who answers on the socket, as the kernel says: `(pid, uid)` of the process that
    /// created the listening socket.
    pub fn peer(&self) -> Result<(u32, u32), Error> {
        let cred =
            rustix::net::sockopt::socket_peercred(self.reader.get_ref()).map_err(std::io::Error::from)?;
        Ok((cred.pid.as_raw_nonzero().get() as u32, cred.uid.as_raw()))
    }

    /// No time limit on reads (for `watch`).
    pub fn wait_forever(&mut self) -> Result<(), Error> {
        Ok(self.reader.get_ref().set_read_timeout(None)?)
    }

    fn send(&mut self, request: &Value) -> Result<(), Error> {
        let mut line = request.to_string();
        line.push('\n');
        Ok(self.reader.get_mut().write_all(line.as_bytes())?)
    }
}
