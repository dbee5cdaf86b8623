//! The daemon's main work end to end: robind, a fake price API and JSON-RPC node, robinctl
//! and a WebSocket client.
mod support;

use async_tungstenite::tungstenite::Message;
use futures_lite::StreamExt;
use serde_json::{Value, json};
use support::fake_http::FakeHttp;
use support::{Daemon, Sandbox, eventually, ipc_call, robinctl};

fn call(sandbox: &Sandbox, method: &str, params: Value) -> Value {
    ipc_call(&sandbox.socket(), &json!({"id": 1, "method": method, "params": params}).to_string())
}

fn start(server: &FakeHttp, http_table: &str) -> (Sandbox, Daemon) {
    let sandbox = Sandbox::new();
    let config = sandbox.dir.path().join("robin.toml");
    std::fs::write(&config, format!("[http]\n{http_table}\n")).unwrap();
    let daemon = Daemon::start({
        let mut cmd = sandbox.command();
        cmd.arg("--config").arg(&config);
        cmd
    });
    call(&sandbox, "settings.set", json!({"name": "main_currency", "value": "EUR"}));
    call(&sandbox, "settings.set", json!({"name": "price_api_url", "value": server.url("/api/v3")}));
    call(&sandbox, "settings.set", json!({"name": "rpc_url", "value": server.url("/rpc")}));
    (sandbox, daemon)
}

#[test]
fn prices_then_balances_give_a_snapshot_that_every_client_hears_about() {
    let server = FakeHttp::start();
    let (sandbox, daemon) = start(&server, "");
    for i in 1..=2 {
        call(&sandbox, "accounts.add", json!({"address": format!("0x{i:040x}")}));
    }
    smol::block_on(async {
        let mut ws = support::notifier_loop::connect(daemon.ready["ws"].as_str().unwrap()).await;
        for job in ["query_prices", "query_balances"] {
            let out = robinctl(&sandbox, &["run", job, "--wait"]);
            assert!(out.status.success(), "{job}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let snapshot = call(&sandbox, "snapshot", json!({}))["result"].clone();
        assert_eq!(
            (snapshot["currency"].as_str(), snapshot["total"].as_str()),
            (Some("EUR"), Some("6001.5")),
            "{snapshot}"
        );
        assert_eq!(snapshot["balances"][0]["amount"], "1.5");
        let mut seen = Vec::new();
        while !seen.contains(&"refresh_balances".to_string()) {
            let Some(Ok(Message::Text(text))) = ws.next().await else { panic!("socket closed") };
            let message: Value = serde_json::from_str(text.as_str()).unwrap();
            seen.push(message["type"].as_str().unwrap_or("").to_string());
        }
        assert!(seen.contains(&"progress_updates".to_string()), "{seen:?}");
    });
    let status = call(&sandbox, "status", json!({}));
    assert_eq!(
        status["result"]["scheduler"]["should_schedule"], true,
        "scheduling starts after the first balance query"
    );
}

#[test]
fn a_job_that_times_out_does_not_block_the_others() {
    let server = FakeHttp::start();
    let (sandbox, _daemon) = start(&server, "timeout_secs = 1\nretries = 0");
    call(&sandbox, "assets.add", json!({"asset": "bitcoin"}));
    call(&sandbox, "accounts.add", json!({"address": format!("0x{:040x}", 7)}));
    call(&sandbox, "settings.set", json!({"name": "price_api_url", "value": server.url("/slowprices")}));
    let slow =
        call(&sandbox, "tasks.run", json!({"job": "query_prices"}))["result"]["task_id"].as_u64().unwrap();
    let quick =
        call(&sandbox, "tasks.run", json!({"job": "query_balances"}))["result"]["task_id"].as_u64().unwrap();
    let mut results = [Value::Null, Value::Null];
    eventually("the balance query, while prices hang", || {
        let reply = call(&sandbox, "tasks.result", json!({"id": quick}));
        results[1] = reply["result"]["outcome"].clone();
        reply["result"]["status"] == "completed"
    });
    assert_eq!(results[1]["result"]["accounts"], 1, "{}", results[1]);
    eventually("the price query to time out", || {
        let reply = call(&sandbox, "tasks.result", json!({"id": slow}));
        results[0] = reply["result"]["outcome"].clone();
        reply["result"]["status"] == "completed"
    });
    assert_eq!(
        results[0]["message"],
        "The backend query task died unexpectedly: request to 127.0.0.1 timed out after 1s"
    );
    // No UI was connected, so everything is kept for it, the user-facing error among them.
    let messages = call(&sandbox, "messages", json!({}))["result"]["errors"].clone();
    let texts: Vec<&str> = messages.as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("query_prices died with exception: request to 127.0.0.1 timed out")),
        "{messages}"
    );
}

