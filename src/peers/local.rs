//! Whether a TCP client is on this host.
//!
//! A client on this host is another process, and the kernel can name its user; a client whose
//! user cannot be named (it closed its socket at once) must then be refused, never served as
//! if it came from another machine. Loopback alone is not enough: a `[::]` listener sees IPv4
//! clients as `::ffff:127.0.0.1`, and local users can also connect to the machine's own
//! addresses (`192.0.2.2`, `fd00::2`).
use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Whether `peer` is an address of this host: loopback (IPv4-mapped too), or an address one of
/// its interfaces holds.
///
/// The second test binds a UDP socket to the address, which the kernel allows only for an
/// address of its own: two syscalls, no waiting, no table to keep up to date. It errs on the
/// side of "local" (the client is then refused): on a host with `net.ipv4.ip_nonlocal_bind`
/// set any address binds, and a failure other than "not an address of mine" also counts as
/// local.
pub fn is_local(peer: SocketAddr) -> bool {
    let ip = peer.ip().to_canonical();
    if ip.is_loopback() || ip.is_unspecified() {
        return true;
    }
    let probe = match peer {
        // The scope id matters for link-local addresses.
        SocketAddr::V6(v6) if ip.is_ipv6() => {
            SocketAddr::V6(std::net::SocketAddrV6::new(*v6.ip(), 0, 0, v6.scope_id()))
        }
        _ => SocketAddr::new(ip, 0),
    };
    match UdpSocket::bind(probe) {
        Ok(_) => true,
        Err(err) => err.kind() != io::ErrorKind::AddrNotAvailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_mapped_and_own_addresses_are_local() {
        for local in ["127.0.0.1:5", "127.1.2.3:5", "[::1]:5", "[::ffff:127.0.0.1]:5"] {
            assert!(is_local(local.parse().unwrap()), "{local}");
        }
        // TEST-NET-3: never assigned to a test machine.
        for remote in ["203.0.113.9:5", "[::ffff:203.0.113.9]:5", "[2001:db8::9]:5"] {
            assert!(!is_local(remote.parse().unwrap()), "{remote}");
        }
    }
}
