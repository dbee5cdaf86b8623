//! One client's outgoing queue, bounded by message count and bytes, twice.
//!
//! Broadcast frames are shared (`Rc<[u8]>`): a message is encoded once and every outbox holds
//! a pointer to the same bytes. Frames that tungstenite writes for this client alone (pongs,
//! close replies, echoes) go through the same FIFO, so the wire order is the queue order.
//!
//! A client is closed for being stuck, not for being behind. Past the soft bounds
//! ([`Bounds::soft_messages`], [`Bounds::soft_bytes`]) the client is *behind*: from then on
//! its writer must get bytes into the socket at least once per grace period, or the client is
//! closed with 1013 ([`Outbox::overflowed_or_stalled`]). One that reads, however slowly, keeps
//! its queue until the hard bounds ([`Bounds::max_messages`], [`Bounds::max_bytes`]), which
//! close it at once whatever it does: they bound memory. A client's own frames are held to the
//! soft byte bound, since unlike broadcasts they are not shared with anyone.
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::FutureExt;

use super::{Limits, Stats};

/// Bytes to write: shared by every client, or this client's own.
#[derive(Debug)]
pub(crate) enum Out {
    /// A broadcast frame, encoded once.
    Shared(Rc<[u8]>),
    /// A frame for this client only.
    Owned(Vec<u8>),
}

impl Out {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Out::Shared(bytes) => bytes,
            Out::Owned(bytes) => bytes,
        }
    }

    /// Bytes of this client's own (0 for a shared frame).
    fn own_len(&self) -> usize {
        match self {
            Out::Shared(_) => 0,
            Out::Owned(bytes) => bytes.len(),
        }
    }
}

/// How much one client's queue may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// Past this many frames the client is behind and must make progress to stay.
    pub(crate) soft_messages: usize,
    /// Past this many bytes the client is behind; also the most of its own frames it may have.
    pub(crate) soft_bytes: usize,
    /// Past this many frames the client is closed at once.
    pub(crate) max_messages: usize,
    /// Past this many bytes the client is closed at once.
    pub(crate) max_bytes: usize,
}

impl Bounds {
    /// The notifier's bounds; a hard bound set below its soft one is raised to it.
    pub(crate) fn new(limits: &Limits) -> Bounds {
        Bounds {
            soft_messages: limits.client_queue_messages,
            soft_bytes: limits.client_queue_bytes,
            max_messages: limits.client_queue_max_messages.max(limits.client_queue_messages),
            max_bytes: limits.client_queue_max_bytes.max(limits.client_queue_bytes),
        }
    }
}

/// Where an outbox is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Accepting frames.
    Open,
    /// Over its hard bounds, or stuck while behind: the queue was dropped and the client is
    /// being closed with 1013.
    Overflowed,
    /// The session is ending: write what is queued, then stop.
    Draining,
}

/// A bounded FIFO of frames with one waiting writer.
#[derive(Debug)]
pub(crate) struct Outbox {
    /// Queued frames, oldest first.
    frames: RefCell<VecDeque<Out>>,
    /// Sum of the queued frames' lengths.
    bytes: Cell<usize>,
    /// Sum of the queued lengths of this client's own frames.
    own_bytes: Cell<usize>,
    /// The soft and hard bounds.
    bounds: Bounds,
    /// Open, overflowed or draining.
    state: Cell<State>,
    /// Since when the queue has been past a soft bound; `None` while it is within them.
    behind_since: Cell<Option<Instant>>,
    /// The writer, when it waits for a frame.
    frame_waker: RefCell<Option<Waker>>,
    /// The writer, when it waits (during a write) for the outbox to overflow or fall behind.
    /// Apart from `frame_waker` so that a frame queued during a blocked write does not wake it.
    state_waker: RefCell<Option<Waker>>,
    /// The notifier's counters (`clients_fell_behind`).
    stats: Arc<Stats>,
}

impl Outbox {
    pub(crate) fn new(bounds: Bounds, stats: Arc<Stats>) -> Outbox {
        Outbox {
            frames: RefCell::new(VecDeque::new()),
            bytes: Cell::new(0),
            own_bytes: Cell::new(0),
            bounds,
            state: Cell::new(State::Open),
            behind_since: Cell::new(None),
            frame_waker: RefCell::new(None),
            state_waker: RefCell::new(None),
            stats,
        }
    }

    /// Queues a broadcast frame; false (and the outbox overflows) if that would pass a hard
    /// bound.
    pub(crate) fn push(&self, out: Out) -> bool {
        if self.state.get() != State::Open {
            return false;
        }
        let len = out.bytes().len();
        if self.frames.borrow().len() >= self.bounds.max_messages
            || self.bytes.get() + len > self.bounds.max_bytes
        {
            self.overflow();
            return false;
        }
        self.enqueue(out);
        true
    }

