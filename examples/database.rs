//! The database: async read/write with savepoints on the loop, read_ctx/write_ctx from a thread.
//!
//! ```sh
//! cargo run --example database
//! ```
use robin::db::{Database, Error, Options, params};
use robin::runtime::Spawner;

fn main() -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("temp dir");
    let ex = Spawner::new();
    let db = ex.block_on(Database::open(&dir.path().join("example.db"), None, Options::default()))?;

    ex.block_on(async {
        // One closure, one transaction, run on the blocking pool: Ok commits, Err rolls back.
        db.write(|tx| {
            tx.execute("INSERT INTO settings (name, value) VALUES ('main_currency', 'EUR')", [])?;
            // A savepoint that fails undoes its own writes only.
            let _ = tx.savepoint(|sp| {
                sp.execute("INSERT INTO settings (name, value) VALUES ('half_done', 'x')", [])?;
                Err::<(), _>(Error::rollback("changed my mind"))
            });
            Ok(())
        })
        .await?;
        let names: Vec<String> = db
            .read(|tx| {
                let mut stmt = tx.prepare("SELECT name FROM settings")?;
                Ok(stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?)
            })
            .await?;
        println!("settings: {names:?}");
        // On the loop thread the blocking API refuses instead of deadlocking.
        assert!(matches!(db.read_ctx(|_| Ok(())), Err(Error::OnLoopThread)));
        Ok::<_, Error>(())
    })?;

    // Synchronous code on another thread uses the same closures, blocking that thread only.
    let from_thread = db.clone();
    let count = std::thread::spawn(move || {
        from_thread.write_ctx(|tx| {
            Ok(tx.execute("INSERT INTO assets (identifier) VALUES (?1)", params!["bitcoin"])?)
        })?;
        from_thread
            .read_ctx(|tx| Ok(tx.query_row("SELECT count(*) FROM assets", [], |r| r.get::<_, i64>(0))?))
    })
    .join()
    .expect("thread")?;
    println!("assets: {count}");
    ex.block_on(db.close());
    Ok(())
}
