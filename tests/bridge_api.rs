//! The cross-process bridge's control API against the real daemon: `broadcast` and
//! `messages.add` from another process, and external tasks that live and die with the control
//! socket connection that began them. The Python client is tested on top of this in
//! tests/python/test_bridge.py.
mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde_json::{Value, json};
use support::{Daemon, PATIENCE, Sandbox, eventually, http_get, ipc_call};

/// One control-socket connection that stays open, as a bridge client holds it.
struct Connection {
    reader: BufReader<UnixStream>,
    next_id: u64,
}

impl Connection {
    fn open(socket: &Path) -> Connection {
        let stream = UnixStream::connect(socket).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Connection { reader: BufReader::new(stream), next_id: 1 }
    }

    fn line(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line:?}"))
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"id": id, "method": method, "params": params}).to_string() + "\n";
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();
        let reply = self.line();
        assert_eq!(reply["id"], id, "{reply}");
        reply
    }
}

fn call(sandbox: &Sandbox, method: &str, params: Value) -> Value {
    ipc_call(&sandbox.socket(), &json!({"id": 1, "method": method, "params": params}).to_string())
}

/// `GET /api/1/tasks/<id>`'s result, once the task finished.
fn finished_outcome(daemon: &Daemon, id: u64) -> Value {
    let mut outcome = Value::Null;
    eventually("the task's outcome", || {
        let (_, body) = http_get(daemon.http_addr(), &format!("/api/1/tasks/{id}"));
        outcome = body["result"].clone();
        outcome["status"] == "completed"
    });
    outcome
}

#[test]
fn broadcast_checks_each_payload_against_its_type_and_returns_its_seq() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let sent = call(
        &sandbox,
        "broadcast",
        json!({"type": "refresh_balances", "data": {"type": "blockchain_balances", "blockchain": "eth"}}),
    );
    let seq = sent["result"]["seq"].as_u64().unwrap_or_else(|| panic!("{sent}"));
    let again = call(
        &sandbox,
        "broadcast",
        json!({"type": "legacy", "data": {"verbosity": "error", "value": "from python"}}),
    );
    assert_eq!(again["result"]["seq"], seq + 1);

    for (params, named) in [
        (
            json!({"type": "progress_updates", "data": {"subtype": "multiple_prices_query_status", "total": "3", "processed": 1}}),
            "data.total",
        ),
        (
            json!({"type": "db_upgrade_status", "data": {"start_version": 1, "target_version": 2, "current_upgrade": {"to_version": "x", "total_steps": 1, "current_step": 1}}}),
            "data.current_upgrade.to_version",
        ),
        (json!({"type": "legacy", "data": {"value": "no verbosity"}}), "missing field `verbosity`"),
        (
            json!({"type": "legacy", "data": {"verbosity": "error", "value": "v", "colour": "red"}}),
            "unknown field `colour`",
        ),
        (
            json!({"type": "evm_transaction_status", "data": {}}),
            "unknown message type 'evm_transaction_status'",
        ),
        (json!({"data": {}}), "expected a string \"type\""),
    ] {
        let refused = call(&sandbox, "broadcast", params.clone());
        assert_eq!(refused["error"]["code"], -32602, "{params}: {refused}");
        let message = refused["error"]["message"].as_str().unwrap();
        assert!(message.contains(named), "{params}: {message}");
    }
    // Nothing refused was sent: the next message follows the last accepted one.
    let next = call(&sandbox, "messages.add", json!({"verbosity": "warning", "value": "careful"}));
    assert_eq!(next["result"]["seq"], seq + 2, "{next}");
    // With no UI connected, errors and warnings wait for GET /api/1/messages, as robin's own.
    let (_, kept) = http_get(daemon.http_addr(), "/api/1/messages");
    // (Other kept types, such as this refresh_balances, come first as JSON text.)
    let errors = kept["result"]["errors"].as_array().unwrap();
    assert_eq!(errors.last(), Some(&json!("from python")), "{kept}");
    assert_eq!(kept["result"]["warnings"], json!(["careful"]), "{kept}");
    let refused = call(&sandbox, "messages.add", json!({"verbosity": "info", "value": "x"}));
    assert!(refused["error"]["message"].as_str().unwrap().contains("\"error\" or \"warning\""), "{refused}");
}

