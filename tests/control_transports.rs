//! One command layer, three transports: the control socket, `POST /api/1/control`, and
//! requests sent in-band on `/ws`. Against the real daemon.
mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use async_tungstenite::tungstenite::Message;
use futures_lite::StreamExt;
use serde_json::{Value, json};
use support::{Daemon, PATIENCE, Sandbox, http_raw, ipc_call, parse_response};

fn http_control(daemon: &Daemon, body: &str) -> (u16, Value) {
    let request = format!(
        "POST /api/1/control HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    parse_response(&http_raw(daemon.http_addr(), request.as_bytes()))
}

async fn ws_request(daemon: &Daemon, body: &str) -> Value {
    let mut client = support::notifier_loop::connect(daemon.ready["ws"].as_str().unwrap()).await;
    client.send(Message::text(body)).await.unwrap();
    // Notifications (they carry "type") may arrive first; the response carries "id".
    loop {
        match client.next().await {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(text.as_str()).unwrap();
                if message.get("type").is_none() {
                    return message;
                }
            }
            Some(Ok(_)) => continue,
            other => panic!("no answer: {other:?}"),
        }
    }
}

/// Sends the same request over all three transports (for setup).
fn call_all(sandbox: &Sandbox, daemon: &Daemon, method: &str, params: Value) {
    let request = json!({"id": 1, "method": method, "params": params}).to_string();
    assert!(ipc_call(&sandbox.socket(), &request).get("result").is_some());
    assert_eq!(http_control(daemon, &request).0, 200);
    assert!(smol::block_on(ws_request(daemon, &request)).get("result").is_some());
}

#[test]
fn every_transport_gives_the_same_answers() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let socket = sandbox.socket();
    // Every command whose answer does not change between three identical calls.
    call_all(&sandbox, &daemon, "settings.set", json!({"name": "main_currency", "value": "EUR"}));
    call_all(&sandbox, &daemon, "assets.add", json!({"asset": "ethereum"}));
    // What no client saw (the start-up's db_upgrade_status) is handed out once; after that,
    // `messages` answers the same on every transport.
    let kept = ipc_call(&socket, r#"{"id":1,"method":"messages"}"#);
    assert_eq!(
        kept["result"]["errors"].as_array().map(Vec::len),
        Some(robin::db::MIGRATIONS.len()),
        "{kept}"
    );
    for (method, params) in [
        ("ping", json!({})),
        ("flags", json!({})),
        ("messages", json!({})),
        ("tasks.list", json!({})),
        ("schedule", json!({"enabled": true})),
        ("tasks.cancel", json!({"name_prefix": "nothing_"})),
        ("tasks.cancel", json!({"id": 999})),
        ("assets.list", json!({})),
        ("assets.remove", json!({"asset": "not_tracked"})),
        ("accounts.list", json!({})),
        ("accounts.remove", json!({"address": "0x00000000219ab540356cbb839cbe05303d7705fa"})),
        ("settings.get", json!({})),
        ("settings.get", json!({"name": "main_currency"})),
        ("settings.set", json!({"name": "main_currency", "value": "EUR"})),
    ] {
        let request = json!({"id": 9, "method": method, "params": params}).to_string();
        let over_ipc = ipc_call(&socket, &request);
        let (status, over_http) = http_control(&daemon, &request);
        let over_ws = smol::block_on(ws_request(&daemon, &request));
        assert_eq!(status, 200, "{method}: {over_http}");
        assert_eq!(over_ipc["id"], 9);
        assert_eq!(over_ws, over_ipc, "{method}: ws and ipc agree");
        assert_eq!(over_http, json!({"result": over_ipc["result"], "message": ""}), "{method}: http agrees");
    }
    let status_ipc = ipc_call(&socket, r#"{"id":1,"method":"status"}"#);
    let (_, status_http) = http_control(&daemon, r#"{"method":"status"}"#);
    assert_eq!(status_http["result"]["pid"], status_ipc["result"]["pid"]);
    // Commands that change state, once per transport, answer the same way.
    for (i, over) in ["ipc", "http", "ws"].iter().enumerate() {
        let address = format!("0x{:040x}", i + 1);
        let request = json!({"id": 5, "method": "accounts.add", "params": {"address": address}}).to_string();
        let result = match *over {
            "ipc" => ipc_call(&socket, &request)["result"].clone(),
            "http" => http_control(&daemon, &request).1["result"].clone(),
            _ => smol::block_on(ws_request(&daemon, &request))["result"].clone(),
        };
        assert_eq!(result, json!({"added": true}), "accounts.add over {over}");
    }
    assert_eq!(
        ipc_call(&socket, r#"{"id":6,"method":"accounts.list"}"#)["result"].as_array().unwrap().len(),
        3
    );
    let backup = sandbox.dir.path().join("b.db");
    let request = json!({"id": 7, "method": "backup", "params": {"path": backup}}).to_string();
    assert_eq!(http_control(&daemon, &request).1["result"]["path"], backup.to_str().unwrap());
}

#[test]
fn errors_name_the_problem_on_every_transport() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let unknown = r#"{"id":"x","method":"launch","params":{}}"#;
    let over_ipc = ipc_call(&sandbox.socket(), unknown);
    assert_eq!(over_ipc["error"]["code"], -32601);
    assert_eq!(smol::block_on(ws_request(&daemon, unknown)), over_ipc);
    let (status, body) = http_control(&daemon, unknown);
    assert_eq!(status, 404);
    assert_eq!(body["message"], over_ipc["error"]["message"]);

    let bad_params = r#"{"id":2,"method":"schedule","params":{"enabled":"maybe"}}"#;
    assert_eq!(http_control(&daemon, bad_params).0, 400);
    assert_eq!(smol::block_on(ws_request(&daemon, bad_params))["error"]["code"], -32602);

    let (status, body) = http_control(&daemon, "{not json");
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().starts_with("malformed JSON"), "{body}");
    let get = support::http_get(daemon.http_addr(), "/api/1/control");
    assert_eq!(get.0, 405);
}

#[test]
fn websocket_text_that_is_not_a_request_is_still_echoed() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    smol::block_on(async {
        let mut client = support::notifier_loop::connect(daemon.ready["ws"].as_str().unwrap()).await;
        for text in ["hello", r#"{"no": "method here"}"#, "[1, 2, 3]"] {
            client.send(Message::text(text)).await.unwrap();
            let Some(Ok(Message::Text(echo))) = client.next().await else { panic!("no echo for {text}") };
            assert_eq!(echo.as_str(), text);
        }
    });
}

