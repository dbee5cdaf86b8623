//! The task tracker: named tasks on the loop, their outcomes, and the results kept for the API.
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_executor::Task;
use async_io::Timer;
use futures_lite::FutureExt;
use futures_lite::future::BoxedLocal;
use serde::Serialize;
use serde_json::{Value, json};

use super::delay::drive_delayed;
use super::handle::{OutcomeSlot, TaskHandle};
use super::progress::{Progress, ProgressSink};
use crate::runtime::Spawner;

/// A task's number: sequential from 0 for the daemon's lifetime, as rotki's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub u64);

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for TaskId {
    type Err = std::num::ParseIntError;

    fn from_str(text: &str) -> Result<TaskId, Self::Err> {
        text.parse().map(TaskId)
    }
}

/// The error a tracked task may fail with; its whole chain of causes is reported.
pub type TaskError = Box<dyn std::error::Error>;

/// Finished tasks remembered for `status` (name, result, duration).
pub const HISTORY_LEN: usize = 100;
/// Most unfetched API results kept; the oldest gives way. A UI that sleeps for hours still finds
/// its results: they are bounded by number and size, not by a clock.
pub const MAX_KEPT_RESULTS: usize = 1000;
/// Most bytes of unfetched API results kept (their JSON), whatever their number.
pub const MAX_KEPT_RESULT_BYTES: usize = 4 * 1024 * 1024;

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
    /// Run by a client outside the daemon (`tasks.begin`): listed, cancelled and kept like
    /// the daemon's own, but invisible to [`TaskManager::own_count`] and
    /// [`TaskManager::has_own_task`], so that no client can hold up the daemon's scheduler.
    /// Default false.
    pub external: bool,
}

impl Default for SpawnOptions {
    fn default() -> Self {
        SpawnOptions { exception_is_error: true, delay: None, keep_result: false, external: false }
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
    /// The task's number, as the task API and `tasks.cancel` take it.
    pub id: TaskId,
    /// The name it was spawned with (a job's name, for scheduled tasks).
    pub name: String,
    /// Milliseconds since it was spawned.
    pub age_ms: u64,
}

/// A finished task, as the history keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finished {
    /// The task's number.
    pub id: TaskId,
    /// Its name (shared with the live entry it came from).
    pub name: Rc<str>,
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

pub(super) struct Inner {
    /// The loop's executor.
    pub(super) spawner: Spawner,
    /// The next task number; shared with other threads' handles, which reserve numbers.
    next_id: Arc<AtomicU64>,
    /// Tasks not yet finished.
    pub(super) live: RefCell<BTreeMap<TaskId, Live>>,
    /// The last finished tasks, oldest first.
    history: RefCell<VecDeque<Finished>>,
    /// Finished API tasks' outcomes, with when they finished.
    results: RefCell<BTreeMap<TaskId, (Outcome, usize)>>,
    /// Sum of the kept results' sizes.
    result_bytes: std::cell::Cell<usize>,
    /// Bounds on unfetched results: count and bytes.
    result_limits: (usize, usize),
    /// Wakes `wait_for_all` when the last live task ends.
    finished: event_listener::Event,
    /// Delayed tasks by due time. One driver and one timer serve them all, so a waiting task
    /// costs its queue entry and its boxed future: no executor task, no reactor timer.
    pub(super) delayed: RefCell<std::collections::BTreeSet<(Instant, TaskId)>>,
    /// Wakes the delay driver when an earlier deadline arrives.
    pub(super) delay_changed: event_listener::Event,
    /// The delay driver, started with the first delayed task.
    delay_driver: RefCell<Option<Task<()>>>,
    /// User-facing errors.
    on_error: ErrorSink,
    /// Progress reports.
    on_progress: ProgressSink,
    /// The last task name used: tasks come in runs of one name (a job's, a client's, a
    /// benchmark's), and sharing its allocation saves 32 bytes a task.
    last_name: RefCell<Option<Rc<str>>>,
}

pub(super) struct Live {
    name: Rc<str>,
    /// When it was spawned, in [`coarse_ms`].
    started_ms: u64,
    /// A failure is a user-facing error.
    exception_is_error: bool,
    /// The outcome is kept for the API.
    keep_result: bool,
    /// Run by a client (see [`SpawnOptions::external`]).
    external: bool,
    pub(super) run: Run,
    /// Where the outcome goes for the handle's waiters.
    slot: Rc<OutcomeSlot>,
}

/// Where a live task's work is.
pub(super) enum Run {
    /// Waiting for its delay: not yet on the executor. Dropping it means it never starts.
    Delayed(Instant, BoxedLocal<()>),
    /// On the executor; dropping the task cancels the work at its current await.
    Running(Task<()>),
    /// Only while `start_due` moves it from `Delayed` to `Running`.
    Moving,
}

impl std::fmt::Debug for TaskManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskManager").field("live", &self.count()).finish_non_exhaustive()
    }
}

