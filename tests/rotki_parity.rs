//! rotki's UI accepts what robin sends (issue 11): every WebSocket message of a whole session
//! through the real daemon, checked against rotki's shapes (tests/fixtures/
//! rotki_ws_messages.schema.json, written from rotki's published definitions) by
//! tests/python/validate_rotki.py; the task routes rotki's UI calls; CORS for its desktop app.
mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message as Frame;
use futures_lite::StreamExt;
use robin::notifier::{Message, payloads::*};
use serde_json::{Value, json};
use support::fake_http::FakeHttp;
use support::{Daemon, PATIENCE, Sandbox, eventually, http_raw, ipc_call, parse_response};

fn call(sandbox: &Sandbox, method: &str, params: Value) -> Value {
    ipc_call(&sandbox.socket(), &json!({"id": 1, "method": method, "params": params}).to_string())
}

/// Runs the validator over `lines`; its summary.
fn validate(lines: &[String]) -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(root.join("tests/.venv/bin/python"))
        .arg(root.join("tests/python/validate_rotki.py"))
        .arg(root.join("tests/fixtures/rotki_ws_messages.schema.json"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("tests/.venv: run tests/run.sh, which installs jsonschema");
    child.stdin.take().unwrap().write_all(lines.join("\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)))
}

/// Collects every text message of a `/ws` client on a thread of its own.
fn capture(url: String) -> Arc<Mutex<Vec<String>>> {
    let captured = Arc::new(Mutex::new(Vec::new()));
    let sink = captured.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        smol::block_on(async {
            let mut ws = support::notifier_loop::connect(&url).await;
            ready_tx.send(()).unwrap();
            while let Some(Ok(frame)) = ws.next().await {
                if let Frame::Text(text) = frame {
                    sink.lock().unwrap().push(text.to_string());
                }
            }
        })
    });
    ready_rx.recv_timeout(PATIENCE).unwrap();
    captured
}

#[test]
fn a_whole_session_sends_only_messages_rotkis_ui_accepts() {
    let server = FakeHttp::start();
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let captured = capture(daemon.ready["ws"].as_str().unwrap().to_string());
    eventually("the client to be counted", || {
        call(&sandbox, "status", json!({}))["result"]["notifier"]["clients"] == 1
    });

    // A new user's database: its migrations are announced.
    assert!(call(&sandbox, "unlock", json!({"username": "alice", "password": "pw"}))["result"].is_object());
    for (name, value) in [
        ("main_currency", "EUR".to_string()),
        ("price_api_url", server.url("/api/v3")),
        ("rpc_url", server.url("/rpc")),
    ] {
        call(&sandbox, "settings.set", json!({"name": name, "value": value}));
    }
    call(&sandbox, "assets.add", json!({"asset": "bitcoin"}));
    for i in 1..=2 {
        call(&sandbox, "accounts.add", json!({"address": format!("0x{i:040x}")}));
    }
    let run = |job: &str| {
        let id = call(&sandbox, "tasks.run", json!({"job": job}))["result"]["task_id"].as_u64().unwrap();
        eventually(&format!("{job} to finish"), || {
            call(&sandbox, "tasks.result", json!({"id": id}))["result"]["status"] == "completed"
        });
    };
    run("query_balances"); // no price yet: a balance_snapshot_error, the balances kept
    run("query_prices");
    run("query_balances"); // a snapshot
    call(&sandbox, "settings.set", json!({"name": "price_api_url", "value": server.url("/broken")}));
    run("query_prices"); // fails: a user-facing error

    let deadline = Instant::now() + PATIENCE;
    let lines = loop {
        let lines = captured.lock().unwrap().clone();
        if lines.iter().any(|l| l.contains("query_prices died with exception")) {
            break lines;
        }
        assert!(Instant::now() < deadline, "the failing job's error never arrived: {lines:#?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let summary = validate(&lines);
    assert_eq!(summary["failures"], json!([]), "{summary:#}\n{lines:#?}");
    for kind in
        ["db_upgrade_status", "progress_updates", "refresh_balances", "balance_snapshot_error", "legacy"]
    {
        assert!(summary["types"][kind].as_u64().unwrap_or(0) > 0, "no {kind}: {summary:#}");
    }
    assert_eq!(
        summary["types"]["db_upgrade_status"],
        robin::db::MIGRATIONS.len(),
        "one per migration: {summary:#}"
    );
    // robin's own progress subtype for balances, documented as an extension.
    assert!(summary["extensions"]["progress_updates/balances_query_status"].as_u64().unwrap_or(0) > 0);
    let refresh: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|m| m["type"] == "refresh_balances")
        .collect();
    assert_eq!(refresh[0]["data"], json!({"type": "blockchain_balances", "blockchain": "eth"}));
    let error: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|m| m["type"] == "balance_snapshot_error")
        .collect();
    assert_eq!(error[0]["data"]["location"], "blockchain balances query");
}

/// One message of every type, built with robin's payload structs: what robin can send at all
/// must match the fixture (a `broadcast` command will let other processes send any of them).
#[test]
fn every_type_robin_can_build_matches_rotkis_shape() {
    let samples = vec![
        Message::error("e"),
        Message::warning("w"),
        Message::BalanceSnapshotError(SnapshotError { location: "kraken".into(), error: "x".into() }),
        Message::TransactionStatus(TransactionStatus::Evm {
            address: "0x1".into(),
            chain: "ETH".into(),
            period: [0, 1],
            status: TransactionStep::QueryingTransactionsStarted,
        }),
        Message::TransactionStatus(TransactionStatus::Bitcoin {
            addresses: vec!["bc1".into()],
            chain: "BTC".into(),
            period: None,
            status: TransactionStep::DecodingTransactionsFinished,
        }),
        Message::PremiumStatusUpdate(PremiumStatus {
            is_premium_active: false,
            expired: false,
            reason: Some("device limit".into()),
        }),
        Message::DbUpgradeStatus(DbUpgradeStatus {
            start_version: 1,
            target_version: 2,
            current_upgrade: UpgradeStep {
                to_version: 2,
                total_steps: 1,
                current_step: 1,
                description: None,
            },
        }),
        Message::EvmlikeAccountsDetection(vec![DetectedAccount {
            chain: "optimism".into(),
            address: "0x1".into(),
        }]),
        Message::NewTokenDetected(NewToken {
            token_identifier: "eip155:1/erc20:0x1".into(),
            token_kind: TokenKind::Evm,
            is_ignored: Some(true),
            seen_tx_reference: None,
            seen_description: Some("x".into()),
        }),
        Message::DataMigrationStatus(DataMigrationStatus {
            start_version: 1,
            target_version: 2,
            current_migration: MigrationStep {
                version: 2,
                total_steps: 3,
                current_step: 1,
                description: Some("x".into()),
            },
        }),
        Message::MissingApiKey(MissingApiKey {
            service: "etherscan".into(),
            location: Some("ethereum".into()),
        }),
        Message::HistoryEventsStatus(HistoryEventsStatus {
            status: HistoryEventsStep::QueryingEventsStatusUpdate,
            location: "kraken".into(),
            event_type: HistoryQueryType::HistoryQuery,
            name: "main".into(),
            period: Some([0, 1]),
        }),
        Message::refresh_balances(Blockchain::Optimism),
        Message::DatabaseUploadResult(DatabaseUploadResult {
            uploaded: true,
            actionable: false,
            message: None,
        }),
        Message::AccountingRuleConflict(AccountingRuleConflict { num_of_conflicts: 2 }),
        Message::CalendarReminder(CalendarReminder {
            identifier: 1,
            name: "n".into(),
            timestamp: 2,
            auto_delete: false,
            description: None,
            color: Some("ff0000".into()),
            counterparty: None,
            address: None,
            blockchain: None,
            reminder: Reminder { identifier: 3, secs_before: 60 },
        }),
        Message::ExchangeUnknownAsset(UnknownAsset {
            location: "kraken".into(),
            name: "main".into(),
            identifier: "XYZ".into(),
            details: "d".into(),
        }),
        Message::ProgressUpdates(Progress::UndecodedTransactions {
            chain: "ethereum".into(),
            total: 2,
            processed: 1,
        }),
        Message::ProgressUpdates(Progress::ProtocolCacheUpdates {
            chain: "ethereum".into(),
            protocol: "curve".into(),
            total: 2,
            processed: 1,
        }),
        Message::ProgressUpdates(Progress::CsvImportResult {
            source_name: "binance".into(),
            total: 2,
            processed: 2,
            messages: vec![CsvImportMessage { msg: "bad row".into(), rows: vec![3], is_error: true }],
        }),
        Message::ProgressUpdates(Progress::StatsPriceQuery {
            total: 2,
            processed: 1,
            counterparty: "uniswap".into(),
        }),
        Message::ProgressUpdates(Progress::HistoricalBalanceProcessing { total: 2, processed: 1 }),
        Message::GnosispaySessionkeyExpired(SessionKeyExpired { error: "sign in again".into() }),
        Message::MoneriumSessionkeyExpired(SessionKeyExpired { error: "sign in again".into() }),
        Message::SolanaTokensMigration(SolanaTokensMigration { identifiers: vec!["a".into()] }),
        Message::DatabaseUploadProgress(DatabaseUploadProgress::Compressing),
        Message::DatabaseUploadProgress(DatabaseUploadProgress::Uploading {
            current_chunk: 1,
            total_chunks: 2,
        }),
        Message::BinancePairsMissing(BinancePairsMissing { location: "binance".into(), name: "main".into() }),
        Message::UnmatchedAssetMovements(Unmatched { count: 1 }),
        Message::UnmatchedBridgeTransactions(Unmatched { count: 1 }),
        Message::NegativeBalanceDetected(NegativeBalance {
            event_identifier: 1,
            group_identifier: "g".into(),
            asset: "ETH".into(),
            bucket: BalanceBucket {
                asset: "ETH".into(),
                protocol: None,
                location: "ethereum".into(),
                location_label: None,
            },
            balance_before: "-1.5".into(),
            last_run_ts: None,
        }),
        Message::NoAvailableIndexers(NoAvailableIndexers { chain: "ETH".into() }),
        Message::InternalTxFixed(InternalTxFixed { chain: "ethereum".into(), tx_hash: "0xab".into() }),
    ];
    let lines: Vec<String> = samples.iter().map(|m| robin::notifier::encode(m, Some(1)).unwrap()).collect();
    let summary = validate(&lines);
    assert_eq!(summary["failures"], json!([]), "{summary:#}");
    let rotki_types = Message::NAMES.iter().filter(|n| !Message::EXTENSIONS.contains(n)).count();
    assert_eq!(
        summary["types"].as_object().unwrap().len(),
        rotki_types,
        "a sample of every type: {summary:#}"
    );
}

fn request(daemon: &Daemon, text: &str) -> (u16, String, Value) {
    let reply = http_raw(daemon.http_addr(), text.as_bytes());
    let (status, body) = parse_response(&reply);
    let head = reply.split_once("\r\n\r\n").map_or(reply.as_str(), |(h, _)| h).to_string();
    (status, head, body)
}

#[test]
fn the_task_routes_rotkis_ui_calls() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let post = |body: &str| {
        format!(
            "POST /api/1/tasks/trigger HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let (status, _, body) = request(&daemon, &post(r#"{"task": "db_backup", "async_query": true}"#));
    assert_eq!(status, 200, "{body}");
    let id = body["result"]["task_id"].as_u64().expect("a task id");
    eventually("the backup to finish", || {
        support::http_get(daemon.http_addr(), &format!("/api/1/tasks/{id}")).1["result"]["status"]
            == "completed"
    });
    let (status, _, body) = request(&daemon, &post(r#"{"task": "historical_balance_processing"}"#));
    assert_eq!(status, 400);
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("unknown job 'historical_balance_processing' (known: db_backup"), "{message}");

    // Last: once scheduling is on, the scheduler may start db_backup itself, and a trigger
    // would then be told it is already running.
    let put = |body: &str| {
        format!(
            "PUT /api/1/tasks/scheduler HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let (status, _, body) = request(&daemon, &put(r#"{"enabled": true}"#));
    assert_eq!((status, body), (200, json!({"result": {"enabled": true}, "message": ""})));
    assert_eq!(call(&sandbox, "status", json!({}))["result"]["scheduler"]["should_schedule"], true);
    let (status, _, _) = request(&daemon, &put(r#"{"enabled": "yes"}"#));
    assert_eq!(status, 400);

    let (status, body) = support::http_get(daemon.http_addr(), "/api/1/tasks/4242");
    assert_eq!(
        (status, body),
        (
            404,
            json!({"result": {"status": "not-found", "outcome": null}, "message": "No task with id 4242 found"})
        )
    );
}

#[test]
fn rotkis_desktop_app_gets_its_preflight_and_its_answers() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let preflight = "OPTIONS /api/1/tasks HTTP/1.1\r\nHost: 127.0.0.1:5042\r\nOrigin: app://localhost\r\n\
                     Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n";
    let (status, head, _) = request(&daemon, preflight);
    assert_eq!(status, 204, "{head}");
    for header in [
        "Access-Control-Allow-Origin: app://localhost",
        "Access-Control-Allow-Methods: DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT",
        "Access-Control-Allow-Headers: content-type",
        "Vary: Origin",
    ] {
        assert!(head.contains(header), "{header} in {head}");
    }
    let get = "GET /api/1/tasks HTTP/1.1\r\nHost: 127.0.0.1:5042\r\nOrigin: app://localhost\r\nConnection: close\r\n\r\n";
    let (status, head, body) = request(&daemon, get);
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("Access-Control-Allow-Origin: app://localhost"), "{head}");
    // A page on the web gets neither.
    let evil = preflight.replace("app://localhost", "https://evil.example");
    let (status, head, _) = request(&daemon, &evil);
    assert_eq!(status, 403);
    assert!(!head.contains("Access-Control-Allow-Origin"), "{head}");
    // The app's WebSocket is let in too.
    let upgrade = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: app://localhost\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let mut stream = std::net::TcpStream::connect(daemon.http_addr()).unwrap();
    stream.write_all(upgrade.as_bytes()).unwrap();
    let mut head = [0u8; 12];
    std::io::Read::read_exact(&mut stream, &mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
}

#[test]
fn with_no_client_everything_waits_in_messages() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let messages = || support::http_get(daemon.http_addr(), "/api/1/messages").1["result"].clone();
    // The start-up's migrations were seen by nobody: they wait, as JSON text, in errors.
    let kept = messages();
    assert_eq!(kept["errors"].as_array().unwrap().len(), robin::db::MIGRATIONS.len(), "{kept}");
    assert!(kept["errors"][0].as_str().unwrap().starts_with(r#"{"type":"db_upgrade_status","data":"#));
    assert_eq!(messages(), json!({"warnings": [], "errors": []}), "read once");
}

#[test]
fn a_page_of_an_allowed_origin_uses_the_api_and_ws_from_chromium() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start({
        let mut cmd = sandbox.command();
        cmd.args(["--ws-origin", "http://localhost:*"]);
        cmd
    });
    support::run_browser_script("cors.mjs", &[&format!("http://{}", daemon.http_addr())]);
}
