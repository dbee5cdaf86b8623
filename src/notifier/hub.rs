//! The broadcast core: sequence numbers, the replay ring and the set of subscribers.
//!
//! A broadcast is serialized once and framed once; the ring and every subscriber's outbox
//! hold the same `Rc<[u8]>`. Subscribing and taking the replay happen in one synchronous
//! step on the loop thread, so a reconnecting client gets every message after its `since`
//! exactly once: nothing can be broadcast between the snapshot and the registration.
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::message::{self, Message};
use super::outbox::{Bounds, Out, Outbox, State, server_frame};
use super::payloads::ReplayGap;
use super::{Limits, Stats};

/// Identifies a subscriber inside the hub.
pub(crate) type ClientId = u64;

/// The last messages, for replay, bounded by count and bytes.
#[derive(Debug, Default)]
struct Ring {
    /// `(seq, frame)`, oldest first.
    frames: VecDeque<(u64, Rc<[u8]>)>,
    /// Sum of the frames' lengths.
    bytes: usize,
}

/// Fans messages out to subscribers and keeps the replay ring. Lives on the loop thread.
#[derive(Debug)]
pub struct Hub {
    /// Queue and ring bounds.
    limits: Limits,
    /// The sequence number of the next broadcast; the first is 1.
    next_seq: Cell<u64>,
    /// Recent messages for `since` replay.
    ring: RefCell<Ring>,
    /// Live subscribers' outboxes, in subscription order. A Vec: broadcast walks it once per
    /// message, which is far more frequent than (un)subscribing.
    clients: RefCell<Vec<(ClientId, Rc<Outbox>)>>,
    /// The next subscriber id.
    next_client: Cell<ClientId>,
    /// Counters, shared with other threads.
    stats: Arc<Stats>,
}

impl Hub {
    /// An empty hub.
    pub fn new(limits: Limits, stats: Arc<Stats>) -> Hub {
        Hub {
            limits,
            next_seq: Cell::new(1),
            ring: RefCell::default(),
            clients: RefCell::default(),
            next_client: Cell::new(0),
            stats,
        }
    }

    /// Sends a message to every subscriber and keeps it for replay. Returns its sequence
    /// number and how many subscribers it was queued for (0: no client will see it live).
    pub fn broadcast(&self, message: &Message) -> (Option<u64>, usize) {
        let seq = self.next_seq.get();
        let json = match message::encode(message, Some(seq)) {
            Ok(json) => json,
            Err(err) => {
                log::error!("notifier: cannot serialize a {} message: {err}", message.name());
                return (None, 0);
            }
        };
        self.next_seq.set(seq + 1);
        self.stats.broadcasts.fetch_add(1, Relaxed);
        let frame: Rc<[u8]> = server_frame(0x1, json.as_bytes()).into();
        self.remember(seq, frame.clone());

        let mut delivered = 0;
        let mut overflowed = Vec::new();
        for (id, outbox) in self.clients.borrow().iter() {
            if outbox.push(Out::Shared(frame.clone())) {
                delivered += 1;
            } else {
                overflowed.push(*id);
            }
        }
        for id in overflowed {
            self.unsubscribe(id);
        }
        (Some(seq), delivered)
    }