impl TaskManager {
    /// A tracker that spawns on `spawner` and reports through the two sinks.
    pub fn new(spawner: Spawner, on_error: ErrorSink, on_progress: ProgressSink) -> TaskManager {
        TaskManager::with_result_limits(
            spawner,
            on_error,
            on_progress,
            MAX_KEPT_RESULTS,
            MAX_KEPT_RESULT_BYTES,
        )
    }

    /// Like [`new`](Self::new) with other bounds on unfetched API results.
    pub fn with_result_limits(
        spawner: Spawner,
        on_error: ErrorSink,
        on_progress: ProgressSink,
        max_results: usize,
        max_result_bytes: usize,
    ) -> TaskManager {
        TaskManager {
            inner: Rc::new(Inner {
                spawner,
                next_id: Arc::new(AtomicU64::new(0)),
                live: RefCell::default(),
                history: RefCell::default(),
                results: RefCell::default(),
                result_bytes: std::cell::Cell::new(0),
                result_limits: (max_results, max_result_bytes),
                finished: event_listener::Event::new(),
                delayed: RefCell::default(),
                delay_changed: event_listener::Event::new(),
                delay_driver: RefCell::default(),
                on_error,
                on_progress,
                last_name: RefCell::default(),
            }),
        }
    }

    /// Spawns `future` as a tracked task named `name` (rotki's `spawn_and_track`).
    pub fn spawn_and_track<T, E, F>(
        &self,
        name: impl AsRef<str>,
        future: F,
        options: SpawnOptions,
    ) -> TaskHandle
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: Serialize,
        E: Into<TaskError>,
    {
        let id = TaskId(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        self.spawn_with_id(id, name, future, options)
    }

    /// The counter other threads reserve task numbers from (see [`super::TasksHandle`]).
    pub fn id_counter(&self) -> Arc<AtomicU64> {
        self.inner.next_id.clone()
    }

    /// Spawns with a number reserved from [`id_counter`](Self::id_counter).
    pub fn spawn_with_id<T, E, F>(
        &self,
        id: TaskId,
        name: impl AsRef<str>,
        future: F,
        options: SpawnOptions,
    ) -> TaskHandle
    where
        F: Future<Output = Result<T, E>> + 'static,
        T: Serialize,
        E: Into<TaskError>,
    {
        let name = self.shared_name(name.as_ref());
        let slot = Rc::new(OutcomeSlot::default());
        let manager = Rc::downgrade(&self.inner);
        let work = Tracked { work: AssertUnwindSafe(future).catch_unwind(), manager, id };
        let run = match options.delay {
            Some(delay) => {
                let due = crate::runtime::deadline_after(delay);
                self.schedule_start(due, id);
                Run::Delayed(due, Box::pin(work))
            }
            None => Run::Running(self.inner.spawner.spawn(work)),
        };
        let live = Live {
            name: name.clone(),
            started_ms: coarse_ms(),
            exception_is_error: options.exception_is_error,
            keep_result: options.keep_result,
            external: options.external,
            run,
            slot: slot.clone(),
        };
        self.inner.live.borrow_mut().insert(id, live);
        TaskHandle { id, name, slot, manager: self.clone() }
    }

    /// `name`, sharing the previous task's allocation when it is the same.
    fn shared_name(&self, name: &str) -> Rc<str> {
        let mut last = self.inner.last_name.borrow_mut();
        match &*last {
            Some(shared) if **shared == *name => shared.clone(),
            _ => last.insert(Rc::from(name)).clone(),
        }
    }

    /// Queues a delayed start and makes sure the driver will wake for it.
    fn schedule_start(&self, due: Instant, id: TaskId) {
        let earliest = self.inner.delayed.borrow().first().map(|(at, _)| *at);
        self.inner.delayed.borrow_mut().insert((due, id));
        if self.inner.delay_driver.borrow().is_none() {
            let driver = self.inner.spawner.spawn(drive_delayed(Rc::downgrade(&self.inner)));
            *self.inner.delay_driver.borrow_mut() = Some(driver);
        } else if earliest.is_none_or(|at| due < at) {
            self.inner.delay_changed.notify(1);
        }
    }

    /// A progress counter for work named `topic` (a job's name), reported rate-limited to the
    /// progress sink.
    pub fn progress(&self, topic: &'static str, total: u64) -> Progress {
        Progress::new(topic, total, self.inner.on_progress.clone())
    }

    /// Whether one of the daemon's own live tasks (not a client's) has a name starting with
    /// `prefix`: what the scheduler asks before it starts a job.
    pub fn has_own_task(&self, prefix: &str) -> bool {
        self.inner.live.borrow().values().any(|live| !live.external && live.name.starts_with(prefix))
    }

    /// How many of the daemon's own tasks are live (clients' tasks are not counted).
    pub fn own_count(&self) -> usize {
        self.inner.live.borrow().values().filter(|live| !live.external).count()
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
                name: l.name.to_string(),
                age_ms: coarse_ms().saturating_sub(l.started_ms),
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
            duration_ms: coarse_ms().saturating_sub(live.started_ms),
        };
        match live.run {
            // The future is dropped: it stops at its current await.
            Run::Running(task) => drop(task),
            // It never started and never will.
            Run::Delayed(due, _) => {
                self.inner.delayed.borrow_mut().remove(&(due, id));
            }
            Run::Moving => {}
        }
        live.slot.fill(Outcome::Cancelled);
        self.remember(finished);
        self.notify_if_idle();
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
        let deadline = crate::runtime::deadline_after(timeout);
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
        self.inner.live.borrow().iter().filter(|(_, l)| l.keep_result).map(|(id, _)| *id).collect()
    }

