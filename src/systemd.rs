//! systemd integration: the `sd_notify` protocol, the watchdog interval and socket activation.
//!
//! Owns the datagram socket to `$NOTIFY_SOCKET` and the sockets passed in through `LISTEN_FDS`.
//! Notifications are sent with a non-blocking [`Async`] datagram socket: a plain `send(2)` to a
//! unix datagram socket blocks when the receiver's queue is full, and it would block the loop.
//! The sd-notify crate does exactly that blocking send, which is why this file exists instead.
//!
//! May touch: the inherited fds. The daemon hands it the protocol's environment variables.
use std::ffi::OsStr;
use std::io;
use std::net::TcpListener;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener};
use std::time::Duration;

use async_io::Async;

/// The variable naming the service manager's notification socket.
pub const ENV_NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// The watchdog period in microseconds, set by systemd when `WatchdogSec=` is configured.
pub const ENV_WATCHDOG_USEC: &str = "WATCHDOG_USEC";
/// The pid the watchdog applies to; when set and not ours, the watchdog is someone else's.
pub const ENV_WATCHDOG_PID: &str = "WATCHDOG_PID";
/// Colon-separated names of the activated sockets (`FileDescriptorName=` in the .socket unit).
pub const ENV_LISTEN_FDNAMES: &str = "LISTEN_FDNAMES";
/// The `FileDescriptorName=` of the HTTP/WebSocket listener.
pub const FD_NAME_HTTP: &str = "http";
/// The `FileDescriptorName=` of the control socket.
pub const FD_NAME_IPC: &str = "ipc";

/// A connection to the service manager; does nothing when `NOTIFY_SOCKET` was not set.
#[derive(Debug)]
pub struct ServiceManager {
    /// Connected to `$NOTIFY_SOCKET`, when set.
    socket: Option<Async<UnixDatagram>>,
}

impl ServiceManager {
    /// Connects to `$NOTIFY_SOCKET` when it is set (a path, or `@name` for the abstract
    /// namespace).
    pub fn connect(notify_socket: Option<&OsStr>) -> io::Result<ServiceManager> {
        let Some(target) = notify_socket.filter(|t| !t.is_empty()) else {
            return Ok(ServiceManager { socket: None });
        };
        let bytes = target.as_encoded_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None => SocketAddr::from_pathname(target)?,
        };
        let socket = UnixDatagram::unbound()?;
        socket.connect_addr(&addr)?;
        Ok(ServiceManager { socket: Some(Async::new(socket)?) })
    }

    /// Whether a service manager is listening.
    pub fn is_enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// Sends newline-separated assignments such as `READY=1\nSTATUS=listening`.
    pub async fn notify(&self, state: &str) -> io::Result<()> {
        match &self.socket {
            Some(socket) => socket.send(state.as_bytes()).await.map(drop),
            None => Ok(()),
        }
    }
}

/// How often to send `WATCHDOG=1`: half the period systemd asked for (`$WATCHDOG_USEC`), when
/// it asked us (`$WATCHDOG_PID` unset or ours).
pub fn watchdog_interval(usec: Option<&OsStr>, pid: Option<&OsStr>) -> Option<Duration> {
    let usec: u64 = usec?.to_str()?.parse().ok()?;
    if let Some(pid) = pid.filter(|p| !p.is_empty()) {
        if pid.to_str()?.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Sockets handed over by the service manager (`LISTEN_FDS`), sorted by role.
#[derive(Debug, Default)]
pub struct ActivatedSockets {
    /// The HTTP/WebSocket listener.
    pub http: Option<TcpListener>,
    /// The control socket.
    pub ipc: Option<UnixListener>,
}

impl ActivatedSockets {
    /// Takes the inherited sockets. Named ones (`http`, `ipc`) go by name; unnamed ones by type.
    ///
    /// Call it before any other thread exists: listenfd clears `LISTEN_FDS` and `LISTEN_PID`
    /// from the environment so that children do not inherit them.
    /// `fd_names` is `$LISTEN_FDNAMES`.
    pub fn take(fd_names: Option<&OsStr>) -> io::Result<ActivatedSockets> {
        let names: Vec<String> = fd_names
            .and_then(|n| n.to_str())
            .map(|n| n.split(':').map(str::to_string).collect())
            .unwrap_or_default();
        let mut fds = listenfd::ListenFd::from_env();
        let mut sockets = ActivatedSockets::default();
        for index in 0..fds.len() {
            let name = names.get(index).map(String::as_str).unwrap_or("");
            match name {
                FD_NAME_HTTP => sockets.http = fds.take_tcp_listener(index)?,
                FD_NAME_IPC => sockets.ipc = fds.take_unix_listener(index)?,
                _ if sockets.http.is_none()
                    && fds.take_tcp_listener(index).is_ok_and(|l| {
                        sockets.http = l;
                        sockets.http.is_some()
                    }) => {}
                _ if sockets.ipc.is_none() => sockets.ipc = fds.take_unix_listener(index)?,
                _ => log::warn!("ignoring extra activated socket #{index} ({name:?})"),
            }
        }
        Ok(sockets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_is_half_the_period_and_only_for_us() {
        let usec = Some(OsStr::new("2000000"));
        assert_eq!(watchdog_interval(usec, None), Some(Duration::from_secs(1)));
        let ours = std::process::id().to_string();
        assert_eq!(watchdog_interval(usec, Some(OsStr::new(&ours))), Some(Duration::from_secs(1)));
        assert_eq!(watchdog_interval(usec, Some(OsStr::new("1"))), None);
        assert_eq!(watchdog_interval(None, None), None);
    }

    #[test]
    fn notify_reaches_a_datagram_socket() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path)?;
        let manager = ServiceManager::connect(Some(path.as_os_str()))?;
        assert!(manager.is_enabled());
        async_io::block_on(manager.notify("READY=1\nSTATUS=up"))?;
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf)?;
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=up");
        Ok(())
    }

    #[test]
    fn notify_without_a_socket_is_a_no_op() -> io::Result<()> {
        let manager = ServiceManager::connect(None)?;
        assert!(!manager.is_enabled());
        async_io::block_on(manager.notify("READY=1"))
    }
}
