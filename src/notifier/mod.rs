//! The notifier: typed JSON messages broadcast to every connected UI over WebSocket, with
//! replay for reconnecting clients, and the messages aggregator for user-facing errors.
//!
//! Owns the WebSocket sessions, message framing, the replay ring and the per-client queues.
//! Each message is serialized and framed once; every client gets the same bytes. Each client's
//! queue is bounded by count and bytes, twice: a client past the soft bounds must keep taking
//! bytes (at least once per [`Limits::slow_client_grace`]) and one past the hard bounds is
//! closed at once, both with 1013, instead of slowing the others or growing the daemon's
//! memory. A client that reads slowly through a burst is kept; one that is stuck is not.
//!
//! The memory this bounds: broadcast frames are shared and each queue holds the newest ones,
//! so however many clients are behind, the frames they wait for take at most
//! `client_queue_max_bytes` (8 MiB by default) in all, plus per client a 24-byte slot per
//! queued frame (at most `client_queue_max_messages`, 8192: 192 KiB), at most
//! `client_queue_bytes` (1 MiB) of its own frames, and the batch its writer has in hand (at
//! most 64 KiB, or one frame).
//!
//! Code on other threads broadcasts through a [`NotifierHandle`] ([`handle`]).
//!
//! May touch: the sockets of its subscribers (handed over by `server` and `ipc` through
//! [`Subscription`]) and the handle's channel.
//!
//! # Examples
//!
//! ```
//! use robin::notifier::{Blockchain, Limits, Message, Notifier};
//!
//! let notifier = Notifier::new(Limits::default());
//! // Nobody is connected: both are kept for replay and for /api/1/messages (the error as its
//! // text, the other as its JSON), as rotki's UI polls it while its socket is down.
//! assert_eq!(notifier.broadcast(&Message::refresh_balances(Blockchain::Eth)), 0);
//! notifier.add_error("price query failed");
//! let kept = notifier.drain_messages();
//! assert_eq!(kept.errors[1], "price query failed");
//! assert!(kept.errors[0].starts_with(r#"{"type":"refresh_balances""#));
//! assert_eq!(notifier.last_seq(), 2);
//! ```
mod aggregator;
pub mod handle;
mod hub;
mod lines;
mod message;
mod outbox;
pub mod payloads;
mod session;

use std::net::TcpStream;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use async_io::Async;
use futures_lite::future::BoxedLocal;
use serde_json::{Value, json};

pub use aggregator::Messages;
pub use handle::{NotifierHandle, broadcast_ws_message, channel, install_global};
pub use hub::Hub;
pub use message::{Message, PayloadError, encode};
pub use payloads::{Blockchain, LegacyData, Progress, Verbosity};
pub use session::{CLOSE_GRACE, CLOSE_TOO_SLOW};

/// Answers a text message from a client: `Some(reply)` is sent back to that client only.
pub type IncomingHandler = Rc<dyn Fn(String) -> BoxedLocal<Option<String>>>;

/// Sends every text message back, as rotki's notifier does.
pub fn echo() -> IncomingHandler {
    Rc::new(|text| Box::pin(async move { Some(text) }))
}

