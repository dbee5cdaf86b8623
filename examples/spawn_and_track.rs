//! Tracked tasks: a delay, `exception_is_error`, cancellation and waiting.
//!
//! ```sh
//! cargo run --example spawn_and_track
//! ```
use std::rc::Rc;
use std::time::Duration;

use robin::runtime::Spawner;
use robin::tasks::{Outcome, SpawnOptions, TaskManager};

fn main() {
    let ex = Spawner::new();
    // User-facing errors and progress would go to the notifier; here they are printed.
    let tasks = TaskManager::new(ex.clone(), Rc::new(|e| println!("user error: {e}")), Rc::new(|_| {}));

    // Starts 200 ms from now, never earlier.
    let later = SpawnOptions { delay: Some(Duration::from_millis(200)), ..SpawnOptions::default() };
    let prices = tasks.spawn_and_track("query_prices", async { Ok::<_, String>(42) }, later);

    // A failure is a user error by default...
    let failing = tasks.spawn_and_track(
        "query_balances",
        async { Err::<(), _>("node unreachable") },
        SpawnOptions::default(),
    );
    // ...or only a warning in the log.
    let quiet = SpawnOptions { exception_is_error: false, ..SpawnOptions::default() };
    tasks.spawn_and_track("maybe_update_cache", async { Err::<(), _>("rate limited") }, quiet);

    // A long task, cancelled: it stops at its current await.
    let long = tasks.spawn_and_track(
        "history",
        futures_lite::future::pending::<Result<(), String>>(),
        SpawnOptions::default(),
    );
    println!("running: {:?}", tasks.running().iter().map(|t| &t.name).collect::<Vec<_>>());
    assert!(tasks.has_task("query_"), "prefix match, as rotki");
    long.cancel();

    ex.block_on(async {
        assert_eq!(prices.outcome().await, Outcome::Completed(42.into()));
        assert!(matches!(failing.outcome().await, Outcome::Failed(_)));
        assert!(tasks.wait_for_all(Duration::from_secs(5)).await);
    });
    for finished in tasks.history() {
        println!("{:<20} {:<10} {:?}", &*finished.name, finished.result, finished.error);
    }
}
