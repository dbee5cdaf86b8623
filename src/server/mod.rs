//! The inbound HTTP server: rotki-style JSON routes under `/api/1/` and the `/ws` upgrade.
//!
//! Owns the TCP listener, its connections and HTTP/1.1 framing, and who may use them (Host,
//! Origin, the API token). Request heads are parsed with `httparse`; every connection is
//! bounded in head size, header count, body size and the time a request may take to arrive, so
//! malformed requests get a 4xx and slow-loris clients are cut off without ever stalling the
//! loop. Each route hands its work to [`control`](crate::control): this module knows HTTP, not
//! business logic. An upgraded `/ws` socket goes to the subscription the controller hands out.
//!
//! Every connection is checked before its first request is routed (`admission.rs`): the
//! kernel says which local user owns the client's socket ([`peers`](crate::peers)), and only
//! the daemon's own user, root and `ipc_allow_uids` are served (403, naming the uid, for
//! everyone else); each user holds a bounded number of connections, with some kept for the
//! owner. A refused connection costs almost nothing, and a reload that stops allowing a user
//! closes that user's open connections, WebSocket clients included.
//!
//! May touch: [`control`](crate::control) and [`peers`](crate::peers) (and the runtime's
//! timeout).
//!
//! Connections run on an executor owned by [`Server::serve`]'s future, so cancelling that
//! future closes every connection at once: that is how shutdown stops the listener.
mod access;
mod admission;
mod request;
mod response;
mod routes;
mod token;

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use async_executor::LocalExecutor;
use async_io::{Async, Timer};
use futures_lite::{AsyncWriteExt, FutureExt};

use crate::control::{Caller, Controller};
use crate::peers::{LoopbackPeers, Policy, RefusalLog, SharedPolicy, Slots};

pub use access::{Access, LocalOrigin};
pub use admission::REFUSAL_DISCARD_BYTES;
pub use request::{ReadError, Request, read_request};
pub use response::Response;
pub use token::{ApiToken, TokenError};

/// The route prefix of the JSON API, as rotki's.
pub const API_PREFIX: &str = "/api/1";
/// The status page served at `/`: one self-contained file, no build step, no external assets.
pub const STATUS_PAGE: &str = include_str!("status.html");
/// The WebSocket endpoint (`/ws/` works too).
pub const WS_PATH: &str = "/ws";

/// Bounds on what one client can make the listener hold or wait for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head (request line + headers); more is a 431. Default 16 KiB.
    pub max_head_bytes: usize,
    /// Most header lines; more is a 431. Default 64.
    pub max_headers: usize,
    /// Largest request body; more is a 413. Default 1 MiB.
    pub max_body_bytes: usize,
    /// How long a whole request (head and body) may take to arrive, and how long an idle
    /// keep-alive connection stays open. Slower clients get a 408 and are closed. Default 10 s.
    pub request_timeout: Duration,
    /// Most simultaneous connections, WebSocket clients included; more are answered 503 and
    /// closed. Default 4096.
    pub max_connections: usize,
    /// How long a client may take to read a response; one that does not is closed. Default 30 s.
    pub write_timeout: Duration,
    /// Most simultaneous connections of one user (or one address, for clients on other
    /// machines). Default 1024.
    pub max_connections_per_peer: usize,
    /// Connections only the daemon's own user and root may open, so that nobody else can lock
    /// them out. Default 64.
    pub owner_reserved: usize,
    /// How long a refused connection is kept after its answer (what arrives is thrown away), so
    /// that the client reads why it was refused. Default 500 ms.
    pub refusal_linger: Duration,
    /// Most refusals in progress at once; past that a refused connection is closed without an
    /// answer. They take no connection slot, so this bounds what refused users cost. Default 64.
    pub max_refusing: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            max_connections: 4096,
            write_timeout: Duration::from_secs(30),
            max_connections_per_peer: 1024,
            owner_reserved: 64,
            refusal_linger: Duration::from_millis(500),
            max_refusing: 64,
        }
    }
}

/// A bound HTTP listener, ready to serve.
#[derive(Debug)]
pub struct Server {
    /// The listening socket.
    listener: Async<TcpListener>,
    /// Shared by all connections.
    shared: Rc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// Where commands go.
    controller: Rc<Controller>,
    /// Per-connection bounds.
    limits: Limits,
    /// Host, Origin and token checks (replaced on reload).
    access: RefCell<Access>,
    /// Who may connect, and how the listener finds out (its policy replaced on reload).
    peers: Peers,
    /// Open connections right now, in all and per peer.
    slots: Rc<Slots<PeerKey>>,
    /// Refusals in progress (one key: the bound is global).
    refusing: Rc<Slots<()>>,
    /// Which refusals are logged.
    refusals: RefusalLog<PeerKey>,
}

/// How the listener tells who is connecting.
#[derive(Debug)]
pub enum Peers {
    /// The kernel says which local user owns each connection; only those the policy allows
    /// are served (clients on other machines have no local user and need the token).
    ByUid {
        /// The daemon's own user, root and `ipc_allow_uids`; replacing it closes the
        /// connections of users it no longer allows.
        policy: Rc<SharedPolicy>,
        /// The sock_diag lookup.
        lookup: LoopbackPeers,
    },
    /// No user lookup (the kernel offers none here): the API token alone keeps others out.
    TokenOnly,
}

impl Peers {
    /// Users are told apart by uid, with `policy`; fails where sock_diag is not available.
    pub fn by_uid(policy: Policy) -> io::Result<Peers> {
        Ok(Peers::ByUid { policy: SharedPolicy::new(policy), lookup: LoopbackPeers::open()? })
    }
}

/// Changes a serving listener's rules; new connections and requests follow them.
#[derive(Clone, Debug)]
pub struct Handle(Rc<Shared>);

