//! `robind` under a service manager: NOTIFY_SOCKET, the watchdog and socket activation.
//! The test owns the datagram socket that stands in for systemd.
mod support;

use std::os::unix::net::UnixDatagram;

use support::{Daemon, Sandbox};

fn recv(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a notification before the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Reads notifications until one has the line `wanted` (STATUS= updates may come first).
fn recv_until(socket: &UnixDatagram, wanted: &str) -> String {
    for _ in 0..20 {
        let message = recv(socket);
        if message.lines().any(|l| l == wanted) {
            return message;
        }
    }
    panic!("no {wanted} in 20 notifications");
}

#[test]
fn sends_ready_then_stopping_to_notify_socket() {
    let sandbox = Sandbox::new();
    let path = sandbox.dir.path().join("notify.sock");
    let systemd = UnixDatagram::bind(&path).unwrap();
    systemd.set_read_timeout(Some(support::PATIENCE)).unwrap();

    let mut cmd = sandbox.command();
    cmd.env("NOTIFY_SOCKET", &path);
    let mut daemon = Daemon::start(cmd);

    let ready = recv_until(&systemd, "READY=1");
    let status = ready.lines().find_map(|l| l.strip_prefix("STATUS=")).expect("a STATUS= line");
    assert!(status.contains(&daemon.http_addr().to_string()), "{status}");

    daemon.signal("TERM");
    recv_until(&systemd, "STOPPING=1");
    assert!(daemon.wait_exit().success());
}

#[test]
fn feeds_the_watchdog_at_half_its_period() {
    let sandbox = Sandbox::new();
    let path = sandbox.dir.path().join("notify.sock");
    let systemd = UnixDatagram::bind(&path).unwrap();
    systemd.set_read_timeout(Some(support::PATIENCE)).unwrap();

    let mut cmd = sandbox.command();
    cmd.env("NOTIFY_SOCKET", &path).env("WATCHDOG_USEC", "2000000");
    let _daemon = Daemon::start(cmd);
    let mut pings = Vec::new();
    for _ in 0..30 {
        if recv(&systemd).lines().any(|l| l == "WATCHDOG=1") {
            pings.push(std::time::Instant::now());
        }
        if pings.len() == 4 {
            break;
        }
    }
    assert_eq!(pings.len(), 4, "WATCHDOG=1 keeps coming");
    // Half of the 2 s period: well inside it, and not a busy loop. Loose bounds (the median of
    // three gaps) keep a loaded machine from failing the test; a full period or none would.
    let mut gaps: Vec<f64> = pings.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    gaps.sort_by(f64::total_cmp);
    assert!((0.6..=1.5).contains(&gaps[1]), "pinged every {:.2} s; expected about 1 s: {gaps:?}", gaps[1]);
}

#[test]
fn abstract_notify_socket_is_supported() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("robin-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let systemd = UnixDatagram::bind_addr(&addr).unwrap();
    systemd.set_read_timeout(Some(support::PATIENCE)).unwrap();
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.command();
    cmd.env("NOTIFY_SOCKET", format!("@{name}"));
    let _daemon = Daemon::start(cmd);
    recv_until(&systemd, "READY=1");
}