#[test]
fn a_subscribed_control_socket_streams_what_websocket_clients_see() {
    let sandbox = Sandbox::new();
    let mut daemon = Daemon::start(sandbox.command());
    // The fresh database's migration was broadcast as message 1 before READY.
    let over_ws = smol::block_on(async {
        let url = format!("{}?since=0", daemon.ready["ws"].as_str().unwrap());
        let mut client = support::notifier_loop::connect(&url).await;
        let Some(Ok(Message::Text(text))) = client.next().await else { panic!("no replay") };
        serde_json::from_str::<Value>(text.as_str()).unwrap()
    });
    assert_eq!(over_ws["type"], "db_upgrade_status");
    assert_eq!(over_ws["seq"], 1);

    let stream = UnixStream::connect(sandbox.socket()).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    (&stream).write_all(b"{\"id\":1,\"method\":\"subscribe\",\"params\":{\"since\":0}}\n").unwrap();
    let mut lines = BufReader::new(&stream).lines();
    let ack: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(ack, json!({"id": 1, "result": {"subscribed": true}}));
    let replayed: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(replayed, over_ws, "the same message, byte for byte the same JSON");

    // At shutdown the stream ends (EOF) after the rest of the replay (one message per
    // migration step), and the daemon still exits cleanly.
    daemon.signal("TERM");
    let rest: Vec<Value> = lines.map_while(Result::ok).map(|l| serde_json::from_str(&l).unwrap()).collect();
    let steps = robin::db::MIGRATIONS.len() as u64;
    assert_eq!(rest.len() as u64, steps - 1, "{rest:?}");
    for (i, message) in rest.iter().enumerate() {
        assert_eq!(
            (message["type"].as_str(), message["seq"].as_u64()),
            (Some("db_upgrade_status"), Some(i as u64 + 2))
        );
    }
    assert!(daemon.wait_exit().success());
}

