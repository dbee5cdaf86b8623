//! The notifier over real WebSocket connections on loopback.
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use futures_lite::StreamExt;
use robin::notifier::{Limits, Progress};
use robin::server::Access;
use serde_json::{Value, json};
use support::notifier_loop::{NotifierLoop, Options, connect, next_json};
use support::{eventually, http_get};

fn start() -> NotifierLoop {
    NotifierLoop::start(Options::default())
}

#[test]
fn legacy_error_arrives_in_rotkis_exact_shape() {
    let server = start();
    smol::block_on(async {
        let mut client = connect(&server.url("")).await;
        server.wait_for_clients(1);
        server.handle.add_error("Query of balances died");
        let Some(Ok(Message::Text(text))) = client.next().await else { panic!("no message") };
        assert_eq!(
            text.as_str(),
            r#"{"type":"legacy","data":{"verbosity":"error","value":"Query of balances died"},"seq":1}"#
        );
        server.handle.add_warning("careful");
        let warning = next_json(&mut client).await;
        assert_eq!(warning["data"], json!({"verbosity": "warning", "value": "careful"}));
    });
}

#[test]
fn each_client_gets_every_message_in_order() {
    let server = start();
    smol::block_on(async {
        let mut client = connect(&server.url("/")).await;
        server.wait_for_clients(1);
        for i in 0..500 {
            assert!(server.handle.broadcast(numbered(i)));
        }
        for i in 0..500u64 {
            let message = next_json(&mut client).await;
            assert_eq!(
                (message["seq"].as_u64(), message["data"]["processed"].as_u64()),
                (Some(i + 1), Some(i))
            );
        }
    });
}

#[test]
fn a_hundred_clients_all_receive_everything() {
    let server = start();
    smol::block_on(async {
        let mut clients = Vec::new();
        for _ in 0..100 {
            clients.push(connect(&server.url("")).await);
        }
        server.wait_for_clients(100);
        for i in 0..200 {
            server.handle.broadcast(numbered(i));
        }
        let receivers = clients.into_iter().map(|mut client| {
            smol::spawn(async move {
                let mut seqs = Vec::new();
                for _ in 0..200 {
                    seqs.push(next_json(&mut client).await["seq"].as_u64().unwrap());
                }
                seqs
            })
        });
        let expected: Vec<u64> = (1..=200).collect();
        for receiver in receivers.collect::<Vec<_>>() {
            assert_eq!(receiver.await, expected);
        }
    });
    assert_eq!(server.handle.stats().clients_closed_slow.load(Relaxed), 0);
}

/// Opens a WebSocket by hand and then never reads: the slowest possible client.
fn stalled_client(server: &NotifierLoop) -> TcpStream {
    support::raw_websocket(server.addr).0
}

#[test]
fn a_client_that_stops_reading_is_closed_with_1013_and_others_keep_receiving() {
    let limits = Limits { client_queue_bytes: 256 * 1024, ..Limits::default() };
    let server = NotifierLoop::start(Options { limits, ..Options::default() });
    let stalled = stalled_client(&server);
    let pad = "x".repeat(16 * 1024);
    let total = 2000; // 32 MB: far more than the kernel's socket buffers and the queue together
    smol::block_on(async {
        let mut fast = connect(&server.url("")).await;
        server.wait_for_clients(2);
        // The producer keeps at most 8 messages (128 KiB) ahead of the fast client, which is
        // what "a client that keeps up" means; the stalled one falls behind without bound.
        let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let sender = server.handle.clone();
        let (pad, seen) = (pad.clone(), received.clone());
        let producer = std::thread::spawn(move || {
            for i in 0..total {
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                while i >= seen.load(Relaxed) + 8 {
                    assert!(std::time::Instant::now() < deadline, "the fast client stopped receiving");
                    std::thread::sleep(Duration::from_micros(200));
                }
                assert!(sender.broadcast(warning(format!("{i} {pad}"))));
            }
        });
        for i in 0..total {
            let message = next_json(&mut fast).await;
            let number =
                message["data"]["value"].as_str().and_then(|v| v.split(' ').next()).map(str::to_string);
            assert_eq!(number, Some(i.to_string()), "the fast client misses nothing");
            received.store(i + 1, Relaxed);
        }
        producer.join().unwrap();
        let stats = server.handle.stats();
        eventually("the stalled client to be closed", || stats.clients_closed_slow.load(Relaxed) == 1);
        assert_eq!(stats.clients.load(Relaxed), 1, "only the fast client remains");
    });

    // Now the stalled client reads: it gets what the kernel buffered, then a close frame 1013.
    let close_code = read_until_close(stalled);
    assert_eq!(close_code, Some(1013));
}

