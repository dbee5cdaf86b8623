//! The database part against real files in temporary directories.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_lite::future::block_on;
use robin::db::{Database, Error, Migration, Options, Password, params};

fn fresh() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("robin.db");
    (dir, path)
}

/// A finished backup leaves no temporary file (`.<name>.robin-partial-...`) beside it.
fn assert_no_partial_files(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(!name.to_string_lossy().contains("robin-partial"), "left behind: {name:?}");
    }
}

fn open(path: &Path, password: Option<&str>) -> robin::db::Result<Database> {
    block_on(Database::open(path, password.map(|p| Password::new(p.to_string())), Options::default()))
}

fn count(db: &Database) -> i64 {
    block_on(db.read(|tx| Ok(tx.query_row("SELECT count(*) FROM settings", [], |r| r.get(0))?))).unwrap()
}

fn insert(db: &Database, name: &str) -> robin::db::Result<()> {
    let name = name.to_string();
    block_on(db.write(move |tx| {
        tx.execute("INSERT INTO settings (name, value) VALUES (?1, 'v')", params![name])?;
        Ok(())
    }))
}

/// Every file in the directory with its bytes, to prove a failed open changed nothing.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn data_survives_close_and_reopen() {
    let (_dir, path) = fresh();
    let db = open(&path, None).unwrap();
    insert(&db, "a").unwrap();
    block_on(db.close());
    assert!(matches!(insert(&db, "b"), Err(Error::Closed)));
    let db = open(&path, None).unwrap();
    assert_eq!(count(&db), 1);
    assert_eq!(db.schema_version(), robin::db::MIGRATIONS.last().unwrap().version);
}

#[test]
fn wrong_password_is_a_clear_error_and_changes_nothing() {
    let (dir, path) = fresh();
    let db = open(&path, Some("correct horse's battery")).unwrap();
    assert!(db.is_encrypted());
    insert(&db, "secret").unwrap();
    block_on(db.close());
    let before = snapshot(dir.path());
    assert!(
        !before.iter().any(|(_, bytes)| bytes.windows(6).any(|w| w == b"secret")),
        "no plaintext on disk"
    );

    let err = open(&path, Some("wrong")).unwrap_err();
    assert!(matches!(err, Error::WrongPassword(_)), "{err:?}");
    assert_eq!(err.to_string(), format!("wrong password for database {}", path.display()));
    assert!(matches!(open(&path, None).unwrap_err(), Error::PasswordNeeded(_)));
    assert_eq!(snapshot(dir.path()), before, "failed opens leave every file as it was");

    let db = open(&path, Some("correct horse's battery")).unwrap();
    assert_eq!(count(&db), 1);
}

#[test]
fn a_plain_database_refuses_a_password() {
    let (_dir, path) = fresh();
    block_on(open(&path, None).unwrap().close());
    assert!(matches!(open(&path, Some("pw")).unwrap_err(), Error::WrongPassword(_)));
}

#[test]
fn commit_on_ok_rollback_on_err_and_on_panic() {
    let (_dir, path) = fresh();
    let db = open(&path, None).unwrap();
    insert(&db, "kept").unwrap();

    let err = block_on(db.write(|tx| {
        tx.execute("INSERT INTO settings (name, value) VALUES ('dropped', 'v')", [])?;
        Err::<(), _>(Error::rollback("changed my mind"))
    }))
    .unwrap_err();
    assert_eq!(err.to_string(), "transaction rolled back: changed my mind");

    let err = block_on(db.write(|tx| {
        tx.execute("INSERT INTO settings (name, value) VALUES ('panicked', 'v')", [])?;
        panic!("boom in a closure");
        #[allow(unreachable_code)]
        Ok(())
    }))
    .unwrap_err();
    assert!(matches!(&err, Error::Panicked(m) if m == "boom in a closure"), "{err:?}");

    let err = insert(&db, "kept").unwrap_err(); // primary key clash: a SQL error rolls back too
    assert!(matches!(err, Error::Sqlite(_)), "{err:?}");
    assert_eq!(count(&db), 1, "only the committed row is there");
    insert(&db, "after").unwrap();
    assert_eq!(count(&db), 2, "the writer still works after a panic");
}

