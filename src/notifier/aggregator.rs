//! The fallback queue: what no client was there to see, for `GET /api/1/messages`.
//!
//! rotki's UI polls `/api/1/messages` while its WebSocket is down and dispatches what it gets as
//! if it had arrived on the socket. So, as rotki does: a broadcast that reached no client is
//! kept (a `legacy` warning as its text in `warnings`, a `legacy` error as its text in `errors`,
//! any other type as its JSON text in `errors`), and the `legacy` and `balance_snapshot_error`
//! messages still queued for a client that disconnects go back here. Unlike rotki's, the queue
//! is bounded (count and bytes; the oldest entry gives way and is counted) and holds each
//! message once, however many clients it was queued for.
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use serde::Serialize;
use serde_json::Value;

use super::Stats;
use super::message::{Message, encode};
use super::payloads::Verbosity;

/// What `GET /api/1/messages` returns (and clears), warnings first as in rotki's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Messages {
    /// `legacy` warnings' texts, oldest first.
    pub warnings: Vec<String>,
    /// `legacy` errors' texts and every other message's JSON text, oldest first.
    pub errors: Vec<String>,
}

/// How many recent sequence numbers are remembered to keep each message once.
const REMEMBERED_SEQS: usize = 4096;

/// One kept message.
#[derive(Debug)]
struct Kept {
    warning: bool,
    text: String,
    /// The broadcast's sequence number: what is handed out goes in this order, whichever
    /// client's queue a message came back from.
    seq: Option<u64>,
}

/// The bounded fallback queue.
#[derive(Debug)]
pub(crate) struct Aggregator {
    /// Kept messages, oldest first.
    kept: RefCell<VecDeque<Kept>>,
    /// Sum of the kept texts' lengths.
    bytes: Cell<usize>,
    /// Sequence numbers kept lately (to keep a message once).
    seen: RefCell<VecDeque<u64>>,
    /// Most messages kept.
    max_messages: usize,
    /// Most bytes kept.
    max_bytes: usize,
    /// Counts what had to be dropped.
    stats: Arc<Stats>,
}

impl Aggregator {
    pub(crate) fn new(max_messages: usize, max_bytes: usize, stats: Arc<Stats>) -> Aggregator {
        Aggregator {
            kept: RefCell::default(),
            bytes: Cell::new(0),
            seen: RefCell::default(),
            max_messages,
            max_bytes,
            stats,
        }
    }

    /// Keeps a broadcast that reached no client.
    pub(crate) fn keep(&self, message: &Message, seq: Option<u64>) {
        let (warning, text) = match message {
            Message::Legacy(data) => (data.verbosity == Verbosity::Warning, data.value.clone()),
            other => match encode(other, None) {
                Ok(json) => (false, json),
                Err(_) => return,
            },
        };
        self.push(warning, text, seq);
    }

    /// Puts back a message that was queued for a client that went away: `legacy` messages
    /// and balance snapshot errors, as rotki does (progress and the like are stale by the
    /// time a UI polls). `frame_text` is the message as it was sent.
    pub(crate) fn requeue(&self, frame_text: &[u8]) {
        let Ok(sent) = serde_json::from_slice::<Value>(frame_text) else { return };
        let seq = sent.get("seq").and_then(Value::as_u64);
        let data = &sent["data"];
        match sent["type"].as_str() {
            Some("legacy") => {
                let Some(value) = data["value"].as_str() else { return };
                self.push(data["verbosity"] == "warning", value.to_string(), seq);
            }
            Some("balance_snapshot_error") => {
                let text = serde_json::json!({ "type": "balance_snapshot_error", "data": data }).to_string();
                self.push(false, text, seq);
            }
            _ => {}
        }
    }