#[test]
fn a_subscribed_control_socket_that_never_reads_is_closed_after_the_grace() {
    let sandbox = Sandbox::new();
    // Small soft bounds, a hard bound and a write deadline out of reach: only the grace for a
    // client behind can close the subscriber.
    let config = sandbox.dir.path().join("robin.toml");
    let table = "[websocket]\nclient_queue_messages = 16\nclient_queue_bytes = 1024\n\
                 client_queue_max_bytes = 268435456\nclient_queue_max_messages = 1000000\n\
                 slow_client_grace_secs = 1\nwrite_timeout_secs = 3600\n";
    std::fs::write(&config, table).unwrap();
    let _daemon = Daemon::start({
        let mut cmd = sandbox.command();
        cmd.arg("--config").arg(&config);
        cmd
    });
    let deaf = UnixStream::connect(sandbox.socket()).unwrap();
    (&deaf).write_all(b"{\"id\":1,\"method\":\"subscribe\"}\n").unwrap();
    let status =
        || ipc_call(&sandbox.socket(), r#"{"id":1,"method":"status"}"#)["result"]["notifier"].clone();
    support::eventually("the subscriber to be registered", || status()["clients"] == 1);
    // 4 MB: far more than a Unix socket's buffer, so most of it waits in the queue.
    let pad = "x".repeat(16 * 1024);
    for i in 0..256 {
        let request = json!({"id": i, "method": "broadcast", "params": {"type": "legacy", "data": {"verbosity": "warning", "value": format!("{i} {pad}")}}});
        assert_eq!(ipc_call(&sandbox.socket(), &request.to_string())["result"]["delivered"], 1, "{i}");
    }
    support::eventually("the deaf subscriber to be closed", || status()["clients"] == 0);
    assert_eq!(status()["clients_closed_slow"], 1);
}

#[test]
fn subscribe_with_a_bad_since_is_refused_and_the_connection_stays_usable() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    let stream = UnixStream::connect(sandbox.socket()).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    (&stream)
        .write_all(b"{\"id\":1,\"method\":\"subscribe\",\"params\":{\"since\":\"yesterday\"}}\n")
        .unwrap();
    (&stream).write_all(b"{\"id\":2,\"method\":\"ping\"}\n").unwrap();
    let mut lines = BufReader::new(&stream).lines();
    let refused: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(refused["error"]["code"], -32602);
    let pong: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(pong, json!({"id": 2, "result": true}));
}

#[test]
fn state_changing_commands_work_over_http_and_websocket_too() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    // unlock over the WebSocket, logout over HTTP.
    let unlock = r#"{"id":1,"method":"unlock","params":{"username":"wsuser","password":"pw"}}"#;
    let unlocked = smol::block_on(ws_request(&daemon, unlock));
    assert_eq!(unlocked["result"]["username"], "wsuser", "{unlocked}");
    let wrong = r#"{"id":2,"method":"unlock","params":{"username":"wsuser","password":"nope"}}"#;
    assert_eq!(http_control(&daemon, wrong).0, 409, "already unlocked");
    assert_eq!(
        http_control(&daemon, r#"{"method":"logout"}"#),
        (200, json!({"result": true, "message": ""}))
    );
    assert_eq!(smol::block_on(ws_request(&daemon, wrong))["error"]["code"], -32006);

    // tasks.run over HTTP, its result over the WebSocket.
    let (status, started) = http_control(&daemon, r#"{"method":"tasks.run","params":{"job":"db_backup"}}"#);
    assert_eq!(status, 200, "{started}");
    let id = started["result"]["task_id"].as_u64().unwrap();
    let request = json!({"id": 3, "method": "tasks.result", "params": {"id": id}}).to_string();
    support::eventually("the task's result over the WebSocket", || {
        smol::block_on(ws_request(&daemon, &request))["result"]["status"] == "completed"
    });
    assert_eq!(smol::block_on(ws_request(&daemon, &request))["error"]["code"], -32004, "read once");
}
