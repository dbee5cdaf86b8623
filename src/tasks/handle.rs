//! [`TaskHandle`]: a spawned task's number and name, its cancellation and its outcome.
use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use super::manager::{Outcome, TaskId, TaskManager};

/// A spawned task: its number, its name, a way to cancel it and to await its outcome.
pub struct TaskHandle {
    pub(super) id: TaskId,
    pub(super) name: Rc<str>,
    pub(super) slot: Rc<OutcomeSlot>,
    pub(super) manager: TaskManager,
}

impl std::fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle").field("id", &self.id).field("name", &self.name).finish()
    }
}

impl TaskHandle {
    /// The task's number.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Cancels the task; false if it had already ended.
    pub fn cancel(&self) -> bool {
        self.manager.cancel(self.id)
    }

    /// Waits for the task to end.
    pub async fn outcome(&self) -> Outcome {
        self.slot.wait().await
    }

    /// Also sends the outcome to `sender` when the task ends (for waiters on other threads).
    pub fn forward_outcome(&self, sender: async_channel::Sender<Outcome>) {
        self.slot.forward(sender);
    }
}

/// A single-threaded one-shot for a task's outcome: one `RefCell`, smaller than a channel,
/// which matters for 100,000 pending tasks.
#[derive(Default)]
pub(super) struct OutcomeSlot(RefCell<SlotState>);

enum SlotState {
    /// Not ended: who waits for it (on this thread, and on another one).
    Waiting(Vec<Waker>, Option<async_channel::Sender<Outcome>>),
    /// Ended. Boxed: a pending task's slot is then 32 bytes smaller (an `Outcome` is 72).
    Done(Box<Outcome>),
}

impl Default for SlotState {
    fn default() -> Self {
        SlotState::Waiting(Vec::new(), None)
    }
}

impl OutcomeSlot {
    pub(super) fn fill(&self, outcome: Outcome) {
        let mut state = self.0.borrow_mut();
        let SlotState::Waiting(wakers, remote) = std::mem::take(&mut *state) else { return };
        // Clone only for a waiter on another thread; most tasks have none.
        if let Some(remote) = remote {
            let _ = remote.try_send(outcome.clone());
        }
        *state = SlotState::Done(Box::new(outcome));
        drop(state);
        wakers.into_iter().for_each(Waker::wake);
    }

    fn forward(&self, sender: async_channel::Sender<Outcome>) {
        match &mut *self.0.borrow_mut() {
            SlotState::Done(outcome) => {
                let _ = sender.try_send((**outcome).clone());
            }
            SlotState::Waiting(_, remote) => *remote = Some(sender),
        }
    }

    async fn wait(&self) -> Outcome {
        poll_fn(|cx| match &mut *self.0.borrow_mut() {
            SlotState::Done(outcome) => Poll::Ready((**outcome).clone()),
            SlotState::Waiting(wakers, _) => {
                wakers.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}
