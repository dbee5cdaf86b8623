//! [`NotifierHandle`]: broadcasting from other threads, and [`broadcast_ws_message`].
//!
//! A handle only enqueues onto a channel that a task on the loop drains (the pump), so nothing
//! on another thread ever touches the loop's state, and a caller never waits longer than an
//! enqueue. When the channel is full the message is dropped, counted in `Stats::bridge_dropped`
//! and logged: never lost silently, never blocking the caller.
//!
//! # Examples
//!
//! ```
//! use robin::notifier::{self, Limits, Message, Notifier};
//! use robin::runtime::Spawner;
//! use serde_json::json;
//!
//! let ex = Spawner::new();
//! let notifier = Notifier::new(Limits::default());
//! let (handle, pump) = notifier::channel(notifier.clone(), 64);
//! let _pump = ex.spawn(pump);
//!
//! let worker = std::thread::spawn(move || handle.broadcast(Message::refresh_balances(robin::notifier::Blockchain::Eth)));
//! assert!(worker.join().unwrap());
//! ex.block_on(async { while notifier.last_seq() < 1 { futures_lite::future::yield_now().await } });
//! ```
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};

use super::{Message, Notifier, Stats};

/// Messages queued between other threads and the loop before new ones are dropped.
pub const DEFAULT_BRIDGE_CAPACITY: usize = 4096;

/// Messages the pump delivers before it lets the client writers run; well under the
/// per-client queue bound (1024 by default), so a burst cannot overflow a client that keeps up.
pub const BURST_BEFORE_YIELD: usize = 64;

/// What crosses from another thread to the loop.
#[derive(Debug)]
enum Request {
    Broadcast(Message),
    Error(String),
    Warning(String),
}

/// Broadcasts from any thread. `Clone + Send + Sync`; cheap to clone.
#[derive(Clone, Debug)]
pub struct NotifierHandle {
    /// Into the loop. Unbounded in the type, bounded by `in_flight`: a bounded async-channel
    /// allocates and touches every slot up front (about 256 KiB for 4096), resident for the
    /// daemon's whole life, while this one allocates only while messages are in flight.
    tx: async_channel::Sender<Request>,
    /// Messages sent and not yet taken by the loop.
    in_flight: Arc<AtomicUsize>,
    /// The most messages in flight before new ones are dropped.
    capacity: usize,
    /// The notifier's counters.
    stats: Arc<Stats>,
}

/// Creates a handle and the future that must run on the loop to deliver what it sends.
pub fn channel(notifier: Rc<Notifier>, capacity: usize) -> (NotifierHandle, impl Future<Output = ()>) {
    let (tx, rx) = async_channel::unbounded();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let handle = NotifierHandle { tx, in_flight: in_flight.clone(), capacity, stats: notifier.stats() };
    let pump = async move {
        let mut since_yield = 0;
        while let Ok(request) = rx.recv().await {
            crate::runtime::inject_fault("notifier");
            in_flight.fetch_sub(1, Relaxed);
            match request {
                Request::Broadcast(message) => {
                    notifier.broadcast(&message);
                }
                Request::Error(message) => notifier.add_error(message),
                Request::Warning(message) => notifier.add_warning(message),
            }
            // Let the client writers run during a burst: otherwise it would be queued whole
            // before any byte is written, and overflow every client. Not after every message:
            // a writer that finds several frames queued sends them in one syscall.
            since_yield += 1;
            if since_yield == BURST_BEFORE_YIELD || rx.is_empty() {
                since_yield = 0;
                futures_lite::future::yield_now().await;
            }
        }
    };
    (handle, pump)
}

impl NotifierHandle {
    /// Queues a broadcast; false if it was dropped (bridge full, or the daemon is stopping).
    pub fn broadcast(&self, message: Message) -> bool {
        self.send(Request::Broadcast(message))
    }

    /// Queues a user-facing error (see [`Notifier::add_error`]).
    pub fn add_error(&self, message: impl Into<String>) -> bool {
        self.send(Request::Error(message.into()))
    }

    /// Queues a user-facing warning (see [`Notifier::add_warning`]).
    pub fn add_warning(&self, message: impl Into<String>) -> bool {
        self.send(Request::Warning(message.into()))
    }

    /// The notifier's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn send(&self, request: Request) -> bool {
        let why = if self.in_flight.fetch_add(1, Relaxed) >= self.capacity {
            "bridge channel full"
        } else if self.tx.try_send(request).is_err() {
            "loop stopped"
        } else {
            return true;
        };
        self.in_flight.fetch_sub(1, Relaxed);
        let dropped = self.stats.bridge_dropped.fetch_add(1, Relaxed) + 1;
        // Log the first drop and then every 1000th, so a flood does not become a log flood.
        if dropped == 1 || dropped % 1000 == 0 {
            log::warn!("notifier bridge: dropped a message ({why}); {dropped} dropped so far");
        }
        false
    }
}

static GLOBAL: OnceLock<NotifierHandle> = OnceLock::new();

/// Makes `handle` the one [`broadcast_ws_message`] uses. Only the first call wins (false after).
pub fn install_global(handle: NotifierHandle) -> bool {
    GLOBAL.set(handle).is_ok()
}

/// Broadcasts from code that has no handle, as rotki's `broadcast_ws_message`. False if no
/// daemon installed a handle or the message was dropped.
pub fn broadcast_ws_message(message: Message) -> bool {
    GLOBAL.get().is_some_and(|handle| handle.broadcast(message))
}

/// Compile-time proof that the handle can cross and be shared between threads.
#[allow(dead_code)]
fn assert_send_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<NotifierHandle>();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifier::Limits;

    #[test]
    fn a_full_bridge_drops_and_counts_instead_of_blocking() {
        let notifier = Notifier::new(Limits::default());
        let (handle, _pump_not_running) = channel(notifier, 2);
        assert!(handle.broadcast(Message::refresh_balances(crate::notifier::Blockchain::Eth)));
        assert!(handle.add_error("two"));
        assert!(!handle.add_warning("three"), "the third does not fit");
        assert!(!handle.broadcast(Message::refresh_balances(crate::notifier::Blockchain::Eth)));
        assert_eq!(handle.stats().bridge_dropped.load(Relaxed), 2);
    }

    #[test]
    fn a_stopped_loop_drops_and_counts() {
        let notifier = Notifier::new(Limits::default());
        let (handle, pump) = channel(notifier, 8);
        drop(pump);
        assert!(!handle.broadcast(Message::refresh_balances(crate::notifier::Blockchain::Eth)));
        assert_eq!(handle.stats().bridge_dropped.load(Relaxed), 1);
    }
}
