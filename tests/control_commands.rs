//! The control layer's commands against the real daemon (over the control socket, and for the
//! async pattern over HTTP), and in-process where a running task must be observed.
mod support;

use std::rc::Rc;

use serde_json::{Value, json};
use support::{Daemon, Sandbox, eventually, http_get, ipc_call};

fn call(sandbox: &Sandbox, method: &str, params: Value) -> Value {
    let request = json!({"id": 1, "method": method, "params": params}).to_string();
    ipc_call(&sandbox.socket(), &request)
}

#[test]
fn assets_are_added_listed_and_removed() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    assert_eq!(call(&sandbox, "assets.add", json!({"asset": "ethereum"}))["result"], json!({"added": true}));
    assert_eq!(call(&sandbox, "assets.add", json!({"asset": "ethereum"}))["result"], json!({"added": false}));
    assert_eq!(call(&sandbox, "assets.add", json!({"asset": "bitcoin"}))["result"]["added"], true);
    assert_eq!(call(&sandbox, "assets.list", json!({}))["result"], json!(["bitcoin", "ethereum"]));
    assert_eq!(
        call(&sandbox, "assets.remove", json!({"asset": "bitcoin"}))["result"],
        json!({"removed": true})
    );
    assert_eq!(call(&sandbox, "assets.list", json!({}))["result"], json!(["ethereum"]));
    let bad = call(&sandbox, "assets.add", json!({"asset": "eth; DROP TABLE"}));
    assert!(bad["error"]["message"].as_str().unwrap().contains("not an asset identifier"), "{bad}");
}

#[test]
fn accounts_are_checked_and_normalized() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    let address = "0xDE0B295669A9FD93D5F28D9EC85E40F4CB697BAE";
    let added = call(&sandbox, "accounts.add", json!({"address": address, "label": "donations"}));
    assert_eq!(added["result"], json!({"added": true}));
    assert_eq!(
        call(&sandbox, "accounts.list", json!({}))["result"],
        json!([{"chain": "eth", "address": address.to_lowercase(), "label": "donations"}])
    );
    assert_eq!(call(&sandbox, "accounts.add", json!({"address": "0x12"}))["error"]["code"], -32602);
    assert!(
        call(&sandbox, "accounts.add", json!({"address": address, "chain": "doge"}))["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unsupported chain")
    );
    let removed = call(&sandbox, "accounts.remove", json!({"address": address}));
    assert_eq!(removed["result"], json!({"removed": true, "cancelled_tasks": 0}));
    assert_eq!(call(&sandbox, "accounts.list", json!({}))["result"], json!([]));
}

#[test]
fn settings_have_defaults_and_refuse_bad_values() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    assert_eq!(
        call(&sandbox, "settings.get", json!({"name": "main_currency"}))["result"],
        json!({"main_currency": "USD"})
    );
    assert_eq!(
        call(&sandbox, "settings.set", json!({"name": "main_currency", "value": "EUR"}))["result"],
        json!({"main_currency": "EUR"})
    );
    let all = call(&sandbox, "settings.get", json!({}))["result"].clone();
    assert_eq!(all["main_currency"], "EUR");
    assert_eq!(all["prices_interval_secs"], "300");
    let bad = call(&sandbox, "settings.set", json!({"name": "prices_interval_secs", "value": "1"}));
    assert!(
        bad["error"]["message"].as_str().unwrap().contains("from 60 (a minute) to 31536000 (a year)"),
        "{bad}"
    );
    // Issue 12: a huge interval used to panic the scheduler's tick; it is refused at the door.
    let huge = json!({"name": "balances_interval_secs", "value": u64::MAX.to_string()});
    assert_eq!(call(&sandbox, "settings.set", huge)["error"]["code"], -32602);
    let control = json!({"name": "rpc_url", "value": "http://node.example/\r\nX-Evil: 1"});
    assert!(
        call(&sandbox, "settings.set", control)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("control characters")
    );
    let unknown = call(&sandbox, "settings.get", json!({"name": "colour"}));
    assert!(unknown["error"]["message"].as_str().unwrap().contains("known: main_currency"), "{unknown}");
    assert_eq!(
        call(&sandbox, "settings.get", json!({}))["result"]["prices_interval_secs"],
        "300",
        "unchanged"
    );
}

