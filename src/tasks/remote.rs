//! [`TasksHandle`]: spawning and cancelling tracked tasks from other threads.
//!
//! A handle only enqueues onto a channel that a task on the loop drains (the pump), so nothing
//! on another thread ever touches the tracker. Task numbers are reserved from the tracker's own
//! counter, so a spawn returns its number at once.
//!
//! # Examples
//!
//! ```
//! use std::rc::Rc;
//! use std::time::Duration;
//! use robin::runtime::Spawner;
//! use robin::tasks::{self, Outcome, SpawnOptions, TaskManager};
//!
//! let ex = Spawner::new();
//! let tracker = TaskManager::new(ex.clone(), Rc::new(|_| {}), Rc::new(|_| {}));
//! let (handle, pump) = tasks::remote_channel(tracker);
//! let _pump = ex.spawn(pump);
//!
//! let worker = std::thread::spawn(move || {
//!     let task = handle.spawn_blocking("count", SpawnOptions::default(), || Ok(3.into())).unwrap();
//!     task.wait_timeout(Duration::from_secs(5))
//! });
//! ex.block_on(async { while !worker.is_finished() { async_io::Timer::after(Duration::from_millis(1)).await; } });
//! assert_eq!(worker.join().unwrap(), Ok(Outcome::Completed(3.into())));
//! ```
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;

use super::manager::{Outcome, SpawnOptions, TaskId, TaskManager};

/// The error a task from another thread may fail with.
pub type RemoteError = Box<dyn std::error::Error + Send + Sync>;

/// A `Send` future a thread hands to the loop to track.
pub type RemoteFuture = std::pin::Pin<Box<dyn Future<Output = Result<Value, RemoteError>> + Send>>;

/// What crosses from another thread to the task tracker.
enum Request {
    Spawn {
        id: TaskId,
        name: String,
        options: SpawnOptions,
        future: RemoteFuture,
        outcome: async_channel::Sender<Outcome>,
    },
    Cancel(TaskId),
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Spawn { id, name, .. } => write!(f, "Spawn({id}, {name})"),
            Request::Cancel(id) => write!(f, "Cancel({id})"),
        }
    }
}

/// Spawns and cancels tracked tasks from any thread. `Clone + Send + Sync`.
#[derive(Clone, Debug)]
pub struct TasksHandle {
    /// Into the loop.
    tx: async_channel::Sender<Request>,
    /// Task numbers are reserved here, so a spawn returns its number at once.
    ids: Arc<std::sync::atomic::AtomicU64>,
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
    /// The task's number, as `tasks.list` and the task API show it.
    id: TaskId,
    /// Receives the outcome when the task ends.
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
pub fn remote_channel(tasks: TaskManager) -> (TasksHandle, impl Future<Output = ()>) {
    let (tx, rx) = async_channel::unbounded::<Request>();
    let handle = TasksHandle { tx, ids: tasks.id_counter() };
    let pump = async move {
        while let Ok(request) = rx.recv().await {
            match request {
                Request::Spawn { id, name, options, future, outcome } => {
                    let future = async move { future.await.map_err(|e| -> super::TaskError { e }) };
                    tasks.spawn_with_id(id, name, future, options).forward_outcome(outcome);
                }
                Request::Cancel(id) => {
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
        future: impl Future<Output = Result<Value, RemoteError>> + Send + 'static,
    ) -> Result<RemoteTask, TaskBridgeError> {
        let id = TaskId(self.ids.fetch_add(1, Relaxed));
        let (outcome, receiver) = async_channel::bounded(1);
        let future: RemoteFuture = Box::pin(future);
        let request = Request::Spawn { id, name: name.into(), options, future, outcome };
        self.tx.try_send(request).map_err(|_| TaskBridgeError::LoopStopped)?;
        Ok(RemoteTask { id, outcome: receiver })
    }

    /// Runs a synchronous closure on the blocking pool as a tracked task: reported and
    /// cancellable like any task; a cancel that comes before it starts means it never runs.
    pub fn spawn_blocking(
        &self,
        name: impl Into<String>,
        options: SpawnOptions,
        work: impl FnOnce() -> Result<Value, RemoteError> + Send + 'static,
    ) -> Result<RemoteTask, TaskBridgeError> {
        // Dropping an unstarted `blocking` task drops the closure unrun; cancelling the tracked
        // task drops this future, and with it that task.
        self.spawn(name, options, async move { blocking::unblock(work).await })
    }

    /// Asks the loop to cancel a task.
    pub fn cancel(&self, id: TaskId) -> Result<(), TaskBridgeError> {
        self.tx.try_send(Request::Cancel(id)).map_err(|_| TaskBridgeError::LoopStopped)
    }
}

static GLOBAL: OnceLock<TasksHandle> = OnceLock::new();

/// Makes `handle` the one [`global_handle`] returns; the daemon installs its own at start.
/// Only the first call wins (false after).
pub fn install_global(handle: TasksHandle) -> bool {
    GLOBAL.set(handle).is_ok()
}

/// The daemon's handle, for synchronous code that has none passed to it (rotki's task manager
/// is reachable from anywhere too). `None` before a daemon installed one.
pub fn global_handle() -> Option<&'static TasksHandle> {
    GLOBAL.get()
}

/// Compile-time proof that the handle can cross and be shared between threads.
#[allow(dead_code)]
fn assert_send_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<TasksHandle>();
}