/// Bounds of the notifier. Every one has a default that suits a desktop UI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The soft bound: past this many frames queued a client is behind, and must take bytes at
    /// least once per `slow_client_grace` or be closed. Default 1024.
    pub client_queue_messages: usize,
    /// The soft bound in bytes, as `client_queue_messages`; also the most bytes of a client's
    /// own frames (pongs, answers, echoes) queued for it. Default 1 MiB.
    pub client_queue_bytes: usize,
    /// The hard bound: past this many frames queued a client is closed at once (raised to
    /// `client_queue_messages` if set below it). Default 8192.
    pub client_queue_max_messages: usize,
    /// The hard bound in bytes, as `client_queue_max_messages`. Default 8 MiB.
    pub client_queue_max_bytes: usize,
    /// How long a client past the soft bounds may take nothing before it is closed: a client
    /// that never reads goes this long after it fell behind. Default 5 s.
    pub slow_client_grace: Duration,
    /// Messages kept for replay. Default 1000.
    pub replay_messages: usize,
    /// Bytes kept for replay. Default 1 MiB.
    pub replay_bytes: usize,
    /// Largest message a client may send. Default 64 KiB.
    pub max_incoming_message: usize,
    /// A client quiet this long is pinged. Default 20 s.
    pub ping_interval: Duration,
    /// A pinged client silent this long is closed. Default 20 s.
    pub pong_timeout: Duration,
    /// Messages no client saw, kept for `GET /api/1/messages`. Default 1000.
    pub kept_messages: usize,
    /// Bytes of such messages kept. Default 1 MiB.
    pub kept_bytes: usize,
    /// How long a write to a client may make no progress before the client is closed: one that
    /// stops reading is cut off even when nothing new is queued for it. Default 30 s.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            client_queue_messages: 1024,
            client_queue_bytes: 1024 * 1024,
            client_queue_max_messages: 8192,
            client_queue_max_bytes: 8 * 1024 * 1024,
            slow_client_grace: Duration::from_secs(5),
            replay_messages: 1000,
            replay_bytes: 1024 * 1024,
            max_incoming_message: 64 * 1024,
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(20),
            kept_messages: 1000,
            kept_bytes: 1024 * 1024,
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// Counters, readable from any thread (`status` reports them).
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages broadcast.
    pub broadcasts: AtomicU64,
    /// Clients connected now.
    pub clients: AtomicU64,
    /// Clients closed with 1013: past the hard bounds, or stuck past the soft bounds.
    pub clients_closed_slow: AtomicU64,
    /// Times a client went past its queue's soft bounds (kept for as long as it took bytes).
    pub clients_fell_behind: AtomicU64,
    /// Messages pushed out of the replay ring.
    pub replay_evicted: AtomicU64,
    /// Reconnections that could not be fully replayed.
    pub replay_gaps: AtomicU64,
    /// Broadcasts from other threads dropped because the bridge channel was full.
    pub bridge_dropped: AtomicU64,
    /// Messages no client saw that were dropped because the fallback queue was full.
    pub kept_dropped: AtomicU64,
}

impl Stats {
    /// The counters as a JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "broadcasts": self.broadcasts.load(Relaxed),
            "clients": self.clients.load(Relaxed),
            "clients_closed_slow": self.clients_closed_slow.load(Relaxed),
            "clients_fell_behind": self.clients_fell_behind.load(Relaxed),
            "replay_evicted": self.replay_evicted.load(Relaxed),
            "replay_gaps": self.replay_gaps.load(Relaxed),
            "bridge_dropped": self.bridge_dropped.load(Relaxed),
            "kept_dropped": self.kept_dropped.load(Relaxed),
            // The older name of the same counter, kept for version 1 of the API.
            "errors_dropped": self.kept_dropped.load(Relaxed),
        })
    }
}

/// The loop-side notifier. Create one per daemon and share it as `Rc<Notifier>`.
pub struct Notifier {
    /// Subscribers and the replay ring.
    hub: Hub,
    /// Undelivered errors.
    aggregator: aggregator::Aggregator,
    /// The bounds it was built with.
    limits: Limits,
    /// Counters shared with other threads.
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("hub", &self.hub)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What became of one broadcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// Its sequence number (none if it could not be serialized, which a typed message cannot
    /// fail).
    pub seq: Option<u64>,
    /// How many clients it was queued for (0: it is kept for `GET /api/1/messages` when it is
    /// a kind that is kept).
    pub delivered: usize,
}

impl Notifier {
    /// A notifier with no clients.
    pub fn new(limits: Limits) -> Rc<Notifier> {
        let stats = Arc::new(Stats::default());
        Rc::new(Notifier {
            hub: Hub::new(limits.clone(), stats.clone()),
            aggregator: aggregator::Aggregator::new(limits.kept_messages, limits.kept_bytes, stats.clone()),
            limits,
            stats,
        })
    }

