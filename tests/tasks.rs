//! The task tracker and the scheduler on a real executor.
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use robin::runtime::Spawner;
use robin::tasks::{
    Clock, DatabaseStore, JobFuture, LastRunStore, MemoryStore, Outcome, PeriodicJob, Scheduler,
    SpawnOptions, TaskManager,
};
use serde_json::{Value, json};

/// A tracker whose user errors are collected for assertions.
fn tracker(ex: &Spawner) -> (TaskManager, Rc<RefCell<Vec<String>>>) {
    let errors = Rc::new(RefCell::new(Vec::new()));
    let sink = errors.clone();
    let tasks = TaskManager::new(ex.clone(), Rc::new(move |e| sink.borrow_mut().push(e)), Rc::new(|_| {}));
    (tasks, errors)
}

fn never() -> impl std::future::Future<Output = Result<(), String>> {
    futures_lite::future::pending()
}

#[test]
fn a_delayed_task_never_starts_early() {
    let ex = Spawner::new();
    let (tasks, _) = tracker(&ex);
    let spawned = Instant::now();
    let started = Rc::new(Cell::new(None));
    let mark = started.clone();
    let options = SpawnOptions { delay: Some(Duration::from_millis(150)), ..SpawnOptions::default() };
    let handle = tasks.spawn_and_track(
        "later",
        async move {
            mark.set(Some(Instant::now()));
            Ok::<_, String>(())
        },
        options,
    );
    assert_eq!(ex.block_on(handle.outcome()), Outcome::Completed(Value::Null));
    assert!(started.get().unwrap() - spawned >= Duration::from_millis(150));
}

#[test]
fn errors_follow_rotkis_texts() {
    let ex = Spawner::new();
    let (tasks, errors) = tracker(&ex);
    let failing = tasks.spawn_and_track(
        "query_balances",
        async { Err::<(), _>("node unreachable") },
        SpawnOptions::default(),
    );
    assert_eq!(ex.block_on(failing.outcome()), Outcome::Failed("node unreachable".into()));
    assert_eq!(
        *errors.borrow(),
        vec!["query_balances died with exception: node unreachable. Check the logs for more details"]
    );

    let quiet = SpawnOptions { exception_is_error: false, ..SpawnOptions::default() };
    let warning = tasks.spawn_and_track("maybe_update", async { Err::<(), _>("rate limited") }, quiet);
    assert_eq!(ex.block_on(warning.outcome()), Outcome::Failed("rate limited".into()));
    assert_eq!(errors.borrow().len(), 1, "not treated as an error: no user message");

    let cancelled = tasks.spawn_and_track("long", never(), SpawnOptions::default());
    assert!(cancelled.cancel());
    assert!(!cancelled.cancel(), "already gone");
    assert_eq!(ex.block_on(cancelled.outcome()), Outcome::Cancelled);
    assert_eq!(errors.borrow().len(), 1, "cancellation is silent");
    let results: Vec<&str> = tasks.history().iter().map(|f| f.result).collect();
    assert_eq!(results, vec!["failed", "failed", "cancelled"]);
}

