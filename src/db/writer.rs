//! The single writer: a queue of write closures drained on the blocking pool, with group commit.
//!
//! `db.write` queues its closure and waits. When nothing is running, a pool thread starts and
//! takes everything queued (up to [`MAX_GROUP`]): one `BEGIN IMMEDIATE`, each closure in its own
//! savepoint (a failing closure rolls back alone), one `COMMIT`, then every caller gets its
//! result, and only after the commit. Under load many small writes share one commit; alone, a
//! write is exactly one transaction. The thread goes back to the pool when the queue is empty,
//! so an idle daemon holds no writer thread.
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, TransactionBehavior};

use super::{Error, IN_WRITE, Result, WriteTx};
use crate::runtime::panic_message;

/// Most closures that share one transaction.
pub const MAX_GROUP: usize = 256;

/// A queued write: runs the closure, returns whether it succeeded and how to deliver its
/// result once the fate of the commit is known.
type Job = Box<dyn FnOnce(&mut WriteTx<'_>) -> (bool, Deliver) + Send>;
/// Delivers a job's result; gets the commit error if the group's commit failed.
type Deliver = Box<dyn FnOnce(Option<&Arc<rusqlite::Error>>) + Send>;
/// Answers a job that could not run at all (the transaction could not begin, or closed).
type Reject = Box<dyn FnOnce(Error) + Send>;

/// A job's claim: the runner and a caller who gives up race for it.
pub(crate) const QUEUED: u8 = 0;
pub(crate) const STARTED: u8 = 1;
pub(crate) const ABANDONED: u8 = 2;

/// A job that needs the connection outside any transaction (ATTACH, VACUUM); it runs alone,
/// between groups, and answers its caller itself.
type RawJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// What a queued item does.
enum Work {
    /// A write closure, grouped with its neighbours in one transaction.
    Tx(Job),
    /// A raw job, alone.
    Raw(RawJob),
}

struct Queued {
    work: Work,
    reject: Reject,
    claim: Arc<AtomicU8>,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Queued>,
    /// A pool thread is draining the queue.
    running: bool,
    /// Why the writer stopped for good (its own code panicked); later writes fail with it.
    failed: Option<String>,
}

/// The writer connection and its queue. Shared by every clone of the database.
pub(crate) struct Writer {
    state: Mutex<State>,
    /// `None` once closed. Locked only by the runner thread (and by close).
    conn: Mutex<Option<Connection>>,
    /// Fires when the writer fails for good.
    failure: event_listener::Event,
    /// Transactions committed, for `status` and for tests that check grouping.
    commits: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    pub(crate) fn new(conn: Connection) -> Writer {
        Writer {
            state: Mutex::default(),
            conn: Mutex::new(Some(conn)),
            failure: event_listener::Event::new(),
            commits: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Queues `f`; the returned receiver yields its result after the commit. `claim` lets the
    /// caller abandon the job while it is still queued.
    pub(crate) fn submit<R, F>(
        self: &Arc<Self>,
        f: F,
        claim: Arc<AtomicU8>,
    ) -> async_channel::Receiver<Result<R>>
    where
        F: for<'c> FnOnce(&mut WriteTx<'c>) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = async_channel::bounded(1);
        let reject = reject_into(tx.clone());
        let job: Job = Box::new(move |wtx| {
            let outcome = match catch_unwind(AssertUnwindSafe(|| f(wtx))) {
                Ok(result) => result,
                Err(panic) => Err(Error::Panicked(panic_message(&panic))),
            };
            let ok = outcome.is_ok();
            let deliver: Deliver = Box::new(move |commit_error| {
                let result = match (outcome, commit_error) {
                    (Ok(_), Some(err)) => Err(Error::WriteFailed(err.clone())),
                    (outcome, _) => outcome,
                };
                let _ = tx.try_send(result);
            });
            (ok, deliver)
        });
        self.enqueue(Queued { work: Work::Tx(job), reject, claim });
        rx
    }

    /// Queues `f` to run on the writer connection outside any transaction, alone.
    pub(crate) fn submit_raw<R, F>(self: &Arc<Self>, f: F) -> async_channel::Receiver<Result<R>>
    where
        F: FnOnce(&mut Connection) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = async_channel::bounded(1);
        let reject = reject_into(tx.clone());
        let raw: RawJob = Box::new(move |conn| {
            let result = match catch_unwind(AssertUnwindSafe(|| f(conn))) {
                Ok(result) => result,
                Err(panic) => Err(Error::Panicked(panic_message(&panic))),
            };
            let _ = tx.try_send(result);
        });
        self.enqueue(Queued { work: Work::Raw(raw), reject, claim: Arc::new(AtomicU8::new(QUEUED)) });
        rx
    }

    fn enqueue(self: &Arc<Self>, queued: Queued) {
        let start = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(why) = &state.failed {
                (queued.reject)(Error::WriterFailed(why.clone()));
                return;
            }
            state.jobs.push_back(queued);
            !std::mem::replace(&mut state.running, true)
        };
        if start {
            let writer = self.clone();
            // Detached on purpose: the runner owns nothing but the queue it drains, and every
            // job it takes answers its caller through the job's own channel.
            blocking::unblock(move || writer.run_guarded()).detach();
        }
    }

    /// [`run`](Self::run), and if robin's own code in it panics (a closure's panic is caught
    /// per job), the writer stops for good: every queued and later write fails with the
    /// reason, and [`failed`](Self::failed) wakes, so that the daemon exits instead of
    /// answering while it can no longer write.
    fn run_guarded(&self) {
        let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.run())) else { return };
        let why = panic_message(&panic);
        log::error!("database: the writer failed: {why}");
        let rejected: Vec<Queued> = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.failed = Some(why.clone());
            state.running = false;
            state.jobs.drain(..).collect()
        };
        rejected.into_iter().for_each(|q| (q.reject)(Error::WriterFailed(why.clone())));
        self.failure.notify(usize::MAX);
    }

    /// Resolves with the reason once the writer has failed for good.
    pub(crate) async fn failed(&self) -> String {
        loop {
            let listener = self.failure.listen();
            if let Some(why) = self.state.lock().unwrap_or_else(|e| e.into_inner()).failed.clone() {
                return why;
            }
            listener.await;
        }
    }

    /// Drains the queue, group by group, then gives the thread back.
    fn run(&self) {
        crate::runtime::inject_fault("writer");
        loop {
            let group: Vec<Queued> = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if state.jobs.is_empty() {
                    state.running = false;
                    return;
                }
                let take = state.jobs.len().min(MAX_GROUP);
                state.jobs.drain(..take).collect()
            };
            let jobs: Vec<Queued> = group
                .into_iter()
                .filter(|q| {
                    q.claim.compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire).is_ok()
                })
                .collect();
            if jobs.is_empty() {
                continue;
            }
            let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
            let Some(conn) = conn.as_mut() else {
                jobs.into_iter().for_each(|q| (q.reject)(Error::Closed));
                continue;
            };
            // Runs of transaction jobs form groups; a raw job runs alone between them.
            let mut group = Vec::new();
            for queued in jobs {
                match queued.work {
                    Work::Tx(job) => group.push((job, queued.reject)),
                    Work::Raw(raw) => {
                        self.count_commit(run_group(conn, std::mem::take(&mut group)));
                        raw(conn);
                    }
                }
            }
            self.count_commit(run_group(conn, group));
        }
    }

    fn count_commit(&self, committed: bool) {
        if committed {
            self.commits.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Transactions committed so far.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Takes the connection out (for close); later writes fail with `Closed`.
    pub(crate) fn take_connection(&self) -> Option<Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Answers a job that never ran through its caller's channel.
fn reject_into<R: Send + 'static>(answer: async_channel::Sender<Result<R>>) -> Reject {
    Box::new(move |err| {
        let _ = answer.try_send(Err(err));
    })
}

/// Runs one group in one transaction; whether it committed.
fn run_group(conn: &mut Connection, jobs: Vec<(Job, Reject)>) -> bool {
    if jobs.is_empty() {
        return false;
    }
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(err) => {
            let err = Arc::new(err);
            jobs.into_iter().for_each(|(_, reject)| reject(Error::WriteFailed(err.clone())));
            return false;
        }
    };
    let grouped = jobs.len() > 1;
    let mut deliveries = Vec::with_capacity(jobs.len());
    let mut any_ok = false;
    IN_WRITE.with(|flag| flag.set(true));
    for (job, _) in jobs {
        let mut wtx = WriteTx::new(&tx);
        // Alone, the transaction itself is the job's scope; in a group each job gets a
        // savepoint so that its failure undoes only its own writes.
        let scoped = grouped && tx.execute_batch("SAVEPOINT robin_group_member").is_ok();
        let (ok, deliver) = job(&mut wtx);
        if scoped {
            let end = if ok {
                "RELEASE robin_group_member"
            } else {
                "ROLLBACK TO robin_group_member; RELEASE robin_group_member"
            };
            if let Err(err) = tx.execute_batch(end) {
                log::error!("database: cannot end a group savepoint: {err}");
            }
        }
        any_ok |= ok;
        deliveries.push(deliver);
    }
    IN_WRITE.with(|flag| flag.set(false));
    // Nothing to keep (a lone failed job): dropping the transaction rolls it back.
    let commit_error = if any_ok { tx.commit().err().map(Arc::new) } else { None };
    if let Some(err) = &commit_error {
        log::error!("database: commit failed, {} writes lost: {err}", deliveries.len());
    }
    for deliver in deliveries {
        deliver(commit_error.as_ref());
    }
    any_ok && commit_error.is_none()
}
