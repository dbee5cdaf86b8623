//! Python's `websockets` library as a client of the notifier: a second, independent
//! implementation of RFC 6455 must interoperate. tests/run.sh installs it into tests/.venv.
mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use robin::notifier::{Message, Progress};
use serde_json::{Value, json};
use support::notifier_loop::{NotifierLoop, Options};

fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/.venv/bin/python");
    assert!(venv.exists(), "{} is missing: run tests/run.sh, which creates it", venv.display());
    venv
}

#[test]
fn python_websockets_client_gets_echo_and_broadcasts() {
    let server = NotifierLoop::start(Options::default());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/ws_client.py");
    let mut child = Command::new(python())
        .arg(script)
        .arg(server.url(""))
        .arg("4")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    server.wait_for_clients(1);
    server.handle.add_error("from rust");
    server.handle.broadcast(Message::refresh_balances(robin::notifier::Blockchain::Eth));
    server.handle.broadcast(Message::ProgressUpdates(Progress::CsvImportResult {
        source_name: "rotki".into(),
        total: 2,
        processed: 0,
        messages: Vec::new(),
    }));

    let lines: Vec<String> =
        BufReader::new(child.stdout.take().unwrap()).lines().map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success(), "the Python client failed; stdout: {lines:?}");
    assert_eq!(lines.len(), 4, "{lines:?}");
    let echo_at = lines.iter().position(|l| l == "hello from python").expect("the echo arrives");
    let messages: Vec<Value> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != echo_at)
        .map(|(_, l)| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        messages[0],
        json!({"type": "legacy", "data": {"verbosity": "error", "value": "from rust"}, "seq": 1})
    );
    assert_eq!(messages[1]["type"], "refresh_balances");
    assert_eq!(messages[2]["data"]["subtype"], "csv_import_result");
}
