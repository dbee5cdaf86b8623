//! Another local user is refused on every transport, before anything runs, unless the owner
//! allowed them (issue 12). Clients run as other users with `setpriv`, which needs root: CI runs
//! as root. Elsewhere the tests fail unless ROBIN_SKIP_PRIVILEGED_TESTS=1 says to skip them, so
//! a green run never hides that they did not run.
mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use serde_json::json;
use support::{Daemon, Sandbox, ipc_call};

/// The kernel's overflow uid, `nobody`: the hostile user of these tests.
const NOBODY: u32 = 65534;
/// A user the owner allows (no /etc/passwd entry is needed to run as a uid).
const FRIEND: u32 = 4242;

fn privileged() -> bool {
    support::privileged("other_users")
}

/// Runs `program ARGS` as `uid`.
fn as_user(uid: u32, program: &str, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid", &uid.to_string(), "--regid", &uid.to_string(), "--clear-groups"])
        .arg(program)
        .args(args)
        .output()
        .unwrap()
}

/// Lets every user reach the sandbox's files, so that only robind's own checks can refuse.
fn open_the_doors(sandbox: &Sandbox) {
    for (path, mode) in
        [(sandbox.dir.path().to_path_buf(), 0o755), (sandbox.runtime_dir(), 0o755), (sandbox.socket(), 0o666)]
    {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// `curl` as `uid`: the status code and the body.
fn curl_as(uid: u32, args: &[&str]) -> (u16, String) {
    let mut all = vec!["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"];
    all.extend_from_slice(args);
    let out = as_user(uid, "/usr/bin/curl", &all);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn start(sandbox: &Sandbox, config: Option<&str>) -> Daemon {
    let mut cmd = sandbox.command();
    if let Some(text) = config {
        let path = sandbox.dir.path().join("robin.toml");
        std::fs::write(&path, text).unwrap();
        cmd.arg("--config").arg(&path);
    }
    let daemon = Daemon::start(cmd);
    open_the_doors(sandbox);
    daemon
}

#[test]
fn another_user_is_refused_on_the_socket_and_over_tcp_and_nothing_changes() {
    if !privileged() {
        return;
    }
    let sandbox = Sandbox::new();
    let daemon = start(&sandbox, None);
    let base = format!("http://{}", daemon.http_addr());
    let socket = sandbox.socket();

    let robinctl =
        as_user(NOBODY, env!("CARGO_BIN_EXE_robinctl"), &["--socket", socket.to_str().unwrap(), "ping"]);
    assert_eq!(robinctl.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&robinctl.stderr);
    assert!(stderr.contains("uid 65534 may not use this robind"), "{stderr}");

    let (status, body) = curl_as(NOBODY, &[&format!("{base}/api/1/ping")]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("uid 65534 may not use this robind"), "{body}");

    // What the issue's attacker did: read the settings, point rpc_url at their own server,
    // unlock a user, drop a backup in their own directory, all refused before any route ran.
    let drop_zone = tempfile::tempdir().unwrap();
    std::fs::set_permissions(drop_zone.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let backup_path = drop_zone.path().join("stolen.db");
    for request in [
        json!({"method": "settings.get"}),
        json!({"method": "settings.set", "params": {"name": "rpc_url", "value": "http://127.0.0.1:1/evil"}}),
        json!({"method": "unlock", "params": {"username": "alice", "password": "guess"}}),
        json!({"method": "backup", "params": {"path": backup_path.to_str().unwrap()}}),
    ] {
        let body = request.to_string();
        let (status, answer) = curl_as(
            NOBODY,
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "--data",
                &body,
                &format!("{base}/api/1/control"),
            ],
        );
        assert_eq!(status, 403, "{request}: {answer}");
    }
    let (status, _) =
        curl_as(NOBODY, &["-H", "Upgrade: websocket", "-H", "Connection: Upgrade", &format!("{base}/ws")]);
    assert_eq!(status, 403, "the WebSocket too");

    assert!(!backup_path.exists(), "no backup was written");
    assert!(!sandbox.data_dir().join("users/alice").exists(), "no user database was created");
    let rpc_url = ipc_call(&socket, r#"{"id":1,"method":"settings.get","params":{"name":"rpc_url"}}"#);
    assert_eq!(rpc_url["result"]["rpc_url"], "", "rpc_url unchanged");
    // The owner is still served on both.
    assert_eq!(ipc_call(&socket, r#"{"id":2,"method":"ping"}"#)["result"], true);
    assert_eq!(support::http_get(daemon.http_addr(), "/api/1/ping").0, 200);
}

#[test]
fn an_allowed_user_is_served_on_both_and_nobody_never_is() {
    if !privileged() {
        return;
    }
    let sandbox = Sandbox::new();
    // Even listed, nobody stays out: it is also how a user namespace shows every unmapped user.
    let daemon = start(&sandbox, Some(&format!("ipc_allow_uids = [{FRIEND}, {NOBODY}]\n")));
    let socket = sandbox.socket();
    let served =
        as_user(FRIEND, env!("CARGO_BIN_EXE_robinctl"), &["--socket", socket.to_str().unwrap(), "ping"]);
    assert!(served.status.success(), "{}", String::from_utf8_lossy(&served.stderr));
    assert_eq!(String::from_utf8_lossy(&served.stdout).trim(), "pong");
    let base = format!("http://{}", daemon.http_addr());
    assert_eq!(curl_as(FRIEND, &[&format!("{base}/api/1/ping")]).0, 200);

    let (status, body) = curl_as(NOBODY, &[&format!("{base}/api/1/ping")]);
    assert_eq!(status, 403);
    assert!(body.contains("never allowed"), "{body}");
}

#[test]
fn an_allowed_user_cannot_make_robind_write_files_with_its_owners_rights() {
    if !privileged() {
        return;
    }
    let sandbox = Sandbox::new();
    let daemon = start(&sandbox, Some(&format!("ipc_allow_uids = [{FRIEND}]\n")));
    // A file of the owner's that the friend cannot write itself.
    let notes = sandbox.dir.path().join("owners-notes.txt");
    std::fs::write(&notes, "the owner's notes").unwrap();
    let new_file = sandbox.dir.path().join("planted.db");
    let socket = sandbox.socket();
    for (path, overwrite) in [(&notes, true), (&new_file, false)] {
        let params = json!({"path": path, "overwrite": overwrite}).to_string();
        let line = format!(r#"{{"id":1,"method":"backup","params":{params}}}"#);
        let script = "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); \
                      s.sendall(sys.argv[2].encode()+b'\\n'); print(s.makefile().readline())";
        let out = as_user(FRIEND, "/usr/bin/python3", &["-c", script, socket.to_str().unwrap(), &line]);
        let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
        });
        assert_eq!(reply["error"]["code"], -32007, "{reply}");
        assert!(reply["error"]["message"].as_str().unwrap().contains(&format!("uid {FRIEND}")), "{reply}");
        let body = json!({"method": "backup", "params": {"path": path, "overwrite": overwrite}}).to_string();
        let url = format!("http://{}/api/1/control", daemon.http_addr());
        let (status, _) =
            curl_as(FRIEND, &["-X", "POST", "-H", "Content-Type: application/json", "-d", &body, &url]);
        assert_eq!(status, 403);
    }
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "the owner's notes");
    assert!(!new_file.exists());
    // The owner itself still may.
    let own =
        ipc_call(&socket, &json!({"id": 1, "method": "backup", "params": {"path": new_file}}).to_string());
    assert!(own["result"].is_object(), "{own}");
}

#[test]
fn a_data_directory_of_another_user_is_refused() {
    if !privileged() {
        return;
    }
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.data_dir()).unwrap();
    std::os::unix::fs::chown(sandbox.data_dir(), Some(FRIEND), Some(FRIEND)).unwrap();
    let out = sandbox.command().stdin(std::process::Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("belongs to uid {FRIEND}, not to robind's uid 0")), "{stderr}");
}
