//! The messages aggregator: user-facing errors that no client was there to see.
//!
//! rotki's frontend also polls `GET /api/1/messages`, so an error raised while no UI is
//! connected is kept here until the next poll. Only errors are kept, each once, in a bounded
//! queue whose oldest entry gives way (and is counted) when it is full.
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use serde::Serialize;

use super::Stats;

/// What `GET /api/1/messages` returns (and clears).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Messages {
    /// Errors, oldest first.
    pub errors: Vec<String>,
    /// Warnings, oldest first (robin keeps none; the key stays for rotki's frontend).
    pub warnings: Vec<String>,
}

/// Undelivered errors, bounded.
#[derive(Debug)]
pub(crate) struct Aggregator {
    /// Kept errors, oldest first.
    errors: RefCell<VecDeque<String>>,
    /// Most errors kept.
    capacity: usize,
    /// Counts what had to be dropped.
    stats: Arc<Stats>,
}

impl Aggregator {
    pub(crate) fn new(capacity: usize, stats: Arc<Stats>) -> Aggregator {
        Aggregator { errors: RefCell::default(), capacity, stats }
    }

    pub(crate) fn keep_error(&self, message: String) {
        let mut errors = self.errors.borrow_mut();
        if errors.len() >= self.capacity {
            errors.pop_front();
            self.stats.errors_dropped.fetch_add(1, Relaxed);
        }
        errors.push_back(message);
    }

    pub(crate) fn drain(&self) -> Messages {
        Messages { errors: self.errors.borrow_mut().drain(..).collect(), warnings: Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_error_gives_way_and_is_counted() {
        let stats = Arc::new(Stats::default());
        let aggregator = Aggregator::new(2, stats.clone());
        for text in ["a", "b", "c"] {
            aggregator.keep_error(text.into());
        }
        assert_eq!(aggregator.drain().errors, vec!["b", "c"]);
        assert_eq!(stats.errors_dropped.load(Relaxed), 1);
        assert!(aggregator.drain().errors.is_empty(), "draining empties it");
    }
}
