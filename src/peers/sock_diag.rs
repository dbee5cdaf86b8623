//! The kernel's answer to "which user owns this TCP socket": `NETLINK_SOCK_DIAG`, as `ss -e`.
//!
//! Two questions are asked. [`LoopbackPeers::uid_of`] finds the client end of an accepted
//! connection by its exact 4-tuple. [`LoopbackPeers::listener_uids`] dumps the listening
//! sockets on one port, to tell who serves a web page whose origin is on this host. Both are
//! answered inside `send(2)` (a dump's later parts inside each `recv(2)`), so neither waits.
use std::cell::Cell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, TCP_TIME_WAIT};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags};
use netlink_sys::protocols::NETLINK_SOCK_DIAG;

/// `TCP_NEW_SYN_RECV`: a half-open server-side request, reported with uid 0 like TIME_WAIT.
const TCP_NEW_SYN_RECV: u8 = 12;
/// Room for one datagram of a dump: the kernel fills up to 32 KiB per `recv`.
const DUMP_BUFFER: usize = 32 * 1024;

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
        Ok(LoopbackPeers { socket: open_socket()?, sequence: Cell::new(0) })
    }

    /// The uid that owns the client end of `stream`, an accepted connection: the socket whose
    /// local address is our peer address and whose remote address is ours. `None` when no
    /// local process's user can be named: the client is on another machine, has closed its
    /// socket with a reset, or its closed socket reports no user.
    ///
    /// A socket its process has closed (inode 0) keeps the uid that created it while it is
    /// still a full socket (FIN_WAIT1 with data to deliver, CLOSING, LAST_ACK), and that uid
    /// is used. Once the kernel turns it into a timewait socket it reports uid 0 instead, which
    /// must not pass for root, so a closed socket reporting uid 0 counts as unknown. That
    /// happens in TIME_WAIT, and (checked on Linux 6.18 with `ss -tanei`) at once for an
    /// orphaned FIN_WAIT2 socket whenever `tcp_fin_timeout` is at most 60 s, the default: the
    /// usual "send and close" client is unknown by the time robind asks. Before kernel 4.10
    /// every closed socket reported uid 0. So an unknown client on this host must be refused
    /// by the caller (see [`is_local`](super::is_local)).
    pub fn uid_of(&self, stream: &TcpStream) -> io::Result<Option<u32>> {
        self.tcp_socket_uid(stream.peer_addr()?, stream.local_addr()?)
    }

    fn tcp_socket_uid(&self, local: SocketAddr, remote: SocketAddr) -> io::Result<Option<u32>> {
        let sequence = self.sequence.get().wrapping_add(1);
        self.sequence.set(sequence);
        self.socket.send(&exact_request(local, remote, sequence), 0)?;
        let mut buffer = vec![0u8; 1024];
        loop {
            // Never waits: the answer was queued inside send(). WouldBlock is an error here.
            let n = self.socket.recv(&mut &mut buffer[..], 0)?;
            let reply = parse(&buffer[..n.min(buffer.len())])?;
            if reply.header.sequence_number != sequence {
                continue; // the answer to an earlier request that gave up on an error
            }
            return match reply.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => Ok(owner(&r)),
                NetlinkPayload::Error(e) if e.raw_code() == -libc_enoent() => Ok(None),
                NetlinkPayload::Error(e) => Err(e.to_io()),
                other => Err(unexpected(&other)),
            };
        }
    }

    /// The uids of the TCP sockets listening on `port` that a browser on this host could reach
    /// for a loopback origin: bound to a loopback or wildcard address, IPv4 and IPv6. Empty
    /// when nothing listens there.
    ///
    /// A dump on a socket of its own: a dump left unfinished would make the kept socket answer
    /// the next dump with EBUSY. One socket, two dumps (one per family) filtered by port in
    /// the kernel: a few syscalls, no waiting.
    pub fn listener_uids(&self, port: u16) -> io::Result<Vec<u32>> {
        let socket = open_socket()?;
        let mut uids = Vec::new();
        let mut buffer = vec![0u8; DUMP_BUFFER];
        for (sequence, family) in [(1, AF_INET), (2, AF_INET6)] {
            socket.send(&listener_dump(family, port, sequence), 0)?;
            'datagrams: loop {
                let n = socket.recv(&mut &mut buffer[..], 0)?;
                let mut rest = &buffer[..n.min(buffer.len())];
                while !rest.is_empty() {
                    let reply = parse(rest)?;
                    let length = (reply.header.length as usize).next_multiple_of(4).max(16);
                    rest = &rest[length.min(rest.len())..];
                    match reply.payload {
                        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                            let bound = r.header.socket_id.source_address;
                            if r.header.socket_id.source_port == port && reachable_from_loopback(bound) {
                                uids.push(r.header.uid);
                            }
                        }
                        NetlinkPayload::Done(_) => break 'datagrams,
                        // No IPv6 in this kernel: nothing listens there.
                        NetlinkPayload::Error(e) if family == AF_INET6 && e.raw_code() == -libc_enoent() => {
                            break 'datagrams;
                        }
                        NetlinkPayload::Error(e) => return Err(e.to_io()),
                        other => return Err(unexpected(&other)),
                    }
                }
            }
        }
        Ok(uids)
    }
}