#[test]
fn read_closures_cannot_write_and_panics_are_caught() {
    let (_dir, path) = fresh();
    let db = open(&path, None).unwrap();
    let err =
        block_on(db.read(|tx| Ok(tx.execute("INSERT INTO settings (name, value) VALUES ('x', 'y')", [])?)));
    // Refused because the reader connection is read-only, not for any other reason.
    assert!(
        matches!(&err, Err(Error::Sqlite(rusqlite::Error::SqliteFailure(e, _))) if e.code == rusqlite::ErrorCode::ReadOnly),
        "{err:?}"
    );
    let err = block_on(db.read(|_| -> robin::db::Result<()> { panic!("reader panic") })).unwrap_err();
    assert!(matches!(err, Error::Panicked(_)));
    assert_eq!(count(&db), 0);
}

#[test]
fn savepoints_nest_and_roll_back_independently() {
    let (_dir, path) = fresh();
    let db = open(&path, None).unwrap();
    block_on(db.write(|tx| {
        tx.execute("INSERT INTO settings (name, value) VALUES ('outer', 'v')", [])?;
        tx.savepoint(|sp| {
            sp.execute("INSERT INTO settings (name, value) VALUES ('inner_kept', 'v')", [])?;
            let failed = sp.savepoint(|inner| {
                inner.execute("INSERT INTO settings (name, value) VALUES ('inner_dropped', 'v')", [])?;
                Err::<(), _>(Error::rollback("inner fails"))
            });
            assert!(failed.is_err());
            Ok(())
        })?;
        let panicked = tx.savepoint(|sp| -> robin::db::Result<()> {
            sp.execute("INSERT INTO settings (name, value) VALUES ('panic_dropped', 'v')", [])?;
            panic!("inside a savepoint")
        });
        assert!(matches!(panicked, Err(Error::Panicked(_))));
        Ok(())
    }))
    .unwrap();
    let names: Vec<String> = block_on(db.read(|tx| {
        let mut stmt = tx.prepare("SELECT name FROM settings ORDER BY name")?;
        let rows = stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
        Ok(rows)
    }))
    .unwrap();
    assert_eq!(names, vec!["inner_kept", "outer"]);
}

#[test]
fn named_savepoints_follow_rotkis_rules() {
    let (_dir, path) = fresh();
    let db = open(&path, None).unwrap();
    block_on(db.write(|tx| {
        assert!(matches!(tx.release_savepoint(Some("nope")), Err(Error::UnknownSavepoint(n)) if n == "nope"));
        assert!(matches!(tx.rollback_savepoint(None), Err(Error::UnknownSavepoint(_))));
        tx.enter_savepoint(Some("one"))?;
        assert!(matches!(tx.enter_savepoint(Some("one")), Err(Error::DuplicateSavepoint(_))));
        assert!(matches!(tx.enter_savepoint(Some("bad name; DROP")), Err(Error::InvalidSavepointName(_))));
        tx.execute("INSERT INTO settings (name, value) VALUES ('in_one', 'v')", [])?;
        tx.enter_savepoint(Some("two"))?;
        tx.execute("INSERT INTO settings (name, value) VALUES ('in_two', 'v')", [])?;
        tx.enter_savepoint(Some("three"))?;
        assert_eq!(tx.active_savepoints(), ["one", "two", "three"]);
        tx.rollback_savepoint(Some("two"))?; // undoes two and three, keeps one
        assert_eq!(tx.active_savepoints(), ["one"]);
        tx.release_savepoint(None)?;
        assert!(tx.active_savepoints().is_empty());
        Ok(())
    }))
    .unwrap();
    assert_eq!(count(&db), 1);
}

