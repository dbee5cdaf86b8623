//! Thread-safe handles that let synchronous code on other threads reach the loop.
//!
//! Owns [`NotifierHandle`] and the process-wide handle behind [`broadcast_ws_message`]. A handle
//! only enqueues onto a bounded channel that a task on the loop drains, so nothing on another
//! thread ever touches the loop's state, and a caller never waits longer than an enqueue. When
//! the channel is full the message is dropped, counted in `Stats::bridge_dropped` and logged:
//! never lost silently, never blocking the caller.
//!
//! May touch: the public handles of `notifier` and `tasks`.
//!
//! # Examples
//!
//! ```
//! use robin::bridge;
//! use robin::notifier::{Limits, MessageType, Notifier};
//! use robin::runtime::Spawner;
//! use serde_json::json;
//!
//! let ex = Spawner::new();
//! let notifier = Notifier::new(Limits::default());
//! let (handle, pump) = bridge::notifier_channel(notifier.clone(), 64);
//! let _pump = ex.spawn(pump);
//!
//! let worker = std::thread::spawn(move || handle.broadcast(MessageType::RefreshBalances, json!({})));
//! assert!(worker.join().unwrap());
//! ex.block_on(async { while notifier.last_seq() < 1 { futures_lite::future::yield_now().await } });
//! ```
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use std::time::Duration;

use crate::notifier::{MessageType, Notifier, Stats};
use crate::tasks::{Outcome, SpawnOptions, TaskId, TaskManager};

/// Messages queued between other threads and the loop before new ones are dropped.
pub const DEFAULT_BRIDGE_CAPACITY: usize = 4096;

/// Messages the pump delivers before it lets the client writers run; well under the
/// per-client queue bound (1024 by default), so a burst cannot overflow a client that keeps up.
pub const BURST_BEFORE_YIELD: usize = 64;

