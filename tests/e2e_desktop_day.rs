//! The desktop companion's day, end to end: the real robind under a NOTIFY_SOCKET the test
//! owns, a fake price API and JSON-RPC node, two WebSocket clients and a control-socket
//! subscriber, an encrypted user database, the jobs, a reconnect with `since`, shutdown and a
//! restart that finds everything where it was.
mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::mpsc;

use async_tungstenite::tungstenite::Message;
use futures_lite::StreamExt;
use serde_json::{Value, json};
use support::fake_http::FakeHttp;
use support::{Daemon, PATIENCE, Sandbox, eventually, ipc_call};

fn call(sandbox: &Sandbox, method: &str, params: Value) -> Value {
    let reply =
        ipc_call(&sandbox.socket(), &json!({"id": 1, "method": method, "params": params}).to_string());
    assert!(reply.get("error").is_none(), "{method}: {reply}");
    reply["result"].clone()
}

fn run_job(sandbox: &Sandbox, job: &str) -> Value {
    let id = call(sandbox, "tasks.run", json!({"job": job}))["task_id"].as_u64().unwrap();
    let mut outcome = Value::Null;
    eventually(&format!("{job} to finish"), || {
        let reply = call(sandbox, "tasks.result", json!({"id": id}));
        outcome = reply["outcome"].clone();
        reply["status"] == "completed"
    });
    outcome
}

fn wait_for(systemd: &UnixDatagram, line: &str) {
    let mut buf = [0u8; 4096];
    for _ in 0..20 {
        let n = systemd.recv(&mut buf).expect("a notification");
        if String::from_utf8_lossy(&buf[..n]).lines().any(|l| l == line) {
            return;
        }
    }
    panic!("no {line}");
}

/// A UI: a WebSocket client on a thread of its own, whose messages arrive as their JSON text.
struct Ui {
    messages: mpsc::Receiver<String>,
    close: async_channel::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Ui {
    fn connect(url: String) -> Ui {
        let (tx, messages) = mpsc::channel();
        let (close, closed) = async_channel::bounded::<()>(1);
        let thread = std::thread::spawn(move || {
            smol::block_on(async move {
                let mut client = support::notifier_loop::connect(&url).await;
                loop {
                    let next = async { Some(client.next().await) };
                    let leave = async {
                        let _ = closed.recv().await;
                        None
                    };
                    match futures_lite::FutureExt::or(next, leave).await {
                        Some(Some(Ok(Message::Text(text)))) => {
                            if tx.send(text.to_string()).is_err() {
                                return;
                            }
                        }
                        Some(Some(Ok(_))) => {}
                        Some(_) => return,
                        None => {
                            // The UI goes away: its socket is closed, as a closed window's is.
                            let _ = client.close(None).await;
                            return;
                        }
                    }
                }
            })
        });
        Ui { messages, close, thread }
    }

    /// Closes the UI's socket and waits until it is gone.
    fn leave(self) {
        let _ = self.close.send_blocking(());
        self.thread.join().unwrap();
    }

    /// Messages until (and including) the first `refresh_balances`.
    fn until_refresh(&self) -> Vec<String> {
        until_refresh(|| self.messages.recv_timeout(PATIENCE).expect("a notification"))
    }
}

/// Takes messages from `next` until (and including) the first `refresh_balances`.
fn until_refresh(mut next: impl FnMut() -> String) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let text = next();
        let done = serde_json::from_str::<Value>(&text).unwrap()["type"] == "refresh_balances";
        seen.push(text);
        if done {
            return seen;
        }
    }
}

