//! A rate limit on refusal log lines.
//!
//! Every refused connection used to write a line, so a refused user could write the log at
//! the rate it connects (about 1000 lines a second per process: gigabytes a day). Now each peer
//! gets at most one line per interval, and the next line says how many were left out. The map
//! of peers is bounded: past [`RefusalLog::MAX_PEERS`] peers in one interval, new peers share
//! one line per interval, so rotating source addresses does not buy more lines either.
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Which refusals of one peer (or of the overflow) were logged and left out.
#[derive(Clone, Copy, Debug)]
struct Window {
    /// When the last line was logged.
    logged_at: Instant,
    /// Refusals since then that were not logged.
    suppressed: u64,
}

/// Decides which refusals are logged: the first of each peer per interval.
#[derive(Debug)]
pub struct RefusalLog<K> {
    /// At most one line per peer this often.
    interval: Duration,
    /// The peers refused lately.
    peers: RefCell<HashMap<K, Window>>,
    /// The peers that found the map full.
    overflow: RefCell<Option<Window>>,
}

impl<K: Hash + Eq> RefusalLog<K> {
    /// Most peers remembered in one interval.
    pub const MAX_PEERS: usize = 256;
    /// The interval robind uses: a minute.
    pub const INTERVAL: Duration = Duration::from_secs(60);

    /// At most one line per peer per `interval`.
    pub fn new(interval: Duration) -> RefusalLog<K> {
        RefusalLog { interval, peers: RefCell::default(), overflow: RefCell::default() }
    }

    /// Records a refusal of `peer` at `now`. `Some(note)` means log it now, followed by `note`
    /// (empty, or how many refusals were left out since the last line); `None` means leave it
    /// out (it is counted).
    pub fn admit(&self, peer: K, now: Instant) -> Option<String> {
        let mut peers = self.peers.borrow_mut();
        if !peers.contains_key(&peer) && peers.len() >= Self::MAX_PEERS {
            peers.retain(|_, window| now.saturating_duration_since(window.logged_at) < self.interval);
            if peers.len() >= Self::MAX_PEERS {
                let note = Self::count(&mut self.overflow.borrow_mut(), now, self.interval)?;
                return Some(format!(" (too many refusing peers to log each one{note})"));
            }
        }
        let mut window = peers.get(&peer).copied();
        let note = Self::count(&mut window, now, self.interval);
        peers.insert(peer, window.expect("count always leaves a window"));
        note
    }

    /// Counts one refusal in `window`: the note to log with, or `None` while it is suppressed.
    fn count(window: &mut Option<Window>, now: Instant, interval: Duration) -> Option<String> {
        match window {
            Some(w) if now.saturating_duration_since(w.logged_at) < interval => {
                w.suppressed += 1;
                None
            }
            _ => {
                let suppressed = window.map_or(0, |w| w.suppressed);
                *window = Some(Window { logged_at: now, suppressed: 0 });
                Some(match suppressed {
                    0 => String::new(),
                    n => format!("; {n} more refusals since the last such line were not logged"),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_peer_per_interval_with_the_count_of_the_rest() {
        let log = RefusalLog::new(Duration::from_secs(60));
        let start = Instant::now();
        assert_eq!(log.admit(4242, start).as_deref(), Some(""));
        for i in 1..=500 {
            assert_eq!(log.admit(4242, start + Duration::from_millis(i)), None, "refusal {i}");
        }
        assert_eq!(log.admit(65534, start).as_deref(), Some(""), "another peer has a line of its own");
        let later = start + Duration::from_secs(61);
        let note = log.admit(4242, later).unwrap();
        assert!(note.contains("500 more refusals"), "{note}");
        assert_eq!(log.admit(4242, later), None);
    }

    #[test]
    fn many_peers_share_one_line() {
        let log = RefusalLog::new(Duration::from_secs(60));
        let start = Instant::now();
        let max = RefusalLog::<u32>::MAX_PEERS as u32;
        let logged = (0..max + 100).filter(|&peer| log.admit(peer, start).is_some()).count();
        assert_eq!(logged, max as usize + 1, "each remembered peer, then one line for the rest");
        assert!(log.peers.borrow().len() <= max as usize, "the map stays bounded");
        // An interval later the old peers are forgotten and new ones get lines again.
        let later = start + Duration::from_secs(61);
        assert_eq!(log.admit(max + 1000, later).as_deref(), Some(""));
        assert!(log.peers.borrow().len() < max as usize);
    }
}