    fn push(&self, warning: bool, text: String, seq: Option<u64>) {
        if let Some(seq) = seq {
            let mut seen = self.seen.borrow_mut();
            if seen.contains(&seq) {
                return;
            }
            if seen.len() == REMEMBERED_SEQS {
                seen.pop_front();
            }
            seen.push_back(seq);
        }
        let mut kept = self.kept.borrow_mut();
        self.bytes.set(self.bytes.get() + text.len());
        // In sequence order, so that the bounds drop the oldest message, not the first put
        // back: clients that leave put back their queues one after the other, and a later one
        // may hold older messages than an earlier one (the kernel took less of its stream).
        let key = seq.unwrap_or(u64::MAX);
        let at = kept.partition_point(|k| k.seq.unwrap_or(u64::MAX) <= key);
        kept.insert(at, Kept { warning, text, seq });
        while kept.len() > self.max_messages || self.bytes.get() > self.max_bytes {
            let Some(old) = kept.pop_front() else { break };
            self.bytes.set(self.bytes.get() - old.text.len());
            self.stats.kept_dropped.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn drain(&self) -> Messages {
        self.bytes.set(0);
        let mut messages = Messages::default();
        let mut kept = self.kept.borrow_mut();
        kept.make_contiguous().sort_by_key(|k| k.seq.unwrap_or(u64::MAX));
        for kept in kept.drain(..) {
            if kept.warning {
                messages.warnings.push(kept.text);
            } else {
                messages.errors.push(kept.text);
            }
        }
        messages
    }

    /// Messages kept now.
    pub(crate) fn len(&self) -> usize {
        self.kept.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifier::payloads::{Progress, SnapshotError};

    fn aggregator(max_messages: usize, max_bytes: usize) -> (Aggregator, Arc<Stats>) {
        let stats = Arc::new(Stats::default());
        (Aggregator::new(max_messages, max_bytes, stats.clone()), stats)
    }

    #[test]
    fn every_type_is_kept_as_rotki_keeps_it() {
        let (aggregator, _) = aggregator(100, 1 << 20);
        aggregator.keep(&Message::warning("careful"), Some(1));
        aggregator.keep(&Message::error("broken"), Some(2));
        let progress =
            Message::ProgressUpdates(Progress::MultiplePricesQueryStatus { total: 2, processed: 1 });
        aggregator.keep(&progress, Some(3));
        let drained = aggregator.drain();
        assert_eq!(drained.warnings, vec!["careful"]);
        assert_eq!(drained.errors[0], "broken");
        assert_eq!(
            drained.errors[1],
            r#"{"type":"progress_updates","data":{"subtype":"multiple_prices_query_status","total":2,"processed":1}}"#
        );
        assert_eq!(aggregator.len(), 0, "draining empties it");
    }

    #[test]
    fn requeued_messages_are_kept_once_and_stale_ones_dropped() {
        let (aggregator, _) = aggregator(100, 1 << 20);
        let error = SnapshotError { location: "blockchain balances query".into(), error: "no price".into() };
        let frame = encode(&Message::BalanceSnapshotError(error), Some(9)).unwrap();
        aggregator.requeue(frame.as_bytes());
        aggregator.requeue(frame.as_bytes()); // a second client had it queued too
        let progress =
            Message::ProgressUpdates(Progress::MultiplePricesQueryStatus { total: 2, processed: 1 });
        aggregator.requeue(encode(&progress, Some(10)).unwrap().as_bytes());
        aggregator.requeue(encode(&Message::warning("w"), Some(11)).unwrap().as_bytes());
        let drained = aggregator.drain();
        assert_eq!(drained.warnings, vec!["w"]);
        assert_eq!(
            drained.errors,
            vec![
                r#"{"type":"balance_snapshot_error","data":{"location":"blockchain balances query","error":"no price"}}"#
            ]
        );
    }

    #[test]
    fn the_oldest_give_way_even_when_put_back_last() {
        // Two clients leave: the first had 5..=9 queued, the second (whose socket took less)
        // 2..=9. With room for three, the newest three stay.
        let (aggregator, _) = aggregator(3, 1 << 20);
        let frame = |seq: u64| encode(&Message::error(format!("{seq}")), Some(seq)).unwrap();
        (5..=9).for_each(|seq| aggregator.requeue(frame(seq).as_bytes()));
        (2..=9).for_each(|seq| aggregator.requeue(frame(seq).as_bytes()));
        assert_eq!(aggregator.drain().errors, vec!["7", "8", "9"]);
    }

    #[test]
    fn the_oldest_give_way_by_count_and_by_bytes_and_are_counted() {
        let (aggregator, stats) = aggregator(2, 1 << 20);
        for (seq, text) in ["a", "b", "c"].into_iter().enumerate() {
            aggregator.keep(&Message::error(text), Some(seq as u64));
        }
        assert_eq!(aggregator.drain().errors, vec!["b", "c"]);
        let (aggregator, stats_bytes) = aggregator_with_bytes(10);
        aggregator.keep(&Message::error("123456"), None);
        aggregator.keep(&Message::error("7890ab"), None);
        assert_eq!(aggregator.drain().errors, vec!["7890ab"]);
        assert_eq!((stats.kept_dropped.load(Relaxed), stats_bytes.kept_dropped.load(Relaxed)), (1, 1));
    }

    fn aggregator_with_bytes(max_bytes: usize) -> (Aggregator, Arc<Stats>) {
        aggregator(100, max_bytes)
    }
}