#[test]
fn a_day_with_the_desktop_app() {
    let server = FakeHttp::start();
    let sandbox = Sandbox::new();
    let notify_path = sandbox.dir.path().join("notify.sock");
    let systemd = UnixDatagram::bind(&notify_path).unwrap();
    systemd.set_read_timeout(Some(PATIENCE)).unwrap();
    // A one-second tick, so the restarted scheduler loads its last runs promptly.
    let config = sandbox.dir.path().join("robin.toml");
    std::fs::write(&config, "[scheduler]\ntick_secs = 1\n").unwrap();
    let start = || {
        let mut cmd = sandbox.command();
        cmd.env("NOTIFY_SOCKET", &notify_path).arg("--config").arg(&config);
        Daemon::start(cmd)
    };
    let mut daemon = start();
    wait_for(&systemd, "READY=1");
    let ws_url = daemon.ready["ws"].as_str().unwrap().to_string();

    // Two UIs and a subscribed script.
    let first = Ui::connect(ws_url.clone());
    let second = Ui::connect(ws_url.clone());
    let subscriber = UnixStream::connect(sandbox.socket()).unwrap();
    subscriber.set_read_timeout(Some(PATIENCE)).unwrap();
    (&subscriber).write_all(b"{\"id\":1,\"method\":\"subscribe\"}\n").unwrap();
    let mut lines = BufReader::new(&subscriber).lines();
    assert!(lines.next().unwrap().unwrap().contains("subscribed"));
    eventually("two WebSocket clients", || call(&sandbox, "status", json!({}))["notifier"]["clients"] == 3);

    // The user's encrypted database, their assets and addresses, the jobs.
    call(&sandbox, "unlock", json!({"username": "alice", "password": "correct horse"}));
    call(&sandbox, "settings.set", json!({"name": "main_currency", "value": "EUR"}));
    call(&sandbox, "settings.set", json!({"name": "price_api_url", "value": server.url("/api/v3")}));
    call(&sandbox, "settings.set", json!({"name": "rpc_url", "value": server.url("/rpc")}));
    call(&sandbox, "assets.add", json!({"asset": "ethereum"}));
    for i in 1..=2 {
        call(&sandbox, "accounts.add", json!({"address": format!("0x{i:040x}")}));
    }
    run_job(&sandbox, "query_prices");
    let outcome = run_job(&sandbox, "query_balances");
    assert_eq!(outcome["result"]["total"], "6001.5", "{outcome}");
    let snapshot = call(&sandbox, "snapshot", json!({}));
    assert_eq!((snapshot["currency"].as_str(), snapshot["total"].as_str()), (Some("EUR"), Some("6001.5")));

    // All three saw the same messages, byte for byte, in the same order.
    let seen_first = first.until_refresh();
    let seen_second = second.until_refresh();
    let seen_script = until_refresh(|| lines.next().unwrap().unwrap());
    assert_eq!(seen_first, seen_second);
    assert_eq!(seen_first, seen_script);
    let kinds: Vec<String> =
        seen_first.iter().map(|t| serde_json::from_str::<Value>(t).unwrap()["type"].to_string()).collect();
    assert!(
        kinds.contains(&"\"db_upgrade_status\"".into()) && kinds.contains(&"\"progress_updates\"".into()),
        "{kinds:?}"
    );

    // The second UI goes away (its socket closed), things happen, it comes back with `since`:
    // it gets exactly what it missed.
    let last_seen =
        serde_json::from_str::<Value>(seen_second.last().unwrap()).unwrap()["seq"].as_u64().unwrap();
    second.leave();
    eventually("the second UI to be gone", || {
        call(&sandbox, "status", json!({}))["notifier"]["clients"] == 2
    });
    run_job(&sandbox, "query_balances");
    let after_first = first.until_refresh();
    let back = Ui::connect(format!("{ws_url}?since={last_seen}"));
    assert_eq!(back.until_refresh(), after_first, "the replay is exactly what was missed, byte for byte");

    // Scheduling is on since the first balance query; stop it so no job runs between this
    // snapshot of the last runs and the shutdown.
    assert_eq!(call(&sandbox, "status", json!({}))["scheduler"]["should_schedule"], true);
    call(&sandbox, "schedule", json!({"enabled": false}));
    let last_runs = call(&sandbox, "status", json!({}))["scheduler"]["jobs"].clone();
    assert!(
        last_runs.as_array().unwrap().iter().any(|j| j["name"] == "query_balances" && j["last_run"].is_u64())
    );
    daemon.signal("TERM");
    wait_for(&systemd, "STOPPING=1");
    assert!(daemon.wait_exit().success());
    drop(lines);

    // A new day: the data and the scheduler's last runs are still there.
    let _daemon = start();
    wait_for(&systemd, "READY=1");
    call(&sandbox, "unlock", json!({"username": "alice", "password": "correct horse"}));
    assert_eq!(call(&sandbox, "snapshot", json!({}))["total"], "6001.5");
    eventually("the last runs to come back", || {
        // They load at the scheduler's first tick after the unlock.
        call(&sandbox, "status", json!({}))["scheduler"]["jobs"] == last_runs
    });
}
