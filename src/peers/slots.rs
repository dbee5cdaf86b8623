//! Connection slots, counted in total and per peer.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::Hash;
use std::rc::Rc;

/// Connections counted in total and per peer; a [`Slot`] gives its place back when dropped.
#[derive(Debug)]
pub struct Slots<K> {
    /// Most connections in all.
    max_total: usize,
    /// Most connections one peer may hold.
    max_per_peer: usize,
    /// Connections held now.
    total: Cell<usize>,
    /// Connections held now, per peer.
    per_peer: RefCell<HashMap<K, usize>>,
}

/// Why a connection got no slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    /// Every slot is taken.
    #[error("too many connections")]
    Total,
    /// This peer holds as many as one peer may.
    #[error("too many connections from this user ({0} at most)")]
    Peer(usize),
}

impl<K: Hash + Eq + Clone> Slots<K> {
    /// Room for `max_total` connections, at most `max_per_peer` from any one peer.
    pub fn new(max_total: usize, max_per_peer: usize) -> Rc<Slots<K>> {
        Rc::new(Slots { max_total, max_per_peer, total: Cell::new(0), per_peer: RefCell::default() })
    }

    /// Takes a slot for `peer`. `reserve` slots of the total are kept for peers that
    /// `privileged` is true for (the owner, so that another user cannot lock them out).
    pub fn take(self: &Rc<Self>, peer: K, privileged: bool, reserve: usize) -> Result<Slot<K>, Full> {
        let limit = if privileged { self.max_total } else { self.max_total.saturating_sub(reserve) };
        if self.total.get() >= limit {
            return Err(Full::Total);
        }
        let mut per_peer = self.per_peer.borrow_mut();
        let held = per_peer.entry(peer.clone()).or_insert(0);
        if *held >= self.max_per_peer {
            return Err(Full::Peer(self.max_per_peer));
        }
        *held += 1;
        self.total.set(self.total.get() + 1);
        Ok(Slot { slots: self.clone(), peer })
    }

    /// Connections held now.
    pub fn in_use(&self) -> usize {
        self.total.get()
    }
}

/// A held connection slot.
#[derive(Debug)]
pub struct Slot<K: Hash + Eq> {
    slots: Rc<Slots<K>>,
    peer: K,
}

impl<K: Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        self.slots.total.set(self.slots.total.get() - 1);
        let mut per_peer = self.slots.per_peer.borrow_mut();
        if let Some(held) = per_peer.get_mut(&self.peer) {
            *held -= 1;
            if *held == 0 {
                per_peer.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_bound_each_peer_and_keep_a_reserve_for_the_owner() {
        let slots: Rc<Slots<u32>> = Slots::new(4, 2);
        let a1 = slots.take(7, false, 1).unwrap();
        let _a2 = slots.take(7, false, 1).unwrap();
        assert_eq!(slots.take(7, false, 1).unwrap_err(), Full::Peer(2));
        let b = slots.take(8, false, 1).unwrap();
        assert_eq!(slots.take(9, false, 1).unwrap_err(), Full::Total, "the last slot is the owner's");
        let _owner = slots.take(1000, true, 1).unwrap();
        drop((a1, b));
        assert_eq!(slots.in_use(), 2);
        assert!(slots.take(7, false, 1).is_ok(), "a dropped slot is free again");
    }
}
