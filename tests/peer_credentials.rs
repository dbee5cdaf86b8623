//! SO_PEERCRED: a client running as another user is refused, unless configured. Switching
//! users needs root (CI runs as root); elsewhere the test says so and does nothing.
mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use support::{Daemon, Sandbox};

const NOBODY: u32 = 65534;

fn as_nobody(sandbox: &Sandbox) -> Output {
    // Let nobody reach the socket file at all, so that only the credential check can refuse.
    for (path, mode) in
        [(sandbox.dir.path().to_path_buf(), 0o755), (sandbox.runtime_dir(), 0o755), (sandbox.socket(), 0o666)]
    {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    Command::new("setpriv")
        .args(["--reuid", &NOBODY.to_string(), "--regid", &NOBODY.to_string(), "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_robinctl"))
        .arg("--socket")
        .arg(sandbox.socket())
        .arg("ping")
        .output()
        .unwrap()
}

#[test]
fn another_user_is_refused_unless_allowed() {
    if !rustix::process::getuid().is_root() {
        eprintln!("peer_credentials: needs root to run a client as another user; not run");
        return;
    }
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let refused = as_nobody(&sandbox);
    assert_eq!(refused.status.code(), Some(1), "{}", String::from_utf8_lossy(&refused.stderr));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("uid 65534 may not use this socket"), "{stderr}");
    drop(daemon);

    let allowed = Sandbox::new();
    let config = allowed.dir.path().join("robin.toml");
    std::fs::write(&config, format!("ipc_allow_uids = [{NOBODY}]\n")).unwrap();
    let _daemon = Daemon::start({
        let mut cmd = allowed.command();
        cmd.arg("--config").arg(&config);
        cmd
    });
    let served = as_nobody(&allowed);
    assert!(served.status.success(), "{}", String::from_utf8_lossy(&served.stderr));
    assert_eq!(String::from_utf8_lossy(&served.stdout).trim(), "pong");
}
