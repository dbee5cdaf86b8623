//! Tracked tasks, the periodic scheduler and the results behind the async task API.
//!
//! Owns the task tracker's model and its state transitions: named tasks on the loop with an
//! optional start delay and `exception_is_error`, cancellation, a bounded history of outcomes,
//! rate-limited progress, and the results that `GET /api/1/tasks/<id>` hands out once. A task
//! leaves the live set the moment it ends (rotki's list grows until `clear_finished`). User
//! errors and progress reports ([`ProgressReport`], in the tasks' own terms) go to sinks the
//! daemon connects; last-run times are saved through `db`. Other threads spawn and cancel
//! through a [`TasksHandle`], which only enqueues onto the loop.
//!
//! May touch: `db` (last-run times).
//!
//! # Examples
//!
//! ```
//! use std::rc::Rc;
//! use std::time::Duration;
//! use robin::runtime::Spawner;
//! use robin::tasks::{Outcome, SpawnOptions, TaskManager};
//!
//! let ex = Spawner::new();
//! let tasks = TaskManager::new(ex.clone(), Rc::new(|_error| {}), Rc::new(|_progress| {}));
//! let handle = tasks.spawn_and_track(
//!     "query_prices",
//!     async { Ok::<_, String>(42) },
//!     SpawnOptions { delay: Some(Duration::from_millis(10)), ..SpawnOptions::default() },
//! );
//! assert!(tasks.has_task("query_"));
//! assert_eq!(ex.block_on(handle.outcome()), Outcome::Completed(42.into()));
//! assert_eq!(tasks.count(), 0, "a finished task leaves the live set at once");
//! ```
mod delay;
mod handle;
mod manager;
mod progress;
mod remote;
mod scheduler;

pub use handle::TaskHandle;
pub use manager::{
    ErrorSink, Finished, HISTORY_LEN, MAX_KEPT_RESULT_BYTES, MAX_KEPT_RESULTS, Outcome, SpawnOptions,
    TaskError, TaskId, TaskInfo, TaskManager,
};
pub use progress::{PROGRESS_INTERVAL, Progress, ProgressReport, ProgressSink};
pub use remote::{
    RemoteError, RemoteFuture, RemoteTask, TaskBridgeError, TasksHandle, global_handle, install_global,
    remote_channel,
};
pub use scheduler::{
    Clock, DEFAULT_MAX_TASKS, DEFAULT_TICK, DatabaseStore, JobFuture, LastRunStore, MemoryStore, PeriodicJob,
    RunNowError, Scheduler, SchedulerOptions, SystemClock,
};
