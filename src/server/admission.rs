//! Who gets a connection served, what a refused one costs, and who may serve a page that calls.
//!
//! Every connection is identified before its first request is read: the kernel says which
//! local user owns the client's socket ([`peers`](crate::peers)), and only the daemon's own
//! user, root and `ipc_allow_uids` are served. A client on this host whose user cannot be
//! named is refused too, whatever address it came from; only clients on other machines are
//! served without a user (the API token keeps them out).
//!
//! A refusal costs almost nothing, because a refused user may open connections as fast as it
//! likes: no slot is taken, the request is never read (the answer goes out at once), what
//! arrives meanwhile is thrown away through a small fixed buffer for a bounded time and
//! number of bytes, and at most [`Limits::max_refusing`] refusals are in progress at a time;
//! past that a connection is closed without an answer. Refusal log lines are rate-limited
//! ([`RefusalLog`]).
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::time::Instant;

use async_io::Async;
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use super::access::LocalOrigin;
use super::{Limits, PeerKey, Peers, Response, Shared};
use crate::control::Caller;
use crate::peers::{Slot, is_local};

/// Most bytes read (and thrown away) from a refused connection before it is closed anyway.
pub const REFUSAL_DISCARD_BYTES: usize = 64 * 1024;

/// Identifies the client and takes its slot; the refusal to send when it may not be served.
pub(super) fn admit(
    stream: &Async<TcpStream>,
    peer: SocketAddr,
    shared: &Shared,
) -> Result<(Caller, Slot<PeerKey>), Response> {
    let (caller, key, privileged) = identify(stream, peer, shared)?;
    match shared.slots.take(key, privileged, shared.limits.owner_reserved) {
        Ok(slot) => Ok((caller, slot)),
        Err(full) => Err(Response::error(503, &full.to_string())),
    }
}

/// Who is on the other end: the caller as the control layer sees it, the key its connections
/// are counted under, and whether it is the owner (for whom slots are kept); or the refusal.
fn identify(
    stream: &Async<TcpStream>,
    peer: SocketAddr,
    shared: &Shared,
) -> Result<(Caller, PeerKey, bool), Response> {
    // A [::] listener sees IPv4 clients as ::ffff:a.b.c.d; name them as IPv4.
    let ip = peer.ip().to_canonical();
    let anonymous = Caller { uid: None, addr: Some(ip), link: None };
    let Peers::ByUid { policy, lookup } = &shared.peers else {
        return Ok((anonymous, PeerKey::Addr(ip), false));
    };
    let refuse = |key: PeerKey, status: u16, reason: String| {
        log_refusal(shared, key, &peer, &reason);
        Err(Response::error(status, &reason))
    };
    match lookup.uid_of(stream.get_ref()) {
        Ok(Some(uid)) => match policy.check(uid) {
            Ok(()) => Ok((
                Caller { uid: Some(uid), addr: Some(ip), link: None },
                PeerKey::Uid(uid),
                policy.is_owner(uid),
            )),
            Err(reason) => refuse(PeerKey::Uid(uid), 403, reason),
        },
        // Another machine (the listener is not on loopback; the token decides).
        Ok(None) if !is_local(peer) => Ok((anonymous, PeerKey::Addr(ip), false)),
        Ok(None) => refuse(
            PeerKey::Addr(ip),
            403,
            "cannot tell which user this connection belongs to (it is from this host, and its socket was \
             closed)"
                .into(),
        ),
        Err(err) => refuse(
            PeerKey::Addr(ip),
            503,
            format!("cannot tell which user this connection belongs to: {err}"),
        ),
    }
}

/// Logs a refusal unless this peer had its line in the last interval.
fn log_refusal(shared: &Shared, key: PeerKey, peer: &SocketAddr, reason: &str) {
    if let Some(note) = shared.refusals.admit(key, Instant::now()) {
        log::warn!("http: refused a connection from {peer}: {reason}{note}");
    }
}

/// Answers a connection that may not be served at once, without reading its request, then
/// closes it gently: the write side is shut and what arrives is thrown away for a moment,
/// because closing a socket with unread data resets it and the client might never read why it
/// was refused. Bounded in time, bytes and in how many run at once (see the module doc).
pub(super) async fn refuse(mut stream: Async<TcpStream>, refusal: Response, shared: &Shared) {
    let Ok(_refusing) = shared.refusing.take((), false, 0) else {
        return; // too many refusals in progress: this one is not worth any memory
    };
    let limits: &Limits = &shared.limits;
    let _ = crate::runtime::timeout(limits.refusal_linger, async {
        if stream.write_all(&refusal.to_bytes(false, false)).await.is_err() {
            return;
        }
        let _ = stream.get_ref().shutdown(Shutdown::Write);
        let (mut sink, mut discarded) = ([0u8; 1024], 0);
        while discarded < REFUSAL_DISCARD_BYTES {
            match stream.read(&mut sink).await {
                Ok(n) if n > 0 => discarded += n,
                _ => break,
            }
        }
    })
    .await;
}

/// Resolves when the policy stops allowing `uid` (a reload): the connection is then closed.
/// Never resolves for a client without a local user.
pub(super) async fn revoked(shared: &Shared, uid: Option<u32>, peer: IpAddr) {
    match (&shared.peers, uid) {
        (Peers::ByUid { policy, .. }, Some(uid)) => {
            let reason = policy.revoked(uid).await;
            if let Some(note) = shared.refusals.admit(PeerKey::Uid(uid), Instant::now()) {
                log::warn!("http: closing a connection from {peer}: {reason}{note}");
            }
        }
        _ => std::future::pending().await,
    }
}

/// `Ok` when the page whose origin is `origin` is served by a user this robind serves: every
/// listener a browser could reach on its port belongs to the owner, root or an allowed user,
/// and there is one. Otherwise any local user who took the port could serve a page that uses
/// the API with the owner's browser. One kernel lookup, done for each request that carries
/// such an origin, so that a listener that changed hands is seen at once.
pub(super) fn check_origin_server(shared: &Shared, origin: &LocalOrigin) -> Result<(), Response> {
    let LocalOrigin { origin, port } = origin;
    let Peers::ByUid { policy, lookup } = &shared.peers else {
        let reason = format!(
            "the page's origin {origin} is on this host, and this robind cannot see which user serves it \
             (no sock_diag): open the page from robind's own address instead"
        );
        return Err(Response::error(403, &reason));
    };
    let uids = lookup.listener_uids(*port).map_err(|err| {
        log::warn!("http: cannot look up who listens on port {port}: {err}");
        Response::error(503, &format!("cannot tell which user serves the page's origin {origin}: {err}"))
    })?;
    if let Some(uid) = uids.iter().find(|uid| policy.check(**uid).is_err()) {
        let reason = format!(
            "the page's origin {origin} is served by uid {uid}, not by this robind's user (uid {}) or a user \
             it allows",
            policy.owner()
        );
        return Err(Response::error(403, &reason));
    }
    if uids.is_empty() {
        let reason = format!(
            "the page's origin {origin} is not served by this robind's user: nothing listens on port {port}"
        );
        return Err(Response::error(403, &reason));
    }
    Ok(())
}