/// What crosses from another thread to the loop.
#[derive(Debug)]
enum Request {
    Broadcast(MessageType, Value),
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
pub fn notifier_channel(
    notifier: Rc<Notifier>,
    capacity: usize,
) -> (NotifierHandle, impl Future<Output = ()>) {
    let (tx, rx) = async_channel::unbounded();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let handle = NotifierHandle { tx, in_flight: in_flight.clone(), capacity, stats: notifier.stats() };
    let pump = async move {
        let mut since_yield = 0;
        while let Ok(request) = rx.recv().await {
            in_flight.fetch_sub(1, Relaxed);
            match request {
                Request::Broadcast(kind, data) => {
                    notifier.broadcast(kind, &data);
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
    pub fn broadcast(&self, kind: MessageType, data: Value) -> bool {
        self.send(Request::Broadcast(kind, data))
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
pub fn broadcast_ws_message(kind: MessageType, data: Value) -> bool {
    GLOBAL.get().is_some_and(|handle| handle.broadcast(kind, data))
}

/// A `Send` future a thread hands to the loop to track.
pub type RemoteFuture = std::pin::Pin<Box<dyn Future<Output = Result<Value, String>> + Send>>;

/// What crosses from another thread to the task tracker.
enum TaskRequest {
    Spawn {
        id: TaskId,
        name: String,
        options: SpawnOptions,
        future: RemoteFuture,
        outcome: async_channel::Sender<Outcome>,
    },
    Cancel(TaskId),
}

/// Spawns and cancels tracked tasks from any thread. `Clone + Send + Sync`.
#[derive(Clone, Debug)]
pub struct TasksHandle {
    /// Into the loop.
    tx: async_channel::Sender<TaskRequest>,
    /// Task numbers are reserved here, so a spawn returns its number at once.
    ids: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for TaskRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskRequest::Spawn { id, name, .. } => write!(f, "Spawn({id}, {name})"),
            TaskRequest::Cancel(id) => write!(f, "Cancel({id})"),
        }
    }
}

/// Why a thread's request to the task tracker failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskBridgeError {
    /// The loop is gone (the daemon is stopping).
    #[error("the event loop has stopped; the task was not started")]
    LoopStopped,
    /// Waiting was asked for on the loop thread, where it would deadlock.
    #[error("waiting for a task on the event-loop thread would deadlock it; await the task there")]
    OnLoopThread,
    /// The task did not end in time.
    #[error("the task did not finish within {0:?}")]
    Timeout(Duration),
}

/// A task spawned from another thread.
#[derive(Debug)]
pub struct RemoteTask {
    /// Its number.
    id: TaskId,
    /// Its outcome, once it ends.
    outcome: async_channel::Receiver<Outcome>,
}

impl RemoteTask {
    /// The task's number.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// Blocks this thread until the task ends, at most `timeout`. On the loop thread it
    /// returns [`TaskBridgeError::OnLoopThread`] at once instead of deadlocking.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Outcome, TaskBridgeError> {
        if crate::runtime::on_loop_thread() {
            return Err(TaskBridgeError::OnLoopThread);
        }
        let waited = futures_lite::future::block_on(crate::runtime::timeout(timeout, self.outcome.recv()));
        match waited {
            Some(Ok(outcome)) => Ok(outcome),
            Some(Err(_)) => Err(TaskBridgeError::LoopStopped),
            None => Err(TaskBridgeError::Timeout(timeout)),
        }
    }

    /// Awaits the outcome (from any executor).
    pub async fn outcome(&self) -> Result<Outcome, TaskBridgeError> {
        self.outcome.recv().await.map_err(|_| TaskBridgeError::LoopStopped)
    }
}

/// Creates a handle and the future that must run on the loop to carry out what it asks.
pub fn tasks_channel(tasks: TaskManager) -> (TasksHandle, impl Future<Output = ()>) {
    let (tx, rx) = async_channel::unbounded::<TaskRequest>();
    let handle = TasksHandle { tx, ids: tasks.id_counter() };
    let pump = async move {
        while let Ok(request) = rx.recv().await {
            match request {
                TaskRequest::Spawn { id, name, options, future, outcome } => {
                    tasks.spawn_with_id(id, name, future, options).forward_outcome(outcome);
                }
                TaskRequest::Cancel(id) => {
                    tasks.cancel(id);
                }
            }
        }
    };
    (handle, pump)
}

impl TasksHandle {
    /// Spawns a `Send` future as a tracked task on the loop.
    pub fn spawn(
        &self,
        name: impl Into<String>,
        options: SpawnOptions,
        future: impl Future<Output = Result<Value, String>> + Send + 'static,
    ) -> Result<RemoteTask, TaskBridgeError> {
        let id = self.ids.fetch_add(1, Relaxed);
        let (outcome, receiver) = async_channel::bounded(1);
        let request =
            TaskRequest::Spawn { id, name: name.into(), options, future: Box::pin(future), outcome };
        self.tx.try_send(request).map_err(|_| TaskBridgeError::LoopStopped)?;
        Ok(RemoteTask { id, outcome: receiver })
    }

    /// Runs a synchronous closure on the blocking pool as a tracked task: reported and
    /// cancellable like any task; a cancel that comes before it starts means it never runs.
    pub fn spawn_blocking(
        &self,
        name: impl Into<String>,
        options: SpawnOptions,
        work: impl FnOnce() -> Result<Value, String> + Send + 'static,
    ) -> Result<RemoteTask, TaskBridgeError> {
        // Dropping an unstarted `blocking` task drops the closure unrun; cancelling the tracked
        // task drops this future, and with it that task.
        self.spawn(name, options, async move { blocking::unblock(work).await })
    }

    /// Asks the loop to cancel a task.
    pub fn cancel(&self, id: TaskId) -> Result<(), TaskBridgeError> {
        self.tx.try_send(TaskRequest::Cancel(id)).map_err(|_| TaskBridgeError::LoopStopped)
    }
}

/// Compile-time proof that the handles can cross and be shared between threads.
#[allow(dead_code)]
fn assert_send_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<NotifierHandle>();
    check::<TasksHandle>();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifier::Limits;

    #[test]
    fn a_full_bridge_drops_and_counts_instead_of_blocking() {
        let notifier = Notifier::new(Limits::default());
        let (handle, _pump_not_running) = notifier_channel(notifier, 2);
        assert!(handle.broadcast(MessageType::RefreshBalances, Value::Null));
        assert!(handle.add_error("two"));
        assert!(!handle.add_warning("three"), "the third does not fit");
        assert!(!handle.broadcast(MessageType::RefreshBalances, Value::Null));
        assert_eq!(handle.stats().bridge_dropped.load(Relaxed), 2);
    }

    #[test]
    fn a_stopped_loop_drops_and_counts() {
        let notifier = Notifier::new(Limits::default());
        let (handle, pump) = notifier_channel(notifier, 8);
        drop(pump);
        assert!(!handle.broadcast(MessageType::RefreshBalances, Value::Null));
        assert_eq!(handle.stats().bridge_dropped.load(Relaxed), 1);
    }
}
