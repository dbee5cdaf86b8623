//! unlock and logout: users' encrypted databases, against the real daemon.
mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use support::{Daemon, Sandbox, ipc_call};

fn call(sandbox: &Sandbox, method: &str, params: Value) -> Value {
    ipc_call(&sandbox.socket(), &json!({"id": 1, "method": method, "params": params}).to_string())
}

#[test]
fn unlock_switches_to_the_users_encrypted_database_and_logout_back() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    let unlocked = call(&sandbox, "unlock", json!({"username": "alice", "password": "it's secret"}));
    let user_db = sandbox.data_dir().join("users/alice/robin.db");
    assert_eq!(unlocked["result"]["database"]["path"], user_db.to_str().unwrap(), "{unlocked}");
    assert_eq!(unlocked["result"]["database"]["encrypted"], true);
    let status = call(&sandbox, "status", json!({}));
    assert_eq!(status["result"]["user"], "alice");

    assert_eq!(call(&sandbox, "assets.add", json!({"asset": "ethereum"}))["result"]["added"], true);
    let on_disk = std::fs::read(&user_db).unwrap();
    assert!(!on_disk.windows(8).any(|w| w == b"ethereum"), "encrypted on disk");

    assert_eq!(call(&sandbox, "logout", json!({}))["result"], true);
    assert_eq!(call(&sandbox, "status", json!({}))["result"]["user"], Value::Null);
    assert_eq!(call(&sandbox, "assets.list", json!({}))["result"], json!([]), "the default database again");

    call(&sandbox, "unlock", json!({"username": "alice", "password": "it's secret"}));
    assert_eq!(
        call(&sandbox, "assets.list", json!({}))["result"],
        json!(["ethereum"]),
        "the user's data is back"
    );
}

/// Every file in `dir` with its bytes, sorted by name.
fn files_in(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn a_wrong_password_is_refused_and_changes_nothing() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    call(&sandbox, "unlock", json!({"username": "bob", "password": "right"}));
    call(&sandbox, "logout", json!({}));
    let user_dir = sandbox.data_dir().join("users/bob");
    let before = files_in(&user_dir);
    let refused = call(&sandbox, "unlock", json!({"username": "bob", "password": "wrong"}));
    assert_eq!(refused["error"]["code"], -32006);
    assert!(
        refused["error"]["message"].as_str().unwrap().starts_with("wrong password for database"),
        "{refused}"
    );
    assert_eq!(call(&sandbox, "status", json!({}))["result"]["user"], Value::Null);
    let after = files_in(&user_dir);
    assert_eq!(after, before, "nothing on disk changed");

    // The same user waits a second after a wrong password, whatever the transport.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let body = r#"{"method":"unlock","params":{"username":"bob","password":"wrong"}}"#;
    let request = format!(
        "POST /api/1/control HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(support::parse_response(&support::http_raw(daemon.http_addr(), request.as_bytes())).0, 401);
}

#[test]
fn unlock_and_logout_refuse_what_does_not_fit() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    assert_eq!(call(&sandbox, "logout", json!({}))["error"]["message"], "no user is unlocked");
    assert_eq!(
        call(&sandbox, "unlock", json!({"username": "../etc", "password": "x"}))["error"]["code"],
        -32602
    );
    assert_eq!(
        call(&sandbox, "unlock", json!({"username": "carol", "password": ""}))["error"]["code"],
        -32602
    );
    call(&sandbox, "unlock", json!({"username": "carol", "password": "pw"}));
    let again = call(&sandbox, "unlock", json!({"username": "dave", "password": "pw"}));
    assert_eq!(again["error"]["message"], "user 'carol' is unlocked; logout first");
}