#[test]
fn an_external_task_is_tracked_like_robins_own_and_fails_when_its_client_goes() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let mut client = Connection::open(&sandbox.socket());
    let id = client.call("tasks.begin", json!({"name": "import_csv", "total": 4}))["result"]["task_id"]
        .as_u64()
        .unwrap();
    let listed = call(&sandbox, "tasks.list", json!({}));
    assert_eq!(listed["result"]["running"][0]["name"], "import_csv", "{listed}");
    let (_, pending) = http_get(daemon.http_addr(), "/api/1/tasks");
    assert_eq!(pending["result"]["pending"], json!([id]), "{pending}");
    assert_eq!(client.call("tasks.progress", json!({"id": id, "processed": 2}))["result"], true);
    // Another connection can neither report nor end it.
    let mut other = Connection::open(&sandbox.socket());
    let stolen = other.call("tasks.end", json!({"id": id, "result": "mine"}));
    assert!(stolen["error"]["message"].as_str().unwrap().contains("not open on this connection"), "{stolen}");
    assert_eq!(client.call("tasks.end", json!({"id": id, "result": {"rows": 4}}))["result"], true);
    let outcome = finished_outcome(&daemon, id);
    assert_eq!(outcome["outcome"]["result"], json!({"rows": 4}), "{outcome}");
    assert_eq!(outcome["status_code"], 200);

    // A failure with exception_is_error reaches the user like a robin task's.
    let failing =
        client.call("tasks.begin", json!({"name": "sync_kraken"}))["result"]["task_id"].as_u64().unwrap();
    client.call("tasks.end", json!({"id": failing, "error": "kraken: invalid API key"}));
    let outcome = finished_outcome(&daemon, failing);
    assert_eq!(outcome["status_code"], 500, "{outcome}");
    assert!(outcome["outcome"]["message"].as_str().unwrap().contains("kraken: invalid API key"));

    // A client that goes away leaves nothing running for ever.
    let orphan =
        client.call("tasks.begin", json!({"name": "long_job"}))["result"]["task_id"].as_u64().unwrap();
    drop(client);
    let outcome = finished_outcome(&daemon, orphan);
    assert_eq!(outcome["status_code"], 500, "{outcome}");
    assert!(outcome["outcome"]["message"].as_str().unwrap().contains("the client went away"), "{outcome}");
    let (_, kept) = http_get(daemon.http_addr(), "/api/1/messages");
    let errors = kept["result"]["errors"].to_string();
    assert!(errors.contains("kraken: invalid API key") && errors.contains("the client went away"), "{kept}");
}

#[test]
fn cancelling_an_external_task_tells_its_client_on_its_connection() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    let mut client = Connection::open(&sandbox.socket());
    let id = client.call("tasks.begin", json!({"name": "slow_report", "total": 10}))["result"]["task_id"]
        .as_u64()
        .unwrap();
    let cancelled = call(&sandbox, "tasks.cancel", json!({"id": id}));
    assert_eq!(cancelled["result"]["cancelled"], 1, "{cancelled}");
    // Unasked: the notification arrives on the client's connection between requests.
    let notice = client.line();
    assert_eq!(notice, json!({"method": "task_cancelled", "params": {"task_id": id, "name": "slow_report"}}));
    let late = client.call("tasks.end", json!({"id": id, "result": null}));
    assert!(late["error"]["message"].as_str().unwrap().contains("not open on this connection"), "{late}");
}

#[test]
fn external_tasks_need_a_connection_of_their_own() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let body = json!({"method": "tasks.begin", "params": {"name": "x"}}).to_string();
    let request = format!(
        "POST /api/1/control HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, reply) = support::parse_response(&support::http_raw(daemon.http_addr(), request.as_bytes()));
    assert_eq!(status, 409, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("need the control socket"), "{reply}");
    for (params, reason) in [
        (json!({"name": ""}), "1 to 128 characters"),
        (json!({"name": "a\nb"}), "without control characters"),
        (json!({"name": "x", "total": -1}), "\"total\" must be a whole number"),
    ] {
        let refused = call(&sandbox, "tasks.begin", params.clone());
        assert!(refused["error"]["message"].as_str().unwrap().contains(reason), "{params}: {refused}");
    }
    let both = call(&sandbox, "tasks.end", json!({"id": 0, "result": 1, "error": "e"}));
    assert!(both["error"]["message"].as_str().unwrap().contains("not both"), "{both}");
}

#[test]
fn clients_tasks_never_hold_up_robins_own_jobs() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let mut client = Connection::open(&sandbox.socket());
    // More open tasks than the scheduler's limit (2), one named like a job.
    for name in ["db_backup", "import_csv", "sync_kraken"] {
        assert!(client.call("tasks.begin", json!({"name": name}))["result"]["task_id"].is_u64());
    }
    let run = call(&sandbox, "tasks.run", json!({"job": "db_backup"}));
    let id = run["result"]["task_id"].as_u64().unwrap_or_else(|| panic!("robin's job was held up: {run}"));
    let outcome = finished_outcome(&daemon, id);
    assert_eq!(outcome["status_code"], 200, "{outcome}");
}

