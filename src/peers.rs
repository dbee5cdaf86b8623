//! Who may connect, and how many connections each may hold.
//!
//! Owns the rule every transport applies (the daemon's own user, root, and the users listed in
//! `ipc_allow_uids`; everyone else is refused before any request is read), the lookup that
//! tells which local user is behind a loopback TCP connection, and the per-peer connection
//! slots that keep one peer from using up every connection.
//!
//! On a Unix socket the kernel reports the peer's credentials (`SO_PEERCRED`). On loopback TCP
//! it knows them too: [`LoopbackPeers`] asks with one `NETLINK_SOCK_DIAG` request for the
//! client's socket by its exact 4-tuple, the lookup `ss -e` does, and reads the uid that created
//! it. The kernel answers inside `send(2)`, so the lookup costs two syscalls on the loop thread
//! and never waits (the socket is non-blocking; an answer that is not there is an error).
//!
//! May touch: kernel queries about the sockets it is handed. Nothing else.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::Hash;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::rc::Rc;

use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_sys::protocols::NETLINK_SOCK_DIAG;

/// The kernel's `overflowuid`: how a user that a user namespace cannot map is shown.
pub const OVERFLOW_UID: u32 = 65534;

/// The users who may use the daemon: its own, root, and those the owner allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The daemon's effective uid.
    owner: u32,
    /// `ipc_allow_uids` from the configuration.
    allowed: Rc<[u32]>,
}

impl Policy {
    /// The policy for a daemon running as the current user, plus `allowed`.
    pub fn new(allowed: &[u32]) -> Policy {
        Policy { owner: rustix::process::geteuid().as_raw(), allowed: Rc::from(allowed) }
    }

    /// The daemon's own uid.
    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// Whether `uid` is the owner or root: the users for whom slots are kept in reserve.
    pub fn is_owner(&self, uid: u32) -> bool {
        uid == self.owner || uid == 0
    }

    /// `Ok` for the owner, root and the allowed users; otherwise the reason, naming both uids.
    pub fn check(&self, uid: u32) -> Result<(), String> {
        if self.is_owner(uid) {
            return Ok(());
        }
        if uid == OVERFLOW_UID {
            return Err(format!(
                "uid {uid} may not use this robind: it is also how the kernel shows a user it cannot map (a \
                 private user namespace), so it is never allowed"
            ));
        }
        if self.allowed.contains(&uid) {
            return Ok(());
        }
        Err(format!(
            "uid {uid} may not use this robind (it belongs to uid {}; the owner can allow other users with ipc_allow_uids)",
            self.owner
        ))
    }
}

/// Connections counted in total and per peer; a [`Slot`] gives its place back when dropped.
#[derive(Debug)]
pub struct Slots<K> {
    /// Most connections in all.
    max_total: usize,
    /// Most connections one peer may hold.
    max_per_peer: usize,
    /// Connections held now.
    total: Cell<usize>,
    /// Connections held now, per peer.
    per_peer: RefCell<HashMap<K, usize>>,
}

/// Why a connection got no slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    /// Every slot is taken.
    #[error("too many connections")]
    Total,
    /// This peer holds as many as one peer may.
    #[error("too many connections from this user ({0} at most)")]
    Peer(usize),
}

impl<K: Hash + Eq + Clone> Slots<K> {
    /// Room for `max_total` connections, at most `max_per_peer` from any one peer.
    pub fn new(max_total: usize, max_per_peer: usize) -> Rc<Slots<K>> {
        Rc::new(Slots { max_total, max_per_peer, total: Cell::new(0), per_peer: RefCell::default() })
    }

    /// Takes a slot for `peer`. `reserve` slots of the total are kept for peers that
    /// `privileged` is true for (the owner, so that another user cannot lock them out).
    pub fn take(self: &Rc<Self>, peer: K, privileged: bool, reserve: usize) -> Result<Slot<K>, Full> {
        let limit = if privileged { self.max_total } else { self.max_total.saturating_sub(reserve) };
        if self.total.get() >= limit {
            return Err(Full::Total);
        }
        let mut per_peer = self.per_peer.borrow_mut();
        let held = per_peer.entry(peer.clone()).or_insert(0);
        if *held >= self.max_per_peer {
            return Err(Full::Peer(self.max_per_peer));
        }
        *held += 1;
        self.total.set(self.total.get() + 1);
        Ok(Slot { slots: self.clone(), peer })
    }

    /// Connections held now.
    pub fn in_use(&self) -> usize {
        self.total.get()
    }
}

/// A held connection slot.
#[derive(Debug)]
pub struct Slot<K: Hash + Eq> {
    slots: Rc<Slots<K>>,
    peer: K,
}

impl<K: Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        self.slots.total.set(self.slots.total.get() - 1);
        let mut per_peer = self.slots.per_peer.borrow_mut();
        if let Some(held) = per_peer.get_mut(&self.peer) {
            *held -= 1;
            if *held == 0 {
                per_peer.remove(&self.peer);
            }
        }
    }
}

/// The uid of a Unix-socket peer.
pub fn unix_peer_uid(stream: &std::os::unix::net::UnixStream) -> io::Result<u32> {
    Ok(rustix::net::sockopt::socket_peercred(stream)?.uid.as_raw())
}

/// Looks up which local user is behind a TCP connection, with one netlink socket kept open.
#[derive(Debug)]
pub struct LoopbackPeers {
    /// Connected to the kernel and non-blocking.
    socket: netlink_sys::Socket,
    /// Numbers the requests, so that a stale answer is never taken for the current one.
    sequence: Cell<u32>,
}

