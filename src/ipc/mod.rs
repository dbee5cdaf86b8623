//! The local control socket: a Unix stream socket speaking newline-delimited JSON.
//!
//! Owns the listener, the socket file (removed when [`SocketFile`] drops), the wire protocol
//! and one handler per client. Every request is handed to [`control`](crate::control).
//!
//! May touch: [`control`](crate::control) and [`peers`](crate::peers) (and the runtime's
//! timeout).
//!
//! # Wire format
//!
//! One JSON object per line, in both directions, at most [`MAX_LINE_BYTES`] per line:
//!
//! ```text
//! client → {"id": 1, "method": "ping", "params": {}}\n
//! daemon ← {"id": 1, "result": true}\n
//! client → {"id": 2, "method": "nope"}\n
//! daemon ← {"id": 2, "error": {"code": -32601, "message": "unknown method 'nope' (known: ping, status, ...)"}}\n
//! client → not json\n
//! daemon ← {"id": null, "error": {"code": -32700, "message": "malformed JSON: expected ident at line 1 column 2"}}\n
//! ```
//!
//! `{"id": 3, "method": "subscribe", "params": {"since": 41}}` is answered
//! `{"id": 3, "result": {"subscribed": true}}`, after which the connection carries the same
//! notifications as `/ws`, one JSON object per line (replay after `since` first, as on `/ws`),
//! until the client closes it.
//!
//! `id` is echoed back as given (any JSON value, `null` when absent). Error codes follow
//! JSON-RPC: -32700 malformed JSON, -32600 not a request object, -32601 unknown method,
//! -32602 invalid params. A line longer than the limit gets a -32600 answer and the
//! connection is closed, since the rest of that line cannot be framed.
//!
//! # Security
//!
//! The socket is created in a directory only its owner can write ([`secure_dir`]) and set to
//! 0600. Each client's credentials are read with `SO_PEERCRED` and checked against the
//! [`peers`](crate::peers) rule: only the daemon's own uid, root and the uids listed in
//! `ipc_allow_uids` are served, at most [`MAX_CONNECTIONS_PER_UID`] clients each, with
//! [`OWNER_RESERVED`] of the [`MAX_CONNECTIONS`] slots kept for the owner. A reload that stops
//! allowing a user closes that user's open clients, subscribers included.
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use async_executor::LocalExecutor;
use async_io::{Async, Timer};
use futures_lite::io::BufReader;
use futures_lite::{AsyncBufReadExt, AsyncWriteExt, FutureExt};
use serde_json::Value;

use crate::control::wire::{self, CODE_INVALID_REQUEST, Request, SUBSCRIBE, to_line};
use crate::control::{Caller, Controller, Link};
use crate::peers::{self, Policy, RefusalLog, SharedPolicy, Slots};

/// Longest request line accepted.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// How long a client may take to send a complete request before it is closed: a half-open
/// connection must not hold one of the few client slots forever.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Most simultaneous clients; later ones are told so and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// Most simultaneous clients of one user.
pub const MAX_CONNECTIONS_PER_UID: usize = 32;
/// Slots only the daemon's own user and root may take, so that an allowed other user cannot
/// lock robinctl out.
pub const OWNER_RESERVED: usize = 8;
/// The longest path a Unix socket address can hold on Linux (`sun_path` less its NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// `Result` with this part's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the control socket could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The path does not fit in a socket address.
    #[error("socket path {} is longer than {MAX_SOCKET_PATH} bytes; choose a shorter --runtime-dir", .0.display())]
    PathTooLong(PathBuf),
    /// A live daemon answers on the socket already.
    #[error("socket {} is in use by another running daemon", .0.display())]
    InUse(PathBuf),
    /// The runtime directory could be changed by someone else; robin does not change its mode.
    #[error("runtime directory {} {reason}; use a directory only you can write (--runtime-dir)", .path.display())]
    UnsafeDir {
        /// The runtime directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Creating the directory, removing a stale socket or binding failed.
    #[error("cannot create control socket {}", .path.display())]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// What the socket layer reported.
        #[source]
        source: io::Error,
    },
}

/// The socket file; dropping it removes the file.
#[derive(Debug)]
pub struct SocketFile {
    /// Where the socket lives.
    path: PathBuf,
}

impl SocketFile {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        // Runs after the loop has stopped (the daemon drops it last), so the unlink is no
        // blocking call on the loop thread.
        crate::runtime::assert_off_loop("removing the control socket");
        if let Err(err) = std::fs::remove_file(&self.path) {
            log::warn!("cannot remove control socket {}: {err}", self.path.display());
        }
    }
}