#[test]
fn a_client_is_bounded_in_open_tasks_message_size_and_progress_rate() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let mut client = Connection::open(&sandbox.socket());
    for i in 0..robin::control::link::MAX_TASKS_PER_LINK {
        let begun = client.call("tasks.begin", json!({"name": format!("t{i}")}));
        assert!(begun["result"]["task_id"].is_u64(), "{begun}");
    }
    let refused = client.call("tasks.begin", json!({"name": "one too many"}));
    assert!(refused["error"]["message"].as_str().unwrap().contains("256 tasks open"), "{refused}");
    let big = "x".repeat(8 * 1024 + 1);
    let refused = call(&sandbox, "messages.add", json!({"verbosity": "error", "value": big}));
    assert!(refused["error"]["message"].as_str().unwrap().contains("longer than 8192 bytes"), "{refused}");

    // A tight loop of progress reports, changing the total each time, reaches the UI as the
    // first and the last only (the loop takes far less than the 250 ms rate limit).
    // Ending one makes room again.
    assert_eq!(client.call("tasks.end", json!({"id": 0, "result": null}))["result"], true);
    smol::block_on(async {
        use async_tungstenite::tungstenite::Message;
        use futures_lite::StreamExt;
        let mut ws = support::notifier_loop::connect(daemon.ready["ws"].as_str().unwrap()).await;
        let id =
            client.call("tasks.begin", json!({"name": "tight_loop", "total": 1000}))["result"]["task_id"]
                .as_u64()
                .unwrap();
        for processed in 1..=200u64 {
            let total = if processed % 2 == 0 { 1000 } else { 1001 };
            client.call("tasks.progress", json!({"id": id, "processed": processed, "total": total}));
        }
        client.call("tasks.end", json!({"id": id, "result": null}));
        client.call(
            "broadcast",
            json!({"type": "legacy", "data": {"verbosity": "warning", "value": "marker"}}),
        );
        let mut reports = Vec::new();
        loop {
            let Some(Ok(Message::Text(text))) = ws.next().await else { panic!("socket closed") };
            let message: Value = serde_json::from_str(text.as_str()).unwrap();
            if message["data"]["value"] == "marker" {
                break;
            }
            if message["data"]["subtype"] == "task_status" && message["data"]["task_id"] == id {
                reports.push(message["data"]["processed"].as_u64().unwrap());
            }
        }
        assert!(reports.len() <= 3, "rate-limited to first, last (and at most one between): {reports:?}");
        assert_eq!(reports.first(), Some(&0), "{reports:?}");
        assert_eq!(reports.last(), Some(&1000), "the end reports the whole: {reports:?}");
    });
}

#[test]
fn a_pipelining_client_does_not_starve_the_websocket_clients() {
    use async_tungstenite::tungstenite::Message;
    use futures_lite::StreamExt;
    let sandbox = Sandbox::new();
    // The hard bound set to the soft one (1024), so that a queue that grows past it closes
    // the client at once instead of starting the grace for slow readers.
    let config = sandbox.dir.path().join("robin.toml");
    std::fs::write(&config, "[websocket]\nclient_queue_max_messages = 1024\n").unwrap();
    let daemon = Daemon::start({
        let mut cmd = sandbox.command();
        cmd.arg("--config").arg(&config);
        cmd
    });
    // Three times a WebSocket client's queue (1024), written at once: without turns for the
    // writers between requests, the queue overflows and the client is closed as too slow.
    let count = 3 * 1024;
    smol::block_on(async {
        let mut ws = support::notifier_loop::connect(daemon.ready["ws"].as_str().unwrap()).await;
        let socket = sandbox.socket();
        let writer = std::thread::spawn(move || {
            let mut stream = UnixStream::connect(socket).unwrap();
            let mut lines = String::new();
            for i in 0..count {
                let value = format!("flood {i}");
                let request = json!({"id": i, "method": "broadcast", "params": {"type": "legacy", "data": {"verbosity": "warning", "value": value}}});
                lines.push_str(&format!("{request}\n"));
            }
            // Answers are read as they come, or robind would wait on a client not reading.
            let mut answers = BufReader::new(stream.try_clone().unwrap());
            let reader = std::thread::spawn(move || {
                (0..count).all(|_| {
                    let mut line = String::new();
                    answers.read_line(&mut line).is_ok_and(|n| n > 0)
                })
            });
            stream.write_all(lines.as_bytes()).unwrap();
            reader.join().unwrap()
        });
        let mut received = 0;
        while received < count {
            match ws.next().await {
                Some(Ok(Message::Text(_))) => received += 1,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("the WebSocket client was cut off after {received} messages: {other:?}"),
            }
        }
        assert!(writer.join().unwrap(), "every request was answered");
    });
}
