//! A periodic job with the scheduler: rotki's `_maybe_*` pattern, made sound.
//!
//! ```sh
//! cargo run --example periodic
//! ```
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use robin::runtime::Spawner;
use robin::tasks::{JobFuture, MemoryStore, PeriodicJob, Scheduler, SystemClock, TaskManager};

fn main() {
    let ex = Spawner::new();
    let tasks = TaskManager::new(ex.clone(), Rc::new(|e| println!("user error: {e}")), Rc::new(|_| {}));
    // The daemon keeps last-run times in the database (DatabaseStore); memory is enough here.
    let scheduler = Rc::new(Scheduler::new(
        tasks.clone(),
        2,                          // at most two tasks at once, API tasks included
        Duration::from_millis(200), // look for due jobs this often (the daemon: 10 s)
        Rc::new(SystemClock),
        Rc::new(MemoryStore::default()),
    ));
    let runs = Rc::new(Cell::new(0));
    let counter = runs.clone();
    scheduler.register(PeriodicJob {
        name: "refresh_cache".into(),
        interval: Duration::from_millis(500),
        jitter: Duration::from_millis(50),
        // Decide whether to run now and return the work to track; nothing means "not now".
        maybe: Box::new(move || {
            counter.set(counter.get() + 1);
            let run = counter.get();
            let work: JobFuture = Box::pin(async move {
                println!("refresh_cache run {run}");
                Ok(serde_json::json!({ "run": run }))
            });
            vec![work]
        }),
    });
    scheduler.set_should_schedule(true); // rotki turns this on after the first balance query
    let ticking = ex.spawn(scheduler.clone().run());
    ex.block_on(async_io::Timer::after(Duration::from_millis(1800)));
    drop(ticking);
    println!("ran {} times in 1.8 s with a 0.5 s interval", runs.get());
}