/// Binds the control socket at `path`, replacing a stale socket but never a live one.
///
/// Call before the loop starts: it creates directories and probes the old socket.
pub fn bind(path: &Path) -> Result<(UnixListener, SocketFile)> {
    let bind_err = |source| Error::Bind { path: path.to_path_buf(), source };
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(Error::PathTooLong(path.to_path_buf()));
    }
    if let Some(dir) = path.parent() {
        secure_dir(dir)?;
    }
    if path.exists() {
        match UnixStream::connect(path) {
            Ok(_) => return Err(Error::InUse(path.to_path_buf())),
            Err(_) => {
                log::info!("replacing stale control socket {}", path.display());
                std::fs::remove_file(path).map_err(bind_err)?;
            }
        }
    }
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    let file = SocketFile { path: path.to_path_buf() };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    Ok((listener, file))
}

/// Makes `dir` ready to hold the control socket and the API token: creates it (mode 0700) when
/// it is missing; an existing one must belong to this user and be writable by nobody else.
/// robin never changes the mode of a directory it did not create: a shared directory is
/// refused, not repaired behind its owner's back.
///
/// Call before the loop starts.
pub fn secure_dir(dir: &Path) -> Result<()> {
    let unsafe_dir = |reason: String| Error::UnsafeDir { path: dir.to_path_buf(), reason };
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let create = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
            return create.map_err(|source| Error::Bind { path: dir.to_path_buf(), source });
        }
        Err(source) => return Err(Error::Bind { path: dir.to_path_buf(), source }),
    };
    if !meta.is_dir() {
        return Err(unsafe_dir("is not a directory".into()));
    }
    match crate::ownership::shared_reason(&meta) {
        Some(reason) => Err(unsafe_dir(reason)),
        None => Ok(()),
    }
}

/// Serves the control protocol on a bound listener.
#[derive(Debug)]
pub struct Server {
    /// The listening socket.
    listener: Async<UnixListener>,
    /// Where requests go.
    controller: Rc<Controller>,
    /// Clients connected now, in all and per user.
    slots: Rc<Slots<u32>>,
    /// Who may connect: the daemon's own user, root and `ipc_allow_uids` (replaced on reload).
    policy: Rc<SharedPolicy>,
    /// See [`IDLE_TIMEOUT`].
    idle_timeout: Duration,
    /// Which refusals are logged.
    refusals: Rc<RefusalLog<u32>>,
}

impl Server {
    /// Wraps a bound (or socket-activated) listener.
    pub fn new(listener: UnixListener, controller: Rc<Controller>) -> io::Result<Server> {
        Ok(Server {
            listener: Async::new(listener)?,
            controller,
            slots: Slots::new(MAX_CONNECTIONS, MAX_CONNECTIONS_PER_UID),
            policy: SharedPolicy::new(Policy::new(&[])),
            idle_timeout: IDLE_TIMEOUT,
            refusals: Rc::new(RefusalLog::new(RefusalLog::<u32>::INTERVAL)),
        })
    }

    /// Closes clients that send no complete request within `limit` (default [`IDLE_TIMEOUT`]).
    pub fn with_idle_timeout(mut self, limit: Duration) -> Server {
        self.idle_timeout = limit;
        self
    }

    /// Also serves these users (by uid), besides the daemon's own user and root.
    pub fn with_allowed_uids(self, uids: &[u32]) -> Server {
        self.policy.set(Policy::new(uids));
        self
    }

    /// Where a reload puts the new policy: clients that connect later follow it, and open
    /// clients of users it no longer allows are closed.
    pub fn policy_handle(&self) -> Rc<SharedPolicy> {
        self.policy.clone()
    }

    fn admission(&self) -> Admission {
        Admission {
            slots: self.slots.clone(),
            policy: self.policy.clone(),
            idle_timeout: self.idle_timeout,
            refusals: self.refusals.clone(),
        }
    }

    /// The socket's path (for an activated socket, wherever the service manager put it).
    pub fn path(&self) -> Option<PathBuf> {
        self.listener.get_ref().local_addr().ok()?.as_pathname().map(Path::to_path_buf)
    }

    /// Accepts and serves clients until the returned future is dropped, which closes them all.
    pub async fn serve(self) {
        let clients = LocalExecutor::new();
        clients
            .run(async {
                loop {
                    match self.listener.accept().await {
                        Ok((stream, _)) => {
                            crate::runtime::inject_fault("ipc");
                            let client = serve_client(stream, self.controller.clone(), self.admission());
                            // Detached on purpose: `clients` is owned by this future, so
                            // dropping the server cancels every client with it.
                            clients.spawn(client).detach();
                        }
                        Err(err) => {
                            log::warn!("ipc: accept failed: {err}");
                            Timer::after(Duration::from_millis(100)).await;
                        }
                    }
                }
            })
            .await
    }
}

/// What a new client is checked against.
struct Admission {
    slots: Rc<Slots<u32>>,
    policy: Rc<SharedPolicy>,
    idle_timeout: Duration,
    refusals: Rc<RefusalLog<u32>>,
}

