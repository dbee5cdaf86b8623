//! `robinctl` end to end against the real daemon: output, `--json`, exit codes.
mod support;

use std::process::Output;

use serde_json::Value;
use support::{Daemon, Sandbox, robinctl};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn status_for_people_and_for_scripts() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    let human = robinctl(&sandbox, &["status"]);
    assert!(human.status.success());
    let text = stdout(&human);
    assert!(text.contains(&format!("pid            {}", daemon.pid())), "{text}");
    assert!(text.contains("RUNNING") && text.contains("RECENT"), "{text}");
    let json = robinctl(&sandbox, &["--json", "status"]);
    let status: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(status["pid"], daemon.pid());
}

#[test]
fn run_wait_shows_the_outcome_and_exits_zero() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    let out = robinctl(&sandbox, &["run", "db_backup", "--wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert!(text.contains("db_backup (task 0) completed") && text.contains("/backups/robin-"), "{text}");
    let json = robinctl(&sandbox, &["--json", "run", "db_backup", "--wait"]);
    let outcome: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(outcome["result"]["backup"].is_string(), "{outcome}");
}

#[test]
fn data_commands_round_trip() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    assert!(robinctl(&sandbox, &["assets", "add", "ethereum"]).status.success());
    assert_eq!(stdout(&robinctl(&sandbox, &["assets", "list"])), "ethereum\n");
    let address = "0xde0b295669a9fd93d5f28d9ec85e40f4cb697bae";
    assert!(robinctl(&sandbox, &["accounts", "add", address, "--label", "donations"]).status.success());
    assert!(
        stdout(&robinctl(&sandbox, &["accounts", "list"])).contains(&format!("eth   {address}  donations"))
    );
    assert!(robinctl(&sandbox, &["settings", "main_currency", "EUR"]).status.success());
    assert!(stdout(&robinctl(&sandbox, &["settings"])).contains("EUR"));
    assert!(robinctl(&sandbox, &["schedule", "on"]).status.success());
    let cancel = robinctl(&sandbox, &["--json", "cancel", "--prefix", "query_"]);
    assert_eq!(stdout(&cancel).trim(), r#"{"cancelled":0}"#);
    let backup = sandbox.dir.path().join("by-hand.db");
    assert!(robinctl(&sandbox, &["backup", backup.to_str().unwrap()]).status.success());
    assert!(backup.exists());
    // Again onto the same file: refused without --overwrite, done with it (either order).
    let again = robinctl(&sandbox, &["backup", backup.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1), "{}", String::from_utf8_lossy(&again.stderr));
    for args in [
        ["backup", backup.to_str().unwrap(), "--overwrite"],
        ["backup", "--overwrite", backup.to_str().unwrap()],
    ] {
        let out = robinctl(&sandbox, &args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn exit_codes_tell_scripts_what_happened() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    let refused = robinctl(&sandbox, &["accounts", "add", "0xnope"]);
    assert_eq!(refused.status.code(), Some(1), "the daemon refused");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not an EVM address"));
    assert_eq!(robinctl(&sandbox, &["frobnicate"]).status.code(), Some(2), "usage");
    assert_eq!(robinctl(&sandbox, &["cancel", "seven"]).status.code(), Some(2), "usage");
    let unknown_job = robinctl(&sandbox, &["run", "mine_bitcoin", "--wait"]);
    assert_eq!(unknown_job.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown_job.stderr).contains("unknown job"));
}
