//! One client's outgoing queue, bounded by message count and bytes.
//!
//! Broadcast frames are shared (`Rc<[u8]>`): a message is encoded once and every outbox holds
//! a pointer to the same bytes. Frames that tungstenite writes for this client alone (pongs,
//! close replies, echoes) go through the same FIFO, so the wire order is the queue order.
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

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
}

/// Where an outbox is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Accepting frames.
    Open,
    /// Over its limits: the queue was dropped and the client is being closed with 1013.
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
    /// Most frames the queue may hold before the client counts as too slow.
    max_messages: usize,
    /// Most bytes the queue may hold before the client counts as too slow.
    max_bytes: usize,
    /// Open, overflowed or draining.
    state: Cell<State>,
    /// The writer, when it waits for a frame or for an overflow.
    waker: RefCell<Option<Waker>>,
}

impl Outbox {
    pub(crate) fn new(max_messages: usize, max_bytes: usize) -> Outbox {
        Outbox {
            frames: RefCell::new(VecDeque::new()),
            bytes: Cell::new(0),
            max_messages,
            max_bytes,
            state: Cell::new(State::Open),
            waker: RefCell::new(None),
        }
    }

    /// Queues a broadcast frame; false (and the outbox overflows) if that would pass a limit.
    pub(crate) fn push(&self, out: Out) -> bool {
        if self.state.get() != State::Open {
            return false;
        }
        let len = out.bytes().len();
        if self.frames.borrow().len() >= self.max_messages || self.bytes.get() + len > self.max_bytes {
            self.overflow();
            return false;
        }
        self.push_unbounded(out);
        true
    }

    /// Queues without checking limits: replay (bounded by the ring) and control frames.
    pub(crate) fn push_unbounded(&self, out: Out) {
        if self.state.get() == State::Overflowed {
            return;
        }
        self.bytes.set(self.bytes.get() + out.bytes().len());
        self.frames.borrow_mut().push_back(out);
        self.wake();
    }

    /// Drops the queue and tells the writer to close the client.
    pub(crate) fn overflow(&self) {
        self.state.set(State::Overflowed);
        self.frames.borrow_mut().clear();
        self.bytes.set(0);
        self.wake();
    }

    /// Lets the writer finish what is queued, then stop.
    pub(crate) fn drain(&self) {
        if self.state.get() == State::Open {
            self.state.set(State::Draining);
        }
        self.wake();
    }

    pub(crate) fn state(&self) -> State {
        self.state.get()
    }

    /// Frames queued now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.frames.borrow().len()
    }

    /// The next frame; `None` once the outbox overflowed, or drained empty.
    pub(crate) async fn pop(&self) -> Option<Out> {
        poll_fn(|cx| {
            if self.state.get() == State::Overflowed {
                return Poll::Ready(None);
            }
            if let Some(out) = self.frames.borrow_mut().pop_front() {
                self.bytes.set(self.bytes.get() - out.bytes().len());
                return Poll::Ready(Some(out));
            }
            if self.state.get() == State::Draining {
                return Poll::Ready(None);
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Takes every queued frame (the subscriber is gone; what it never got may be kept).
    pub(crate) fn take_all(&self) -> Vec<Out> {
        self.bytes.set(0);
        self.frames.borrow_mut().drain(..).collect()
    }

    /// The next frame if one is queued now; never waits.
    pub(crate) fn try_pop(&self) -> Option<Out> {
        if self.state.get() == State::Overflowed {
            return None;
        }
        let out = self.frames.borrow_mut().pop_front()?;
        self.bytes.set(self.bytes.get() - out.bytes().len());
        Some(out)
    }

    /// Resolves when the outbox overflows (used while a write is in progress).
    pub(crate) async fn overflowed(&self) {
        poll_fn(|cx| {
            if self.state.get() == State::Overflowed {
                return Poll::Ready(());
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
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

    #[test]
    fn limits_overflow_and_drop_the_queue() {
        let outbox = Outbox::new(2, 100);
        assert!(outbox.push(Out::Owned(vec![0; 10])));
        assert!(outbox.push(Out::Owned(vec![0; 10])));
        assert!(!outbox.push(Out::Owned(vec![0; 10])), "count limit");
        assert_eq!(outbox.state(), State::Overflowed);
        assert_eq!(outbox.len(), 0);
        assert!(futures_lite::future::block_on(outbox.pop()).is_none());

        let outbox = Outbox::new(10, 15);
        assert!(outbox.push(Out::Owned(vec![0; 10])));
        assert!(!outbox.push(Out::Owned(vec![0; 10])), "byte limit");
    }

    #[test]
    fn draining_hands_out_what_is_queued_then_ends() {
        let outbox = Outbox::new(10, 100);
        outbox.push(Out::Owned(vec![1]));
        outbox.drain();
        let first = futures_lite::future::block_on(outbox.pop()).unwrap();
        assert_eq!(first.bytes(), &[1]);
        assert!(futures_lite::future::block_on(outbox.pop()).is_none());
    }
}