async fn serve_client(stream: Async<UnixStream>, controller: Rc<Controller>, admission: Admission) {
    let writer = &stream;
    let uid = match peers::unix_peer_uid(stream.get_ref()) {
        Ok(uid) => uid,
        Err(err) => {
            let reason = format!("cannot read peer credentials: {err}");
            log::warn!("ipc: refused a client: {reason}");
            let _ = write_within(writer, &error_line(&Value::Null, CODE_INVALID_REQUEST, &reason)).await;
            return;
        }
    };
    if let Err(reason) = admission.policy.check(uid) {
        if let Some(note) = admission.refusals.admit(uid, std::time::Instant::now()) {
            log::warn!("ipc: refused a client: {reason}{note}");
        }
        let _ = write_within(writer, &error_line(&Value::Null, CODE_INVALID_REQUEST, &reason)).await;
        return;
    }
    let privileged = admission.policy.is_owner(uid);
    let _slot = match admission.slots.take(uid, privileged, OWNER_RESERVED) {
        Ok(slot) => slot,
        Err(full) => {
            let message = format!("too many clients: {full}");
            let _ = write_within(writer, &error_line(&Value::Null, CODE_INVALID_REQUEST, &message)).await;
            return;
        }
    };
    // The link lets this connection own external tasks; dropping it (when the client goes)
    // fails those it did not end.
    let (link, notifications) = Link::new();
    let caller = Caller { link: Some(link), ..Caller::local(uid) };
    let revoked = async {
        let reason = admission.policy.revoked(uid).await;
        if let Some(note) = admission.refusals.admit(uid, std::time::Instant::now()) {
            log::warn!("ipc: closing a client: {reason}{note}");
        }
    };
    // Revocation first: a line that arrives as the user is revoked is not answered.
    revoked.or(serve_requests(stream, &controller, caller, notifications, admission.idle_timeout)).await;
}

/// Answers request lines (or streams notifications after `subscribe`) until the client leaves;
/// between requests, writes the notifications meant for this connection.
async fn serve_requests(
    stream: Async<UnixStream>,
    controller: &Controller,
    caller: Caller,
    notifications: async_channel::Receiver<Value>,
    idle_timeout: Duration,
) {
    let writer = &stream;
    let mut reader = BufReader::new(&stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        // Between requests, notifications (a cancelled task) go out as they come, before a
        // request that is already waiting: its answer may depend on them ("not open"). `line`
        // keeps what `read_line` consumed, so giving way to a notification loses nothing.
        let read = loop {
            let next = async { Next::Line(read_line(&mut reader, &mut line, MAX_LINE_BYTES).await) };
            let notice = async {
                match notifications.recv().await {
                    Ok(notification) => Next::Notice(to_line(&notification)),
                    Err(_) => std::future::pending().await,
                }
            };
            let Some(event) = crate::runtime::timeout(idle_timeout, notice.or(next)).await else {
                log::debug!("ipc: closing a client idle for {idle_timeout:?}");
                return;
            };
            match event {
                Next::Notice(notification) => {
                    if !write_within(writer, &notification).await {
                        return;
                    }
                }
                Next::Line(read) => break read,
            }
        };
        let reply = match read {
            Ok(LineRead::Line) => match handle_line(&line, controller, &caller).await {
                Reply::Nothing => continue,
                Reply::Line(reply) => reply,
                Reply::Subscribe { ack, since } => {
                    if !write_within(writer, &ack).await {
                        return;
                    }
                    drop(reader);
                    return controller.subscribe(since).serve_lines(stream).await;
                }
            },
            Ok(LineRead::TooLong) => {
                let message = format!("request line longer than {MAX_LINE_BYTES} bytes");
                let _ = write_within(writer, &error_line(&Value::Null, CODE_INVALID_REQUEST, &message)).await;
                return;
            }
            Ok(LineRead::Eof) | Err(_) => return,
        };
        if !write_within(writer, &reply).await {
            return;
        }
        // Pipelined requests are already in the buffer, so nothing above has to wait: give
        // the other tasks (WebSocket writers above all) their turn before the next one.
        futures_lite::future::yield_now().await;
    }
}

/// What a connection waits for between requests.
enum Next {
    /// The next request line (or the end).
    Line(io::Result<LineRead>),
    /// A notification to write, as a line.
    Notice(Vec<u8>),
}

/// What one request line asks of the connection.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// A blank line: nothing to answer.
    Nothing,
    /// One response line.
    Line(Vec<u8>),
    /// `subscribe`: send the acknowledgement, then stream notifications after `since`.
    Subscribe {
        /// The acknowledgement line.
        ack: Vec<u8>,
        /// Replay after this sequence number.
        since: Option<u64>,
    },
}

