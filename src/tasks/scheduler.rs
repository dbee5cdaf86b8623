//! The periodic scheduler: rotki's TaskManager, made sound.
//!
//! Jobs have a name, an interval, optional jitter and a `maybe` function (rotki's `_maybe_*`)
//! that decides whether to run now and returns the futures to track. Every tick (10 s by
//! default) the due jobs are taken in random order, so none starves; at most `max_tasks` tasks
//! run at once (API tasks count too) and a job never overlaps itself. Last-run times are wall
//! clock times kept in a [`LastRunStore`] (the database), so after a restart or a suspend of any
//! length an overdue job runs once: not never, and not once per missed interval.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_lite::future::BoxedLocal;
use serde_json::{Value, json};

use super::manager::{SpawnOptions, TaskId, TaskManager};

/// How often the scheduler looks for due jobs.
pub const DEFAULT_TICK: Duration = Duration::from_secs(10);
/// Most tasks running at once before the scheduler waits (rotki's `max_tasks_num`).
pub const DEFAULT_MAX_TASKS: usize = 2;

/// How the scheduler runs, as the config file's `[scheduler]` table sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedulerOptions {
    /// Most tasks running at once (API tasks count too). Default 2, as rotki.
    pub max_tasks: usize,
    /// Time between scheduling passes. Default 10 s.
    pub tick: Duration,
    /// Whether scheduling is on from the start. Default off: rotki turns it on after the first
    /// balance query.
    pub start_on: bool,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions { max_tasks: DEFAULT_MAX_TASKS, tick: DEFAULT_TICK, start_on: false }
    }
}

/// A future a job wants tracked.
pub type JobFuture = BoxedLocal<Result<Value, super::TaskError>>;

/// A recurring background job.
pub struct PeriodicJob {
    /// Its name; its tasks carry it, so `has_task(name)` finds them.
    pub name: String,
    /// How long after a run the next one is due.
    pub interval: Duration,
    /// Up to this much is added at random to each interval.
    pub jitter: Duration,
    /// Decides whether to run now; returns the futures to track (none: not now, retry next tick).
    pub maybe: Box<dyn Fn() -> Vec<JobFuture>>,
}

impl std::fmt::Debug for PeriodicJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeriodicJob").field("name", &self.name).field("interval", &self.interval).finish()
    }
}

/// The wall clock (a test clock in tests).
pub trait Clock {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The real wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Where last-run times survive restarts.
pub trait LastRunStore {
    /// Every job's last run.
    fn load(&self) -> BoxedLocal<HashMap<String, SystemTime>>;
    /// Records a job's run.
    fn save(&self, job: &str, at: SystemTime) -> BoxedLocal<()>;
}

/// Keeps last-run times in memory only (tests, or no database).
#[derive(Debug, Default)]
pub struct MemoryStore {
    times: RefCell<HashMap<String, SystemTime>>,
}

impl LastRunStore for MemoryStore {
    fn load(&self) -> BoxedLocal<HashMap<String, SystemTime>> {
        let times = self.times.borrow().clone();
        Box::pin(async move { times })
    }

    fn save(&self, job: &str, at: SystemTime) -> BoxedLocal<()> {
        self.times.borrow_mut().insert(job.to_string(), at);
        Box::pin(async {})
    }
}

/// Keeps last-run times in the database's `key_value_cache`, as `last_run:<job>` → Unix seconds.
#[derive(Debug, Clone)]
pub struct DatabaseStore {
    db: crate::db::Database,
}

impl DatabaseStore {
    /// A store over `db`.
    pub fn new(db: crate::db::Database) -> DatabaseStore {
        DatabaseStore { db }
    }
}

impl LastRunStore for DatabaseStore {
    fn load(&self) -> BoxedLocal<HashMap<String, SystemTime>> {
        let db = self.db.clone();
        Box::pin(async move {
            match db.last_runs().await {
                Ok(runs) => runs.into_iter().collect(),
                Err(err) => {
                    log::error!("scheduler: cannot load last-run times, every job counts as due: {err}");
                    HashMap::new()
                }
            }
        })
    }

