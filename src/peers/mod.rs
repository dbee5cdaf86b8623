//! Who may connect, and how many connections each may hold.
//!
//! Owns the rule every transport applies (the daemon's own user, root, and the users listed in
//! `ipc_allow_uids`; everyone else is refused before any request is read) and its live copy that
//! cuts a user's open connections when a reload stops allowing them ([`SharedPolicy`]), the
//! kernel lookups that tell which local user is behind a TCP connection or holds a listening
//! port ([`LoopbackPeers`]), whether an address is this host's own ([`is_local`]), the
//! per-peer connection slots that keep one peer from using up every connection ([`Slots`]),
//! and the rate limit on refusal log lines ([`RefusalLog`]).
//!
//! On a Unix socket the kernel reports the peer's credentials (`SO_PEERCRED`). On TCP it knows
//! them too, for a client on this host: [`LoopbackPeers`] asks with one `NETLINK_SOCK_DIAG`
//! request for the client's socket by its exact 4-tuple, the lookup `ss -e` does, and reads the
//! uid that created it. The kernel answers inside `send(2)`, so the lookup costs two syscalls on
//! the loop thread and never waits (the socket is non-blocking; an answer that is not there is
//! an error).
//!
//! May touch: kernel queries about the sockets it is handed, and about listening TCP sockets.
//! Nothing else.
mod local;
mod policy;
mod refusals;
mod slots;
mod sock_diag;

use std::io;

pub use local::is_local;
pub use policy::{OVERFLOW_UID, Policy, SharedPolicy};
pub use refusals::RefusalLog;
pub use slots::{Full, Slot, Slots};
pub use sock_diag::LoopbackPeers;

/// The uid of a Unix-socket peer.
pub fn unix_peer_uid(stream: &std::os::unix::net::UnixStream) -> io::Result<u32> {
    Ok(rustix::net::sockopt::socket_peercred(stream)?.uid.as_raw())
}