#[test]
fn a_panicking_task_is_reported_and_the_loop_goes_on() {
    let ex = Spawner::new();
    let (tasks, errors) = tracker(&ex);
    let panicking = tasks.spawn_and_track(
        "buggy",
        async {
            let empty: Vec<u8> = Vec::new();
            #[allow(clippy::out_of_bounds_indexing, unconditional_panic)]
            let _ = empty[3];
            Ok::<(), String>(())
        },
        SpawnOptions::default(),
    );
    let fine = tasks.spawn_and_track("fine", async { Ok::<_, String>("ok") }, SpawnOptions::default());
    match ex.block_on(panicking.outcome()) {
        Outcome::Failed(text) => assert!(text.starts_with("panicked: index out of bounds"), "{text}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(ex.block_on(fine.outcome()), Outcome::Completed(json!("ok")));
    assert!(errors.borrow()[0].starts_with("buggy died with exception: panicked: index out of bounds"));
}

#[test]
fn live_set_queries_and_prefix_matching() {
    let ex = Spawner::new();
    let (tasks, _) = tracker(&ex);
    let a = tasks.spawn_and_track("query_transactions_0xabc", never(), SpawnOptions::default());
    let _b = tasks.spawn_and_track("query_transactions_0xdef", never(), SpawnOptions::default());
    let _c = tasks.spawn_and_track("query_prices", never(), SpawnOptions::default());
    assert_eq!((a.id().0, tasks.count()), (0, 3));
    assert!(tasks.has_task("query_transactions"));
    assert!(!tasks.has_task("query_balances"));
    assert_eq!(tasks.get_task_by_name("query_prices").unwrap().id.0, 2);
    // Removing an address kills its queries, as rotki does.
    assert_eq!(tasks.cancel_matching(|name| name.ends_with("0xabc")), 1);
    assert_eq!(tasks.running().iter().map(|t| t.id.0).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(tasks.clear(), 2);
    assert_eq!(tasks.count(), 0);
}

#[test]
fn finished_tasks_leave_at_once_and_history_is_bounded() {
    let ex = Spawner::new();
    let (tasks, _) = tracker(&ex);
    let handles: Vec<_> = (0..robin::tasks::HISTORY_LEN + 20)
        .map(|i| {
            tasks.spawn_and_track(format!("t{i}"), async { Ok::<_, String>(()) }, SpawnOptions::default())
        })
        .collect();
    ex.block_on(async {
        for handle in &handles {
            handle.outcome().await;
        }
    });
    assert_eq!(tasks.count(), 0);
    let history = tasks.history();
    assert_eq!(history.len(), robin::tasks::HISTORY_LEN);
    assert_eq!(&*history.last().unwrap().name, format!("t{}", robin::tasks::HISTORY_LEN + 19));
}

#[test]
fn wait_for_all_waits_and_times_out() {
    let ex = Spawner::new();
    let (tasks, _) = tracker(&ex);
    let short = SpawnOptions { delay: Some(Duration::from_millis(50)), ..SpawnOptions::default() };
    tasks.spawn_and_track("short", async { Ok::<_, String>(()) }, short);
    assert!(ex.block_on(tasks.wait_for_all(Duration::from_secs(5))));
    tasks.spawn_and_track("stuck", never(), SpawnOptions::default());
    assert!(!ex.block_on(tasks.wait_for_all(Duration::from_millis(50))));
}

#[test]
fn cancelling_mid_write_never_leaves_half_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = futures_lite::future::block_on(robin::db::Database::open(
        &dir.path().join("t.db"),
        None,
        robin::db::Options::default(),
    ))
    .unwrap();
    let ex = Spawner::new();
    let (tasks, _) = tracker(&ex);
    let writer = db.clone();
    let task = tasks.spawn_and_track(
        "two_rows",
        async move {
            writer
                .write(|tx| {
                    tx.execute("INSERT INTO settings VALUES ('first', 'v')", [])?;
                    std::thread::sleep(Duration::from_millis(200));
                    tx.execute("INSERT INTO settings VALUES ('second', 'v')", [])?;
                    Ok(())
                })
                .await
        },
        SpawnOptions::default(),
    );
    ex.block_on(async_io::Timer::after(Duration::from_millis(50)));
    assert!(task.cancel(), "cancelled while its closure runs on the pool");
    ex.block_on(async_io::Timer::after(Duration::from_millis(400)));
    let rows: i64 = futures_lite::future::block_on(
        db.read(|tx| Ok(tx.query_row("SELECT count(*) FROM settings", [], |r| r.get(0))?)),
    )
    .unwrap();
    assert!(rows == 0 || rows == 2, "all or nothing, got {rows}");
}

/// A clock the test moves by hand.
struct ManualClock(Cell<SystemTime>);

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.0.get()
    }
}

impl ManualClock {
    fn advance(&self, by: Duration) {
        self.0.set(self.0.get() + by);
    }
}

