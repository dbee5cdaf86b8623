//! The status page in a real browser: Debian's Chromium, driven by playwright-core
//! (tests/browser/status_page.mjs; tests/run.sh installs both).
mod support;

use std::path::Path;
use std::process::Command;

use serde_json::json;
use support::fake_http::FakeHttp;
use support::{Daemon, Sandbox, ipc_call};

#[test]
fn a_task_appears_with_its_progress_and_disappears_when_done() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists() && Path::new("/usr/bin/chromium").exists(),
        "Chromium and playwright-core are missing: run tests/run.sh, which installs them"
    );
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
    let out = Command::new("node")
        .arg(browser_dir.join("status_page.mjs"))
        .arg(format!("http://{}", daemon.http_addr()))
        .arg(&screenshot)
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "OK",
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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
