//! The owner rule, and the live copy of it that open connections follow.
use std::cell::RefCell;
use std::rc::Rc;

/// The kernel's `overflowuid`: how a user that a user namespace cannot map is shown.
pub const OVERFLOW_UID: u32 = 65534;

/// The users who may use the daemon: its own, root, and those the owner allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The daemon's effective uid.
    owner: u32,
    /// `ipc_allow_uids` from the configuration.
    allowed: Rc<[u32]>,
}

impl Policy {
    /// The policy for a daemon running as the current user, plus `allowed`.
    pub fn new(allowed: &[u32]) -> Policy {
        Policy { owner: rustix::process::geteuid().as_raw(), allowed: Rc::from(allowed) }
    }

    /// The daemon's own uid.
    pub fn owner(&self) -> u32 {
        self.owner
    }

    /// Whether `uid` is the owner or root: the users for whom slots are kept in reserve.
    pub fn is_owner(&self, uid: u32) -> bool {
        uid == self.owner || uid == 0
    }

    /// `Ok` for the owner, root and the allowed users; otherwise the reason, naming both uids.
    pub fn check(&self, uid: u32) -> Result<(), String> {
        if self.is_owner(uid) {
            return Ok(());
        }
        if uid == OVERFLOW_UID {
            return Err(format!(
                "uid {uid} may not use this robind: it is also how the kernel shows a user it cannot map (a \
                 private user namespace), so it is never allowed"
            ));
        }
        if self.allowed.contains(&uid) {
            return Ok(());
        }
        Err(format!(
            "uid {uid} may not use this robind (it belongs to uid {}; the owner can allow other users with ipc_allow_uids)",
            self.owner
        ))
    }
}

/// The policy a listener and all its connections follow. Replacing it (a SIGHUP reload) wakes
/// every connection, and those whose user it no longer allows close: checking only new
/// connections would leave a revoked user's WebSocket or keep-alive connection working.
#[derive(Debug)]
pub struct SharedPolicy {
    /// The policy in force.
    policy: RefCell<Policy>,
    /// Notified whenever `policy` is replaced.
    changed: event_listener::Event,
}

impl SharedPolicy {
    /// Shares `policy`.
    pub fn new(policy: Policy) -> Rc<SharedPolicy> {
        Rc::new(SharedPolicy { policy: RefCell::new(policy), changed: event_listener::Event::new() })
    }

    /// A copy of the policy in force.
    pub fn get(&self) -> Policy {
        self.policy.borrow().clone()
    }

    /// The policy's [`Policy::check`] for `uid`.
    pub fn check(&self, uid: u32) -> Result<(), String> {
        self.policy.borrow().check(uid)
    }

    /// The policy's [`Policy::is_owner`].
    pub fn is_owner(&self, uid: u32) -> bool {
        self.policy.borrow().is_owner(uid)
    }

    /// The daemon's own uid.
    pub fn owner(&self) -> u32 {
        self.policy.borrow().owner()
    }

    /// Replaces the policy; connections of users it no longer allows are closed.
    pub fn set(&self, policy: Policy) {
        *self.policy.borrow_mut() = policy;
        self.changed.notify(usize::MAX);
    }

    /// Resolves, with the reason, once `uid` is no longer allowed; a connection races its work
    /// against this and ends when it wins.
    pub async fn revoked(&self, uid: u32) -> String {
        loop {
            // Listen before checking, so that a change between the two is not missed.
            let changed = self.changed.listen();
            if let Err(reason) = self.policy.borrow().check(uid) {
                return reason;
            }
            changed.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_names_both_users() {
        let policy = Policy { owner: 1000, allowed: Rc::from([1001, OVERFLOW_UID]) };
        assert!(policy.check(1000).is_ok() && policy.check(0).is_ok() && policy.check(1001).is_ok());
        assert!(policy.check(OVERFLOW_UID).unwrap_err().contains("never allowed"), "not even when listed");
        let refusal = policy.check(4242).unwrap_err();
        assert!(refusal.starts_with("uid 4242 may not use this robind (it belongs to uid 1000"), "{refusal}");
    }

    #[test]
    fn a_replaced_policy_revokes_only_the_users_it_drops() {
        use futures_lite::future::{block_on, poll_once};
        let shared = SharedPolicy::new(Policy { owner: 1000, allowed: Rc::from([1001, 1002]) });
        let mut dropped = Box::pin(shared.revoked(1001));
        let mut kept = Box::pin(shared.revoked(1002));
        let mut owner = Box::pin(shared.revoked(1000));
        assert_eq!(block_on(poll_once(&mut dropped)), None, "still allowed");
        shared.set(Policy { owner: 1000, allowed: Rc::from([1002]) });
        let reason = block_on(poll_once(&mut dropped)).expect("revoked");
        assert!(reason.starts_with("uid 1001 may not use this robind"), "{reason}");
        assert_eq!(block_on(poll_once(&mut kept)), None, "1002 stays");
        assert_eq!(block_on(poll_once(&mut owner)), None, "the owner is never revoked");
    }
}