impl Handle {
    /// Replaces the Host, Origin and token checks.
    pub fn set_access(&self, access: Access) {
        *self.0.access.borrow_mut() = access;
    }

    /// Replaces who may connect (kept as it is when users are not told apart by uid); open
    /// connections of users it no longer allows are closed.
    pub fn set_policy(&self, new: Policy) {
        if let Peers::ByUid { policy, .. } = &self.0.peers {
            policy.set(new);
        }
    }
}

/// Whose connections are counted together.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum PeerKey {
    /// A local user.
    Uid(u32),
    /// A client whose user is not known, by address.
    Addr(IpAddr),
}

impl Server {
    /// Wraps a bound (or socket-activated) listener with the default access policy for its
    /// address (see [`Access`]), serving only this process's user and root.
    pub fn new(listener: TcpListener, controller: Rc<Controller>, limits: Limits) -> io::Result<Server> {
        let access = Access::for_listener(listener.local_addr()?);
        Server::with_access(listener, controller, limits, access, Peers::by_uid(Policy::new(&[]))?)
    }

    /// Wraps a listener with explicit access and peer policies.
    pub fn with_access(
        listener: TcpListener,
        controller: Rc<Controller>,
        limits: Limits,
        access: Access,
        peers: Peers,
    ) -> io::Result<Server> {
        let slots = Slots::new(limits.max_connections, limits.max_connections_per_peer);
        let refusing = Slots::new(limits.max_refusing, limits.max_refusing);
        let shared = Rc::new(Shared {
            controller,
            limits,
            access: RefCell::new(access),
            peers,
            slots,
            refusing,
            refusals: RefusalLog::new(RefusalLog::<PeerKey>::INTERVAL),
        });
        Ok(Server { listener: Async::new(listener)?, shared })
    }

    /// A handle that changes the access rules of this listener while it serves (SIGHUP).
    pub fn handle(&self) -> Handle {
        Handle(self.shared.clone())
    }

    /// The address the listener is bound to (the real port when 0 was asked for).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.get_ref().local_addr()
    }

    /// Accepts and serves connections until the returned future is dropped.
    pub async fn serve(self) {
        let connections = LocalExecutor::new();
        connections
            .run(async {
                loop {
                    match self.listener.accept().await {
                        Ok((stream, peer)) => {
                            crate::runtime::inject_fault("http");
                            // Detached on purpose: the task lives on `connections`, which this
                            // future owns, so dropping the server cancels every connection.
                            connections.spawn(serve_connection(stream, peer, self.shared.clone())).detach();
                        }
                        Err(err) => {
                            // EMFILE and friends: back off instead of spinning on the error.
                            log::warn!("http: accept failed: {err}");
                            Timer::after(Duration::from_millis(100)).await;
                        }
                    }
                }
            })
            .await
    }
}

async fn serve_connection(stream: Async<TcpStream>, peer: SocketAddr, shared: Rc<Shared>) {
    let (caller, _slot) = match admission::admit(&stream, peer, &shared) {
        Ok(admitted) => admitted,
        Err(refusal) => return admission::refuse(stream, refusal, &shared).await,
    };
    // Revocation first: a request that arrives as the user is revoked is not served.
    let revoked = admission::revoked(&shared, caller.uid, peer.ip());
    revoked.or(serve_requests(stream, peer, &shared, caller)).await;
}

/// Reads and answers requests on an admitted connection until it closes or is upgraded.
async fn serve_requests(mut stream: Async<TcpStream>, peer: SocketAddr, shared: &Shared, caller: Caller) {
    let limits = &shared.limits;
    let mut buf = Vec::new();
    let _ = stream.get_ref().set_nodelay(true);
    loop {
        let read =
            crate::runtime::timeout(limits.request_timeout, read_request(&mut stream, &mut buf, limits))
                .await
                .unwrap_or(Err(ReadError::Timeout));
        let request = match read {
            Ok(request) => request,
            Err(ReadError::Timeout) if buf.is_empty() => return, // idle keep-alive: close quietly
            Err(err) => {
                if let Some(status) = err.status() {
                    log::debug!("http: {peer}: {err}");
                    let reply = Response::error(status, &err.to_string());
                    write_within(&mut stream, &reply.to_bytes(false, false), limits.write_timeout).await;
                }
                return;
            }
        };
        let response = match routes::route(&request, shared, &caller).await {
            routes::Routed::Respond(response) => response,
            routes::Routed::Upgrade { accept, since } => {
                let switching = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                );
                if write_within(&mut stream, switching.as_bytes(), limits.write_timeout).await {
                    let handler = shared.controller.websocket_handler(caller);
                    shared.controller.subscribe(since).serve_websocket(stream, buf, handler).await;
                }
                return;
            }
        };
        let head_only = request.method == "HEAD";
        // A refused request gets no second chance on the same connection.
        let keep_alive = request.keep_alive && !response.is_refusal();
        let bytes = response.to_bytes(keep_alive, head_only);
        if !write_within(&mut stream, &bytes, limits.write_timeout).await || !keep_alive {
            return;
        }
        // A pipelining client must not keep the loop from everyone else.
        futures_lite::future::yield_now().await;
    }
}

/// Writes all of `bytes`, or gives up (false) when the socket fails or the client has not
/// taken them within `limit`: a client that does not read must not hold a connection forever.
async fn write_within(stream: &mut Async<TcpStream>, bytes: &[u8], limit: Duration) -> bool {
    let written = crate::runtime::timeout(limit, stream.write_all(bytes)).await;
    if written.is_none() {
        log::debug!("http: a client did not read its response within {limit:?}; closing");
    }
    matches!(written, Some(Ok(())))
}