    /// The sequence number the last broadcast got (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.next_seq.get() - 1
    }

    /// Live subscribers.
    pub fn client_count(&self) -> usize {
        self.clients.borrow().len()
    }

    /// Registers a subscriber and queues its replay: every message after `since` still in the
    /// ring, preceded by a `replay_gap` when some are gone.
    pub(crate) fn subscribe(&self, since: Option<u64>) -> (ClientId, Rc<Outbox>) {
        let outbox = Rc::new(Outbox::new(Bounds::new(&self.limits), self.stats.clone()));
        if let Some(since) = since {
            self.replay(since, &outbox);
        }
        let id = self.next_client.get();
        self.next_client.set(id + 1);
        self.clients.borrow_mut().push((id, outbox.clone()));
        self.stats.clients.store(self.clients.borrow().len() as u64, Relaxed);
        (id, outbox)
    }

    /// Forgets a subscriber (idempotent); its outbox, if it was still registered. A client
    /// whose outbox overflowed (past the hard bounds, or stuck while behind) is counted in
    /// `clients_closed_slow` here, once, whichever noticed it: a broadcast or its writer.
    pub(crate) fn unsubscribe(&self, id: ClientId) -> Option<Rc<Outbox>> {
        let mut clients = self.clients.borrow_mut();
        let removed =
            clients.iter().position(|(client, _)| *client == id).map(|index| clients.remove(index).1);
        drop(clients);
        if let Some(outbox) = &removed {
            match outbox.state() {
                State::Open => outbox.drain(),
                State::Overflowed => {
                    self.stats.clients_closed_slow.fetch_add(1, Relaxed);
                    log::warn!("notifier: client {id} is too far behind or stuck; closing it (1013)");
                }
                State::Draining => {}
            }
        }
        self.stats.clients.store(self.clients.borrow().len() as u64, Relaxed);
        removed
    }

    /// Queues a close frame (1001, going away) for every client and lets their writers drain.
    pub(crate) fn close_all(&self) {
        let close = super::outbox::close_frame(1001, "daemon shutting down");
        for (_, outbox) in self.clients.borrow().iter() {
            outbox.push_unbounded(Out::Owned(close.clone()));
            outbox.drain();
        }
    }

    fn replay(&self, since: u64, outbox: &Outbox) {
        let ring = self.ring.borrow();
        let last = self.last_seq();
        // A `since` from the future comes from a previous run of the daemon (sequence numbers
        // restart at 1): replay everything this run still has.
        let since = if since > last { 0 } else { since };
        let oldest = ring.frames.front().map_or(last + 1, |(seq, _)| *seq);
        if since + 1 < oldest && since < last {
            let gap = ReplayGap { from: since + 1, to: oldest - 1 };
            self.stats.replay_gaps.fetch_add(1, Relaxed);
            if let Ok(json) = message::encode(&Message::ReplayGap(gap), None) {
                outbox.push_unbounded(Out::Owned(server_frame(0x1, json.as_bytes())));
            }
        }
        for (_, frame) in ring.frames.iter().filter(|(seq, _)| *seq > since) {
            outbox.push_unbounded(Out::Shared(frame.clone()));
        }
    }

    fn remember(&self, seq: u64, frame: Rc<[u8]>) {
        let mut ring = self.ring.borrow_mut();
        ring.bytes += frame.len();
        ring.frames.push_back((seq, frame));
        while ring.frames.len() > self.limits.replay_messages || ring.bytes > self.limits.replay_bytes {
            let Some((_, old)) = ring.frames.pop_front() else { break };
            ring.bytes -= old.len();
            self.stats.replay_evicted.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn progress(i: u64) -> Message {
        Message::ProgressUpdates(crate::notifier::payloads::Progress::HistoricalPriceQueryStatus {
            total: 100,
            processed: i,
        })
    }

    fn refresh() -> Message {
        use crate::notifier::payloads::{Blockchain, RefreshBalances};
        Message::RefreshBalances(RefreshBalances::blockchain(Blockchain::Eth))
    }

    fn hub(replay_messages: usize) -> Hub {
        Hub::new(Limits { replay_messages, ..Limits::default() }, Arc::default())
    }

    fn drain(outbox: &Outbox) -> Vec<Value> {
        outbox.drain();
        let mut messages = Vec::new();
        while let Some(out) = futures_lite::future::block_on(outbox.pop()) {
            let bytes = out.bytes();
            let payload_at = match bytes[1] {
                126 => 4,
                127 => 10,
                _ => 2,
            };
            messages.push(serde_json::from_slice(&bytes[payload_at..]).unwrap());
        }
        messages
    }

    #[test]
    fn replay_after_since_without_gap() {
        let hub = hub(10);
        for i in 0..5 {
            hub.broadcast(&progress(i));
        }
        let (_, outbox) = hub.subscribe(Some(3));
        let seqs: Vec<u64> = drain(&outbox).iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, vec![4, 5]);
    }

    #[test]
    fn replay_reports_the_gap_first() {
        let hub = hub(3);
        for i in 0..10 {
            hub.broadcast(&progress(i));
        }
        let (_, outbox) = hub.subscribe(Some(2));
        let messages = drain(&outbox);
        assert_eq!(messages[0], json!({"type": "replay_gap", "data": {"from": 3, "to": 7}}));
        let seqs: Vec<u64> = messages[1..].iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, vec![8, 9, 10]);
    }

    #[test]
    fn up_to_date_client_gets_nothing_and_no_gap() {
        let hub = hub(3);
        for i in 0..10 {
            hub.broadcast(&progress(i));
        }
        let (_, outbox) = hub.subscribe(Some(10));
        assert!(drain(&outbox).is_empty());
    }

    #[test]
    fn since_from_a_previous_run_replays_the_whole_ring() {
        let hub = hub(10);
        hub.broadcast(&refresh());
        let (_, outbox) = hub.subscribe(Some(500));
        let messages = drain(&outbox);
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0]["seq"], 1);
    }

    #[test]
    fn broadcast_counts_deliveries_and_drops_overflowing_clients() {
        let limits = Limits { client_queue_messages: 1, client_queue_max_messages: 2, ..Limits::default() };
        let hub = Hub::new(limits, Arc::default());
        assert_eq!(hub.broadcast(&refresh()).1, 0);
        let (_, _a) = hub.subscribe(None);
        let (_, _b) = hub.subscribe(None);
        assert_eq!(hub.broadcast(&refresh()).1, 2);
        assert_eq!(hub.broadcast(&refresh()).1, 2);
        assert_eq!(hub.broadcast(&refresh()).1, 0, "both queues full");
        assert_eq!(hub.client_count(), 0);
        assert_eq!(hub.stats.clients_closed_slow.load(Relaxed), 2);
    }
}