#[test]
fn robinctl_unlock_reads_the_password_and_reports_a_wrong_one() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    let robinctl = |password: &str, args: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_robinctl"))
            .arg("--socket")
            .arg(sandbox.socket())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let first = robinctl("hunter2", &["unlock", "erin", "--password-stdin"]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(robinctl("", &["logout"]).status.success());
    let wrong = robinctl("hunter3", &["unlock", "erin", "--password-stdin"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("wrong password"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
}

#[test]
fn an_unlocked_users_database_is_backed_up_encrypted_beside_it() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    call(&sandbox, "unlock", json!({"username": "frank", "password": "pw"}));
    call(&sandbox, "assets.add", json!({"asset": "ethereum"}));
    let started = call(&sandbox, "tasks.run", json!({"job": "db_backup"}));
    let id = started["result"]["task_id"].as_u64().unwrap_or_else(|| panic!("{started}"));
    let mut outcome = Value::Null;
    support::eventually("the backup", || {
        let reply = call(&sandbox, "tasks.result", json!({"id": id}));
        outcome = reply["result"]["outcome"].clone();
        reply["result"]["status"] == "completed"
    });
    let path =
        std::path::PathBuf::from(outcome["result"]["backup"].as_str().unwrap_or_else(|| panic!("{outcome}")));
    assert!(path.starts_with(sandbox.data_dir().join("users/frank/backups")), "{}", path.display());
    let open = |password: Option<&str>| {
        futures_lite::future::block_on(robin::db::Database::open(
            &path,
            password.map(|p| robin::db::Password::new(p.into())),
            robin::db::Options::default(),
        ))
    };
    assert!(matches!(open(None), Err(robin::db::Error::PasswordNeeded(_))), "the backup is encrypted");
    let copy = open(Some("pw")).unwrap();
    assert_eq!(futures_lite::future::block_on(copy.assets()).unwrap(), vec!["ethereum"]);
}

#[test]
fn concurrent_unlocks_exactly_one_succeeds_and_the_winner_is_current() {
    let sandbox = Sandbox::new();
    let _daemon = Daemon::start(sandbox.command());
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let attempts: Vec<_> = ["carol", "dave", "erin", "frank"]
        .into_iter()
        .map(|user| {
            let (socket, barrier) = (sandbox.socket(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let request =
                    json!({"id": 1, "method": "unlock", "params": {"username": user, "password": "pw"}});
                (user, ipc_call(&socket, &request.to_string()))
            })
        })
        .collect();
    let answers: Vec<(&str, Value)> = attempts.into_iter().map(|t| t.join().unwrap()).collect();
    let winners: Vec<&str> =
        answers.iter().filter(|(_, a)| a["result"].is_object()).map(|(u, _)| *u).collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    for (user, answer) in &answers {
        if answer["result"].is_object() {
            continue;
        }
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("another unlock or logout is in progress")
                || message.contains("is unlocked; logout first"),
            "{user}: {message}"
        );
    }
    assert_eq!(call(&sandbox, "status", json!({}))["result"]["user"], winners[0]);
}

#[test]
fn wrong_passwords_back_off_and_never_reach_the_log() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    assert!(
        call(&sandbox, "unlock", json!({"username": "gina", "password": "Right-Horse-77"}))["result"]
            .is_object()
    );
    call(&sandbox, "logout", json!({}));
    let wrong = call(&sandbox, "unlock", json!({"username": "gina", "password": "Wrong-Battery-12"}));
    assert_eq!(wrong["error"]["code"], -32006, "{wrong}");
    // The right password right away is not even tried: this caller waits first.
    let early = call(&sandbox, "unlock", json!({"username": "gina", "password": "Right-Horse-77"}));
    let message = early["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("too many wrong passwords; try again in"), "{early}");
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let later = call(&sandbox, "unlock", json!({"username": "gina", "password": "Right-Horse-77"}));
    assert!(later["result"].is_object(), "after the wait: {later}");
    let log = daemon.wait_for_log("wrong password (1 in a row); next attempt allowed in 1s");
    assert!(
        !log.contains("Right-Horse-77") && !log.contains("Wrong-Battery-12"),
        "passwords in the log:\n{log}"
    );
}

#[test]
fn the_backoff_follows_the_user_not_the_transport_or_address() {
    let sandbox = Sandbox::new();
    let daemon = Daemon::start(sandbox.command());
    call(&sandbox, "unlock", json!({"username": "hugo", "password": "Right-Horse-77"}));
    call(&sandbox, "logout", json!({}));
    let wrong = call(&sandbox, "unlock", json!({"username": "hugo", "password": "Wrong-Battery-12"}));
    assert_eq!(wrong["error"]["code"], -32006, "{wrong}");
    // The same user over TCP (another transport, another address) is the same guesser.
    let body =
        json!({"method": "unlock", "params": {"username": "hugo", "password": "Other-Guess-99"}}).to_string();
    let request = format!(
        "POST /api/1/control HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let reply = support::http_raw(daemon.http_addr(), request.as_bytes());
    assert!(reply.contains("too many wrong passwords; try again in"), "{reply}");
}