#[test]
fn readers_see_only_committed_data_while_a_write_is_open() {
    let (_dir, path) = fresh();
    let db = open(&path, None).unwrap();
    insert(&db, "before").unwrap();
    let (inserted_tx, inserted_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let writer_db = db.clone();
    let writer = std::thread::spawn(move || {
        writer_db.write_ctx(move |tx| {
            tx.execute("INSERT INTO settings (name, value) VALUES ('during', 'v')", [])?;
            inserted_tx.send(()).unwrap();
            go_rx.recv().unwrap(); // hold the transaction open
            Ok(())
        })
    });
    inserted_rx.recv().unwrap();
    assert_eq!(count(&db), 1, "the open write is invisible");
    go_tx.send(()).unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(count(&db), 2, "visible once committed");
}

#[test]
fn four_readers_and_a_writer_never_see_busy() {
    let (_dir, path) = fresh();
    let db = open(&path, None).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (db, done) = (db.clone(), done.clone());
            std::thread::spawn(move || {
                let mut last = 0;
                let mut reads = 0;
                while !done.load(Ordering::Relaxed) {
                    let now: i64 = db
                        .read_ctx(|tx| Ok(tx.query_row("SELECT count(*) FROM settings", [], |r| r.get(0))?))
                        .unwrap();
                    assert!(now >= last, "counts never go back");
                    last = now;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for i in 0..300 {
        insert(&db, &format!("row{i}")).unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
    assert_eq!(count(&db), 300);
}

static V1: &[Migration] = &[Migration { version: 1, description: "one", sql: "CREATE TABLE a (x INTEGER);" }];
static V2: &[Migration] = &[
    Migration { version: 1, description: "one", sql: "CREATE TABLE a (x INTEGER);" },
    Migration {
        version: 2,
        description: "two",
        sql: "ALTER TABLE a ADD COLUMN y TEXT; INSERT INTO a VALUES (1, 'y');",
    },
];
static BROKEN: &[Migration] = &[
    Migration { version: 1, description: "one", sql: "CREATE TABLE a (x INTEGER);" },
    Migration {
        version: 2,
        description: "two",
        sql: "ALTER TABLE a ADD COLUMN y TEXT; INSERT INTO nowhere VALUES (1);",
    },
];

fn open_with(path: &Path, migrations: &'static [Migration]) -> robin::db::Result<(Database, Vec<u32>)> {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let options = Options {
        migrations,
        on_migration: Arc::new(move |p| record.lock().unwrap().push(p.current_version)),
        ..Options::default()
    };
    let db = block_on(Database::open(path, None, options))?;
    let seen = seen.lock().unwrap().clone();
    Ok((db, seen))
}

#[test]
fn migrations_run_once_in_order_and_a_newer_schema_is_refused() {
    let (_dir, path) = fresh();
    let (db, steps) = open_with(&path, V1).unwrap();
    assert_eq!((db.schema_version(), steps), (1, vec![1]));
    block_on(db.close());

    let (db, steps) = open_with(&path, V2).unwrap();
    assert_eq!((db.schema_version(), steps), (2, vec![2]), "only the missing step runs");
    block_on(db.close());
    let (db, steps) = open_with(&path, V2).unwrap();
    assert!(steps.is_empty(), "nothing to do the second time");
    block_on(db.close());

    let err = open_with(&path, V1).unwrap_err();
    assert!(matches!(err, Error::TooNew { found: 2, supported: 1, .. }), "{err:?}");
    assert!(err.to_string().contains("upgrade robin"));
}

#[test]
fn a_failed_migration_leaves_the_previous_version_intact() {
    let (_dir, path) = fresh();
    block_on(open_with(&path, V1).unwrap().0.close());
    let err = open_with(&path, BROKEN).unwrap_err();
    assert!(matches!(err, Error::Migration { version: 2, .. }), "{err:?}");
    let (db, _) = open_with(&path, V1).unwrap();
    assert_eq!(db.schema_version(), 1);
    let columns: i64 = block_on(
        db.read(|tx| Ok(tx.query_row("SELECT count(*) FROM pragma_table_info('a')", [], |r| r.get(0))?)),
    )
    .unwrap();
    assert_eq!(columns, 1, "the half-done ALTER TABLE was rolled back");
}

#[test]
fn backup_restores_an_identical_database() {
    let (dir, path) = fresh();
    let db = open(&path, None).unwrap();
    for i in 0..200 {
        insert(&db, &format!("row{i}")).unwrap();
    }
    let copy = dir.path().join("backup.db");
    block_on(db.backup_to(&copy, None)).unwrap();
    let restored = open(&copy, None).unwrap();
    let dump = |db: &Database| -> Vec<(String, String)> {
        block_on(db.read(|tx| {
            let mut stmt = tx.prepare("SELECT name, value FROM settings ORDER BY name")?;
            Ok(stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?)
        }))
        .unwrap()
    };
    assert_eq!(dump(&restored), dump(&db));
    let check: String =
        block_on(restored.read(|tx| Ok(tx.query_row("PRAGMA integrity_check", [], |r| r.get(0))?))).unwrap();
    assert_eq!(check, "ok");
    assert_no_partial_files(dir.path());
}

#[test]
fn encrypted_backup_needs_the_same_password() {
    let (dir, path) = fresh();
    let db = open(&path, Some("pw")).unwrap();
    insert(&db, "secret").unwrap();
    let copy = dir.path().join("backup.db");
    block_on(db.backup_to(&copy, Some(Password::new("pw".into())))).unwrap();
    assert!(matches!(open(&copy, None).unwrap_err(), Error::PasswordNeeded(_)));
    assert_eq!(count(&open(&copy, Some("pw")).unwrap()), 1);
}

#[test]
fn blocking_calls_on_the_loop_thread_are_refused() {
    let (_dir, path) = fresh();
    let db = open(&path, None).unwrap();
    let ex = robin::runtime::Spawner::new();
    let on_loop = db.clone();
    let err = ex.block_on(async move { on_loop.read_ctx(|_| Ok(())) }).unwrap_err();
    assert!(matches!(err, Error::OnLoopThread));
    let on_loop = db.clone();
    assert!(matches!(ex.block_on(async move { on_loop.write_ctx(|_| Ok(())) }), Err(Error::OnLoopThread)));
    // The async API is fine there.
    let on_loop = db.clone();
    assert_eq!(ex.block_on(async move { on_loop.read(|_| Ok(7)).await }).unwrap(), 7);
}

#[test]
fn nested_write_ctx_is_an_error_not_a_deadlock() {
    let (_dir, path) = fresh();
    let db = open(&path, None).unwrap();
    let inner = db.clone();
    let result =
        std::thread::spawn(move || db.write_ctx(move |_| inner.write_ctx(|_| Ok(())))).join().unwrap();
    assert!(matches!(result, Err(Error::NestedWrite)), "{result:?}");
}

#[test]
fn a_write_that_waits_too_long_for_the_slot_fails_clearly() {
    let (_dir, path) = fresh();
    let options = Options { write_timeout: Duration::from_millis(100), ..Options::default() };
    let db = block_on(Database::open(&path, None, options)).unwrap();
    let holder = db.clone();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let long = std::thread::spawn(move || {
        holder.write_ctx(move |_| {
            started_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(600));
            Ok(())
        })
    });
    started_rx.recv().unwrap();
    let err = insert(&db, "late").unwrap_err();
    assert!(matches!(err, Error::WriteTimeout(_)), "{err:?}");
    assert!(err.to_string().contains("busy"));
    long.join().unwrap().unwrap();
    insert(&db, "later").unwrap();
    let late: i64 =
        block_on(db.read(|tx| {
            Ok(tx.query_row("SELECT count(*) FROM settings WHERE name = 'late'", [], |r| r.get(0))?)
        }))
        .unwrap();
    assert_eq!(late, 0, "a write that timed out never runs");
}

/// Holds the writer busy until the returned sender is used, so that writes queue up behind it.
fn hold_writer(
    db: &Database,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<robin::db::Result<()>>) {
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = db.clone();
    let thread = std::thread::spawn(move || {
        holder.write_ctx(move |_| {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            Ok(())
        })
    });
    started_rx.recv().unwrap();
    (release_tx, thread)
}

#[test]
fn queued_writes_share_a_commit_but_fail_alone() {
    let (_dir, path) = fresh();
    let db = open(&path, None).unwrap();
    let (release, holder) = hold_writer(&db);
    let commits_before = db.commits();
    // 50 writes queue behind the holder and run as one group; #10 fails, #20 panics.
    let results = block_on(async {
        let writes: Vec<_> = (0..50)
            .map(|i| {
                let db = db.clone();
                blocking::unblock(move || {
                    db.write_ctx(move |tx| {
                        tx.execute(
                            "INSERT INTO settings (name, value) VALUES (?1, 'v')",
                            params![format!("w{i}")],
                        )?;
                        match i {
                            10 => Err(Error::rollback("number ten fails")),
                            20 => panic!("number twenty panics"),
                            _ => Ok(i),
                        }
                    })
                })
            })
            .collect();
        async_io::Timer::after(Duration::from_millis(200)).await; // let them all queue
        release.send(()).unwrap();
        let mut results = Vec::new();
        for write in writes {
            results.push(write.await);
        }
        results
    });
    holder.join().unwrap().unwrap();
    // The holder's commit and the group's: a few at most, where one each would make 51. (A
    // write whose thread was slow to queue may land in a group of its own.)
    let commits = db.commits() - commits_before;
    assert!(commits <= 5, "{commits} commits for 50 queued writes: they were not grouped");
    for (i, result) in results.iter().enumerate() {
        match i {
            10 => assert!(matches!(result, Err(Error::Rollback(_)))),
            20 => assert!(matches!(result, Err(Error::Panicked(_)))),
            _ => assert_eq!(result.as_ref().ok(), Some(&i)),
        }
    }
    let names: Vec<String> = block_on(db.read(|tx| {
        let mut stmt = tx.prepare("SELECT name FROM settings")?;
        Ok(stmt.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?)
    }))
    .unwrap();
    assert_eq!(names.len(), 48);
    assert!(!names.contains(&"w10".to_string()) && !names.contains(&"w20".to_string()));
}

#[test]
fn a_write_dropped_before_it_starts_never_runs() {
    let (_dir, path) = fresh();
    let db = open(&path, None).unwrap();
    let (release, holder) = hold_writer(&db);
    let dropped = db.clone();
    block_on(async move {
        let write = dropped
            .write(|tx| Ok(tx.execute("INSERT INTO settings (name, value) VALUES ('ghost', 'v')", [])?));
        // Poll it once so that it is queued, then drop it, as a cancelled task would.
        let mut write = Box::pin(write);
        assert!(futures_lite::future::poll_once(&mut write).await.is_none());
    });
    release.send(()).unwrap();
    holder.join().unwrap().unwrap();
    insert(&db, "after").unwrap();
    assert_eq!(count(&db), 1, "only 'after': the dropped write was withdrawn");
}

#[test]
fn an_encrypted_database_is_backed_up_without_its_password() {
    let (dir, path) = fresh();
    let db = open(&path, Some("pw")).unwrap();
    for i in 0..50 {
        insert(&db, &format!("row{i}")).unwrap();
    }
    let copy = dir.path().join("export.db");
    block_on(db.backup_to(&copy, None)).unwrap();
    insert(&db, "after the backup").unwrap(); // the writer goes on after the export
    assert!(matches!(open(&copy, None).unwrap_err(), Error::PasswordNeeded(_)), "the copy is encrypted");
    assert!(matches!(open(&copy, Some("other")).unwrap_err(), Error::WrongPassword(_)));
    let restored = open(&copy, Some("pw")).unwrap();
    assert_eq!(count(&restored), 50);
    assert_no_partial_files(dir.path());
}

#[test]
fn synchronous_full_is_set_on_every_connection() {
    for (synchronous, expected) in [(robin::db::Synchronous::Normal, 1), (robin::db::Synchronous::Full, 2)] {
        let (_dir, path) = fresh();
        let options = Options { synchronous, ..Options::default() };
        let db = block_on(Database::open(&path, None, options)).unwrap();
        let on_writer: i64 =
            block_on(db.write(|tx| Ok(tx.query_row("PRAGMA synchronous", [], |r| r.get(0))?))).unwrap();
        let on_reader: i64 =
            block_on(db.read(|tx| Ok(tx.query_row("PRAGMA synchronous", [], |r| r.get(0))?))).unwrap();
        assert_eq!((on_writer, on_reader), (expected, expected), "{synchronous:?}");
    }
}

#[test]
fn schema_4_keeps_every_snapshot_of_schema_3_and_lets_entries_go_unpriced() {
    let (_dir, path) = fresh();
    let v3 = &robin::db::MIGRATIONS[..3];
    let (db, _) = open_with(&path, v3).unwrap();
    block_on(db.write(|tx| {
        tx.execute_batch(
            "INSERT INTO assets (identifier) VALUES ('bitcoin');
             INSERT INTO snapshots (id, taken_at, currency, total) VALUES (1, 1700000000, 'EUR', '6001.5');
             INSERT INTO snapshot_entries VALUES (1, 'ethereum', '3', '2000.5', '6001.5');",
        )?;
        Ok(())
    }))
    .unwrap();
    block_on(db.close());

    let (db, steps) = open_with(&path, robin::db::MIGRATIONS).unwrap();
    assert_eq!(steps, vec![4]);
    let snapshot = block_on(db.latest_snapshot()).unwrap().unwrap();
    assert_eq!((snapshot.id, snapshot.time, snapshot.total.as_str()), (1, 1_700_000_000, "6001.5"));
    assert_eq!(snapshot.entries[0].value.as_deref(), Some("6001.5"));
    assert_eq!(block_on(db.asset_details()).unwrap(), vec![robin::db::Asset::plain("bitcoin")]);
    // An unpriced entry fits now, and the history reads by time through its index.
    block_on(db.write(|tx| {
        tx.execute_batch(
            "INSERT INTO snapshots (id, taken_at, currency, total) VALUES (2, 1700003600, 'EUR', '0');
             INSERT INTO snapshot_entries VALUES (2, 'ethereum', '3', NULL, NULL);",
        )?;
        Ok(())
    }))
    .unwrap();
    let plan: String = block_on(db.read(|tx| {
        Ok(tx.query_row(
            "EXPLAIN QUERY PLAN SELECT id FROM snapshots WHERE taken_at >= 0 AND taken_at <= 1 ORDER BY taken_at DESC",
            [],
            |r| r.get(3),
        )?)
    }))
    .unwrap();
    assert!(plan.contains("snapshots_by_time"), "{plan}");
    let range = robin::db::HistoryRange { from: Some(1_700_000_001), to: None, limit: 10 };
    let history = block_on(db.snapshot_history(range)).unwrap();
    assert_eq!(history.iter().map(|s| s.id).collect::<Vec<_>>(), vec![2]);
}

#[test]
fn a_database_others_could_read_is_made_private_when_opened() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = fresh();
    let wal = path.with_file_name("robin.db-wal");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // What an older robind under umask 022 left behind.
    block_on(block_on(Database::open(&path, None, Options::default())).unwrap().close());
    if !wal.exists() {
        std::fs::write(&wal, b"").unwrap(); // an empty log: nothing to replay
    }
    for file in [&path, &wal] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let db = block_on(Database::open(&path, None, Options::default())).unwrap();
    assert_eq!((mode(&path), mode(&wal)), (0o600, 0o600));
    block_on(db.close());
    // A new database is created private, whatever the umask.
    let new = path.with_file_name("new.sqlite");
    block_on(block_on(Database::open(&new, None, Options::default())).unwrap().close());
    assert_eq!(mode(&new), 0o600);
}

#[test]
fn dropping_the_last_handle_closes_the_writer_connection() {
    // No `close`: the writer thread ends when the last handle goes and closes its connection
    // there; with every connection closed SQLite checkpoints the WAL and removes it.
    dropping_closes_every_connection(Duration::ZERO);
}

#[test]
fn dropping_the_last_handle_after_the_writer_idled_out_closes_its_connection() {
    // After a second without work the writer thread has ended and handed its connection back.
    dropping_closes_every_connection(Duration::from_millis(1500));
}

fn dropping_closes_every_connection(idle: Duration) {
    let (_dir, path) = fresh();
    let db = open(&path, None).unwrap();
    insert(&db, "a").unwrap();
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    assert!(wal.exists());
    std::thread::sleep(idle);
    drop(db);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while wal.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!wal.exists(), "a connection stayed open after the last handle was dropped");
    assert_eq!(count(&open(&path, None).unwrap()), 1);
}

#[test]
fn writes_queued_before_close_are_finished_and_later_ones_refused() {
    let (_dir, path) = fresh();
    let db = open(&path, None).unwrap();
    let (release, holder) = hold_writer(&db);
    let queued: Vec<_> = (0..5)
        .map(|i| {
            let db = db.clone();
            std::thread::spawn(move || insert(&db, &format!("queued{i}")))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200)); // let them queue behind the holder
    let closer = {
        let db = db.clone();
        std::thread::spawn(move || block_on(db.close()))
    };
    std::thread::sleep(Duration::from_millis(100));
    release.send(()).unwrap();
    holder.join().unwrap().unwrap();
    for write in queued {
        write.join().unwrap().unwrap();
    }
    closer.join().unwrap();
    assert!(matches!(insert(&db, "late"), Err(Error::Closed)));
    assert_eq!(count(&open(&path, None).unwrap()), 5);
}

#[test]
fn encrypted_databases_keep_a_larger_page_cache() {
    let (_dir, path) = fresh();
    let cache = |db: &Database| -> i64 {
        block_on(db.read(|tx| Ok(tx.query_row("PRAGMA cache_size", [], |r| r.get(0))?))).unwrap()
    };
    let defaults = Options::default();
    let plain = open(&path, None).unwrap();
    assert_eq!(cache(&plain), -i64::from(defaults.cache_kib));
    let (_dir, path) = fresh();
    let encrypted = open(&path, Some("secret")).unwrap();
    assert_eq!(cache(&encrypted), -i64::from(defaults.encrypted_cache_kib));
    assert!(defaults.encrypted_cache_kib > defaults.cache_kib);
}

#[test]
fn a_write_the_failing_writer_had_taken_fails_with_writer_failed() {
    // `ROBIN_INJECT_PANIC` is read once per process: the check runs in a child process.
    const NAME: &str = "a_write_the_failing_writer_had_taken_fails_with_writer_failed";
    if !cfg!(debug_assertions) {
        return; // release builds compile the fault out
    }
    if std::env::var_os("ROBIN_INJECT_PANIC").is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--test-threads=1", "--nocapture"])
            .env("ROBIN_INJECT_PANIC", "writer")
            .output()
            .unwrap();
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
        return;
    }
    let (_dir, path) = fresh();
    let db = open(&path, None).unwrap();
    // The writer thread starts with this write and fails: the write is answered with the
    // reason (not `Closed`, which says the database was closed), like every later one.
    let err = insert(&db, "a").unwrap_err();
    assert!(matches!(err, Error::WriterFailed(_)), "{err:?}");
    assert!(block_on(db.writer_failed()).contains("injected fault in writer"));
    assert!(matches!(insert(&db, "b"), Err(Error::WriterFailed(_))));
}