#[test]
fn a_client_that_takes_nothing_is_closed_at_the_write_deadline_even_with_room_in_its_queue() {
    // A queue far larger than what is sent, so that only the deadline can close the client.
    let limits = Limits {
        write_timeout: Duration::from_millis(500),
        client_queue_bytes: 256 << 20,
        client_queue_messages: 100_000,
        ..Limits::default()
    };
    let server = NotifierLoop::start(Options { limits, ..Options::default() });
    let _stalled = stalled_client(&server);
    server.wait_for_clients(1);
    let pad = "x".repeat(16 * 1024);
    for i in 0..1000 {
        assert!(server.handle.broadcast(warning(format!("{i} {pad}"))));
    }
    let stats = server.handle.stats();
    eventually("the deaf client to be closed", || stats.clients.load(Relaxed) == 0);
    assert_eq!(stats.clients_closed_slow.load(Relaxed), 0, "closed for not reading, not for overflowing");
}

/// Bounds for the slow-client tests: a client is behind after 64 frames or 64 KiB, far below
/// any burst they send.
fn small_soft_bounds() -> Limits {
    Limits { client_queue_messages: 64, client_queue_bytes: 64 * 1024, ..Limits::default() }
}

#[test]
fn a_client_reading_slowly_through_a_burst_is_kept() {
    // Hard bounds above the whole burst: only being stuck could close this client.
    let limits = Limits {
        client_queue_max_messages: 100_000,
        client_queue_max_bytes: 64 << 20,
        ..small_soft_bounds()
    };
    let server = NotifierLoop::start(Options { limits, ..Options::default() });
    let mut slow = stalled_client(&server);
    server.wait_for_clients(1);
    let total = 3000; // 3 MB, as fast as the bridge takes them
    let sender = server.handle.clone();
    let producer = std::thread::spawn(move || {
        let pad = "x".repeat(1000);
        for i in 0..total {
            while !sender.broadcast(warning(format!("{i} {pad}"))) {
                std::thread::yield_now();
            }
        }
    });
    // Steady but slower than the producer: 8 KiB every 5 ms, about 1.6 MB/s.
    let mut reader = FrameReader::default();
    for i in 0..total {
        let (opcode, payload) = reader.next(&mut slow, 8 * 1024, Duration::from_millis(5));
        assert_eq!(opcode, 0x1, "frame {i}: closed ({:?})", payload.get(..2));
        let message: Value = serde_json::from_slice(&payload).unwrap();
        let number = message["data"]["value"].as_str().and_then(|v| v.split(' ').next()).map(str::to_string);
        assert_eq!(number, Some(i.to_string()), "in order, nothing missed");
    }
    producer.join().unwrap();
    let stats = server.handle.stats();
    assert!(stats.clients_fell_behind.load(Relaxed) >= 1, "the burst did put the client behind");
    assert_eq!(stats.clients_closed_slow.load(Relaxed), 0);
    assert_eq!(stats.clients.load(Relaxed), 1);
}