impl LoopbackPeers {
    /// Opens the netlink socket. Fails where sock_diag is not available (a sandbox without
    /// `AF_NETLINK`): then the daemon cannot tell users apart on TCP.
    pub fn open() -> io::Result<LoopbackPeers> {
        let socket = netlink_sys::Socket::new(NETLINK_SOCK_DIAG)?;
        // Connected to the kernel (port 0): a connected netlink socket takes datagrams from
        // the kernel only, so no other process can slip a forged answer in.
        socket.connect(&netlink_sys::SocketAddr::new(0, 0))?;
        socket.set_non_blocking(true)?;
        Ok(LoopbackPeers { socket, sequence: Cell::new(0) })
    }

    /// The uid that owns the client end of `stream`, an accepted connection: the socket whose
    /// local address is our peer address and whose remote address is ours. `None` when no
    /// local process holds such a socket (the client is on another machine, or has closed it:
    /// the kernel then answers for an ownerless socket with uid 0, which must not pass for
    /// root).
    pub fn uid_of(&self, stream: &TcpStream) -> io::Result<Option<u32>> {
        self.tcp_socket_uid(stream.peer_addr()?, stream.local_addr()?)
    }

    fn tcp_socket_uid(&self, local: SocketAddr, remote: SocketAddr) -> io::Result<Option<u32>> {
        let sequence = self.sequence.get().wrapping_add(1);
        self.sequence.set(sequence);
        self.socket.send(&request(local, remote, sequence), 0)?;
        let mut buffer = vec![0u8; 1024];
        loop {
            // Never waits: the answer was queued inside send(). WouldBlock is an error here.
            let n = self.socket.recv(&mut &mut buffer[..], 0)?;
            let reply = NetlinkMessage::<SockDiagMessage>::deserialize(&buffer[..n.min(buffer.len())])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("sock_diag: {e}")))?;
            if reply.header.sequence_number != sequence {
                continue; // the answer to an earlier request that gave up on an error
            }
            return match reply.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) if r.header.inode == 0 => {
                    Ok(None)
                }
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => Ok(Some(r.header.uid)),
                NetlinkPayload::Error(e) if e.raw_code() == -libc_enoent() => Ok(None),
                NetlinkPayload::Error(e) => Err(e.to_io()),
                other => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("sock_diag: unexpected answer {other:?}"),
                )),
            };
        }
    }
}

/// `SOCK_DIAG_BY_FAMILY` for the one TCP socket bound to `local` and connected to `remote`.
fn request(local: SocketAddr, remote: SocketAddr, sequence: u32) -> Vec<u8> {
    // A dual-stack [::] listener sees an IPv4 client as ::ffff:a.b.c.d: ask as AF_INET then.
    let unmap = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (local, remote) = match (unmap(local), unmap(remote)) {
        (l @ SocketAddr::V4(_), r @ SocketAddr::V4(_)) => (l, r),
        _ => (local, remote),
    };
    let family = if matches!(local.ip(), IpAddr::V4(_)) { AF_INET } else { AF_INET6 };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST; // one socket by its exact 4-tuple, not a dump
    header.sequence_number = sequence;
    let mut message = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: SocketId {
                source_port: local.port(),
                destination_port: remote.port(),
                source_address: local.ip(),
                destination_address: remote.ip(),
                interface_id: 0,
                // INET_DIAG_NOCOOKIE: match by address; with a zero cookie the kernel finds nothing.
                cookie: [0xff; 8],
            },
        })
        .into(),
    );
    message.finalize();
    let mut bytes = vec![0u8; message.buffer_len()];
    message.serialize(&mut bytes);
    bytes
}

/// ENOENT, the kernel's answer for "no such socket".
fn libc_enoent() -> i32 {
    rustix::io::Errno::NOENT.raw_os_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_names_both_users() {
        let policy = Policy { owner: 1000, allowed: Rc::from([1001, OVERFLOW_UID]) };
        assert!(policy.check(1000).is_ok() && policy.check(0).is_ok() && policy.check(1001).is_ok());
        assert!(policy.check(OVERFLOW_UID).unwrap_err().contains("never allowed"), "not even when listed");
        let refusal = policy.check(4242).unwrap_err();
        assert!(refusal.starts_with("uid 4242 may not use this robind (it belongs to uid 1000"), "{refusal}");
    }

    #[test]
    fn slots_bound_each_peer_and_keep_a_reserve_for_the_owner() {
        let slots: Rc<Slots<u32>> = Slots::new(4, 2);
        let a1 = slots.take(7, false, 1).unwrap();
        let _a2 = slots.take(7, false, 1).unwrap();
        assert_eq!(slots.take(7, false, 1).unwrap_err(), Full::Peer(2));
        let b = slots.take(8, false, 1).unwrap();
        assert_eq!(slots.take(9, false, 1).unwrap_err(), Full::Total, "the last slot is the owner's");
        let _owner = slots.take(1000, true, 1).unwrap();
        drop((a1, b));
        assert_eq!(slots.in_use(), 2);
        assert!(slots.take(7, false, 1).is_ok(), "a dropped slot is free again");
    }

    #[test]
    fn loopback_clients_are_told_apart_by_uid() -> io::Result<()> {
        let peers = LoopbackPeers::open()?;
        for address in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(listener) = std::net::TcpListener::bind(address) else { continue }; // no IPv6 here
            let client = TcpStream::connect(listener.local_addr()?)?;
            let (accepted, _) = listener.accept()?;
            let me = rustix::process::geteuid().as_raw();
            assert_eq!(peers.uid_of(&accepted)?, Some(me), "{address}");
            drop(client);
            // The client closed its end: no process holds it, so there is no user to report.
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert_eq!(peers.uid_of(&accepted)?, None, "{address} after close");
        }
        Ok(())
    }
}