    /// Queues a frame of this client's own (a pong, an echo, an answer); false (and the outbox
    /// overflows) if that would pass a hard bound or make its own frames pass the soft byte
    /// bound: they are not shared, so a client that sends without reading gets no grace.
    pub(crate) fn push_own(&self, frame: Vec<u8>) -> bool {
        if self.state.get() != State::Open {
            return false;
        }
        let len = frame.len();
        if self.frames.borrow().len() >= self.bounds.max_messages
            || self.bytes.get() + len > self.bounds.max_bytes
            || self.own_bytes.get() + len > self.bounds.soft_bytes
        {
            self.overflow();
            return false;
        }
        self.enqueue(Out::Owned(frame));
        true
    }

    /// Queues without checking bounds: replay (bounded by the ring) and control frames.
    pub(crate) fn push_unbounded(&self, out: Out) {
        if self.state.get() == State::Overflowed {
            return;
        }
        self.enqueue(out);
    }

    fn enqueue(&self, out: Out) {
        self.bytes.set(self.bytes.get() + out.bytes().len());
        self.own_bytes.set(self.own_bytes.get() + out.own_len());
        self.frames.borrow_mut().push_back(out);
        if self.behind_since.get().is_none() && self.past_soft_bounds() {
            self.behind_since.set(Some(Instant::now()));
            self.stats.clients_fell_behind.fetch_add(1, Relaxed);
            wake(&self.state_waker);
        }
        wake(&self.frame_waker);
    }

    fn past_soft_bounds(&self) -> bool {
        self.frames.borrow().len() > self.bounds.soft_messages || self.bytes.get() > self.bounds.soft_bytes
    }

    /// Drops the queue and tells the writer to close the client.
    pub(crate) fn overflow(&self) {
        self.state.set(State::Overflowed);
        self.take_all();
        self.wake_all();
    }

    /// Lets the writer finish what is queued, then stop.
    pub(crate) fn drain(&self) {
        if self.state.get() == State::Open {
            self.state.set(State::Draining);
        }
        self.wake_all();
    }

    pub(crate) fn state(&self) -> State {
        self.state.get()
    }

