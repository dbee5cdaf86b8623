//! `robind` started with sockets passed in through `LISTEN_FDS`, as a systemd .socket unit does.
mod support;

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

use serde_json::json;
use support::{Daemon, Sandbox, http_get, ipc_call};

#[test]
fn serves_on_inherited_http_and_ipc_sockets() {
    let sandbox = Sandbox::new();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = tcp.local_addr().unwrap();
    std::fs::create_dir_all(sandbox.dir.path().join("activated")).unwrap();
    let socket_path = sandbox.dir.path().join("activated/robind.sock");
    let unix = std::os::unix::net::UnixListener::bind(&socket_path).unwrap();

    let mut cmd = sandbox.command();
    cmd.env("LISTEN_FDS", "2").env("LISTEN_FDNAMES", "http:ipc");
    let (tcp_fd, unix_fd) = (tcp.as_raw_fd(), unix.as_raw_fd());
    // SAFETY: the closure runs in the forked child before exec and calls only dup2(2), which is
    // async-signal-safe. Going through spare descriptors first means neither source is
    // overwritten before it is copied, whatever numbers the test's sockets happen to have.
    unsafe {
        cmd.pre_exec(move || {
            for (from, to) in [(tcp_fd, 200), (unix_fd, 201), (200, 3), (201, 4)] {
                if libc::dup2(from, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut daemon = Daemon::start(cmd);

    assert_eq!(daemon.http_addr(), addr, "it serves the inherited listener, not --listen");
    assert_eq!(http_get(addr, "/api/1/ping").0, 200);
    assert_eq!(ipc_call(&socket_path, r#"{"id":1,"method":"ping"}"#), json!({"id":1,"result":true}));
    assert!(!sandbox.socket().exists(), "no socket of its own when one was passed in");
    assert_eq!(daemon.ready["ipc"], socket_path.to_str().unwrap());

    daemon.signal("TERM");
    assert!(daemon.wait_exit().success());
    assert!(socket_path.exists(), "the activated socket belongs to the service manager");
}