#[test]
fn flags_and_backup() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    assert_eq!(
        call(&sandbox, "flags", json!({}))["result"],
        json!({"websockets": true, "ipc": true, "scheduler": true, "http_api": true})
    );
    let target = sandbox.dir.path().join("manual-backup.db");
    let reply = call(&sandbox, "backup", json!({"path": target}));
    assert_eq!(reply["result"]["path"], target.to_str().unwrap());
    let conn = rusqlite::Connection::open(&target).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    assert!(
        call(&sandbox, "backup", json!({"path": "relative.db"}))["error"]["message"]
            .as_str()
            .unwrap()
            .contains("absolute")
    );
}

#[test]
fn tasks_run_starts_a_job_and_its_result_comes_through_the_task_api() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let started = call(&sandbox, "tasks.run", json!({"job": "db_backup"}));
    let id = started["result"]["task_id"].as_u64().unwrap_or_else(|| panic!("{started}"));
    let mut outcome = Value::Null;
    eventually("the backup task to finish", || {
        let (status, body) = http_get(daemon.http_addr(), &format!("/api/1/tasks/{id}"));
        if status == 200 && body["result"]["status"] == "completed" {
            outcome = body["result"]["outcome"].clone();
            return true;
        }
        false
    });
    assert!(outcome["result"]["backup"].as_str().unwrap().contains("/backups/robin-"), "{outcome}");
    let unknown = call(&sandbox, "tasks.run", json!({"job": "mine_bitcoin"}));
    assert!(unknown["error"]["message"].as_str().unwrap().contains("known: db_backup"), "{unknown}");
}

#[test]
fn removing_an_account_cancels_its_running_queries() {
    let dir = tempfile::tempdir().unwrap();
    let db = futures_lite::future::block_on(robin::db::Database::open(
        &dir.path().join("c.db"),
        None,
        robin::db::Options::default(),
    ))
    .unwrap();
    let ex = robin::runtime::Spawner::new();
    let tasks = robin::tasks::TaskManager::new(ex.clone(), Rc::new(|_| {}), Rc::new(|_| {}));
    let session = robin::control::Session::new(tasks.clone());
    session.set_default_database(Some(db));
    let controller = robin::control::Controller::new(
        robin::config::Features::defaults(),
        robin::notifier::Notifier::new(Default::default()),
        tasks.clone(),
        session,
    );
    let address = "0x00000000219ab540356cbb839cbe05303d7705fa";
    let never = || futures_lite::future::pending::<Result<(), String>>();
    let query = tasks.spawn_and_track(format!("query_transactions_{address}"), never(), Default::default());
    let other = tasks.spawn_and_track("query_prices", never(), Default::default());
    let run = |method: &str, params: Value| {
        let command = robin::control::Command::parse(method, Some(&params)).unwrap();
        ex.block_on(controller.execute(command, &robin::control::Caller::default())).unwrap()
    };
    run("accounts.add", json!({"address": address}));
    assert_eq!(
        run("accounts.remove", json!({"address": address})),
        json!({"removed": true, "cancelled_tasks": 1})
    );
    assert_eq!(ex.block_on(query.outcome()), robin::tasks::Outcome::Cancelled);
    assert!(tasks.has_task("query_prices"), "other queries keep running");
    other.cancel();
}

#[test]
fn interval_settings_reach_the_scheduler_and_survive_a_restart() {
    let sandbox = Sandbox::new();
    let interval_of = |job: &str| {
        let status = call(&sandbox, "status", json!({}));
        let jobs = status["result"]["scheduler"]["jobs"].as_array().unwrap().clone();
        jobs.into_iter().find(|j| j["name"] == job).unwrap()["interval_secs"].clone()
    };
    let mut daemon = Daemon::start(sandbox.command());
    assert_eq!(interval_of("query_prices"), 300);
    call(&sandbox, "settings.set", json!({"name": "prices_interval_secs", "value": "600"}));
    assert_eq!(interval_of("query_prices"), 600);
    assert_eq!(interval_of("query_balances"), 3600, "only the one asked for");
    daemon.signal("TERM");
    assert!(daemon.wait_exit().success());
    let _daemon = Daemon::start(sandbox.command());
    assert_eq!(interval_of("query_prices"), 600, "read back from the database at start");
}
