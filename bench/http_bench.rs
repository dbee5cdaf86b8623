//! HTTP client benchmark (bench/http_report.py runs it beside bench/http_bench.py, the httpx peer).
//!
//! ```sh
//! cargo run --release --example http_bench -- rps URL REQUESTS CONCURRENCY
//! cargo run --release --example http_bench -- balances ADDRESSES
//! ```
//! `rps` GETs URL REQUESTS times, CONCURRENCY at once, through robin's shared client and prints
//! requests per second. `balances` runs query_balances for ADDRESSES accounts against a JSON-RPC
//! node it serves itself on 127.0.0.1, and prints the wall time and peak RSS.
use std::io::{BufRead, BufReader, Read, Write};
use std::rc::Rc;
use std::time::Instant;

use robin::outbound::{Client, Settings};
use robin::runtime::Spawner;
use serde_json::{Value, json};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("rps") => rps(&args[1], args[2].parse().unwrap(), args[3].parse().unwrap()),
        Some("balances") => balances(args[1].parse().unwrap()),
        _ => eprintln!("usage: http_bench rps URL REQUESTS CONCURRENCY | balances ADDRESSES"),
    }
}

fn rps(url: &str, requests: usize, concurrency: usize) {
    let ex = Spawner::new();
    let client = Client::new(Settings { per_host_concurrency: concurrency, ..Settings::default() });
    ex.block_on(client.get_json::<Value>(url)).unwrap(); // connect and warm up
    let started = Instant::now();
    let results = ex.block_on(robin::outbound::join_all_bounded(
        (0..requests).map(|_| client.get_json::<Value>(url)),
        concurrency,
    ));
    let seconds = started.elapsed().as_secs_f64();
    assert!(results.iter().all(Result::is_ok), "{:?}", results.iter().find(|r| r.is_err()));
    println!(
        "{}",
        json!({"client": "robin", "requests": requests, "concurrency": concurrency, "per_second": requests as f64 / seconds})
    );
}

/// A JSON-RPC node on 127.0.0.1 that answers the two calls query_balances makes.
fn rpc_node() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let (mut line, mut length) = (String::new(), 0usize);
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        if header == "\r\n" {
                            break;
                        }
                        if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let answer = |call: &Value| match call["method"].as_str() {
                        Some("eth_getBlockByNumber") => {
                            json!({"jsonrpc": "2.0", "id": call["id"], "result": {"number": "0x10", "timestamp": "0x65000000"}})
                        }
                        _ => json!({"jsonrpc": "2.0", "id": call["id"], "result": "0xde0b6b3a7640000"}),
                    };
                    let reply = match &request {
                        Value::Array(calls) => Value::Array(calls.iter().map(answer).collect()),
                        call => answer(call),
                    }
                    .to_string();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        reply.len()
                    );
                    if writer
                        .write_all(head.as_bytes())
                        .and_then(|_| writer.write_all(reply.as_bytes()))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn balances(addresses: usize) {
    let port = rpc_node();
    let dir = tempfile::tempdir().unwrap();
    let ex = Spawner::new();
    let db =
        ex.block_on(robin::db::Database::open(&dir.path().join("b.db"), None, Default::default())).unwrap();
    for i in 0..addresses {
        let account =
            robin::db::Account { chain: "eth".into(), address: format!("0x{:040x}", i + 1), label: None };
        ex.block_on(db.add_account(account)).unwrap();
    }
    ex.block_on(db.set_setting("rpc_url".into(), format!("http://127.0.0.1:{port}/"))).unwrap();
    ex.block_on(db.set_setting("main_currency".into(), "EUR".into())).unwrap();
    ex.block_on(db.store_prices("EUR".into(), vec![("ethereum".into(), "2000.5".into())], 0)).unwrap();
    let tasks = robin::tasks::TaskManager::new(ex.clone(), Rc::new(|_| {}), Rc::new(|_| {}));
    let session = robin::control::Session::new(tasks.clone());
    session.set_default_database(Some(db));
    let ctx = Rc::new(robin::jobs::JobContext {
        http: Rc::new(Client::new(Settings::default())),
        session,
        tasks,
        broadcast: Rc::new(|_| {}),
        after_balances: Rc::new(|| {}),
    });
    let started = Instant::now();
    let result = ex.block_on(robin::jobs::query_balances(ctx)).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    println!(
        "{}",
        json!({"job": "query_balances", "addresses": addresses, "seconds": seconds, "peak_rss_kib": peak.parse::<u64>().unwrap(), "total": result["total"]})
    );
}