    /// Frames queued now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.frames.borrow().len()
    }

    /// Whether the queue is past a soft bound now.
    #[cfg(test)]
    pub(crate) fn is_behind(&self) -> bool {
        self.behind_since.get().is_some()
    }

    /// The next frame; `None` once the outbox overflowed, or drained empty.
    pub(crate) async fn pop(&self) -> Option<Out> {
        poll_fn(|cx| {
            if self.state.get() == State::Overflowed {
                return Poll::Ready(None);
            }
            if let Some(out) = self.try_pop() {
                return Poll::Ready(Some(out));
            }
            if self.state.get() == State::Draining {
                return Poll::Ready(None);
            }
            *self.frame_waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Takes every queued frame (the subscriber is gone; what it never got may be kept).
    pub(crate) fn take_all(&self) -> Vec<Out> {
        self.bytes.set(0);
        self.own_bytes.set(0);
        self.behind_since.set(None);
        self.frames.borrow_mut().drain(..).collect()
    }

    /// The next frame if one is queued now; never waits.
    pub(crate) fn try_pop(&self) -> Option<Out> {
        if self.state.get() == State::Overflowed {
            return None;
        }
        let out = self.frames.borrow_mut().pop_front()?;
        self.bytes.set(self.bytes.get() - out.bytes().len());
        self.own_bytes.set(self.own_bytes.get() - out.own_len());
        if self.behind_since.get().is_some() && !self.past_soft_bounds() {
            self.behind_since.set(None);
        }
        Some(out)
    }

    /// Resolves when the outbox overflows, or when it has been behind for `grace` with no
    /// progress since `progress` (the last time the client took bytes): then it overflows
    /// the outbox itself, and the client is closed as stuck. Used while a write is blocked.
    pub(crate) async fn overflowed_or_stalled(&self, progress: Instant, grace: Duration) {
        loop {
            let behind = self.behind_since.get();
            let changed = poll_fn(|cx| {
                if self.state.get() == State::Overflowed || self.behind_since.get() != behind {
                    return Poll::Ready(false);
                }
                *self.state_waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            });
            let stalled = async {
                match behind {
                    Some(since) => Timer::at(since.max(progress) + grace).await,
                    None => futures_lite::future::pending().await,
                };
                true
            };
            if !changed.or(stalled).await {
                if self.state.get() == State::Overflowed {
                    return;
                }
                continue;
            }
            log::info!(
                "notifier: a client behind its queue's soft bound took nothing for {grace:?}; closing it (1013)"
            );
            self.overflow();
            return;
        }
    }

    fn wake_all(&self) {
        wake(&self.frame_waker);
        wake(&self.state_waker);
    }
}

fn wake(waker: &RefCell<Option<Waker>>) {
    if let Some(waker) = waker.borrow_mut().take() {
        waker.wake();
    }
}

/// Encodes an unmasked, final server frame with `opcode` (0x1 text, 0x8 close).
pub(crate) fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut frame = Vec::with_capacity(len + 10);
    frame.push(0x80 | opcode);
    match len {
        0..=125 => frame.push(len as u8),
        126..=0xFFFF => {
            frame.push(126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            frame.push(127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}

/// A close frame with `code` and a short reason.
pub(crate) fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    server_frame(0x8, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lengths_use_the_right_encoding() {
        assert_eq!(server_frame(0x1, b"hi"), vec![0x81, 2, b'h', b'i']);
        assert_eq!(&server_frame(0x1, &[b'a'; 200])[..4], &[0x81, 126, 0, 200]);
        assert_eq!(&server_frame(0x1, &vec![b'a'; 70_000])[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        assert_eq!(close_frame(1013, "slow"), vec![0x88, 6, 0x03, 0xF5, b's', b'l', b'o', b'w']);
    }

    fn bounds(soft_messages: usize, soft_bytes: usize, max_messages: usize, max_bytes: usize) -> Bounds {
        Bounds { soft_messages, soft_bytes, max_messages, max_bytes }
    }

    fn shared(len: usize) -> Out {
        Out::Shared(vec![0; len].into())
    }

    #[test]
    fn hard_bounds_overflow_and_drop_the_queue() {
        let outbox = Outbox::new(bounds(1, 10, 2, 100), Arc::default());
        assert!(outbox.push(shared(10)));
        assert!(outbox.push(shared(10)));
        assert!(!outbox.push(shared(10)), "count bound");
        assert_eq!(outbox.state(), State::Overflowed);
        assert_eq!(outbox.len(), 0);
        assert!(futures_lite::future::block_on(outbox.pop()).is_none());

        let outbox = Outbox::new(bounds(1, 10, 10, 15), Arc::default());
        assert!(outbox.push(shared(10)));
        assert!(!outbox.push(shared(10)), "byte bound");
    }

    #[test]
    fn past_the_soft_bounds_a_client_is_behind_until_it_catches_up() {
        let outbox = Outbox::new(bounds(2, 25, 100, 1000), Arc::default());
        assert!(outbox.push(shared(10)) && outbox.push(shared(10)));
        assert!(!outbox.is_behind());
        assert!(outbox.push(shared(10)), "past the soft bounds is still accepted");
        assert!(outbox.is_behind());
        assert_eq!(outbox.state(), State::Open);
        outbox.try_pop();
        assert!(!outbox.is_behind(), "back within both soft bounds");
        assert!(outbox.push(shared(30)), "one frame past the soft byte bound");
        assert!(outbox.is_behind());
    }

    #[test]
    fn own_frames_are_held_to_the_soft_byte_bound() {
        let outbox = Outbox::new(bounds(100, 20, 100, 1000), Arc::default());
        assert!(outbox.push(shared(500)), "broadcasts may pass it");
        assert!(outbox.push_own(vec![0; 15]));
        assert!(!outbox.push_own(vec![0; 10]), "15 + 10 of its own is past 20");
        assert_eq!(outbox.state(), State::Overflowed);
    }

    #[test]
    fn a_client_behind_that_makes_no_progress_is_closed_after_the_grace() {
        use futures_lite::future::{block_on, poll_once};
        let outbox = Outbox::new(bounds(1, 1000, 100, 1000), Arc::default());
        assert!(outbox.push(shared(10)));
        let watch = outbox.overflowed_or_stalled(Instant::now(), Duration::ZERO);
        futures_lite::pin!(watch);
        assert!(block_on(poll_once(&mut watch)).is_none(), "within the soft bounds: no grace runs");
        assert!(outbox.push(shared(10)));
        block_on(watch);
        assert_eq!(outbox.state(), State::Overflowed, "behind, and the grace is over");
    }

    #[test]
    fn draining_hands_out_what_is_queued_then_ends() {
        let outbox = Outbox::new(bounds(10, 100, 10, 100), Arc::default());
        outbox.push(Out::Owned(vec![1]));
        outbox.drain();
        let first = futures_lite::future::block_on(outbox.pop()).unwrap();
        assert_eq!(first.bytes(), &[1]);
        assert!(futures_lite::future::block_on(outbox.pop()).is_none());
    }
}