    /// Broadcasts `{"type": .., "data": .., "seq": n}`; returns how many clients it was queued
    /// for. A message no client receives is kept for `GET /api/1/messages`.
    pub fn broadcast(&self, message: &Message) -> usize {
        self.publish(message).delivered
    }

    /// [`broadcast`](Self::broadcast), telling the message's sequence number too.
    pub fn publish(&self, message: &Message) -> Published {
        let (seq, delivered) = self.hub.broadcast(message);
        if delivered == 0 {
            self.aggregator.keep(message, seq);
        }
        Published { seq, delivered }
    }

    /// Logs an error and broadcasts it as a `legacy` message (kept if no client receives it).
    pub fn add_error(&self, message: impl Into<String>) {
        let value = message.into();
        log::error!("{value}");
        self.broadcast(&Message::error(value));
    }

    /// Logs a warning and broadcasts it as a `legacy` message (kept if no client receives it).
    pub fn add_warning(&self, message: impl Into<String>) {
        let value = message.into();
        log::warn!("{value}");
        self.broadcast(&Message::warning(value));
    }

    /// Messages kept for `GET /api/1/messages` now.
    pub fn kept_messages(&self) -> usize {
        self.aggregator.len()
    }

    /// Takes the kept messages out, as `GET /api/1/messages` does.
    pub fn drain_messages(&self) -> Messages {
        self.aggregator.drain()
    }

    /// The sequence number of the last broadcast.
    pub fn last_seq(&self) -> u64 {
        self.hub.last_seq()
    }

    /// Connected clients.
    pub fn client_count(&self) -> usize {
        self.hub.client_count()
    }

    /// The counters, shareable with other threads.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Registers a subscriber: every message after `since` still in the replay ring is queued
    /// for it first (after a `replay_gap` when some are gone), then every new broadcast.
    /// Taking the replay and registering happen in one step, so nothing is missed or doubled.
    pub fn subscribe(self: &Rc<Self>, since: Option<u64>) -> Subscription {
        let (id, outbox) = self.hub.subscribe(since);
        Subscription { notifier: self.clone(), id, outbox }
    }

    /// Sends every client a close frame (1001, going away) and lets their sessions end.
    pub fn close_all(&self) {
        self.hub.close_all();
    }
}

/// A registered subscriber, ready to be served on a socket; dropping it unsubscribes.
pub struct Subscription {
    /// Whose messages.
    notifier: Rc<Notifier>,
    /// The registration in the hub.
    id: hub::ClientId,
    /// The subscriber's bounded queue.
    outbox: Rc<outbox::Outbox>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Subscription {
    /// Serves a WebSocket client on a socket that has completed the HTTP upgrade. `leftover`
    /// holds bytes read past the HTTP head; `incoming` answers what the client sends (see
    /// [`echo`]). Ends when the client is gone.
    pub async fn serve_websocket(
        self,
        socket: Async<TcpStream>,
        leftover: Vec<u8>,
        incoming: IncomingHandler,
    ) {
        session::run(&self, socket, leftover, incoming).await;
    }

    /// Streams notifications to a control-socket client, one JSON object per line, until it
    /// closes the connection. Same replay, bounds and counters as a WebSocket client.
    pub async fn serve_lines(self, stream: Async<std::os::unix::net::UnixStream>) {
        lines::serve(&self.outbox, stream, &self.notifier.limits).await;
    }
}

impl Drop for Subscription {
    /// Unsubscribes; the user-facing messages still queued for this client go back to the
    /// fallback queue, as rotki puts them back.
    fn drop(&mut self) {
        if let Some(outbox) = self.notifier.hub.unsubscribe(self.id) {
            for out in outbox.take_all() {
                if let outbox::Out::Shared(frame) = out {
                    if let Some(text) = lines::frame_payload(&frame) {
                        self.notifier.aggregator.requeue(text);
                    }
                }
            }
        }
    }
}