    /// Finished API tasks whose result has not been fetched (expired ones are dropped first).
    pub fn completed_results(&self) -> Vec<TaskId> {
        self.inner.results.borrow().keys().copied().collect()
    }

    /// Whether `id` is a live API task.
    pub fn is_pending_result(&self, id: TaskId) -> bool {
        self.inner.live.borrow().get(&id).is_some_and(|l| l.keep_result)
    }

    /// Takes a finished API task's outcome; it can be read once.
    pub fn take_result(&self, id: TaskId) -> Option<Outcome> {
        let (outcome, bytes) = self.inner.results.borrow_mut().remove(&id)?;
        self.inner.result_bytes.set(self.inner.result_bytes.get() - bytes);
        Some(outcome)
    }

    /// The tracker's state for `status`.
    pub fn describe(&self) -> Value {
        json!({ "running": self.running(), "recent": self.history() })
    }

    /// Wakes `wait_for_all` once the live set is empty (the only state it waits for), rather
    /// than after every task: a burst of 100,000 tasks would otherwise wake it 100,000 times.
    fn notify_if_idle(&self) {
        if self.inner.live.borrow().is_empty() {
            self.inner.finished.notify(usize::MAX);
        }
    }

    fn remember(&self, finished: Finished) {
        let mut history = self.inner.history.borrow_mut();
        if history.len() == HISTORY_LEN {
            history.pop_front();
        }
        history.push_back(finished);
    }