    fn save(&self, job: &str, at: SystemTime) -> BoxedLocal<()> {
        let (db, job) = (self.db.clone(), job.to_string());
        Box::pin(async move {
            if let Err(err) = db.set_last_run(&job, at).await {
                log::error!("scheduler: cannot save a last-run time: {err}");
            }
        })
    }
}

/// Why a job could not be run on demand.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunNowError {
    /// No job has that name.
    #[error("unknown job '{0}' (known: {known})", known = .1.join(", "))]
    UnknownJob(String, Vec<String>),
    /// A task of the job is running; jobs never overlap themselves.
    #[error("job '{0}' is already running")]
    AlreadyRunning(String),
    /// The job declined (rotki's `_maybe_*` returned nothing), e.g. no database is unlocked.
    #[error("job '{0}' has nothing to do now")]
    NothingToDo(String),
}

struct JobState {
    job: PeriodicJob,
    /// The jitter drawn for the current interval.
    jitter: Duration,
}

/// Runs periodic jobs through a [`TaskManager`].
pub struct Scheduler {
    manager: TaskManager,
    jobs: RefCell<Vec<JobState>>,
    last_run: RefCell<HashMap<String, SystemTime>>,
    loaded: Cell<bool>,
    should_schedule: Cell<bool>,
    max_tasks: Cell<usize>,
    tick: Cell<Duration>,
    clock: Rc<dyn Clock>,
    store: RefCell<Rc<dyn LastRunStore>>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("should_schedule", &self.should_schedule.get())
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler with scheduling off (rotki turns it on after the first balance query).
    pub fn new(
        manager: TaskManager,
        max_tasks: usize,
        tick: Duration,
        clock: Rc<dyn Clock>,
        store: Rc<dyn LastRunStore>,
    ) -> Scheduler {
        Scheduler {
            manager,
            jobs: RefCell::default(),
            last_run: RefCell::default(),
            loaded: Cell::new(false),
            should_schedule: Cell::new(false),
            max_tasks: Cell::new(max_tasks),
            tick: Cell::new(tick),
            clock,
            store: RefCell::new(store),
        }
    }

    /// Switches where last-run times live (unlock and logout switch databases); they are
    /// loaded from the new store at the next tick.
    pub fn set_store(&self, store: Rc<dyn LastRunStore>) {
        *self.store.borrow_mut() = store;
        self.last_run.borrow_mut().clear();
        self.loaded.set(false);
    }

    /// Adds a job.
    pub fn register(&self, job: PeriodicJob) {
        let jitter = draw(job.jitter);
        self.jobs.borrow_mut().push(JobState { job, jitter });
    }

    /// Turns scheduling on or off.
    pub fn set_should_schedule(&self, on: bool) {
        self.should_schedule.set(on);
    }

    /// Whether scheduling is on.
    pub fn should_schedule(&self) -> bool {
        self.should_schedule.get()
    }

    /// Logout: cancels every task and turns scheduling off.
    pub fn clear(&self) -> usize {
        self.should_schedule.set(false);
        self.manager.clear()
    }

    /// One scheduling pass: starts the due jobs that fit. Returns the tasks it spawned.
    pub async fn tick(&self) -> Vec<TaskId> {
        crate::runtime::inject_fault("scheduler");
        if !self.loaded.replace(true) {
            let store = self.store.borrow().clone();
            let stored = store.load().await;
            self.last_run.borrow_mut().extend(stored);
        }
        if !self.should_schedule.get() {
            return Vec::new();
        }
        let now = self.clock.now();
        let mut due: Vec<usize> = {
            let jobs = self.jobs.borrow();
            let last_run = self.last_run.borrow();
            (0..jobs.len())
                .filter(|&i| {
                    let state = &jobs[i];
                    last_run.get(&state.job.name).is_none_or(|last| {
                        is_due(*last, state.job.interval.saturating_add(state.jitter), now)
                    })
                })
                .collect()
        };
        fastrand::shuffle(&mut due);
        let mut spawned = Vec::new();
        for index in due {
            if self.manager.own_count() >= self.max_tasks.get() {
                break;
            }
            let (name, futures) = {
                let jobs = self.jobs.borrow();
                let job = &jobs[index].job;
                if self.manager.has_own_task(&job.name) {
                    continue; // never overlaps itself
                }
                (job.name.clone(), (job.maybe)())
            };
            if futures.is_empty() {
                continue; // not now: due again next tick
            }
            {
                let mut jobs = self.jobs.borrow_mut();
                jobs[index].jitter = draw(jobs[index].job.jitter);
            }
            self.record_run(&name, now).await;
            for future in futures {
                spawned
                    .push(self.manager.spawn_and_track(name.clone(), future, SpawnOptions::default()).id());
            }
        }
        spawned
    }

