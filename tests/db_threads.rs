//! After a burst of database work the blocking pool shrinks back: an idle daemon keeps its two
//! threads. (blocking 1.7.0 kept idle threads forever, smol-rs/blocking#75; we pin 1.6.)
//! In a file of its own: it counts the threads of the whole test process.
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use robin::db::{Database, Options};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).unwrap().trim().to_string())
        .collect()
}

#[test]
fn the_thread_count_returns_to_idle_after_a_burst() {
    let dir = tempfile::tempdir().unwrap();
    let db = block_on(Database::open(&dir.path().join("t.db"), None, Options::default())).unwrap();
    // Warm up: the write-slot timeout is an async-io timer, and the first timer polled starts
    // async-io's helper thread, a permanent one that an idle daemon has anyway. Start it here so
    // the baseline counts it.
    block_on(async_io::Timer::after(Duration::from_millis(1)));
    block_on(db.read(|_| Ok(()))).unwrap();
    block_on(db.write(|_| Ok(()))).unwrap();
    std::thread::sleep(Duration::from_secs(1)); // let the pool threads of the warm-up retire
    let idle = threads();

    let burst = (0..64).map(|i| {
        let db = db.clone();
        async move {
            if i % 2 == 0 {
                db.write(move |tx| Ok(tx.execute("INSERT OR REPLACE INTO settings VALUES (?1, 'v')", [i])?))
                    .await
                    .map(drop)
            } else {
                db.read(|tx| Ok(tx.query_row("SELECT count(*) FROM settings", [], |r| r.get::<_, i64>(0))?))
                    .await
                    .map(drop)
            }
        }
    });
    block_on(async {
        let tasks: Vec<_> = burst.map(|f| blocking::unblock(move || block_on(f))).collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let busy = threads();
    assert!(busy > idle, "the burst used pool threads ({busy} vs {idle})");

    let deadline = Instant::now() + Duration::from_secs(5);
    while threads() > idle {
        assert!(
            Instant::now() < deadline,
            "threads 5 s after the burst: {:?}; {idle} before",
            thread_names()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
