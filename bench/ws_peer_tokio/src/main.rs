//! The fan-out peer robin's notifier is measured against: tokio + tokio-tungstenite.
//!
//! ```sh
//! cargo run --release --manifest-path bench/ws_peer_tokio/Cargo.toml -- \
//!     --port P --clients N --messages M --size S [--rate R]
//! ```
//!
//! The interface of robin's `examples/ws_fanout.rs`, kept exact: listens on
//! `ws://127.0.0.1:P/ws`, prints `READY`, waits for N clients, broadcasts M `legacy` warnings
//! whose value is `seq=<i> t=<ns since the Unix epoch at send> <S bytes>`, then `bench_done`,
//! waits until every client has left (at most 60 s) and exits 1 s later.
//!
//! Built to do the work robin's fan-out does, on the same terms:
//! - one thread (a current-thread runtime), as robin's loop;
//! - the HTTP upgrade and `Sec-WebSocket-Accept` done by the library (`accept_hdr_async`), and
//!   the path checked to be `/ws`;
//! - each message serialized once, from typed structs, as the same compact JSON robin sends
//!   (`seq` included), and handed to every client as one shared `Utf8Bytes`;
//! - a bounded queue per client (1024 messages, robin's default count bound; robin also bounds
//!   bytes, 1 MiB, which 100-byte messages never reach first); a client whose queue is full is
//!   closed with 1013;
//! - a writer per client that takes everything queued (up to 128 frames, as robin) and
//!   flushes once, so a burst costs one write per client, and a reader per client that answers
//!   pings and closes;
//! - the producer yields to the writers every 64 messages (robin's `BURST_BEFORE_YIELD`).
//!
//! What it cannot do the same: tungstenite frames each message once per client (header plus a
//! copy of the payload into that client's write buffer), where robin frames it once for all.
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};

/// robin's default per-client bound, in messages.
const CLIENT_QUEUE_MESSAGES: usize = 1024;
/// Frames one writer takes before it flushes (robin's `MAX_BATCH_FRAMES`).
const MAX_BATCH_FRAMES: usize = 128;
/// Messages the producer sends before it yields (robin's `BURST_BEFORE_YIELD`).
const BURST_BEFORE_YIELD: u64 = 64;

#[derive(Serialize)]
struct Legacy<'a> {
    r#type: &'static str,
    data: LegacyData<'a>,
    seq: u64,
}

#[derive(Serialize)]
struct LegacyData<'a> {
    verbosity: &'static str,
    value: &'a str,
}

/// One subscriber as the producer sees it.
struct Client {
    tx: mpsc::Sender<Utf8Bytes>,
    /// Set when its queue overflowed: its writer drops what is queued and closes with 1013.
    overflowed: Rc<Cell<bool>>,
}

struct Options {
    port: u16,
    clients: usize,
    messages: u64,
    size: usize,
    rate: Option<f64>,
}

fn parse() -> Options {
    let mut opts = Options { port: 0, clients: 1, messages: 1000, size: 100, rate: None };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        match flag.as_str() {
            "--port" => opts.port = value.parse().expect("--port"),
            "--clients" => opts.clients = value.parse().expect("--clients"),
            "--messages" => opts.messages = value.parse().expect("--messages"),
            "--size" => opts.size = value.parse().expect("--size"),
            "--rate" => opts.rate = Some(value.parse().expect("--rate")),
            other => panic!("unknown flag {other}"),
        }
    }
    opts
}

fn main() {
    let opts = parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run(opts));
}

async fn run(opts: Options) {
    let listener = TcpListener::bind(("127.0.0.1", opts.port)).await.expect("bind");
    let clients: Rc<RefCell<Vec<Client>>> = Rc::default();
    let connected = Rc::new(Cell::new(0usize));
    println!("READY");
    let (accepting, counting) = (clients.clone(), connected.clone());
    tokio::task::spawn_local(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let (clients, connected) = (accepting.clone(), counting.clone());
            tokio::task::spawn_local(async move {
                connected.set(connected.get() + 1);
                serve(stream, clients).await;
                connected.set(connected.get() - 1);
            });
        }
    });
    while clients.borrow().len() < opts.clients {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pad = "x".repeat(opts.size);
    let started = Instant::now();
    for seq in 0..opts.messages {
        if let Some(rate) = opts.rate {
            tokio::time::sleep_until((started + Duration::from_secs_f64(seq as f64 / rate)).into()).await;
        }
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        broadcast(&clients, &format!("seq={seq} t={t} {pad}"), seq + 1);
        if opts.rate.is_some() || (seq + 1) % BURST_BEFORE_YIELD == 0 {
            tokio::task::yield_now().await;
        }
    }
    broadcast(&clients, "bench_done", opts.messages + 1);
    let give_up = Instant::now() + Duration::from_secs(60);
    while connected.get() > 0 && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Serializes once and queues the same bytes for every client; closes those that are full.
fn broadcast(clients: &RefCell<Vec<Client>>, value: &str, seq: u64) {
    let message = Legacy { r#type: "legacy", data: LegacyData { verbosity: "warning", value }, seq };
    let text = Utf8Bytes::from(serde_json::to_string(&message).unwrap());
    clients.borrow_mut().retain(|client| match client.tx.try_send(text.clone()) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            client.overflowed.set(true);
            false
        }
        Err(TrySendError::Closed(_)) => false,
    });
}

// The callback's error type is tungstenite's, large or not.
#[allow(clippy::result_large_err)]
async fn serve(stream: TcpStream, clients: Rc<RefCell<Vec<Client>>>) {
    let config = WebSocketConfig::default().max_message_size(Some(64 << 10));
    let only_ws = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        if request.uri().path() == "/ws" {
            Ok(response)
        } else {
            let mut refusal = ErrorResponse::new(Some("not found".into()));
            *refusal.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::NOT_FOUND;
            Err(refusal)
        }
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(stream, only_ws, Some(config)).await else {
        return;
    };
    let (mut sink, mut incoming) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(CLIENT_QUEUE_MESSAGES);
    let overflowed = Rc::new(Cell::new(false));
    clients.borrow_mut().push(Client { tx, overflowed: overflowed.clone() });
    // The reader: tungstenite queues the answers to pings and closes; the writer flushes them.
    let mut reader =
        tokio::task::spawn_local(async move { while let Some(Ok(_)) = incoming.next().await {} });
    let mut batch = 0;
    loop {
        let text = tokio::select! {
            biased;
            text = rx.recv() => match text {
                Some(text) => text,
                None => break,
            },
            _ = &mut reader => break, // the client left
        };
        if overflowed.get() {
            break;
        }
        if sink.feed(Message::Text(text)).await.is_err() {
            break;
        }
        batch += 1;
        // Take what is queued now, then one flush (one write) for the whole batch.
        if batch < MAX_BATCH_FRAMES && !rx.is_empty() {
            continue;
        }
        batch = 0;
        if sink.flush().await.is_err() {
            break;
        }
    }
    if overflowed.get() {
        let close = CloseFrame { code: CloseCode::Again, reason: "client too slow".into() };
        let _ = tokio::time::timeout(Duration::from_secs(5), sink.send(Message::Close(Some(close)))).await;
    }
    let _ = sink.flush().await;
    reader.abort();
}