    /// Runs a registered job now, on demand (`tasks.run`): its tasks keep their results for
    /// the async task API. Records the run like a scheduled one.
    pub async fn run_now(&self, name: &str) -> Result<Vec<TaskId>, RunNowError> {
        let futures = {
            let jobs = self.jobs.borrow();
            let job = jobs.iter().find(|s| s.job.name == name).ok_or_else(|| {
                RunNowError::UnknownJob(name.to_string(), jobs.iter().map(|s| s.job.name.clone()).collect())
            })?;
            if self.manager.has_own_task(name) {
                return Err(RunNowError::AlreadyRunning(name.to_string()));
            }
            (job.job.maybe)()
        };
        if futures.is_empty() {
            return Err(RunNowError::NothingToDo(name.to_string()));
        }
        self.record_run(name, self.clock.now()).await;
        let options = SpawnOptions { keep_result: true, ..SpawnOptions::default() };
        Ok(futures.into_iter().map(|f| self.manager.spawn_and_track(name, f, options.clone()).id()).collect())
    }

    /// Changes how many tasks may run at once and how often it looks for due jobs (a reload).
    pub fn set_limits(&self, max_tasks: usize, tick: Duration) {
        self.max_tasks.set(max_tasks);
        self.tick.set(tick);
    }

    /// Changes a job's interval (settings such as `prices_interval_secs`); false if unknown.
    pub fn set_interval(&self, name: &str, interval: Duration) -> bool {
        let mut jobs = self.jobs.borrow_mut();
        let Some(state) = jobs.iter_mut().find(|s| s.job.name == name) else { return false };
        state.job.interval = interval;
        true
    }

    /// The names of the registered jobs.
    pub fn job_names(&self) -> Vec<String> {
        self.jobs.borrow().iter().map(|s| s.job.name.clone()).collect()
    }

    /// Remembers a run in memory and in the store (scheduled and on-demand runs alike).
    async fn record_run(&self, name: &str, at: SystemTime) {
        self.last_run.borrow_mut().insert(name.to_string(), at);
        let store = self.store.borrow().clone();
        store.save(name, at).await;
    }

    /// Ticks forever (until the future is dropped).
    pub async fn run(self: Rc<Self>) {
        loop {
            self.tick().await;
            async_io::Timer::after(self.tick.get()).await;
        }
    }

    /// The scheduler's state for `status`.
    pub fn describe(&self) -> Value {
        let last_run = self.last_run.borrow();
        let jobs: Vec<Value> = self
            .jobs
            .borrow()
            .iter()
            .map(|s| {
                let last = last_run.get(&s.job.name).and_then(|t| t.duration_since(UNIX_EPOCH).ok());
                json!({
                    "name": s.job.name,
                    "interval_secs": s.job.interval.as_secs(),
                    "last_run": last.map(|d| d.as_secs()),
                })
            })
            .collect();
        json!({ "should_schedule": self.should_schedule.get(), "max_tasks": self.max_tasks.get(), "jobs": jobs })
    }
}

/// Whether a job last run at `last` is due at `now`. An interval so long that the due time
/// cannot be represented is never due (settings are bounded, but a clock or a value from an
/// old database must not crash the scheduler).
fn is_due(last: SystemTime, interval: Duration, now: SystemTime) -> bool {
    last.checked_add(interval).is_some_and(|due| due <= now)
}

fn draw(jitter: Duration) -> Duration {
    if jitter.is_zero() { jitter } else { Duration::from_millis(fastrand::u64(0..jitter.as_millis() as u64)) }
}
