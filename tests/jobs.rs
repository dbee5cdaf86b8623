//! query_prices and query_balances against a fake price API and JSON-RPC node on loopback.
mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use robin::control::Session;
use robin::db::{Account, Database, Options};
use robin::jobs::{self, JobContext};
use robin::notifier::Message;
use robin::runtime::Spawner;
use robin::tasks::{Outcome, SpawnOptions, TaskManager};
use serde_json::{Value, json};
use support::fake_http::FakeHttp;

struct World {
    ex: Spawner,
    db: Database,
    ctx: Rc<JobContext>,
    broadcasts: Rc<RefCell<Vec<Value>>>,
    errors: Rc<RefCell<Vec<String>>>,
    progress: Rc<RefCell<Vec<u64>>>,
    after_balances: Rc<Cell<u32>>,
    _dir: tempfile::TempDir,
}

fn world(server: &FakeHttp) -> World {
    let dir = tempfile::tempdir().unwrap();
    let ex = Spawner::new();
    let db = ex.block_on(Database::open(&dir.path().join("j.db"), None, Options::default())).unwrap();
    let (errors, progress) = (Rc::new(RefCell::new(Vec::new())), Rc::new(RefCell::new(Vec::new())));
    let (e, p) = (errors.clone(), progress.clone());
    let tasks = TaskManager::new(
        ex.clone(),
        Rc::new(move |text| e.borrow_mut().push(text)),
        Rc::new(move |report: robin::tasks::ProgressReport| p.borrow_mut().push(report.processed)),
    );
    let broadcasts = Rc::new(RefCell::new(Vec::new()));
    let (b, after_balances) = (broadcasts.clone(), Rc::new(Cell::new(0)));
    let after = after_balances.clone();
    let settings = robin::outbound::Settings { retries: 0, ..robin::outbound::Settings::default() };
    let session = Session::new(tasks.clone());
    session.set_default_database(Some(db.clone()));
    let ctx = Rc::new(JobContext {
        http: Rc::new(robin::outbound::Client::new(settings)),
        session,
        tasks,
        broadcast: Rc::new(move |message: Message| {
            b.borrow_mut().push(serde_json::to_value(message).unwrap())
        }),
        after_balances: Rc::new(move || after.set(after.get() + 1)),
    });
    let w = World { ex, db, ctx, broadcasts, errors, progress, after_balances, _dir: dir };
    w.set("main_currency", "EUR");
    w.set("price_api_url", &server.url("/api/v3"));
    w.set("rpc_url", &server.url("/rpc"));
    w
}

impl World {
    fn set(&self, name: &str, value: &str) {
        self.ex.block_on(self.db.set_setting(name.into(), value.into())).unwrap();
    }

    fn accounts(&self, n: usize) {
        for i in 0..n {
            let account = Account { chain: "eth".into(), address: format!("0x{:040x}", i + 1), label: None };
            self.ex.block_on(self.db.add_account(account)).unwrap();
        }
    }

    fn run(
        &self,
        name: &str,
        job: impl std::future::Future<Output = Result<Value, jobs::Error>> + 'static,
    ) -> Outcome {
        let handle = self.ctx.tasks.spawn_and_track(name, job, SpawnOptions::default());
        self.ex.block_on(handle.outcome())
    }
}

#[test]
fn prices_are_stored_as_exact_decimals() {
    let server = FakeHttp::start();
    let w = world(&server);
    w.ex.block_on(w.db.add_asset("bitcoin".into())).unwrap();
    w.ex.block_on(w.db.add_asset("unknowncoin".into())).unwrap();
    w.accounts(1); // so ether is priced too
    let outcome = w.run("query_prices", jobs::query_prices(w.ctx.clone()));
    assert_eq!(outcome, Outcome::Completed(json!({"prices": 2, "currency": "EUR"})));
    let prices = w.ex.block_on(w.db.prices("EUR".into())).unwrap();
    assert_eq!(prices, vec![("bitcoin".into(), "40000.25".into()), ("ethereum".into(), "2000.5".into())]);
    assert_eq!(*w.progress.borrow(), vec![0, 3], "progress from 0 to all three assets");
}