/// A job that counts its runs and whose tasks wait for `gate` to open.
fn counting_job(name: &str, interval: Duration, runs: Rc<Cell<u32>>, gate: Rc<Cell<bool>>) -> PeriodicJob {
    PeriodicJob {
        name: name.into(),
        interval,
        jitter: Duration::ZERO,
        maybe: Box::new(move || {
            runs.set(runs.get() + 1);
            let gate = gate.clone();
            let future: JobFuture = Box::pin(async move {
                while !gate.get() {
                    async_io::Timer::after(Duration::from_millis(5)).await;
                }
                Ok(Value::Null)
            });
            vec![future]
        }),
    }
}

fn scheduler(
    tasks: &TaskManager,
    clock: Rc<ManualClock>,
    store: Rc<dyn LastRunStore>,
    max_tasks: usize,
) -> Scheduler {
    let scheduler = Scheduler::new(tasks.clone(), max_tasks, Duration::from_secs(10), clock, store);
    scheduler.set_should_schedule(true);
    scheduler
}

#[test]
fn scheduler_respects_max_tasks_and_never_overlaps_a_job() {
    let ex = Spawner::new();
    let (tasks, _) = tracker(&ex);
    let clock = Rc::new(ManualClock(Cell::new(SystemTime::now())));
    let scheduler = scheduler(&tasks, clock.clone(), Rc::new(MemoryStore::default()), 2);
    let gate = Rc::new(Cell::new(false));
    let runs: Vec<Rc<Cell<u32>>> = (0..4).map(|_| Rc::new(Cell::new(0))).collect();
    for (i, count) in runs.iter().enumerate() {
        scheduler.register(counting_job(
            &format!("job{i}"),
            Duration::from_secs(60),
            count.clone(),
            gate.clone(),
        ));
    }
    // An API task counts toward the limit too.
    tasks.spawn_and_track(
        "api_query",
        never(),
        SpawnOptions { keep_result: true, ..SpawnOptions::default() },
    );
    let first = ex.block_on(scheduler.tick());
    assert_eq!(first.len(), 1, "one slot left next to the API task");
    clock.advance(Duration::from_secs(3600));
    assert!(ex.block_on(scheduler.tick()).is_empty(), "still full: nothing starts, nothing overlaps");
    tasks.cancel_matching(|n| n == "api_query");
    let second = ex.block_on(scheduler.tick());
    assert_eq!(second.len(), 1);
    let started: u32 = runs.iter().map(|r| r.get()).sum();
    assert_eq!(started, 2, "two different jobs, each once");
    assert!(runs.iter().all(|r| r.get() <= 1), "no job ran twice while its task was live");
    gate.set(true);
    assert!(ex.block_on(tasks.wait_for_all(Duration::from_secs(5))));
    // Due jobs go in random order, so over a few ticks every job gets its turn.
    for _ in 0..20 {
        ex.block_on(scheduler.tick());
        ex.block_on(tasks.wait_for_all(Duration::from_secs(5)));
        clock.advance(Duration::from_secs(61));
    }
    assert!(
        runs.iter().all(|r| r.get() >= 2),
        "none starves: {:?}",
        runs.iter().map(|r| r.get()).collect::<Vec<_>>()
    );
}

#[test]
fn an_overdue_job_runs_once_after_a_long_suspend() {
    let ex = Spawner::new();
    let (tasks, _) = tracker(&ex);
    let clock = Rc::new(ManualClock(Cell::new(SystemTime::now())));
    let scheduler = scheduler(&tasks, clock.clone(), Rc::new(MemoryStore::default()), 2);
    let (runs, gate) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(true)));
    scheduler.register(counting_job("prices", Duration::from_secs(300), runs.clone(), gate));
    ex.block_on(scheduler.tick());
    ex.block_on(tasks.wait_for_all(Duration::from_secs(5)));
    clock.advance(Duration::from_secs(3 * 24 * 3600)); // a three-day suspend: ~860 missed intervals
    for _ in 0..5 {
        ex.block_on(scheduler.tick());
        ex.block_on(tasks.wait_for_all(Duration::from_secs(5)));
    }
    assert_eq!(runs.get(), 2, "once before, once to catch up; not 860 times, not never");
}

