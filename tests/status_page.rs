//! The status page in a real browser: Debian's Chromium, driven by playwright-core
//! (tests/browser/*.mjs; tests/run.sh installs both). Screenshots go to
//! `target/tmp/status_page/`, at 1280 and 360 px wide, light and dark.
mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::fake_http::{DAI, FakeHttp, UNPRICED, USDC};
use support::{Daemon, Sandbox, ipc_call, robinctl, run_browser_script};

/// A fresh directory for one test's screenshots (an earlier run's must not pass for this one's).
fn screenshot_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status_page").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn call(sandbox: &Sandbox, method: &str, params: Value) -> Value {
    let reply =
        ipc_call(&sandbox.socket(), &json!({"id": 1, "method": method, "params": params}).to_string());
    assert!(reply["error"].is_null(), "{method}: {reply}");
    reply
}

#[test]
fn a_task_appears_with_its_progress_and_disappears_when_done() {
    let server = FakeHttp::start();
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let call = |method: &str, params: serde_json::Value| {
        ipc_call(&sandbox.socket(), &json!({"id": 1, "method": method, "params": params}).to_string())
    };
    // 250 accounts in three slow JSON-RPC batches: long enough for the page to show progress.
    call("settings.set", json!({"name": "rpc_url", "value": server.url("/rpc?delay=700")}));
    for i in 0..250 {
        call("accounts.add", json!({"address": format!("0x{:040x}", i + 1)}));
    }
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status_page.png");
    // A screenshot left by an earlier run must not pass for this one.
    let _ = std::fs::remove_file(&screenshot);
    let screenshot_arg = screenshot.to_str().unwrap();
    run_browser_script("status_page.mjs", &[&format!("http://{}", daemon.http_addr()), screenshot_arg]);
    assert!(screenshot.exists());
}

#[test]
fn the_page_is_served_self_contained() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let reply = support::http_raw(
        daemon.http_addr(),
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(
        reply.starts_with("HTTP/1.1 200 OK") && reply.contains("Content-Type: text/html"),
        "{}",
        &reply[..200]
    );
    assert!(!reply.contains("<script src") && !reply.contains("<link "), "no external assets");
}

#[test]
fn the_dashboard_shows_the_net_value_its_history_holdings_and_accounts_and_refreshes() {
    let server = FakeHttp::start();
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    call(&sandbox, "settings.set", json!({"name": "main_currency", "value": "EUR"}));
    call(&sandbox, "settings.set", json!({"name": "price_api_url", "value": server.url("/api/v3")}));
    call(&sandbox, "settings.set", json!({"name": "rpc_url", "value": server.url("/rpc")}));
    call(&sandbox, "accounts.add", json!({"address": format!("0x{:040x}", 1), "label": "Savings"}));
    let tokens = [
        (USDC, 6, Some("USDC"), Some("usd-coin")),
        (DAI, 18, Some("DAI"), Some("dai")),
        (UNPRICED, 0, None, None),
    ];
    for (contract, decimals, symbol, price_id) in tokens {
        let mut asset = json!({"asset": format!("eip155:1/erc20:{contract}"), "decimals": decimals});
        if let (Some(symbol), Some(price_id)) = (symbol, price_id) {
            asset["symbol"] = json!(symbol);
            asset["price_id"] = json!(price_id);
        }
        call(&sandbox, "assets.add", asset);
    }
    // Two snapshots, as the scheduler would take them.
    for _ in 0..2 {
        for job in ["query_prices", "query_balances"] {
            let out = robinctl(&sandbox, &["run", job, "--wait"]);
            assert!(out.status.success(), "{job}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let shots = screenshot_dir("dashboard");
    run_browser_script(
        "dashboard.mjs",
        &[&format!("http://{}", daemon.http_addr()), shots.to_str().unwrap()],
    );
    assert!(shots.join("dashboard-360-dark.png").exists());
}

#[test]
fn an_empty_database_gets_first_run_guidance_instead_of_empty_cards() {
    let server = FakeHttp::start();
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let shots = screenshot_dir("first_run");
    run_browser_script(
        "first_run.mjs",
        &[&format!("http://{}", daemon.http_addr()), &server.url("/rpc"), shots.to_str().unwrap()],
    );
    assert!(shots.join("first-run-360-dark.png").exists());
}

#[test]
fn with_a_token_configured_the_page_reads_it_from_its_url() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start({
        let mut cmd = sandbox.command();
        cmd.arg("--generate-api-token");
        cmd
    });
    let token_file = daemon.ready["api_token_file"].as_str().expect("a token file").to_string();
    let token = std::fs::read_to_string(token_file).unwrap();
    run_browser_script("token.mjs", &[&format!("http://{}", daemon.http_addr()), token.trim()]);
}
