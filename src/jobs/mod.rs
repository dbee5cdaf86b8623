//! The daemon's main work: prices, balances, balance snapshots and backups, as periodic jobs.
//!
//! Owns the jobs' logic and policy: which assets and accounts to query, batching, exact
//! decimal arithmetic (wei as integers, prices as decimal strings, never floats), the snapshot,
//! how often each job runs ([`register`]) and what their progress means to a UI
//! ([`progress_message`]). It queries through [`outbound`](crate::outbound), reads the current
//! database from the [`Session`] and writes through [`db`](crate::db) (a run's results in one
//! transaction, so a cancelled job leaves nothing half written), reports progress through the
//! task tracker and broadcasts typed notifier messages through a sink the daemon connects.
//!
//! May touch: `outbound`, `db`, the control session (to read the current database), the task
//! tracker, and the notifier's message types.
mod backup;
mod balances;
mod error;
mod prices;

use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::control::Session;
use crate::db::{BackupPolicy, Database};
use crate::notifier::Message;
use crate::notifier::payloads::Progress;
use crate::tasks::{JobFuture, PeriodicJob, ProgressReport, Scheduler, TaskError, TaskManager};

pub use backup::backup;
pub use balances::{RPC_BATCH, query_balances};
pub use error::{Error, Result};
pub use prices::{PRICE_BATCH, query_prices};

/// The CoinGecko id of Ethereum's native coin, the asset of every `eth` account.
pub const NATIVE_ASSET: &str = "ethereum";
/// The price job's name (and its progress topic).
pub const PRICES: &str = "query_prices";
/// The balance job's name (and its progress topic).
pub const BALANCES: &str = "query_balances";
/// The backup job's name.
pub const BACKUP: &str = "db_backup";
/// How often prices are queried, unless the `prices_interval_secs` setting says otherwise.
pub const PRICES_INTERVAL: Duration = Duration::from_secs(300);
/// How often balances are queried, unless the `balances_interval_secs` setting says otherwise.
pub const BALANCES_INTERVAL: Duration = Duration::from_secs(3600);

/// Sends a message to every client.
pub type Broadcast = Rc<dyn Fn(Message)>;

/// What a job run needs. Built once by the daemon; jobs read the current database when they run.
pub struct JobContext {
    /// The shared outbound client.
    pub http: Rc<crate::outbound::Client>,
    /// Which database is current (the default one, or an unlocked user's).
    pub session: Rc<Session>,
    /// For progress reports.
    pub tasks: TaskManager,
    /// To every client.
    pub broadcast: Broadcast,
    /// Called after a balance query succeeded (rotki starts scheduling then).
    pub after_balances: Rc<dyn Fn()>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext").finish_non_exhaustive()
    }
}

impl JobContext {
    fn database(&self) -> Result<Database> {
        self.session.database().ok_or(Error::NoDatabase)
    }
}

/// Registers robin's jobs with the scheduler. Every job runs only while a database is open.
pub fn register(scheduler: &Scheduler, ctx: Rc<JobContext>, backups: BackupPolicy) {
    if let Some(interval) = backups.interval {
        let session = ctx.session.clone();
        scheduler.register(PeriodicJob {
            name: BACKUP.into(),
            interval,
            jitter: Duration::from_secs(60),
            maybe: Box::new(move || {
                if session.database().is_none() {
                    return Vec::new();
                }
                vec![Box::pin(boxed(backup(session.clone(), backups.keep)))]
            }),
        });
    }
    type Run = fn(Rc<JobContext>) -> JobFuture;
    let queries: [(&str, Duration, Run); 2] = [
        (PRICES, PRICES_INTERVAL, |ctx| Box::pin(boxed(query_prices(ctx)))),
        (BALANCES, BALANCES_INTERVAL, |ctx| Box::pin(boxed(query_balances(ctx)))),
    ];
    for (name, interval, run) in queries {
        let ctx = ctx.clone();
        scheduler.register(PeriodicJob {
            name: name.into(),
            interval,
            jitter: interval / 20,
            maybe: Box::new(move || {
                if ctx.session.database().is_none() { Vec::new() } else { vec![run(ctx.clone())] }
            }),
        });
    }
}

/// A job's future with its error boxed, as the task tracker takes it.
async fn boxed(
    job: impl std::future::Future<Output = Result<serde_json::Value>>,
) -> Result<serde_json::Value, TaskError> {
    job.await.map_err(Into::into)
}

/// What a job's progress report means to a UI: the `progress_updates` message for it. The
/// balance job has no rotki subtype; robin's own is documented as an extension.
pub fn progress_message(report: &ProgressReport) -> Option<Message> {
    let (total, processed) = (report.total, report.processed);
    let progress = match report.topic {
        PRICES => Progress::MultiplePricesQueryStatus { total, processed },
        BALANCES => Progress::BalancesQueryStatus { total, processed },
        _ => return None,
    };
    Some(Message::ProgressUpdates(progress))
}

/// Reads a setting, or its default.
async fn setting(db: &Database, name: &str, default: &str) -> Result<String> {
    Ok(db.setting(name.into()).await?.unwrap_or_else(|| default.into()))
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
