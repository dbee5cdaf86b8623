//! The task tracker: named tasks on the loop, their outcomes, and the results kept for the API.
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Display;
use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use async_executor::Task;
use async_io::Timer;
use futures_lite::FutureExt;
use serde::Serialize;
use serde_json::{Value, json};

use super::progress::{Progress, ProgressSink};
use crate::notifier::ProgressSubtype;
use crate::runtime::Spawner;

/// A task's number: sequential from 0 for the daemon's lifetime, as rotki's.
pub type TaskId = u64;

/// Finished tasks remembered for `status` (name, result, duration).
pub const HISTORY_LEN: usize = 100;
/// How long a finished API task's result waits to be fetched before it is dropped.
pub const DEFAULT_RESULT_TTL: Duration = Duration::from_secs(600);
/// Most unfetched API results kept, whatever their age.
pub const MAX_KEPT_RESULTS: usize = 1000;

/// How a task is run and reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnOptions {
    /// A failure is a user-facing error (rotki's `exception_is_error`); otherwise only a
    /// warning in the log. Default true.
    pub exception_is_error: bool,
    /// Start this much later (never earlier). Default none.
    pub delay: Option<Duration>,
    /// Keep the result for `GET /api/1/tasks/<id>` (rotki's `async_query`). Default false.
    pub keep_result: bool,
}

impl Default for SpawnOptions {
    fn default() -> Self {
        SpawnOptions { exception_is_error: true, delay: None, keep_result: false }
    }
}

/// How a task ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// It returned `Ok`, serialized.
    Completed(Value),
    /// It returned `Err` or panicked; the text of the error.
    Failed(String),
    /// It was cancelled before it finished.
    Cancelled,
}

/// A live task, as `running()` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaskInfo {
    /// Its number.
    pub id: TaskId,
    /// Its name.
    pub name: String,
    /// Milliseconds since it was spawned.
    pub age_ms: u64,
}

/// A finished task, as the history keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finished {
    /// Its number.
    pub id: TaskId,
    /// Its name.
    pub name: String,
    /// "completed", "failed" or "cancelled".
    pub result: &'static str,
    /// The error, for failed tasks.
    pub error: Option<String>,
    /// Milliseconds from spawn to end.
    pub duration_ms: u64,
}

/// Where user-facing errors go (the daemon sends them to the messages aggregator).
pub type ErrorSink = Rc<dyn Fn(String)>;

/// Tracks tasks on the loop. Cheap to clone; all clones are the same tracker.
#[derive(Clone)]
pub struct TaskManager {
    inner: Rc<Inner>,
}

struct Inner {
    /// The loop's executor.
    spawner: Spawner,
    /// The next task number; shared with other threads' handles, which reserve numbers.
    next_id: Arc<AtomicU64>,
    /// Tasks not yet finished.
    live: RefCell<BTreeMap<TaskId, Live>>,
    /// The last finished tasks, oldest first.
    history: RefCell<VecDeque<Finished>>,
    /// Finished API tasks' outcomes, with when they finished.
    results: RefCell<BTreeMap<TaskId, (Outcome, Instant)>>,
    /// How long unfetched results are kept.
    result_ttl: Duration,
    /// Wakes `wait_for_all` when a task ends.
    finished: event_listener::Event,
    /// User-facing errors.
    on_error: ErrorSink,
    /// Progress reports.
    on_progress: ProgressSink,
}

struct Live {
    name: String,
    started: Instant,
    options: SpawnOptions,
    /// The running task; dropping it cancels the work.
    task: Task<()>,
    /// Where the outcome goes for the handle's waiters.
    slot: Rc<OutcomeSlot>,
}

impl std::fmt::Debug for TaskManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskManager").field("live", &self.count()).finish_non_exhaustive()
    }
}

impl TaskManager {
    /// A tracker that spawns on `spawner` and reports through the two sinks.
    pub fn new(spawner: Spawner, on_error: ErrorSink, on_progress: ProgressSink) -> TaskManager {
        TaskManager::with_result_ttl(spawner, on_error, on_progress, DEFAULT_RESULT_TTL)
    }

    /// Like [`new`](Self::new) with another lifetime for unfetched API results.
    pub fn with_result_ttl(
        spawner: Spawner,
        on_error: ErrorSink,
        on_progress: ProgressSink,
        result_ttl: Duration,
    ) -> TaskManager {
        TaskManager {
            inner: Rc::new(Inner {
                spawner,
                next_id: Arc::new(AtomicU64::new(0)),
                live: RefCell::default(),
                history: RefCell::default(),
                results: RefCell::default(),
                result_ttl,
                finished: event_listener::Event::new(),
                on_error,
                on_progress,
            }),
        }
    }

