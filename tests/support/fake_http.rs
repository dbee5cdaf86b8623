//! A scriptable HTTP/1.1 server on 127.0.0.1 for client tests: each path is a behaviour.
//!
//! `/json` answers `{"ok":true}`; `/slow?ms=N` waits N ms first; `/flaky429` answers 429 with
//! `Retry-After: 1` the first time, then 200; `/always500` answers 500; `/malformed` answers
//! broken JSON; `/big?bytes=N` answers N bytes; `/reset` closes without answering; `/echo`
//! answers the request body. Keep-alive is supported, as curl reuses connections.
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Default)]
pub struct Counters {
    pub hits: Mutex<HashMap<String, usize>>,
    pub active: AtomicUsize,
    pub peak: AtomicUsize,
}

pub struct FakeHttp {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl FakeHttp {
    pub fn start() -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counters.clone(), stop.clone());
        thread::spawn(move || {
            while !s.load(SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let c = c.clone();
                        thread::spawn(move || serve(stream, c));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        FakeHttp { addr, counters, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn hits(&self, path: &str) -> usize {
        self.counters.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
    }
}

/// The price each known asset has in EUR; others are unknown to the fake API.
pub const EUR_PRICES: &[(&str, &str)] =
    &[("ethereum", "2000.5"), ("bitcoin", "40000.25"), ("usd-coin", "0.92"), ("dai", "0.91")];
/// A 6-decimal token: every address holds 2.5 of it (2,500,000 units).
pub const USDC: &str = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";
/// An 18-decimal token: every address holds 10.25 of it.
pub const DAI: &str = "0x6b175474e89094c44da98b954eedeac495271d0f";
/// A contract whose `balanceOf` reverts.
pub const REVERTING: &str = "0x000000000000000000000000000000000000dead";
/// An address that is not a contract: `eth_call` returns `0x`.
pub const NOT_A_TOKEN: &str = "0x000000000000000000000000000000000000beef";
/// A 0-decimal token every address holds 7 of, with no price at the fake API.
pub const UNPRICED: &str = "0x1111111111111111111111111111111111111111";
/// Every address holds 1.5 ETH, in wei.
pub const WEI_PER_ADDRESS: u128 = 1_500_000_000_000_000_000;

fn simple_price(query: &str) -> Vec<u8> {
    let ids = query.split('&').find_map(|kv| kv.strip_prefix("ids=")).unwrap_or("");
    let mut answer = serde_json::Map::new();
    for id in ids.split(',') {
        if let Some((_, price)) = EUR_PRICES.iter().find(|(asset, _)| *asset == id) {
            let number: serde_json::Number = price.parse().unwrap();
            answer.insert(id.to_string(), serde_json::json!({ "eur": number }));
        }
    }
    serde_json::Value::Object(answer).to_string().into_bytes()
}

fn json_rpc(body: &[u8]) -> Vec<u8> {
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let answer = |call: &serde_json::Value| {
        let result = match call["method"].as_str() {
            Some("eth_getBlockByNumber") => {
                serde_json::json!({ "number": "0x10", "timestamp": "0x65000000" })
            }
            Some("eth_getBalance") => serde_json::json!(format!("0x{WEI_PER_ADDRESS:x}")),
            Some("eth_call") => {
                let target = call["params"][0]["to"].as_str().unwrap_or_default();
                let data = call["params"][0]["data"].as_str().unwrap_or_default();
                assert!(
                    data.starts_with("0x70a08231") && data.len() == 10 + 64,
                    "balanceOf(address): {data}"
                );
                let units: u128 = match target {
                    USDC => 2_500_000,
                    DAI => 10_250_000_000_000_000_000,
                    UNPRICED => 7,
                    REVERTING => {
                        let error = serde_json::json!({ "code": 3, "message": "execution reverted" });
                        return serde_json::json!({ "jsonrpc": "2.0", "id": call["id"], "error": error });
                    }
                    _ => return serde_json::json!({ "jsonrpc": "2.0", "id": call["id"], "result": "0x" }),
                };
                serde_json::json!(format!("0x{units:064x}"))
            }
            _ => serde_json::Value::Null,
        };
        serde_json::json!({ "jsonrpc": "2.0", "id": call["id"], "result": result })
    };
    match &request {
        serde_json::Value::Array(calls) => serde_json::Value::Array(calls.iter().map(answer).collect()),
        call => answer(call),
    }
    .to_string()
    .into_bytes()
}

fn serve(stream: TcpStream, counters: Arc<Counters>) {
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0;
        let mut user_agent = String::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                content_length = value.trim().parse().unwrap_or(0);
            }
            if header.to_ascii_lowercase().starts_with("user-agent:") {
                user_agent = header["user-agent:".len()..].trim().to_string();
            }
        }
        let mut body = vec![0u8; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let param = |name: &str| -> u64 {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let hit = {
            let mut hits = counters.hits.lock().unwrap();
            let count = hits.entry(path.to_string()).or_default();
            *count += 1;
            *count
        };
        let now = counters.active.fetch_add(1, SeqCst) + 1;
        counters.peak.fetch_max(now, SeqCst);
        let (status, headers, payload): (u16, &str, Vec<u8>) = match path {
            "/json" => (200, "", br#"{"ok":true}"#.to_vec()),
            "/slow" => {
                thread::sleep(Duration::from_millis(param("ms")));
                (200, "", b"{}".to_vec())
            }
            "/flaky429" if hit == 1 => (429, "Retry-After: 1\r\n", b"slow down".to_vec()),
            "/flaky429" => (200, "", br#"{"ok":true}"#.to_vec()),
            "/always500" => (500, "", b"boom".to_vec()),
            "/malformed" => (200, "", b"{not json".to_vec()),
            "/big" => (200, "", vec![b'x'; param("bytes") as usize]),
            "/echo" => (200, "", body),
            "/api/v3/simple/price" => (200, "", simple_price(query)),
            "/broken/simple/price" => (500, "", b"boom".to_vec()),
            "/slowprices/simple/price" => {
                thread::sleep(Duration::from_millis(3000));
                (200, "", simple_price(query))
            }
            "/rpc" => {
                thread::sleep(Duration::from_millis(param("delay")));
                (200, "", json_rpc(&body))
            }
            "/user-agent" => {
                (200, "", serde_json::json!({ "user_agent": user_agent }).to_string().into_bytes())
            }
            "/reset" => {
                counters.active.fetch_sub(1, SeqCst);
                return; // drop the connection without a word
            }
            _ => (404, "", b"{}".to_vec()),
        };
        counters.active.fetch_sub(1, SeqCst);
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{headers}\r\n",
            payload.len()
        );
        if writer.write_all(head.as_bytes()).and_then(|_| writer.write_all(&payload)).is_err() {
            return;
        }
    }
}
