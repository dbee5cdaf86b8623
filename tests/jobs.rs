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
    w.ex.block_on(w.db.add_asset("bitcoin")).unwrap();
    w.ex.block_on(w.db.add_asset("unknowncoin")).unwrap();
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
        (entries[0].amount.as_str(), entries[0].price.as_deref(), entries[0].value.as_deref()),
        ("3", Some("2000.5"), Some("6001.5"))
    );
    assert_eq!(entries[0].symbol.as_deref(), Some("ETH"));
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
    let Outcome::Completed(result) = outcome else { panic!("{outcome:?}") };
    assert_eq!((result["total"].as_str(), &result["unpriced"]), (Some("0"), &json!(["ethereum"])));
    let broadcasts = w.broadcasts.borrow();
    assert_eq!(
        broadcasts[0],
        json!({"type": "balance_snapshot_error", "data": {
            "location": "blockchain balances query",
            "error": "No EUR price for ethereum: it is in the snapshot without a value, left out of the total",
        }})
    );
    assert_eq!(broadcasts[1]["type"], "refresh_balances");
    // The snapshot is taken all the same: the holding is listed, without a price or value.
    let snapshot = w.ex.block_on(w.db.latest_snapshot()).unwrap().unwrap();
    assert_eq!(snapshot.total, "0");
    let entry = &snapshot.entries[0];
    assert_eq!(
        (entry.asset.as_str(), entry.amount.as_str(), &entry.price, &entry.value),
        ("ethereum", "1.5", &None, &None)
    );
    assert_eq!(w.ex.block_on(w.db.balances()).unwrap().len(), 1, "the balances are kept");
}

fn token(contract: &str, decimals: u32, symbol: &str, price_id: Option<&str>) -> robin::db::Asset {
    robin::db::Asset {
        asset: format!("eip155:1/erc20:{contract}"),
        decimals: Some(decimals),
        symbol: Some(symbol.into()),
        price_id: price_id.map(Into::into),
    }
}

#[test]
fn tokens_are_read_at_the_same_block_and_valued_exactly() {
    use support::fake_http::{DAI, UNPRICED, USDC};
    let server = FakeHttp::start();
    let w = world(&server);
    w.accounts(2);
    for asset in [
        token(USDC, 6, "USDC", Some("usd-coin")),
        token(DAI, 18, "DAI", Some("dai")),
        token(UNPRICED, 0, "NOPE", Some("nopricecoin")),
    ] {
        w.ex.block_on(w.db.add_asset(asset)).unwrap();
    }
    let prices = w.run("query_prices", jobs::query_prices(w.ctx.clone()));
    assert_eq!(prices, Outcome::Completed(json!({"prices": 3, "currency": "EUR"})), "ether, USDC and DAI");
    let outcome = w.run("query_balances", jobs::query_balances(w.ctx.clone()));
    let Outcome::Completed(result) = outcome else { panic!("{outcome:?}") };
    // 3 ETH x 2000.5 + 5 USDC x 0.92 + 20.5 DAI x 0.91 = 6001.5 + 4.6 + 18.655
    assert_eq!(result["total"], "6024.755", "{result}");
    assert_eq!(result["unpriced"], json!([format!("eip155:1/erc20:{UNPRICED}")]));
    let snapshot = w.ex.block_on(w.db.latest_snapshot()).unwrap().unwrap();
    type Row<'a> = (Option<&'a str>, &'a str, Option<&'a str>, Option<&'a str>);
    let rows: Vec<Row> = snapshot
        .entries
        .iter()
        .map(|e| (e.symbol.as_deref(), e.amount.as_str(), e.price.as_deref(), e.value.as_deref()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (Some("ETH"), "3", Some("2000.5"), Some("6001.5")),
            (Some("DAI"), "20.5", Some("0.91"), Some("18.655")),
            (Some("USDC"), "5", Some("0.92"), Some("4.6")),
            (Some("NOPE"), "14", None, None),
        ],
        "by value, the unpriced last"
    );
    // Every balance is at the block the ether balances were read at.
    let balances = w.ex.block_on(w.db.balances()).unwrap();
    assert_eq!(balances.len(), 2 * 4);
    assert!(balances.iter().all(|b| b.block_number == 16));
    let usdc: Vec<&str> =
        balances.iter().filter(|b| b.asset.ends_with(USDC)).map(|b| b.amount.as_str()).collect();
    assert_eq!(usdc, vec!["2.5", "2.5"]);
    let broadcasts = w.broadcasts.borrow();
    let errors: Vec<&Value> = broadcasts.iter().filter(|m| m["type"] == "balance_snapshot_error").collect();
    assert_eq!(errors.len(), 1);
    assert!(errors[0]["data"]["error"].as_str().unwrap().contains(UNPRICED), "{}", errors[0]);
}

#[test]
fn a_token_call_that_fails_is_an_error_naming_the_token_and_account_not_a_zero() {
    use support::fake_http::{NOT_A_TOKEN, REVERTING};
    for (contract, why) in
        [(REVERTING, "execution reverted"), (NOT_A_TOKEN, "is the address a token contract?")]
    {
        let server = FakeHttp::start();
        let w = world(&server);
        w.accounts(1);
        w.ex.block_on(w.db.add_asset(token(contract, 18, "BAD", Some("bad")))).unwrap();
        let outcome = w.run("query_balances", jobs::query_balances(w.ctx.clone()));
        let Outcome::Failed(text) = outcome else { panic!("{outcome:?}") };
        let account = format!("0x{:040x}", 1);
        assert!(text.contains(&format!("eip155:1/erc20:{contract}")) && text.contains(&account), "{text}");
        assert!(text.contains(why), "{text}");
        assert_eq!(w.ex.block_on(w.db.snapshot_count()).unwrap(), 0, "no snapshot from a failed run");
        assert!(w.ex.block_on(w.db.balances()).unwrap().is_empty(), "nothing half written");
    }
}

#[test]
fn provider_faults_become_user_errors_with_rotkis_text() {
    let server = FakeHttp::start();
    let w = world(&server);
    w.ex.block_on(w.db.add_asset("bitcoin")).unwrap();
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