    /// Spawns `future` as a tracked task named `name` (rotki's `spawn_and_track`).
    pub fn spawn_and_track<T, E, F>(
        &self,
        name: impl Into<String>,
        future: F,
        options: SpawnOptions,
    ) -> TaskHandle
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: Serialize,
        E: Display,
    {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.spawn_with_id(id, name, future, options)
    }

    /// The counter other threads reserve task numbers from (see `bridge::TasksHandle`).
    pub fn id_counter(&self) -> Arc<AtomicU64> {
        self.inner.next_id.clone()
    }

    /// Spawns with a number reserved from [`id_counter`](Self::id_counter).
    pub fn spawn_with_id<T, E, F>(
        &self,
        id: TaskId,
        name: impl Into<String>,
        future: F,
        options: SpawnOptions,
    ) -> TaskHandle
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: Serialize,
        E: Display,
    {
        let name = name.into();
        let slot = Rc::new(OutcomeSlot::default());
        let manager = Rc::downgrade(&self.inner);
        let delay = options.delay;
        let work = async move {
            if let Some(delay) = delay {
                Timer::after(delay).await;
            }
            let outcome = match AssertUnwindSafe(future).catch_unwind().await {
                Ok(Ok(value)) => Outcome::Completed(serde_json::to_value(value).unwrap_or(Value::Null)),
                Ok(Err(err)) => Outcome::Failed(err.to_string()),
                Err(panic) => Outcome::Failed(format!("panicked: {}", crate::db::panic_message(&panic))),
            };
            finish(&manager, id, outcome);
        };
        let task = self.inner.spawner.spawn(work);
        let live = Live { name: name.clone(), started: Instant::now(), options, task, slot: slot.clone() };
        self.inner.live.borrow_mut().insert(id, live);
        TaskHandle { id, name, slot, manager: self.clone() }
    }

    /// A progress counter whose reports go out as `progress_updates`, rate-limited.
    pub fn progress(&self, subtype: ProgressSubtype, total: u64) -> Progress {
        Progress::new(subtype, total, self.inner.on_progress.clone())
    }

    /// Whether a live task's name starts with `prefix` (rotki's `has_task`).
    pub fn has_task(&self, prefix: &str) -> bool {
        self.inner.live.borrow().values().any(|live| live.name.starts_with(prefix))
    }

    /// The first live task named exactly `name`.
    pub fn get_task_by_name(&self, name: &str) -> Option<TaskInfo> {
        self.running().into_iter().find(|info| info.name == name)
    }

    /// The live tasks, oldest first.
    pub fn running(&self) -> Vec<TaskInfo> {
        let live = self.inner.live.borrow();
        live.iter()
            .map(|(id, l)| TaskInfo {
                id: *id,
                name: l.name.clone(),
                age_ms: l.started.elapsed().as_millis() as u64,
            })
            .collect()
    }

    /// How many tasks are live.
    pub fn count(&self) -> usize {
        self.inner.live.borrow().len()
    }

    /// Cancels one task; false if it is not live.
    pub fn cancel(&self, id: TaskId) -> bool {
        let Some(live) = self.inner.live.borrow_mut().remove(&id) else { return false };
        log::debug!("task {} ({id}) cancelled", live.name);
        let finished = Finished {
            id,
            name: live.name,
            result: "cancelled",
            error: None,
            duration_ms: live.started.elapsed().as_millis() as u64,
        };
        drop(live.task); // the future is dropped: it stops at its current await
        live.slot.fill(Outcome::Cancelled);
        self.remember(finished);
        self.inner.finished.notify(usize::MAX);
        true
    }

    /// Cancels every live task whose name matches; returns how many.
    pub fn cancel_matching(&self, matches: impl Fn(&str) -> bool) -> usize {
        let ids: Vec<TaskId> =
            self.inner.live.borrow().iter().filter(|(_, l)| matches(&l.name)).map(|(id, _)| *id).collect();
        ids.into_iter().filter(|id| self.cancel(*id)).count()
    }

    /// Cancels everything (logout, shutdown); returns how many.
    pub fn clear(&self) -> usize {
        self.cancel_matching(|_| true)
    }