#[test]
fn a_job_that_declines_is_asked_again_and_scheduling_off_runs_nothing() {
    let ex = Spawner::new();
    let (tasks, _) = tracker(&ex);
    let clock = Rc::new(ManualClock(Cell::new(SystemTime::now())));
    let scheduler = scheduler(&tasks, clock, Rc::new(MemoryStore::default()), 2);
    let asked = Rc::new(Cell::new(0));
    let count = asked.clone();
    scheduler.register(PeriodicJob {
        name: "needs_unlock".into(),
        interval: Duration::from_secs(3600),
        jitter: Duration::ZERO,
        maybe: Box::new(move || {
            count.set(count.get() + 1);
            Vec::new() // rotki's _maybe_* returning None: not now
        }),
    });
    ex.block_on(scheduler.tick());
    ex.block_on(scheduler.tick());
    assert_eq!(asked.get(), 2, "a job that declined is due again at the next tick");
    scheduler.set_should_schedule(false);
    ex.block_on(scheduler.tick());
    assert_eq!(asked.get(), 2);
    scheduler.set_should_schedule(true);
    tasks.spawn_and_track("running", never(), SpawnOptions::default());
    assert_eq!(scheduler.clear(), 1, "clear cancels everything");
    assert!(!scheduler.should_schedule(), "and turns scheduling off");
}

#[test]
fn last_run_times_survive_a_restart_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let open = || {
        futures_lite::future::block_on(robin::db::Database::open(&path, None, robin::db::Options::default()))
            .unwrap()
    };
    let start = SystemTime::now();
    let runs = Rc::new(Cell::new(0));
    {
        let ex = Spawner::new();
        let (tasks, _) = tracker(&ex);
        let db = open();
        let clock = Rc::new(ManualClock(Cell::new(start)));
        let scheduler = scheduler(&tasks, clock, Rc::new(DatabaseStore::new(db.clone())), 2);
        scheduler.register(counting_job(
            "prices",
            Duration::from_secs(300),
            runs.clone(),
            Rc::new(Cell::new(true)),
        ));
        ex.block_on(scheduler.tick());
        ex.block_on(tasks.wait_for_all(Duration::from_secs(5)));
        futures_lite::future::block_on(db.close());
    }
    assert_eq!(runs.get(), 1);
    // "Restart" a minute later: the job ran 60 s ago, so it is not due.
    let ex = Spawner::new();
    let (tasks, _) = tracker(&ex);
    let clock = Rc::new(ManualClock(Cell::new(start + Duration::from_secs(60))));
    let scheduler = scheduler(&tasks, clock.clone(), Rc::new(DatabaseStore::new(open())), 2);
    scheduler.register(counting_job(
        "prices",
        Duration::from_secs(300),
        runs.clone(),
        Rc::new(Cell::new(true)),
    ));
    ex.block_on(scheduler.tick());
    assert_eq!(runs.get(), 1, "the persisted run keeps it from running again");
    clock.advance(Duration::from_secs(300));
    ex.block_on(scheduler.tick());
    assert_eq!(runs.get(), 2, "due again after its interval");
}

#[test]
fn names_and_durations_are_each_tasks_own() {
    // Runs of one name share an allocation; a change of name must not leak into the next
    // task, and a task's duration is its own.
    let ex = Spawner::new();
    let (tasks, _) = tracker(&ex);
    let names = ["prices", "prices", "balances", "prices", String::from("balances").leak()];
    ex.block_on(async {
        for name in names {
            tasks.spawn_and_track(name, never(), SpawnOptions::default());
        }
        let running: Vec<String> = tasks.running().into_iter().map(|info| info.name).collect();
        assert_eq!(running, names);
        let slow = tasks.spawn_and_track(
            "slow",
            async {
                async_io::Timer::after(Duration::from_millis(120)).await;
                Ok::<_, String>(())
            },
            SpawnOptions::default(),
        );
        let quick = tasks.spawn_and_track("quick", async { Ok::<_, String>(()) }, SpawnOptions::default());
        quick.outcome().await;
        slow.outcome().await;
        tasks.clear();
    });
    let history = tasks.history();
    let duration = |name: &str| history.iter().find(|f| &*f.name == name).unwrap().duration_ms;
    // The coarse clock ticks every 1-4 ms.
    assert!(duration("slow") >= 100, "{history:?}");
    assert!(duration("quick") < 100, "{history:?}");
}