#[test]
fn a_client_that_never_reads_is_closed_after_the_grace() {
    // The hard bounds and the write deadline are out of reach: only the grace can close it.
    let limits = Limits {
        client_queue_max_messages: 100_000,
        client_queue_max_bytes: 256 << 20,
        slow_client_grace: Duration::from_millis(500),
        write_timeout: Duration::from_secs(3600),
        ..small_soft_bounds()
    };
    let server = NotifierLoop::start(Options { limits, ..Options::default() });
    let _deaf = stalled_client(&server);
    server.wait_for_clients(1);
    let pad = "x".repeat(16 * 1024);
    for i in 0..600 {
        // 10 MB: more than the kernel's buffers take, so the rest waits in the queue.
        assert!(server.handle.broadcast(warning(format!("{i} {pad}"))));
    }
    let stats = server.handle.stats();
    eventually("the deaf client to be closed", || stats.clients.load(Relaxed) == 0);
    assert_eq!(stats.clients_closed_slow.load(Relaxed), 1);
}

#[test]
fn a_client_past_the_hard_bound_is_closed_at_once_with_1013() {
    // A grace and a write deadline out of reach: only the hard bound can close it.
    let limits = Limits {
        client_queue_max_messages: 1000,
        client_queue_max_bytes: 1 << 20,
        slow_client_grace: Duration::from_secs(3600),
        write_timeout: Duration::from_secs(3600),
        ..small_soft_bounds()
    };
    let server = NotifierLoop::start(Options { limits, ..Options::default() });
    let stalled = stalled_client(&server);
    server.wait_for_clients(1);
    let pad = "x".repeat(16 * 1024);
    for i in 0..600 {
        assert!(server.handle.broadcast(warning(format!("{i} {pad}"))));
    }
    let stats = server.handle.stats();
    eventually("the client past the hard bound to be closed", || stats.clients.load(Relaxed) == 0);
    assert_eq!(stats.clients_closed_slow.load(Relaxed), 1);
    assert_eq!(read_until_close(stalled), Some(1013));
}

/// Reads raw server frames from a socket in small reads with a pause before each: a client
/// that reads steadily, and slowly.
#[derive(Default)]
struct FrameReader {
    /// Bytes read and not yet returned as frames.
    buf: Vec<u8>,
}

impl FrameReader {
    /// The next frame's opcode and payload.
    fn next(&mut self, stream: &mut TcpStream, chunk: usize, pause: Duration) -> (u8, Vec<u8>) {
        loop {
            if let Some((opcode, start, len)) = frame_at(&self.buf) {
                let payload = self.buf[start..start + len].to_vec();
                self.buf.drain(..start + len);
                return (opcode, payload);
            }
            std::thread::sleep(pause);
            let mut bytes = vec![0u8; chunk];
            let n = stream.read(&mut bytes).unwrap();
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&bytes[..n]);
        }
    }
}

/// The complete unmasked frame at the start of `buf`: (opcode, payload start, payload length).
fn frame_at(buf: &[u8]) -> Option<(u8, usize, usize)> {
    let (len, start) = match *buf.get(1)? & 0x7F {
        126 => (u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize, 4),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize, 10),
        n => (n as usize, 2),
    };
    (buf.len() >= start + len).then_some((buf[0] & 0x0F, start, len))
}

#[test]
fn errors_queued_for_clients_that_leave_come_back_once_in_api_messages() {
    // Queues that hold the whole burst, so that what the clients did not take is still queued
    // (not dropped for overflow) when they go.
    let limits = Limits { client_queue_bytes: 64 << 20, client_queue_messages: 100_000, ..Limits::default() };
    let server = NotifierLoop::start(Options { limits, ..Options::default() });
    let (first, second) = (stalled_client(&server), stalled_client(&server));
    server.wait_for_clients(2);
    let pad = "x".repeat(16 * 1024);
    for i in 0..400 {
        server.handle.add_error(format!("{i:03} {pad}"));
    }
    server.handle.broadcast(numbered(7)); // progress is stale by the time a UI polls: not put back
    let stats = server.handle.stats();
    eventually("all broadcast", || stats.broadcasts.load(Relaxed) == 401);
    drop((first, second));
    eventually("both gone", || stats.clients.load(Relaxed) == 0);
    let kept = http_get(server.addr, "/api/1/messages").1["result"].clone();
    let numbers: Vec<u64> = kept["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap()[..3].parse().unwrap())
        .collect();
    assert!(!numbers.is_empty() && numbers.len() < 400, "what the kernel took is gone: {}", numbers.len());
    assert_eq!(numbers.last(), Some(&399), "the newest were still queued");
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "in order and each once, though both clients had them");
    assert_eq!(kept["warnings"], json!([]));
}