    /// Waits until no task is live, at most `timeout`; true if they all ended.
    pub async fn wait_for_all(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let listener = self.inner.finished.listen();
            if self.count() == 0 {
                return true;
            }
            let ended = async {
                listener.await;
                true
            }
            .or(async {
                Timer::at(deadline).await;
                false
            })
            .await;
            if !ended {
                return self.count() == 0;
            }
        }
    }

    /// The last finished tasks, oldest first.
    pub fn history(&self) -> Vec<Finished> {
        self.inner.history.borrow().iter().cloned().collect()
    }

    /// Live API tasks (spawned with `keep_result`).
    pub fn pending_results(&self) -> Vec<TaskId> {
        self.inner.live.borrow().iter().filter(|(_, l)| l.options.keep_result).map(|(id, _)| *id).collect()
    }

    /// Finished API tasks whose result has not been fetched (expired ones are dropped first).
    pub fn completed_results(&self) -> Vec<TaskId> {
        self.expire_results();
        self.inner.results.borrow().keys().copied().collect()
    }

    /// Whether `id` is a live API task.
    pub fn is_pending_result(&self, id: TaskId) -> bool {
        self.inner.live.borrow().get(&id).is_some_and(|l| l.options.keep_result)
    }

    /// Takes a finished API task's outcome; it can be read once.
    pub fn take_result(&self, id: TaskId) -> Option<Outcome> {
        self.expire_results();
        self.inner.results.borrow_mut().remove(&id).map(|(outcome, _)| outcome)
    }

    /// The tracker's state for `status`.
    pub fn describe(&self) -> Value {
        json!({ "running": self.running(), "recent": self.history() })
    }

    fn remember(&self, finished: Finished) {
        let mut history = self.inner.history.borrow_mut();
        if history.len() == HISTORY_LEN {
            history.pop_front();
        }
        history.push_back(finished);
    }

    fn expire_results(&self) {
        let ttl = self.inner.result_ttl;
        let mut results = self.inner.results.borrow_mut();
        results.retain(|_, (_, at)| at.elapsed() < ttl);
        while results.len() > MAX_KEPT_RESULTS {
            results.pop_first();
        }
    }
}

/// Records a task's end: out of the live set at once, reported, remembered, answered.
fn finish(manager: &Weak<Inner>, id: TaskId, outcome: Outcome) {
    let Some(inner) = manager.upgrade() else { return };
    let manager = TaskManager { inner };
    let Some(live) = manager.inner.live.borrow_mut().remove(&id) else { return };
    // The task is finishing this very poll; detaching lets it complete instead of cancelling.
    live.task.detach();
    let name = &live.name;
    let error = match &outcome {
        Outcome::Failed(err) if live.options.exception_is_error => {
            log::error!("{name} died with exception: {err}");
            (manager.inner.on_error)(format!(
                "{name} died with exception: {err}. Check the logs for more details"
            ));
            Some(err.clone())
        }
        Outcome::Failed(err) => {
            log::warn!("{name} died with exception: {err} but that is not treated as an error");
            Some(err.clone())
        }
        _ => {
            log::debug!("task {name} ({id}) completed");
            None
        }
    };
    manager.remember(Finished {
        id,
        name: live.name.clone(),
        result: if error.is_some() { "failed" } else { "completed" },
        error,
        duration_ms: live.started.elapsed().as_millis() as u64,
    });
    if live.options.keep_result {
        manager.expire_results();
        manager.inner.results.borrow_mut().insert(id, (outcome.clone(), Instant::now()));
    }
    live.slot.fill(outcome);
    manager.inner.finished.notify(usize::MAX);
}

/// A spawned task: its number, its name, a way to cancel it and to await its outcome.
pub struct TaskHandle {
    id: TaskId,
    name: String,
    slot: Rc<OutcomeSlot>,
    manager: TaskManager,
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
        match self.slot.outcome.borrow().as_ref() {
            Some(outcome) => {
                let _ = sender.try_send(outcome.clone());
            }
            None => *self.slot.remote.borrow_mut() = Some(sender),
        }
    }
}

/// A single-threaded one-shot for a task's outcome: smaller than a channel, which matters for
/// 100,000 pending tasks.
#[derive(Default)]
struct OutcomeSlot {
    outcome: RefCell<Option<Outcome>>,
    waiters: RefCell<Vec<Waker>>,
    /// A waiter on another thread, if any.
    remote: RefCell<Option<async_channel::Sender<Outcome>>>,
}

impl OutcomeSlot {
    fn fill(&self, outcome: Outcome) {
        if let Some(remote) = self.remote.borrow_mut().take() {
            let _ = remote.try_send(outcome.clone());
        }
        *self.outcome.borrow_mut() = Some(outcome);
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    async fn wait(&self) -> Outcome {
        poll_fn(|cx| match self.outcome.borrow().as_ref() {
            Some(outcome) => Poll::Ready(outcome.clone()),
            None => {
                self.waiters.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}