    /// Keeps a finished API task's outcome, dropping the oldest beyond the bounds.
    fn keep_result(&self, id: TaskId, outcome: Outcome) {
        let bytes = match &outcome {
            Outcome::Completed(value) => serde_json::to_string(value).map_or(0, |json| json.len()),
            Outcome::Failed(text) => text.len(),
            Outcome::Cancelled => 0,
        };
        let (max_count, max_bytes) = self.inner.result_limits;
        let mut results = self.inner.results.borrow_mut();
        results.insert(id, (outcome, bytes));
        self.inner.result_bytes.set(self.inner.result_bytes.get() + bytes);
        while results.len() > max_count || self.inner.result_bytes.get() > max_bytes {
            let Some((old, (_, old_bytes))) = results.pop_first() else { break };
            self.inner.result_bytes.set(self.inner.result_bytes.get() - old_bytes);
            log::warn!("task {old}: its unfetched result was dropped to make room for newer ones");
        }
    }
}

pin_project_lite::pin_project! {
    /// A tracked task's work: its future, then the bookkeeping when it ends. A named future,
    /// not an `async` block: the block would hold the future twice (captured, and moved into
    /// its `.await`), 152 bytes instead of 80 for a 64-byte future, for every task while it
    /// waits (the same measure gives 16 bytes instead of 24 for the smallest).
    struct Tracked<F> {
        #[pin]
        work: futures_lite::future::CatchUnwind<AssertUnwindSafe<F>>,
        manager: Weak<Inner>,
        id: TaskId,
    }
}

impl<F, T, E> Future for Tracked<F>
where
    F: Future<Output = Result<T, E>>,
    T: Serialize,
    E: Into<TaskError>,
{
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let this = self.project();
        let std::task::Poll::Ready(ended) = this.work.poll(cx) else { return std::task::Poll::Pending };
        let outcome = match ended {
            Ok(Ok(value)) => Outcome::Completed(serde_json::to_value(value).unwrap_or(Value::Null)),
            Ok(Err(err)) => Outcome::Failed(crate::error_chain(&*err.into())),
            Err(panic) => Outcome::Failed(format!("panicked: {}", crate::runtime::panic_message(&panic))),
        };
        finish(this.manager, *this.id, outcome);
        std::task::Poll::Ready(())
    }
}

/// Milliseconds on the kernel's coarse monotonic clock, for tasks' ages and durations. It has
/// the scheduler tick's resolution (1-4 ms), plenty for numbers shown in milliseconds, and
/// costs about 5 ns where `Instant::now` costs 30-40 ns on this project's test VM: two
/// readings per task were a tenth of a tracked spawn+complete (bench/tasks_bench.rs).
fn coarse_ms() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    (now.tv_sec as u64).saturating_mul(1000).saturating_add(now.tv_nsec as u64 / 1_000_000)
}

/// Records a task's end: out of the live set at once, reported, remembered, answered.
fn finish(manager: &Weak<Inner>, id: TaskId, outcome: Outcome) {
    let Some(inner) = manager.upgrade() else { return };
    let manager = TaskManager { inner };
    let Some(live) = manager.inner.live.borrow_mut().remove(&id) else { return };
    // The task is finishing this very poll; detaching lets it complete instead of cancelling.
    if let Run::Running(task) = live.run {
        task.detach();
    }
    let name = &live.name;
    let error = match &outcome {
        Outcome::Failed(err) if live.exception_is_error => {
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
        duration_ms: coarse_ms().saturating_sub(live.started_ms),
    });
    if live.keep_result {
        manager.keep_result(id, outcome.clone());
    }
    live.slot.fill(outcome);
    manager.notify_if_idle();
}