/// Reads raw server frames until a close frame (returning its code) or EOF (None).
fn read_until_close(mut stream: TcpStream) -> Option<u16> {
    loop {
        let mut head = [0u8; 2];
        if stream.read_exact(&mut head).is_err() {
            return None;
        }
        let len = match head[1] & 0x7F {
            126 => {
                let mut ext = [0u8; 2];
                stream.read_exact(&mut ext).ok()?;
                u16::from_be_bytes(ext) as usize
            }
            127 => {
                let mut ext = [0u8; 8];
                stream.read_exact(&mut ext).ok()?;
                u64::from_be_bytes(ext) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).ok()?;
        if head[0] & 0x0F == 0x8 {
            return Some(u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
}

#[test]
fn reconnecting_with_since_replays_what_was_missed_without_duplicates() {
    let server = start();
    smol::block_on(async {
        let mut client = connect(&server.url("")).await;
        server.wait_for_clients(1);
        for i in 0..5 {
            server.handle.broadcast(numbered(i));
        }
        let mut last = 0;
        for _ in 0..5 {
            last = next_json(&mut client).await["seq"].as_u64().unwrap();
        }
        drop(client);
        server.wait_for_clients(0);
        for i in 5..10 {
            server.handle.broadcast(numbered(i));
        }
        // Wait until the loop has broadcast them all, so the replay has all five.
        let stats = server.handle.stats();
        eventually("ten broadcasts", || stats.broadcasts.load(Relaxed) == 10);

        let mut back = connect(&server.url(&format!("?since={last}"))).await;
        server.wait_for_clients(1);
        server.handle.broadcast(numbered(10));
        let mut seqs = Vec::new();
        for _ in 0..6 {
            seqs.push(next_json(&mut back).await["seq"].as_u64().unwrap());
        }
        assert_eq!(seqs, vec![6, 7, 8, 9, 10, 11]);
    });
}

#[test]
fn reconnecting_after_the_ring_moved_on_reports_the_gap() {
    let limits = Limits { replay_messages: 3, ..Limits::default() };
    let server = NotifierLoop::start(Options { limits, ..Options::default() });
    for i in 0..10 {
        server.handle.broadcast(numbered(i));
    }
    let stats = server.handle.stats();
    eventually("ten broadcasts", || stats.broadcasts.load(Relaxed) == 10);
    smol::block_on(async {
        let mut client = connect(&server.url("?since=2")).await;
        assert_eq!(next_json(&mut client).await, json!({"type": "replay_gap", "data": {"from": 3, "to": 7}}));
        for seq in 8..=10 {
            assert_eq!(next_json(&mut client).await["seq"], seq);
        }
    });
}

/// Sends a raw upgrade request with extra headers and returns the status line's code and body.
fn upgrade_status(server: &NotifierLoop, path: &str, extra_headers: &str) -> (u16, Value) {
    let request = format!(
        "GET {path} HTTP/1.1\r\n{extra_headers}Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = vec![0u8; 4096];
    let n = stream.read(&mut reply).unwrap();
    support::parse_response(&String::from_utf8_lossy(&reply[..n]))
}

#[test]
fn host_origin_and_token_are_enforced() {
    // The UI's dev server: an allowed loopback origin counts only while our user serves it.
    let dev_server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dev_origin = format!("http://localhost:{}", dev_server.local_addr().unwrap().port());
    let access = Access {
        allowed_origins: vec![dev_origin.clone()],
        api_token: Some("t0ken".into()),
        listen_ip: None,
    };
    let server = NotifierLoop::start(Options { access, ..Options::default() });
    let ok = "Host: 127.0.0.1\r\nAuthorization: Bearer t0ken\r\n";
    assert_eq!(upgrade_status(&server, "/ws", ok).0, 101);
    assert_eq!(upgrade_status(&server, "/ws?token=t0ken", "Host: localhost:5042\r\n").0, 101);

    let (status, body) =
        upgrade_status(&server, "/ws", "Host: attacker.example\r\nAuthorization: Bearer t0ken\r\n");
    assert_eq!(status, 403);
    assert!(body["message"].as_str().unwrap().contains("attacker.example"));

    let evil_origin = "Host: 127.0.0.1\r\nOrigin: https://evil.example\r\nAuthorization: Bearer t0ken\r\n";
    let (status, body) = upgrade_status(&server, "/ws", evil_origin);
    assert_eq!(status, 403);
    assert!(body["message"].as_str().unwrap().contains("--ws-origin"));
    let good_origin = format!("Host: 127.0.0.1\r\nOrigin: {dev_origin}\r\nAuthorization: Bearer t0ken\r\n");
    assert_eq!(upgrade_status(&server, "/ws", &good_origin).0, 101);
    drop(dev_server);
    let (status, body) = upgrade_status(&server, "/ws", &good_origin);
    assert_eq!(status, 403, "nobody serves that page any more");
    assert!(body["message"].as_str().unwrap().contains("nothing listens on port"), "{body}");

    assert_eq!(upgrade_status(&server, "/ws", "Host: 127.0.0.1\r\n").0, 401);
    assert_eq!(upgrade_status(&server, "/ws?token=wrong", "Host: 127.0.0.1\r\n").0, 401);
    assert_eq!(http_get(server.addr, "/api/1/tasks").0, 401, "the API needs the token too");
    assert_eq!(http_get(server.addr, "/api/1/ping").0, 200, "but not a liveness probe");
}

#[test]
fn bad_upgrade_requests_get_clear_errors() {
    let server = start();
    let (status, body) = upgrade_status(&server, "/ws?since=abc", "Host: 127.0.0.1\r\n");
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("since"));
    let plain = support::http_get(server.addr, "/ws");
    assert_eq!(plain.0, 426);
}

#[test]
fn oversized_incoming_message_closes_with_1009() {
    let server = start();
    smol::block_on(async {
        let mut client = connect(&server.url("")).await;
        client.send(Message::text("x".repeat(100 * 1024))).await.unwrap();
        loop {
            match client.next().await {
                Some(Ok(Message::Close(Some(frame)))) => {
                    assert_eq!(u16::from(frame.code), 1009);
                    break;
                }
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    });
}

#[test]
fn text_that_is_not_a_command_is_echoed() {
    let server = start();
    smol::block_on(async {
        let mut client = connect(&server.url("")).await;
        client.send(Message::text("hello robin")).await.unwrap();
        let Some(Ok(Message::Text(text))) = client.next().await else { panic!("no echo") };
        assert_eq!(text.as_str(), "hello robin");
    });
}

#[test]
fn broadcasts_from_eight_threads_all_arrive_in_per_thread_order() {
    // This test is about the bridge, not slow clients: the queue holds the whole burst, so a
    // debug-build client that reads slower than the loop broadcasts is not closed as slow.
    let limits = Limits { client_queue_messages: 4096, client_queue_bytes: 4 << 20, ..Limits::default() };
    let server = NotifierLoop::start(Options { limits, ..Options::default() });
    smol::block_on(async {
        let mut client = connect(&server.url("")).await;
        server.wait_for_clients(1);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let handle = server.handle.clone();
                std::thread::spawn(move || {
                    for i in 0..250 {
                        while !handle.broadcast(warning(format!("{t} {i}"))) {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut next_per_thread = [0u64; 8];
        for expected_seq in 1..=2000u64 {
            let message = next_json(&mut client).await;
            assert_eq!(message["seq"], expected_seq);
            let value = message["data"]["value"].as_str().unwrap();
            let (t, i) = value.split_once(' ').unwrap();
            let (t, i): (usize, u64) = (t.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next_per_thread[t], "thread {t}'s messages stay in order");
            next_per_thread[t] += 1;
        }
        for thread in threads {
            thread.join().unwrap();
        }
    });
}

#[test]
fn global_broadcast_without_a_daemon_reports_false() {
    // No daemon installed a global handle in this test process.
    assert!(!robin::notifier::broadcast_ws_message(robin::notifier::Message::refresh_balances(
        robin::notifier::Blockchain::Eth
    )));
}

#[test]
fn errors_nobody_saw_wait_in_api_messages() {
    let server = start();
    server.handle.add_error("nobody was listening");
    server.handle.add_warning("warnings are kept too, as rotki keeps them");
    let stats = server.handle.stats();
    eventually("both broadcasts", || stats.broadcasts.load(Relaxed) == 2);
    let (status, body) = http_get(server.addr, "/api/1/messages");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"result": {"warnings": ["warnings are kept too, as rotki keeps them"], "errors": ["nobody was listening"]}, "message": ""})
    );
    assert_eq!(http_get(server.addr, "/api/1/messages").1["result"]["errors"], json!([]), "drained");
}

#[test]
fn errors_a_client_received_are_not_kept() {
    let server = start();
    smol::block_on(async {
        let mut client = connect(&server.url("")).await;
        server.wait_for_clients(1);
        server.handle.add_error("seen live");
        next_json(&mut client).await;
    });
    assert_eq!(http_get(server.addr, "/api/1/messages").1["result"]["errors"], json!([]));
}

#[test]
fn websockets_flag_off_refuses_ws_but_keeps_errors() {
    let server = NotifierLoop::start(Options { websockets: false, ..Options::default() });
    let (status, body) = upgrade_status(&server, "/ws", "Host: 127.0.0.1\r\n");
    assert_eq!(status, 404);
    assert!(body["message"].as_str().unwrap().contains("websockets"));
    server.handle.add_error("kept for polling");
    let stats = server.handle.stats();
    eventually("the broadcast", || stats.broadcasts.load(Relaxed) == 1);
    assert_eq!(http_get(server.addr, "/api/1/messages").1["result"]["errors"], json!(["kept for polling"]));
}

#[test]
fn a_client_that_ignores_pings_is_closed_and_one_that_answers_stays() {
    let limits = Limits {
        ping_interval: Duration::from_millis(100),
        pong_timeout: Duration::from_millis(100),
        ..Limits::default()
    };
    let server = NotifierLoop::start(Options { limits, ..Options::default() });

    // A raw client never answers: it sees a ping, then the server hangs up.
    let mut deaf = stalled_client(&server);
    let mut head = [0u8; 2];
    deaf.read_exact(&mut head).unwrap();
    assert_eq!(head[0] & 0x0F, 0x9, "the first thing a quiet client gets is a ping");
    // Closed after one ping interval and one pong timeout (0.2 s), far within the 3 s allowed.
    let rest = support::read_until_closed(&mut deaf, Duration::from_secs(3));
    assert!(rest.len() < 64, "nothing but the ping's payload before the close: {rest:?}");

    // tungstenite answers pings while it reads: that client outlives many intervals.
    smol::block_on(async {
        let mut live = connect(&server.url("")).await;
        let reader = async {
            loop {
                match live.next().await {
                    Some(Ok(Message::Text(text))) => return text.to_string(),
                    Some(Ok(_)) => continue,
                    other => panic!("connection ended: {other:?}"),
                }
            }
        };
        let broadcaster = async {
            async_io::Timer::after(Duration::from_millis(800)).await;
            server
                .handle
                .broadcast(robin::notifier::Message::refresh_balances(robin::notifier::Blockchain::Eth));
        };
        let (text, ()) = futures_lite::future::zip(reader, broadcaster).await;
        assert!(text.contains("refresh_balances"));
    });
}

/// A message that carries `i` (as its progress count), to check order and completeness.
fn numbered(i: u64) -> robin::notifier::Message {
    robin::notifier::Message::ProgressUpdates(Progress::HistoricalPriceQueryStatus {
        total: u64::MAX,
        processed: i,
    })
}

/// A warning with any text, for messages of a chosen size.
fn warning(value: String) -> robin::notifier::Message {
    robin::notifier::Message::Legacy(robin::notifier::LegacyData {
        verbosity: robin::notifier::Verbosity::Warning,
        value,
    })
}