#[test]
fn balances_and_the_snapshot_are_exact_and_announced() {
    let server = FakeHttp::start();
    let w = world(&server);
    w.accounts(2);
    w.run("query_prices", jobs::query_prices(w.ctx.clone()));
    let outcome = w.run("query_balances", jobs::query_balances(w.ctx.clone()));
    let Outcome::Completed(result) = outcome else { panic!("{outcome:?}") };
    assert_eq!(result["total"], "6001.5", "3 ETH x 2000.5 EUR, exactly");
    let balances = w.ex.block_on(w.db.balances()).unwrap();
    assert_eq!(balances.len(), 2);
    assert_eq!(
        (balances[0].amount.as_str(), balances[0].block_number, balances[0].block_time),
        ("1.5", 16, 0x65000000)
    );
    let snapshot = w.ex.block_on(w.db.latest_snapshot()).unwrap().unwrap();
    assert_eq!((snapshot.currency.as_str(), snapshot.total.as_str()), ("EUR", "6001.5"));
    let entries = &snapshot.entries;
    assert_eq!(
        (entries[0].amount.as_str(), entries[0].price.as_str(), entries[0].value.as_str()),
        ("3", "2000.5", "6001.5")
    );
    let kinds: Vec<Value> = w.broadcasts.borrow().iter().map(|m| m["type"].clone()).collect();
    assert_eq!(kinds, vec![json!("refresh_balances")]);
    assert_eq!(w.after_balances.get(), 1, "scheduling may start now");
}

#[test]
fn a_missing_price_is_a_snapshot_error_naming_the_asset_not_a_zero() {
    let server = FakeHttp::start();
    let w = world(&server);
    w.accounts(1);
    let outcome = w.run("query_balances", jobs::query_balances(w.ctx.clone()));
    assert!(matches!(&outcome, Outcome::Completed(r) if r["snapshot"].is_null()), "{outcome:?}");
    let broadcasts = w.broadcasts.borrow();
    assert_eq!(broadcasts[0]["type"], "balance_snapshot_error");
    assert!(
        broadcasts[0]["data"]["error"].as_str().unwrap().contains("No EUR price for ethereum"),
        "{:?}",
        broadcasts[0]
    );
    assert_eq!(broadcasts[1]["type"], "refresh_balances");
    assert_eq!(w.ex.block_on(w.db.snapshot_count()).unwrap(), 0);
    assert_eq!(w.ex.block_on(w.db.balances()).unwrap().len(), 1, "the balances are kept");
}

#[test]
fn provider_faults_become_user_errors_with_rotkis_text() {
    let server = FakeHttp::start();
    let w = world(&server);
    w.ex.block_on(w.db.add_asset("bitcoin".into())).unwrap();
    w.set("price_api_url", &server.url("/broken"));
    let outcome = w.run("query_prices", jobs::query_prices(w.ctx.clone()));
    assert!(matches!(outcome, Outcome::Failed(_)));
    assert_eq!(
        w.errors.borrow()[0],
        "query_prices died with exception: 127.0.0.1 answered 500: boom. Check the logs for more details"
    );
    w.accounts(1);
    w.set("rpc_url", &server.url("/malformed"));
    let outcome = w.run("query_balances", jobs::query_balances(w.ctx.clone()));
    assert!(
        matches!(&outcome, Outcome::Failed(text) if text.contains("unexpected response from 127.0.0.1")),
        "{outcome:?}"
    );
}

#[test]
fn cancelling_mid_batch_leaves_no_partial_snapshot() {
    let server = FakeHttp::start();
    let w = world(&server);
    w.accounts(250); // three JSON-RPC batches
    w.run("query_prices", jobs::query_prices(w.ctx.clone()));
    // Batches slower than the progress rate limit (250 ms), so the first one is reported.
    w.set("rpc_url", &server.url("/rpc?delay=400"));
    let handle = w.ctx.tasks.spawn_and_track(
        "query_balances",
        jobs::query_balances(w.ctx.clone()),
        SpawnOptions::default(),
    );
    // Wait until the first batch is in, then cancel.
    let progress = w.progress.clone();
    w.ex.block_on(async {
        for _ in 0..200 {
            if progress.borrow().last() == Some(&100) {
                break;
            }
            async_io::Timer::after(Duration::from_millis(10)).await;
        }
    });
    assert_eq!(w.progress.borrow().last(), Some(&100), "one batch of 100 done");
    assert!(handle.cancel());
    w.ex.block_on(async_io::Timer::after(Duration::from_millis(1200)));
    assert_eq!(w.ex.block_on(w.db.snapshot_count()).unwrap(), 0);
    assert!(w.ex.block_on(w.db.balances()).unwrap().is_empty(), "nothing half written");
    assert!(w.broadcasts.borrow().is_empty(), "no refresh_balances for a run that did not finish");
}

#[test]
fn without_an_rpc_endpoint_the_job_says_what_to_set() {
    let server = FakeHttp::start();
    let w = world(&server);
    w.accounts(1);
    w.set("rpc_url", "");
    let outcome = w.run("query_balances", jobs::query_balances(w.ctx.clone()));
    assert_eq!(outcome, Outcome::Failed("no Ethereum RPC endpoint is set (settings.set rpc_url)".into()));
}
