//! Load generator for the fan-out benchmark: N WebSocket clients on one thread.
//!
//! ```sh
//! cargo run --release --example ws_load -- --port P --clients N [--timeout SECS] [--idle SECS]
//!     [--read-rate BYTES_PER_SEC]
//! ```
//!
//! Connects N clients to `ws://127.0.0.1:P/ws` and reads until each has seen `bench_done`.
//! For every message it takes the latency `now - t` (`t=<ns>` in the value; both from the
//! same clock, same machine). Prints one JSON line: deliveries, deliveries per second (from the
//! first send to the last receipt), p50/p99 latency in microseconds, and clients that were
//! closed before `bench_done`. With `--idle SECS` it only connects, holds the connections for
//! SECS (for memory-per-connection measurements), prints `CONNECTED` and exits. With
//! `--read-rate R` each client reads steadily but slowly: at most R/100 bytes every 10 ms, a
//! client that is behind during a burst but never stuck.
use std::cell::RefCell;
use std::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_executor::LocalExecutor;
use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};

#[derive(Default)]
struct Tally {
    deliveries: u64,
    latencies_us: Vec<u64>,
    first_send_ns: u128,
    last_receipt_ns: u128,
    finished: usize,
    cut_off: usize,
}

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// The ` t=<ns>` in the value, read without a JSON parser so the load generator stays cheap.
fn sent_at(text: &str) -> Option<u128> {
    let start = text.find(" t=")? + 3;
    let digits: &str = text[start..].trim_start();
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// Opens a WebSocket by hand; returns the stream and any bytes read past the 101 head.
async fn handshake(port: u16) -> (Async<TcpStream>, Vec<u8>) {
    let mut stream = Async::<TcpStream>::connect(([127, 0, 0, 1], port)).await.expect("connect");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send handshake");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.expect("read handshake");
        assert!(n > 0, "server closed during the handshake");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            assert!(buf.starts_with(b"HTTP/1.1 101"), "no upgrade: {}", String::from_utf8_lossy(&buf));
            return (stream, buf.split_off(end + 4));
        }
    }
}

/// One client: reads raw server frames (unmasked, by the RFC) from large reads, so that the
/// load generator costs far less per message than the servers it measures.
async fn client(port: u16, tally: Rc<RefCell<Tally>>, read_rate: Option<usize>) {
    let (mut stream, mut buf) = handshake(port).await;
    // A slow reader takes a small chunk per tick; the rest waits in the kernel and the server.
    let chunk_len = read_rate.map_or(256 * 1024, |rate| (rate / READS_PER_SEC).max(1));
    let mut chunk = vec![0u8; chunk_len];
    loop {
        let mut consumed = 0;
        while let Some((opcode, payload, frame_len)) = parse_frame(&buf[consumed..]) {
            consumed += frame_len;
            match opcode {
                0x1 => {
                    let text = std::str::from_utf8(payload).unwrap_or("");
                    if text.contains("\"value\":\"bench_done\"") {
                        tally.borrow_mut().finished += 1;
                        return;
                    }
                    if let Some(t) = sent_at(text) {
                        let now = now_ns();
                        let mut tally = tally.borrow_mut();
                        tally.deliveries += 1;
                        tally.latencies_us.push((now.saturating_sub(t) / 1000) as u64);
                        if tally.first_send_ns == 0 || t < tally.first_send_ns {
                            tally.first_send_ns = t;
                        }
                        tally.last_receipt_ns = tally.last_receipt_ns.max(now);
                    }
                }
                0x8 => {
                    tally.borrow_mut().cut_off += 1;
                    return;
                }
                _ => {} // pings: the run is far shorter than the ping timeout
            }
        }
        buf.drain(..consumed);
        if read_rate.is_some() {
            Timer::after(Duration::from_secs(1) / READS_PER_SEC as u32).await;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                tally.borrow_mut().cut_off += 1;
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads per second of a slow client (`--read-rate`).
const READS_PER_SEC: usize = 100;

/// One complete unmasked frame at the start of `buf`: (opcode, payload, frame length).
fn parse_frame(buf: &[u8]) -> Option<(u8, &[u8], usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let (len, header) = match b1 & 0x7F {
        126 => (u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize, 4),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize, 10),
        n => (n as usize, 2),
    };
    let payload = buf.get(header..header + len)?;
    Some((b0 & 0x0F, payload, header + len))
}

fn main() {
    let (mut port, mut clients, mut timeout, mut idle) = (0u16, 1usize, 120u64, None::<u64>);
    let mut read_rate = None::<usize>;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        match flag.as_str() {
            "--port" => port = value.parse().expect("--port"),
            "--clients" => clients = value.parse().expect("--clients"),
            "--timeout" => timeout = value.parse().expect("--timeout"),
            "--idle" => idle = Some(value.parse().expect("--idle")),
            "--read-rate" => read_rate = Some(value.parse().expect("--read-rate")),
            other => panic!("unknown flag {other}"),
        }
    }
    let ex = LocalExecutor::new();
    let tally = Rc::new(RefCell::new(Tally::default()));
    futures_lite::future::block_on(ex.run(async {
        if let Some(secs) = idle {
            let mut held = Vec::new();
            for _ in 0..clients {
                held.push(handshake(port).await);
            }
            println!("CONNECTED");
            Timer::after(Duration::from_secs(secs)).await;
            return;
        }
        let tasks: Vec<_> = (0..clients).map(|_| ex.spawn(client(port, tally.clone(), read_rate))).collect();
        let all = async {
            for task in tasks {
                task.await;
            }
        };
        all.or(async {
            Timer::after(Duration::from_secs(timeout)).await;
            eprintln!("ws_load: timed out after {timeout} s");
        })
        .await;
    }));
    if idle.is_some() {
        return;
    }
    let mut tally = tally.take();
    tally.latencies_us.sort_unstable();
    let pct = |p: f64| {
        tally
            .latencies_us
            .get(
                ((tally.latencies_us.len() as f64 * p) as usize)
                    .min(tally.latencies_us.len().saturating_sub(1)),
            )
            .copied()
            .unwrap_or(0)
    };
    let seconds = (tally.last_receipt_ns.saturating_sub(tally.first_send_ns)) as f64 / 1e9;
    println!(
        "{}",
        serde_json::json!({
            "clients": clients,
            "deliveries": tally.deliveries,
            "seconds": seconds,
            "deliveries_per_sec": if seconds > 0.0 { tally.deliveries as f64 / seconds } else { 0.0 },
            "p50_us": pct(0.50),
            "p99_us": pct(0.99),
            "finished": tally.finished,
            "cut_off": tally.cut_off,
        })
    );
}