/// A non-blocking netlink socket connected to the kernel.
fn open_socket() -> io::Result<netlink_sys::Socket> {
    let socket = netlink_sys::Socket::new(NETLINK_SOCK_DIAG)?;
    // Connected to the kernel (port 0): a connected netlink socket takes datagrams from the
    // kernel only, so no other process can slip a forged answer in.
    socket.connect(&netlink_sys::SocketAddr::new(0, 0))?;
    socket.set_non_blocking(true)?;
    Ok(socket)
}

/// The user to name for a socket the kernel found (see [`LoopbackPeers::uid_of`]).
fn owner(response: &InetResponse) -> Option<u32> {
    let header = &response.header;
    let closed = header.inode == 0;
    let no_user = matches!(header.state, TCP_TIME_WAIT | TCP_NEW_SYN_RECV) || header.uid == 0;
    (!(closed && no_user)).then_some(header.uid)
}

/// Whether a browser connecting to a loopback name could reach a listener bound to `bound`.
fn reachable_from_loopback(bound: IpAddr) -> bool {
    let bound = bound.to_canonical();
    bound.is_loopback() || bound.is_unspecified()
}

fn parse(bytes: &[u8]) -> io::Result<NetlinkMessage<SockDiagMessage>> {
    NetlinkMessage::<SockDiagMessage>::deserialize(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("sock_diag: {e}")))
}

fn unexpected(payload: &NetlinkPayload<SockDiagMessage>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("sock_diag: unexpected answer {payload:?}"))
}

/// `SOCK_DIAG_BY_FAMILY` for the one TCP socket bound to `local` and connected to `remote`.
fn exact_request(local: SocketAddr, remote: SocketAddr, sequence: u32) -> Vec<u8> {
    // A dual-stack [::] listener sees an IPv4 client as ::ffff:a.b.c.d: ask as AF_INET then.
    let unmap = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (local, remote) = match (unmap(local), unmap(remote)) {
        (l @ SocketAddr::V4(_), r @ SocketAddr::V4(_)) => (l, r),
        _ => (local, remote),
    };
    let family = if matches!(local.ip(), IpAddr::V4(_)) { AF_INET } else { AF_INET6 };
    let socket_id = SocketId {
        source_port: local.port(),
        destination_port: remote.port(),
        source_address: local.ip(),
        destination_address: remote.ip(),
        interface_id: 0,
        // INET_DIAG_NOCOOKIE: match by address; with a zero cookie the kernel finds nothing.
        cookie: [0xff; 8],
    };
    // One socket by its exact 4-tuple, not a dump.
    serialize(NLM_F_REQUEST, sequence, family, StateFlags::all(), socket_id)
}

/// A dump of the TCP sockets of `family` listening on `port` (the kernel filters by port).
fn listener_dump(family: u8, port: u16, sequence: u32) -> Vec<u8> {
    let any =
        if family == AF_INET { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(Ipv6Addr::UNSPECIFIED) };
    let socket_id = SocketId {
        source_port: port,
        destination_port: 0,
        source_address: any,
        destination_address: any,
        interface_id: 0,
        cookie: [0xff; 8],
    };
    serialize(NLM_F_REQUEST | NLM_F_DUMP, sequence, family, StateFlags::LISTEN, socket_id)
}

fn serialize(flags: u16, sequence: u32, family: u8, states: StateFlags, socket_id: SocketId) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = sequence;
    let request =
        InetRequest { family, protocol: IPPROTO_TCP, extensions: ExtensionFlags::empty(), states, socket_id };
    let mut message = NetlinkMessage::new(header, SockDiagMessage::InetRequest(request).into());
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
    use std::time::Duration;

    #[test]
    fn loopback_clients_are_told_apart_by_uid_until_time_wait() -> io::Result<()> {
        let peers = LoopbackPeers::open()?;
        let me = rustix::process::geteuid().as_raw();
        for address in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(listener) = std::net::TcpListener::bind(address) else { continue }; // no IPv6 here
            let client = TcpStream::connect(listener.local_addr()?)?;
            let (accepted, _) = listener.accept()?;
            let (theirs, ours) = (accepted.peer_addr()?, accepted.local_addr()?);
            assert_eq!(peers.uid_of(&accepted)?, Some(me), "{address}");
            drop(client);
            // Closed by its process with nothing left to send: an orphaned FIN_WAIT2 socket,
            // which the kernel keeps as a timewait socket reporting uid 0: no user.
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(peers.tcp_socket_uid(theirs, ours)?, None, "{address} after close");
            // Both ends closed: the client end is in TIME_WAIT, which reports no user either.
            accepted.shutdown(std::net::Shutdown::Both)?;
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(peers.tcp_socket_uid(theirs, ours)?, None, "{address} in TIME_WAIT");
        }
        Ok(())
    }

    #[test]
    fn listeners_are_found_by_port_in_both_families() -> io::Result<()> {
        let peers = LoopbackPeers::open()?;
        let me = rustix::process::geteuid().as_raw();
        let v4 = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = v4.local_addr()?.port();
        assert_eq!(peers.listener_uids(port)?, vec![me]);
        if let Ok(_v6) = std::net::TcpListener::bind(("::1", port)) {
            assert_eq!(peers.listener_uids(port)?, vec![me, me], "both families");
        }
        drop(v4);
        // A connection to some other listener does not count as listening on its port.
        let other = std::net::TcpListener::bind("127.0.0.1:0")?;
        let _client = TcpStream::connect(other.local_addr()?)?;
        assert!(peers.listener_uids(port)?.is_empty(), "nothing listens there any more");
        Ok(())
    }
}