#[test]
fn tokens_and_the_net_value_over_time_through_robinctl_the_control_api_and_http() {
    use support::fake_http::{DAI, USDC};
    let server = FakeHttp::start();
    let (sandbox, daemon) = start(&server, "");
    call(&sandbox, "accounts.add", json!({"address": format!("0x{:040x}", 1)}));
    let usdc = format!("eip155:1/erc20:{}", USDC.to_ascii_uppercase().replacen("0X", "0x", 1));
    let added = robinctl(
        &sandbox,
        &["assets", "add", &usdc, "--decimals", "6", "--symbol", "USDC", "--price-id", "usd-coin"],
    );
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let dai = format!("eip155:1/erc20:{DAI}");
    call(&sandbox, "assets.add", json!({"asset": dai, "decimals": 18, "symbol": "DAI", "price_id": "dai"}));
    let listed = call(&sandbox, "assets.list", json!({"details": true}))["result"].clone();
    assert_eq!(
        listed[1],
        json!({"asset": format!("eip155:1/erc20:{USDC}"), "decimals": 6, "symbol": "USDC", "price_id": "usd-coin"}),
        "the contract is stored lower-cased: {listed}"
    );
    let refused = call(&sandbox, "assets.add", json!({"asset": format!("eip155:1/erc20:{USDC}")}));
    assert!(refused["error"]["message"].as_str().unwrap().contains("needs \"decimals\""), "{refused}");

    for _ in 0..2 {
        for job in ["query_prices", "query_balances"] {
            let out = robinctl(&sandbox, &["run", job, "--wait"]);
            assert!(out.status.success(), "{job}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    // 1.5 ETH x 2000.5 + 2.5 USDC x 0.92 + 10.25 DAI x 0.91 = 3000.75 + 2.3 + 9.3275
    let history = call(&sandbox, "snapshots", json!({}))["result"].clone();
    let totals: Vec<&str> =
        history.as_array().unwrap().iter().map(|s| s["total"].as_str().unwrap()).collect();
    assert_eq!(totals, vec!["3012.3775", "3012.3775"], "{history}");
    assert!(history[0]["id"].as_i64() < history[1]["id"].as_i64(), "oldest first");
    let latest_only = call(&sandbox, "snapshots", json!({"limit": 1}))["result"].clone();
    assert_eq!(latest_only.as_array().unwrap().len(), 1);
    assert_eq!(latest_only[0]["id"], history[1]["id"], "the limit keeps the latest");
    let (status, body) = support::http_get(daemon.http_addr(), "/api/1/snapshots?limit=5");
    assert_eq!((status, &body["result"]), (200, &history), "{body}");
    let (status, body) = support::http_get(daemon.http_addr(), "/api/1/snapshots?limit=0");
    assert_eq!(status, 400, "{body}");

    let table = String::from_utf8_lossy(&robinctl(&sandbox, &["snapshot"]).stdout).into_owned();
    for row in [["ETH", "1.5", "2000.5", "3000.75", "99.6%"], ["DAI", "10.25", "0.91", "9.3275", "0.3%"]] {
        let line = table.lines().find(|l| l.starts_with(row[0])).unwrap_or_else(|| panic!("{table}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells, row, "{table}");
    }
    let lines = String::from_utf8_lossy(&robinctl(&sandbox, &["history"]).stdout).into_owned();
    assert_eq!(lines.lines().filter(|l| l.contains("3012.3775 EUR")).count(), 2, "{lines}");
}