/// Answers one request line from `caller`; the connection's handler and the tests both go
/// through here.
pub async fn handle_line(line: &[u8], controller: &Controller, caller: &Caller) -> Reply {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Reply::Nothing;
    }
    match Request::parse(line) {
        Ok(request) if request.method == SUBSCRIBE => match request.since() {
            Ok(since) => {
                let ack = wire::result_response(&request.id, serde_json::json!({ "subscribed": true }));
                Reply::Subscribe { ack: to_line(&ack), since }
            }
            Err(refusal) => Reply::Line(to_line(&refusal)),
        },
        Ok(request) => Reply::Line(to_line(&controller.answer(request, caller).await)),
        Err(error) => Reply::Line(to_line(&error)),
    }
}

/// How long a client may leave an answer unread before it is closed: one that stops reading
/// must not keep its slot (and its open tasks) for ever.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes all of `bytes` within [`WRITE_TIMEOUT`]; false when the client is gone or too slow.
async fn write_within(mut writer: &Async<UnixStream>, bytes: &[u8]) -> bool {
    let written = crate::runtime::timeout(WRITE_TIMEOUT, writer.write_all(bytes)).await;
    if written.is_none() {
        log::debug!("ipc: closing a client that took nothing for {WRITE_TIMEOUT:?}");
    }
    matches!(written, Some(Ok(())))
}

fn error_line(id: &Value, code: i64, message: &str) -> Vec<u8> {
    to_line(&wire::error_response(id, code, message))
}

enum LineRead {
    Line,
    TooLong,
    Eof,
}

async fn read_line<R: futures_lite::AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if line.is_empty() { LineRead::Eof } else { LineRead::Line });
        }
        let (taken, done) = match available.iter().position(|b| *b == b'\n') {
            Some(end) => (end + 1, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..if done { taken - 1 } else { taken }]);
        reader.consume(taken);
        if line.len() > max {
            return Ok(LineRead::TooLong);
        }
        if done {
            return Ok(LineRead::Line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(line: &str) -> Value {
        let tasks =
            crate::tasks::TaskManager::new(crate::runtime::Spawner::new(), Rc::new(|_| {}), Rc::new(|_| {}));
        let controller = Controller::new(
            crate::config::Features::defaults(),
            crate::notifier::Notifier::new(Default::default()),
            tasks.clone(),
            crate::control::Session::new(tasks),
        );
        let Reply::Line(bytes) =
            futures_lite::future::block_on(handle_line(line.as_bytes(), &controller, &Caller::default()))
        else {
            panic!("{line} is not answered with a line");
        };
        assert_eq!(bytes.last(), Some(&b'\n'));
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn requests_get_results_and_errors_with_their_id() {
        assert_eq!(answer(r#"{"id":7,"method":"ping"}"#), json!({"id":7,"result":true}));
        assert_eq!(answer(r#"{"id":"a","method":"nope"}"#)["error"]["code"], -32601);
        assert_eq!(answer("not json")["error"]["code"], wire::CODE_PARSE_ERROR);
        assert_eq!(answer(r#"{"id":1}"#)["error"]["code"], CODE_INVALID_REQUEST);
        assert_eq!(answer(r#"[1,2]"#)["id"], Value::Null);
    }

    #[test]
    fn stale_socket_is_replaced_and_live_one_is_not() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("run/robind.sock");
        let (listener, file) = bind(&path)?;
        assert!(matches!(bind(&path), Err(Error::InUse(_))));
        drop(listener);
        std::mem::forget(file); // leave the file behind, as a crashed daemon would
        let (_listener, _file) = bind(&path)?;
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())?.permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        Ok(())
    }

    #[test]
    fn shared_runtime_directories_are_refused_and_left_as_they_are()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared)?;
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777))?;
        let err = bind(&shared.join("robind.sock")).unwrap_err().to_string();
        assert!(err.contains("writable by other users (mode 0777)"), "{err}");
        assert_eq!(std::fs::metadata(&shared)?.permissions().mode() & 0o777, 0o777, "not chmodded");
        let file = dir.path().join("file");
        std::fs::write(&file, "")?;
        assert!(secure_dir(&file).unwrap_err().to_string().contains("is not a directory"));
        // A directory of our own with a loose but safe mode is used as it is.
        let readable = dir.path().join("readable");
        std::fs::create_dir(&readable)?;
        std::fs::set_permissions(&readable, std::fs::Permissions::from_mode(0o755))?;
        secure_dir(&readable)?;
        assert_eq!(std::fs::metadata(&readable)?.permissions().mode() & 0o777, 0o755);
        Ok(())
    }

    #[test]
    fn too_long_paths_are_refused_with_advice() {
        let long = PathBuf::from(format!("/tmp/{}/robind.sock", "x".repeat(120)));
        assert!(bind(&long).unwrap_err().to_string().contains("--runtime-dir"));
    }
}
