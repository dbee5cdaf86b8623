//! The real `robind` binary: start-up, the HTTP listener, the control socket, lifecycle.
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{Daemon, Sandbox, eventually, http_get, http_raw, ipc_call, parse_response};

#[test]
fn answers_ping_on_an_ephemeral_port() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let addr = daemon.http_addr();
    assert_ne!(addr.port(), 0, "the ready line reports the real port");
    assert_eq!(http_get(addr, "/api/1/ping"), (200, json!({"result": true, "message": ""})));
}

#[test]
fn ready_line_says_where_it_listens() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    assert_eq!(daemon.ready["pid"], daemon.pid());
    assert_eq!(daemon.ready["ipc"], sandbox.socket().to_str().unwrap());
    assert_eq!(daemon.ready["ws"], format!("ws://{}/ws", daemon.http_addr()));
    assert!(sandbox.socket().exists());
}

#[test]
fn the_log_names_the_chosen_port() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let port = daemon.http_addr().to_string();
    eventually("the log line naming the port", || daemon_log_contains(&daemon, &port));
}

fn daemon_log_contains(daemon: &Daemon, needle: &str) -> bool {
    // stderr arrives line by line on another thread; keep what we already read.
    thread_local!(static SEEN: std::cell::RefCell<String> = Default::default());
    SEEN.with(|seen| {
        seen.borrow_mut().push_str(&daemon.stderr());
        seen.borrow().contains(needle)
    })
}

