//! A daemon that never half-dies, takes its configuration live, and starts only where it is
//! safe to (issue 12), through the real binary.
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Daemon, PATIENCE, Sandbox, http_get, ipc_call};

/// Runs robind until it exits (bounded); its status and stderr.
fn run_to_exit(mut cmd: std::process::Command) -> (Option<i32>, String) {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("robind did not exit within {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (child.wait().unwrap().code(), stderr)
}

/// A daemon that panics in `site` once `trigger` touches it must exit 1 with the reason.
fn core_task_failure_stops_the_daemon(site: &str, trigger: impl FnOnce(&Sandbox, &Daemon)) {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.command();
    cmd.env("ROBIN_INJECT_PANIC", site);
    let mut daemon = Daemon::start(cmd);
    trigger(&sandbox, &daemon);
    let status = daemon.wait_exit();
    assert_eq!(status.code(), Some(1), "{site}: a failed core task is a failure exit");
    let log = daemon.log();
    assert!(log.contains(&format!("injected fault in {site}")), "{site}: {log}");
    assert!(log.contains("shutting down so that the service manager can restart robind"), "{log}");
    assert!(log.contains("stopped"), "{site}: the graceful path ran: {log}");
    assert!(!sandbox.socket().exists(), "the socket file was removed");
}

#[test]
fn a_panicking_listener_takes_the_daemon_down_cleanly() {
    core_task_failure_stops_the_daemon("http", |_, daemon| {
        let _ = TcpStream::connect(daemon.http_addr());
    });
}

#[test]
fn a_panicking_control_socket_takes_the_daemon_down_cleanly() {
    core_task_failure_stops_the_daemon("ipc", |sandbox, _| {
        let _ = std::os::unix::net::UnixStream::connect(sandbox.socket());
    });
}

#[test]
fn a_failed_database_writer_takes_the_daemon_down_and_no_write_is_claimed() {
    core_task_failure_stops_the_daemon("writer", |sandbox, _| {
        let answer =
            ipc_call(&sandbox.socket(), r#"{"id":1,"method":"assets.add","params":{"asset":"bitcoin"}}"#);
        assert!(answer["error"].is_object(), "the write is not reported as done: {answer}");
    });
}

#[test]
fn a_panicking_scheduler_takes_the_daemon_down_cleanly() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.command();
    // The scheduler ticks as soon as the daemon is up; it may not even print its ready line.
    cmd.env("ROBIN_INJECT_PANIC", "scheduler");
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("core task scheduler panicked: injected fault in scheduler"), "{stderr}");
}

fn with_config_file(sandbox: &Sandbox, toml: &str) -> (std::process::Command, std::path::PathBuf) {
    let path = sandbox.dir.path().join("robin.toml");
    std::fs::write(&path, toml).unwrap();
    let mut cmd = sandbox.command();
    cmd.env_remove("ROBIN_LOG").arg("--config").arg(&path);
    (cmd, path)
}

/// A request the listener answers 400 and logs at debug level.
fn malformed_request(daemon: &Daemon) {
    let mut stream = TcpStream::connect(daemon.http_addr()).unwrap();
    stream.write_all(b"\x01\x02 not http\r\n\r\n").unwrap();
    support::read_until_closed(&mut stream, PATIENCE);
}

#[test]
fn sighup_changes_the_log_level_live_and_sigusr1_logs_a_status_line() {
    let sandbox = Sandbox::new();
    let (cmd, path) = with_config_file(&sandbox, "log_level = \"info\"\n");
    let daemon = Daemon::start(cmd);
    malformed_request(&daemon);
    assert_eq!(http_get(daemon.http_addr(), "/api/1/ping").0, 200);
    assert!(!daemon.log().contains("malformed request"), "no debug lines at info");

    std::fs::write(&path, "log_level = \"debug\"\n[database]\nreaders = 3\n").unwrap();
    daemon.signal("HUP");
    let log = daemon.wait_for_log("reloaded the configuration");
    assert!(log.contains("log_level = \"debug\""), "{log}");
    assert!(log.contains("[database] changed; restart robind to apply it"), "{log}");
    malformed_request(&daemon);
    daemon.wait_for_log("malformed request");
    let status = ipc_call(&sandbox.socket(), r#"{"id":1,"method":"status"}"#);
    assert_eq!(status["result"]["database"]["readers"], 2, "the running value stays");

    std::fs::write(&path, "log_level = [not toml\n").unwrap();
    daemon.signal("HUP");
    daemon.wait_for_log("keeping the running configuration");

    daemon.signal("USR1");
    let log = daemon.wait_for_log("status: robind");
    assert!(log.contains("tasks running"), "{log}");
    assert_eq!(
        ipc_call(&sandbox.socket(), r#"{"id":1,"method":"ping"}"#)["result"],
        true,
        "alive after both"
    );
}

#[test]
fn a_listener_other_machines_can_reach_needs_a_token() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.command();
    cmd.args(["--listen", "0.0.0.0:0"]);
    let (code, stderr) = run_to_exit(cmd);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("refusing to listen on 0.0.0.0:"), "{stderr}");
    assert!(stderr.contains("--generate-api-token"), "says what to do: {stderr}");

    let mut cmd = sandbox.command();
    cmd.args(["--listen", "0.0.0.0:0", "--generate-api-token"]);
    let daemon = Daemon::start(cmd);
    assert!(daemon.ready["http"].as_str().unwrap().starts_with("0.0.0.0:"));
}

