//! Crash safety: a child process commits rows and reports each committed id on stdout; the
//! test kills it with SIGKILL at random moments. After each kill the database must pass
//! `PRAGMA integrity_check` and hold every id the child reported. Three kinds of child: one
//! awaited write at a time, 64 concurrent writers (the group-commit path), and 64 concurrent
//! writers on an SQLCipher database.
use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use robin::db::{Database, Options, Password, params};

const ROUNDS_PER_KIND: usize = 8;
const CHILD_DB: &str = "ROBIN_CRASH_CHILD_DB";
const CHILD_WRITERS: &str = "ROBIN_CRASH_CHILD_WRITERS";
const CHILD_PASSWORD: &str = "ROBIN_CRASH_CHILD_PASSWORD";

fn open(path: &Path, password: Option<&str>) -> Database {
    let password = password.map(|p| Password::new(p.to_string()));
    block_on(Database::open(path, password, Options::default())).unwrap()
}

#[test]
#[ignore = "the child of commits_survive_sigkill_at_random_moments; that test runs it"]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_DB) else { return };
    let writers: usize = std::env::var(CHILD_WRITERS).ok().and_then(|w| w.parse().ok()).unwrap_or(1);
    let db = open(path.as_ref(), std::env::var(CHILD_PASSWORD).ok().as_deref());
    block_on(db.write(|tx| {
        Ok(tx.execute_batch("CREATE TABLE IF NOT EXISTS commits (id INTEGER PRIMARY KEY, pad TEXT)")?)
    }))
    .unwrap();
    let start: i64 = block_on(
        db.read(|tx| Ok(tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM commits", [], |r| r.get(0))?)),
    )
    .unwrap();
    let next = Rc::new(Cell::new(start));
    let ex = async_executor::LocalExecutor::new();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (db, next) = (db.clone(), next.clone());
            ex.spawn(async move {
                loop {
                    let id = next.get();
                    next.set(id + 1);
                    db.write(move |tx| {
                        tx.execute(
                            "INSERT INTO commits (id, pad) VALUES (?1, ?2)",
                            params![id, "x".repeat(200)],
                        )?;
                        Ok(())
                    })
                    .await
                    .unwrap();
                    // Reported only after the commit returned: every printed id must survive.
                    println!("COMMITTED {id}");
                }
            })
        })
        .collect();
    block_on(ex.run(futures_lite::future::pending::<()>()));
    drop(tasks);
}

/// Kills children of one kind at random moments and checks the database after each kill.
fn kill_rounds(path: &Path, writers: usize, password: Option<&str>) {
    let mut reported: Vec<i64> = Vec::new();
    for round in 0..ROUNDS_PER_KIND {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--ignored", "--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DB, path)
            .env(CHILD_WRITERS, writers.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(password) = password {
            command.env(CHILD_PASSWORD, password);
        }
        let mut child = command.spawn().unwrap();
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
        let first = rx.recv_timeout(Duration::from_secs(30)).expect("the child commits");
        reported.push(first);
        let kill_at = Instant::now() + Duration::from_micros(fastrand::u64(0..40_000));
        while Instant::now() < kill_at {
            std::thread::sleep(Duration::from_micros(200));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        reported.extend(rx.try_iter());

        let db = open(path, password);
        let (check, ids): (String, Vec<i64>) = block_on(db.read(|tx| {
            let check = tx.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            let mut stmt = tx.prepare("SELECT id FROM commits ORDER BY id")?;
            let ids = stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<i64>, _>>()?;
            Ok((check, ids))
        }))
        .unwrap();
        block_on(db.close());
        assert_eq!(check, "ok", "{writers} writers, round {round}: integrity");
        let present: std::collections::HashSet<i64> = ids.into_iter().collect();
        let missing: Vec<&i64> = reported.iter().filter(|id| !present.contains(id)).collect();
        assert!(missing.is_empty(), "{writers} writers, round {round}: reported commits lost: {missing:?}");
    }
}

#[test]
fn commits_survive_sigkill_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    kill_rounds(&dir.path().join("single.db"), 1, None);
}

#[test]
fn grouped_commits_survive_sigkill_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    kill_rounds(&dir.path().join("grouped.db"), 64, None);
}

#[test]
fn encrypted_grouped_commits_survive_sigkill_at_random_moments() {
    let dir = tempfile::tempdir().unwrap();
    kill_rounds(&dir.path().join("encrypted.db"), 64, Some("crash-test"));
}
