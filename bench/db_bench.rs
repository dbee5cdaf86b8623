//! Database benchmark: robin's `db.write`/`db.read` against raw rusqlite, SQLCipher against
//! plain SQLite, and small writes per second (bench/db_bench.py is the aiosqlite peer).
//!
//! ```sh
//! cargo run --release --example db_bench -- [--rows 100000] [--small 2000] [--cache-kib N] [--encrypted-cache-kib N]
//! ```
//!
//! Prints one JSON object per measurement. Every database is a fresh file in a temporary
//! directory, with the same pragmas robin uses (WAL, synchronous=NORMAL).
use std::time::Instant;

use futures_lite::future::block_on;
use robin::db::{Database, Options, Password, params};

/// Tasks writing at once in the concurrent small-writes case, and the writes each makes.
const CONCURRENT: i64 = 64;
const WRITES_PER_TASK: i64 = 200;
/// Full scans per implementation; the fastest counts (one 10 ms scan is mostly noise).
const SCANS: usize = 5;

fn best_of(runs: usize, mut work: impl FnMut()) -> f64 {
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            work();
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let (mut rows, mut small) = (100_000i64, 2000i64);
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value: i64 = args.next().and_then(|v| v.parse().ok()).expect("a number");
        match flag.as_str() {
            "--rows" => rows = value,
            "--small" => small = value,
            "--cache-kib" => options.cache_kib = value as u32,
            "--encrypted-cache-kib" => options.encrypted_cache_kib = value as u32,
            other => panic!("unknown flag {other}"),
        }
    }
    let dir = tempfile::tempdir().unwrap();

    let raw = raw_rusqlite(&dir.path().join("raw.db"), rows, small, None);
    report("raw_rusqlite", "bulk_insert", rows, raw.0);
    report("raw_rusqlite", "full_scan_cold", rows, raw.1);
    report("raw_rusqlite", "full_scan", rows, raw.2);
    report("raw_rusqlite", "small_writes", small, raw.3);
    // SQLCipher's own cost per commit (a page encrypted and MACed), with no robin around it.
    let raw_keyed = raw_rusqlite(&dir.path().join("raw_keyed.db"), rows, small, Some("bench password"));
    report("raw_sqlcipher", "small_writes", small, raw_keyed.3);

    for (label, password) in [("robin_plain", None), ("robin_sqlcipher", Some("bench password"))] {
        let path = dir.path().join(format!("{label}.db"));
        let db = block_on(Database::open(&path, password.map(|p| Password::new(p.into())), options.clone()))
            .unwrap();
        block_on(db.write(|tx| {
            Ok(tx.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, amount TEXT)")?)
        }))
        .unwrap();
        let started = Instant::now();
        block_on(db.write(move |tx| {
            let mut stmt = tx.prepare("INSERT INTO t (id, name, amount) VALUES (?1, ?2, ?3)")?;
            for i in 0..rows {
                stmt.execute(params![i, format!("asset{i}"), format!("{}.{:08}", i, i % 997)])?;
            }
            Ok(())
        }))
        .unwrap();
        report(label, "bulk_insert", rows, started.elapsed().as_secs_f64());
        let scan_once = || {
            let scanned = block_on(db.read(|tx| {
                let mut stmt = tx.prepare("SELECT id, name, amount FROM t")?;
                let mut rows = stmt.query([])?;
                let mut bytes = 0usize;
                while let Some(row) = rows.next()? {
                    bytes += row.get_ref(1)?.as_str()?.len() + row.get_ref(2)?.as_str()?.len();
                }
                Ok(bytes)
            }))
            .unwrap();
            assert!(scanned > 0);
        };
        // Cold: the first scan on a reader that has read nothing yet (its page cache empty;
        // the file is in the OS page cache). Then the other reader's first scan, untimed, and
        // hot: the best of SCANS more.
        report(label, "full_scan_cold", rows, best_of(1, scan_once));
        for _ in 1..Options::default().readers {
            scan_once();
        }
        report(label, "full_scan", rows, best_of(SCANS, scan_once));

        // One awaited write at a time, from a task on the daemon's own loop (async-io's
        // `block_on` under a `LocalExecutor`), as a UI action's write is made.
        let started = Instant::now();
        let loop_ = robin::runtime::Spawner::new();
        loop_.block_on(async {
            for i in 0..small {
                db.write(move |tx| {
                    tx.execute(
                        "INSERT INTO t (id, name, amount) VALUES (?1, 'small', '1')",
                        params![rows + i],
                    )?;
                    Ok(())
                })
                .await
                .unwrap();
            }
        });
        report(label, "small_writes", small, started.elapsed().as_secs_f64());

        // The same writes from CONCURRENT tasks at once, as a daemon's jobs make them.
        let started = Instant::now();
        loop_.block_on(async {
            let tasks: Vec<_> = (0..CONCURRENT)
                .map(|t| {
                    let db = db.clone();
                    loop_.spawn(async move {
                        for i in 0..WRITES_PER_TASK {
                            let id = rows + small + t * WRITES_PER_TASK + i;
                            db.write(move |tx| {
                                tx.execute(
                                    "INSERT INTO t (id, name, amount) VALUES (?1, 'small', '1')",
                                    params![id],
                                )?;
                                Ok(())
                            })
                            .await
                            .unwrap();
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await;
            }
        });
        report(
            label,
            "small_writes_concurrent",
            CONCURRENT * WRITES_PER_TASK,
            started.elapsed().as_secs_f64(),
        );
        block_on(db.close());
    }
}

/// The same work with rusqlite on this thread, no pool, no closures: the floor under robin's
/// numbers. Small writes are one `BEGIN IMMEDIATE` ... `COMMIT` each, with the statement
/// cache, as robin's.
fn raw_rusqlite(path: &std::path::Path, rows: i64, small: i64, key: Option<&str>) -> (f64, f64, f64, f64) {
    let open = || {
        let conn = rusqlite::Connection::open(path).unwrap();
        if let Some(key) = key {
            conn.execute_batch(&format!("PRAGMA key = '{key}';")).unwrap();
        }
        conn
    };
    let mut conn = open();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;
         CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, amount TEXT)",
    )
    .unwrap();
    let started = Instant::now();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
    {
        let mut stmt = tx.prepare("INSERT INTO t (id, name, amount) VALUES (?1, ?2, ?3)").unwrap();
        for i in 0..rows {
            stmt.execute(params![i, format!("asset{i}"), format!("{}.{:08}", i, i % 997)]).unwrap();
        }
    }
    tx.commit().unwrap();
    let insert = started.elapsed().as_secs_f64();
    // Cold: a fresh connection, as robin's readers are.
    drop(conn);
    let mut conn = open();
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;").unwrap();
    let mut scan = || {
        let tx = conn.transaction().unwrap();
        let mut stmt = tx.prepare("SELECT id, name, amount FROM t").unwrap();
        let mut result = stmt.query([]).unwrap();
        let mut bytes = 0usize;
        while let Some(row) = result.next().unwrap() {
            bytes += row.get_ref(1).unwrap().as_str().unwrap().len()
                + row.get_ref(2).unwrap().as_str().unwrap().len();
        }
        assert!(bytes > 0);
    };
    let cold = best_of(1, &mut scan);
    let hot = best_of(SCANS, &mut scan);
    let started = Instant::now();
    for i in 0..small {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
        tx.prepare_cached("INSERT INTO t (id, name, amount) VALUES (?1, 'small', '1')")
            .unwrap()
            .execute(params![rows + i])
            .unwrap();
        tx.commit().unwrap();
    }
    let small_writes = started.elapsed().as_secs_f64();
    (insert, cold, hot, small_writes)
}

fn report(implementation: &str, work: &str, operations: i64, seconds: f64) {
    println!(
        "{}",
        serde_json::json!({
            "implementation": implementation,
            "work": work,
            "operations": operations,
            "seconds": seconds,
            "per_second": operations as f64 / seconds,
        })
    );
}