#[test]
fn a_runtime_directory_others_can_write_is_refused_and_left_alone() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.runtime_dir()).unwrap();
    std::fs::set_permissions(sandbox.runtime_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, stderr) = run_to_exit(sandbox.command());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("is writable by other users (mode 0777)"), "{stderr}");
    let mode = std::fs::metadata(sandbox.runtime_dir()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o777, "robind does not chmod a directory it did not create");
}

#[test]
fn a_page_on_another_site_cannot_drain_messages_with_an_image() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    // An error nobody saw is kept for /api/1/messages.
    ipc_call(
        &sandbox.socket(),
        r#"{"id":1,"method":"settings.set","params":{"name":"rpc_url","value":"http://127.0.0.1:9/"}}"#,
    );
    ipc_call(
        &sandbox.socket(),
        r#"{"id":1,"method":"accounts.add","params":{"address":"0x0000000000000000000000000000000000000001"}}"#,
    );
    ipc_call(&sandbox.socket(), r#"{"id":1,"method":"tasks.run","params":{"job":"query_balances"}}"#);
    support::eventually("the job's error to be kept", || {
        let status = ipc_call(&sandbox.socket(), r#"{"id":1,"method":"status"}"#);
        status["result"]["tasks"]["recent"].as_array().is_some_and(|r| !r.is_empty())
    });
    let image = "GET /api/1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: cross-site\r\nSec-Fetch-Dest: image\r\nConnection: close\r\n\r\n";
    let reply = support::http_raw(daemon.http_addr(), image.as_bytes());
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
    assert!(reply.contains("Connection: close"), "{reply}");
    let (status, kept) = http_get(daemon.http_addr(), "/api/1/messages");
    assert_eq!(status, 200);
    let errors = kept["result"]["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().is_some_and(|e| e.starts_with("query_balances died with exception"))),
        "not drained: {kept}"
    );
}

#[test]
fn content_length_must_be_plain_digits() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let request = "POST /api/1/control HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: +2\r\n\r\n{}";
    let reply = support::http_raw(daemon.http_addr(), request.as_bytes());
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("invalid Content-Length"), "{reply}");
}

#[test]
fn a_data_directory_others_can_write_is_refused_and_files_are_private_under_any_umask() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.data_dir()).unwrap();
    std::fs::set_permissions(sandbox.data_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, stderr) = run_to_exit(sandbox.command());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("is writable by other users (mode 0777)"), "{stderr}");
    assert!(std::fs::read_dir(sandbox.data_dir()).unwrap().next().is_none(), "nothing was created");

    // A directory others may read (an installer's `mkdir -p`), and robind started with umask
    // 022: the database and its companions are still the owner's alone.
    std::fs::set_permissions(sandbox.data_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let template = sandbox.command();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(r#"umask 022; exec "$0" "$@""#).arg(template.get_program()).args(template.get_args());
    for (key, value) in template.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let daemon = Daemon::start(cmd);
    // Whatever else robind creates is private too: it runs with umask 077.
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap();
    assert!(status.lines().any(|l| l == "Umask:\t0077"), "{status}");
    let reply = ipc_call(&sandbox.socket(), r#"{"id":1,"method":"assets.add","params":{"asset":"bitcoin"}}"#);
    assert_eq!(reply["result"]["added"], true, "{reply}");
    for name in ["robin.db", "robin.db-wal", "robin.db-shm", "robind.lock"] {
        let mode = std::fs::metadata(sandbox.data_dir().join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name} is {mode:04o}");
    }
    drop(daemon);
}

#[test]
fn a_reload_that_blocks_on_its_file_does_not_stop_sigterm() {
    let sandbox = Sandbox::new();
    let (cmd, path) = with_config_file(&sandbox, "log_level = \"info\"\n");
    let mut daemon = Daemon::start(cmd);
    // A FIFO nobody writes to: opening it for reading waits for ever.
    std::fs::remove_file(&path).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(made.success());
    daemon.signal("HUP");
    daemon.wait_for_log("SIGHUP: reading the configuration again");
    daemon.signal("TERM");
    let status = daemon.wait_exit();
    let log = daemon.log();
    assert!(status.success(), "{status:?}: {log}");
    assert!(log.contains("received SIGTERM; shutting down"), "{log}");
    assert!(!log.contains("reloaded the configuration"), "{log}");
}
