//! Crash safety: a child process commits rows and reports each committed id on stdout; the
//! test kills it with SIGKILL at random moments. After each kill the database must pass
//! `PRAGMA integrity_check` and hold every id the child reported.
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use robin::db::{Database, Options, params};

const ROUNDS: usize = 20;
const CHILD_DB: &str = "ROBIN_CRASH_CHILD_DB";

#[test]
#[ignore = "the child of commits_survive_sigkill_at_random_moments; that test runs it"]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_DB) else { return };
    let db = block_on(Database::open(path.as_ref(), None, Options::default())).unwrap();
    block_on(db.write(|tx| {
        Ok(tx.execute_batch("CREATE TABLE IF NOT EXISTS commits (id INTEGER PRIMARY KEY, pad TEXT)")?)
    }))
    .unwrap();
    let start: i64 = block_on(
        db.read(|tx| Ok(tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM commits", [], |r| r.get(0))?)),
    )
    .unwrap();
    for id in start..start + 1_000_000 {
        block_on(db.write(move |tx| {
            tx.execute("INSERT INTO commits (id, pad) VALUES (?1, ?2)", params![id, "x".repeat(200)])?;
            Ok(())
        }))
        .unwrap();
        // Reported only after the commit returned: every printed id must survive the kill.
        println!("COMMITTED {id}");
    }
}

#[test]
fn commits_survive_sigkill_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let mut reported: Vec<i64> = Vec::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DB, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(id) = line.strip_prefix("COMMITTED ") {
                    let _ = tx.send(id.parse::<i64>().unwrap());
                }
            }
        });
        // Wait for the first commit, then kill at a random moment within the next 40 ms.
        let first = rx.recv_timeout(Duration::from_secs(20)).expect("the child commits");
        reported.push(first);
        let kill_at = Instant::now() + Duration::from_micros(fastrand::u64(0..40_000));
        while Instant::now() < kill_at {
            std::thread::sleep(Duration::from_micros(200));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        reported.extend(rx.try_iter());

        let db = block_on(Database::open(&path, None, Options::default())).unwrap();
        let (check, ids): (String, Vec<i64>) = block_on(db.read(|tx| {
            let check = tx.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            let mut stmt = tx.prepare("SELECT id FROM commits ORDER BY id")?;
            let ids = stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<i64>, _>>()?;
            Ok((check, ids))
        }))
        .unwrap();
        block_on(db.close());
        assert_eq!(check, "ok", "round {round}: integrity");
        let present: std::collections::HashSet<i64> = ids.into_iter().collect();
        let missing: Vec<&i64> = reported.iter().filter(|id| !present.contains(id)).collect();
        assert!(missing.is_empty(), "round {round}: reported commits lost: {missing:?}");
    }
    assert!(reported.len() >= ROUNDS, "every round committed something");
}