#[test]
fn unknown_paths_and_bad_requests_get_json_errors() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let addr = daemon.http_addr();

    let (status, body) = http_get(addr, "/api/1/nope");
    assert_eq!(status, 404);
    assert_eq!(body["result"], serde_json::Value::Null);
    assert!(body["message"].as_str().unwrap().contains("/api/1/nope"));

    let (status, _) = parse_response(&http_raw(
        addr,
        b"POST /api/1/ping HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    ));
    assert_eq!(status, 405);

    let (status, body) = parse_response(&http_raw(addr, b"\x16\x03\x01 not http at all\r\n\r\n"));
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().starts_with("malformed request"));

    let huge = format!("GET /api/1/ping HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(64 * 1024));
    assert_eq!(parse_response(&http_raw(addr, huge.as_bytes())).0, 431);

    let body = format!("POST /api/1/ping HTTP/1.1\r\nContent-Length: {}\r\n\r\n", 8 * 1024 * 1024);
    assert_eq!(parse_response(&http_raw(addr, body.as_bytes())).0, 413);

    // After all that, the daemon still answers.
    assert_eq!(http_get(addr, "/api/1/ping").0, 200);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let two = b"GET /api/1/ping HTTP/1.1\r\n\r\nGET /api/1/ping HTTP/1.1\r\nConnection: close\r\n\r\n";
    let reply = http_raw(daemon.http_addr(), two);
    assert_eq!(reply.matches("HTTP/1.1 200 OK").count(), 2, "{reply}");
}

#[test]
fn control_socket_answers_and_rejects_bad_input() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let socket = sandbox.socket();
    assert_eq!(ipc_call(&socket, r#"{"id":1,"method":"ping"}"#), json!({"id":1,"result":true}));
    let status = ipc_call(&socket, r#"{"id":2,"method":"status","params":{}}"#);
    assert_eq!(status["result"]["pid"], daemon.pid());
    assert_eq!(status["result"]["http"], daemon.http_addr().to_string());
    assert_eq!(ipc_call(&socket, "{oops")["error"]["code"], -32700);
    assert_eq!(ipc_call(&socket, r#"{"id":3,"method":"launch"}"#)["error"]["code"], -32601);
    let long = format!(r#"{{"id":4,"method":"{}"}}"#, "x".repeat(100 * 1024));
    let reply = ipc_call(&socket, &long);
    assert!(reply["error"]["message"].as_str().unwrap().contains("longer than"), "{reply}");
}

#[test]
fn robinctl_talks_to_the_daemon() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_robinctl"))
        .arg("--socket")
        .arg(sandbox.socket())
        .args(["--json", "status"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["pid"], daemon.pid());

    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_robinctl"))
        .arg("--socket")
        .arg(sandbox.dir.path().join("nothing.sock"))
        .arg("ping")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(3), "3: no daemon reachable");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("is robind running?"));
}

#[test]
fn sigterm_exits_zero_quickly_and_removes_the_socket() {
    let sandbox = Sandbox::new();
    let mut daemon = Daemon::start(sandbox.command());
    assert!(sandbox.socket().exists());
    let sent = Instant::now();
    daemon.signal("TERM");
    let status = daemon.wait_exit();
    let took = sent.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    assert!(!sandbox.socket().exists(), "the socket file is removed");
}

#[test]
fn sigint_also_shuts_down_cleanly() {
    let sandbox = Sandbox::new();
    let mut daemon = Daemon::start(sandbox.command());
    daemon.signal("INT");
    assert!(daemon.wait_exit().success());
}

#[test]
fn second_instance_on_the_same_data_dir_fails_naming_dir_and_pid() {
    let sandbox = Sandbox::new();
    let first = Daemon::start(sandbox.command());
    let out = sandbox.command().output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(sandbox.data_dir().to_str().unwrap()), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", first.pid())), "{stderr}");
    // The first one is untouched: its socket is still there and it still answers.
    assert_eq!(ipc_call(&sandbox.socket(), r#"{"id":1,"method":"ping"}"#)["result"], true);
}

#[test]
fn a_live_socket_of_another_daemon_is_not_stolen() {
    let sandbox = Sandbox::new();
    let _first = Daemon::start(sandbox.command());
    let other = Sandbox::new();
    let out = other.command().arg("--runtime-dir").arg(sandbox.runtime_dir()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another running daemon"));
    assert_eq!(ipc_call(&sandbox.socket(), r#"{"id":1,"method":"ping"}"#)["result"], true);
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.runtime_dir()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(sandbox.socket()).unwrap()); // leaves the file
    let _daemon = Daemon::start(sandbox.command());
    assert_eq!(ipc_call(&sandbox.socket(), r#"{"id":1,"method":"ping"}"#)["result"], true);
}

#[test]
fn bad_flag_values_fail_startup_naming_the_flag() {
    let sandbox = Sandbox::new();
    let out = sandbox.command().args(["--listen", "localhost:80"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--listen") && stderr.contains("localhost:80"), "{stderr}");

    let out = sandbox.command().env("ROBIN_FEATURE_WEBSOCKET", "true").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown feature flag 'websocket'"));

    let out = sandbox.command().arg("--frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--frobnicate"));
    assert!(!sandbox.data_dir().exists(), "a failed start changes nothing on disk");
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sandbox = Sandbox::new();
    let out =
        sandbox.command().arg("--listen").arg(taken.local_addr().unwrap().to_string()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen on"));
}

#[test]
fn print_config_shows_values_and_sources() {
    let sandbox = Sandbox::new();
    let file = sandbox.dir.path().join("robin.toml");
    std::fs::write(&file, "log_level = \"warn\"\n[features]\nscheduler = false\n").unwrap();
    let out = sandbox
        .command()
        .arg("--config")
        .arg(&file)
        .arg("--print-config")
        .env("ROBIN_FEATURE_IPC", "false")
        .env_remove("ROBIN_LOG")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:0\"  # flag --listen"), "{text}");
    assert!(text.contains(&format!("log_level = \"warn\"  # config file {}", file.display())), "{text}");
    assert!(text.contains("scheduler = false  # config file"), "{text}");
    assert!(text.contains("ipc = false  # environment ROBIN_FEATURE_IPC"), "{text}");
    assert!(text.contains("websockets = true  # default"), "{text}");
}

#[test]
fn ipc_feature_off_means_no_socket() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start({
        let mut cmd = sandbox.command();
        cmd.env("ROBIN_FEATURE_IPC", "false");
        cmd
    });
    assert_eq!(daemon.ready["ipc"], serde_json::Value::Null);
    assert!(!sandbox.socket().exists());
    assert_eq!(http_get(daemon.http_addr(), "/api/1/ping").0, 200);
}

#[test]
fn http_api_feature_off_answers_404_with_the_reason() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start({
        let mut cmd = sandbox.command();
        cmd.env("ROBIN_FEATURE_HTTP_API", "false");
        cmd
    });
    let (status, body) = http_get(daemon.http_addr(), "/api/1/ping");
    assert_eq!(status, 404);
    assert!(body["message"].as_str().unwrap().contains("http_api"));
}

#[test]
fn an_idle_daemon_has_at_most_two_threads() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let tasks = format!("/proc/{}/task", daemon.pid());
    // The ready line is written from a short-lived blocking-pool thread; it retires when idle.
    eventually("the thread count to settle at 2 or fewer", || {
        std::fs::read_dir(&tasks).map(|d| d.count() <= 2).unwrap_or(false)
    });
    let names: Vec<String> = std::fs::read_dir(&tasks)
        .unwrap()
        .map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).unwrap().trim().to_string())
        .collect();
    assert!(names.len() <= 2, "threads: {names:?}");
}

#[test]
fn generated_api_token_is_private_and_required() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    let daemon = Daemon::start({
        let mut cmd = sandbox.command();
        cmd.arg("--generate-api-token");
        cmd
    });
    let token_file =
        std::path::PathBuf::from(daemon.ready["api_token_file"].as_str().expect("the ready line names it"));
    assert_eq!(token_file, sandbox.runtime_dir().join("api-token"));
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(token.len(), 64);

    // Liveness probes need no token (as in rotki); everything else does.
    assert_eq!(http_get(daemon.http_addr(), "/api/1/ping").0, 200);
    assert_eq!(http_get(daemon.http_addr(), "/api/1/tasks").0, 401);
    assert_eq!(http_get(daemon.http_addr(), &format!("/api/1/tasks?token={token}")).0, 200);
}

#[test]
fn unreadable_token_file_is_a_clear_startup_error() {
    let sandbox = Sandbox::new();
    let missing = sandbox.dir.path().join("no-such-token");
    let out = sandbox.command().arg("--api-token-file").arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read API token file") && stderr.contains("no-such-token"), "{stderr}");
}

#[test]
fn websocket_clients_get_going_away_at_shutdown() {
    use async_tungstenite::tungstenite::Message;
    use futures_lite::StreamExt;
    let sandbox = Sandbox::new();
    let mut daemon = Daemon::start(sandbox.command());
    let url = daemon.ready["ws"].as_str().unwrap().to_string();
    smol::block_on(async {
        let mut client = support::notifier_loop::connect(&url).await;
        eventually("the client to be counted", || {
            ipc_call(&sandbox.socket(), r#"{"id":1,"method":"status"}"#)["result"]["notifier"]["clients"] == 1
        });
        daemon.signal("TERM");
        loop {
            match client.next().await {
                Some(Ok(Message::Close(Some(frame)))) => {
                    assert_eq!(u16::from(frame.code), 1001);
                    break;
                }
                Some(Ok(_)) => continue,
                other => panic!("expected close 1001, got {other:?}"),
            }
        }
    });
    assert!(daemon.wait_exit().success());
}

#[test]
fn the_default_database_is_open_before_ready() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    let status = ipc_call(&sandbox.socket(), r#"{"id":1,"method":"status"}"#);
    let database = &status["result"]["database"];
    assert_eq!(database["path"], sandbox.data_dir().join("robin.db").to_str().unwrap());
    assert_eq!(database["encrypted"], false);
    assert_eq!(database["schema_version"], robin::db::MIGRATIONS.last().unwrap().version);
}

#[test]
fn a_database_from_a_newer_robin_stops_startup_clearly() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.data_dir()).unwrap();
    let conn = rusqlite::Connection::open(sandbox.data_dir().join("robin.db")).unwrap();
    conn.execute_batch("PRAGMA user_version = 99;").unwrap();
    drop(conn);
    let out = sandbox.command().output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("schema version 99") && stderr.contains("upgrade robin"), "{stderr}");
}

#[test]
fn data_written_before_sigterm_is_there_after_restart() {
    let sandbox = Sandbox::new();
    let mut daemon = Daemon::start(sandbox.command());
    // Acknowledged writes through the API, then a SIGTERM right away: all of them survive.
    for i in 0..20 {
        let asset = format!("asset{i}");
        let added = ipc_call(
            &sandbox.socket(),
            &json!({"id": i, "method": "assets.add", "params": {"asset": asset}}).to_string(),
        );
        assert_eq!(added["result"]["added"], true, "{added}");
    }
    daemon.signal("TERM");
    assert!(daemon.wait_exit().success());
    let _daemon = Daemon::start(sandbox.command());
    let listed = ipc_call(&sandbox.socket(), r#"{"id":1,"method":"assets.list"}"#)["result"].clone();
    assert_eq!(listed.as_array().map(Vec::len), Some(20), "{listed}");
}

fn with_config(sandbox: &Sandbox, toml: &str) -> std::process::Command {
    let file = sandbox.dir.path().join("robin.toml");
    std::fs::write(&file, toml).unwrap();
    let mut cmd = sandbox.command();
    cmd.arg("--config").arg(file);
    cmd
}

fn backups(sandbox: &Sandbox) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(sandbox.data_dir().join("backups"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn the_daily_backup_runs_once_and_its_last_run_survives_a_restart() {
    let sandbox = Sandbox::new();
    let config = "[scheduler]\nstart_on = true\ntick_secs = 1\n";
    let mut daemon = Daemon::start(with_config(&sandbox, config));
    eventually("the first backup", || backups(&sandbox).len() == 1);
    let status = ipc_call(&sandbox.socket(), r#"{"id":1,"method":"status"}"#)["result"].clone();
    let job = &status["scheduler"]["jobs"][0];
    assert_eq!(job["name"], "db_backup");
    assert!(job["last_run"].as_u64().is_some(), "{status}");
    let backup = rusqlite::Connection::open(&backups(&sandbox)[0]).unwrap();
    let check: String = backup.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    daemon.signal("TERM");
    assert!(daemon.wait_exit().success());

    // After a restart the job is not due for a day: the scheduler loads its last run from the
    // database (the same time, not a new one) and makes no second backup.
    let last_run = job["last_run"].clone();
    let _daemon = Daemon::start(with_config(&sandbox, config));
    let scheduler = |sandbox: &Sandbox| {
        ipc_call(&sandbox.socket(), r#"{"id":1,"method":"status"}"#)["result"]["scheduler"]["jobs"][0].clone()
    };
    eventually("the stored last run to be loaded", || scheduler(&sandbox)["last_run"] == last_run);
    // Several ticks (1 s each) pass with the job still not due.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(scheduler(&sandbox)["last_run"], last_run, "not run again");
    assert_eq!(backups(&sandbox).len(), 1);
}

#[test]
fn scheduling_and_tasks_are_driven_over_the_control_socket() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    let socket = sandbox.socket();
    let status = ipc_call(&socket, r#"{"id":1,"method":"status"}"#);
    assert_eq!(status["result"]["scheduler"]["should_schedule"], false, "off until asked, as rotki");
    assert_eq!(
        ipc_call(&socket, r#"{"id":2,"method":"schedule","params":{"enabled":true}}"#)["result"],
        true
    );
    let status = ipc_call(&socket, r#"{"id":3,"method":"status"}"#);
    assert_eq!(status["result"]["scheduler"]["should_schedule"], true);
    let bad = ipc_call(&socket, r#"{"id":4,"method":"schedule","params":{"enabled":"yes"}}"#);
    assert_eq!(bad["error"]["code"], -32602);
    assert_eq!(
        ipc_call(&socket, r#"{"id":5,"method":"tasks.cancel","params":{"id":12345}}"#)["result"]["cancelled"],
        0
    );
    let bad = ipc_call(&socket, r#"{"id":6,"method":"tasks.cancel","params":{"id":1,"name_prefix":"x"}}"#);
    assert!(bad["error"]["message"].as_str().unwrap().contains("one of them"));
    let list = ipc_call(&socket, r#"{"id":7,"method":"tasks.list"}"#);
    assert!(list["result"]["running"].is_array() && list["result"]["recent"].is_array(), "{list}");
}

#[test]
fn scheduler_feature_off_means_no_scheduler() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start({
        let mut cmd = sandbox.command();
        cmd.env("ROBIN_FEATURE_SCHEDULER", "false");
        cmd
    });
    let socket = sandbox.socket();
    assert_eq!(
        ipc_call(&socket, r#"{"id":1,"method":"status"}"#)["result"]["scheduler"],
        serde_json::Value::Null
    );
    let reply = ipc_call(&socket, r#"{"id":2,"method":"schedule","params":{"enabled":true}}"#);
    assert!(reply["error"]["message"].as_str().unwrap().contains("feature flag scheduler"), "{reply}");
}
