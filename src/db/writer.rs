//! The single writer: one thread that owns the writer connection and drains a queue of write
//! closures, with group commit.
//!
//! `db.write` queues its closure and waits. The writer takes everything queued (up to
//! [`MAX_GROUP`]): one `BEGIN IMMEDIATE`, each closure in its own savepoint (a failing closure
//! rolls back alone), one `COMMIT`, then every caller gets its result, and only after the
//! commit. Under load many small writes share one commit; alone, a write is exactly one
//! transaction.
//!
//! One awaited write at a time is what every UI action makes, and its cost was mostly thread
//! wake-ups, not SQLite: on the way in the blocking pool's condition variable, on the way back
//! the loop's reactor (`epoll_wait` returning, plus the system calls async-io makes around
//! every park). So, on a machine with more than one core:
//! - the writer is a thread of its own, and after its queue empties it stays awake for
//!   [`SPIN`] before it parks, so a caller that writes again as soon as it has its answer
//!   finds it awake; after [`IDLE_EXIT`] without work it hands the connection back and ends
//!   (an idle daemon holds no writer thread), and the next write starts a new one;
//! - a caller whose write the writer takes at once waits for the answer by yielding to the
//!   executor for up to [`ANSWER_SPIN`] (other tasks run meanwhile, and the loop still polls
//!   its reactor between them) before it sleeps; most single writes are answered within it.
//!
//! Both bounds are short, so an idle daemon spends no CPU. On one core both are off: spinning
//! there only takes the core from the thread it waits for. On a busy machine the same can
//! happen, so an answer spin that waited its whole window in vain is not tried again for the
//! next [`SKIP_AFTER_MISS`] writes ([`Spin`]). The writer's idle spin does not back off: its
//! window passes in vain at the end of every burst (no next write came), which says nothing
//! about the machine, and it costs at most [`SPIN`] of the writer thread's CPU per burst. The
//! writer never runs on the loop thread, and a saturated pool (long reads, backups) cannot
//! hold writes up.
//!
//! The write timeout only concerns a write that waits behind other work: [`Writer::submit`]
//! says whether the writer was busy or had a queue when the write arrived, and only then does
//! the caller arm a timer (a timer costs the loop a reactor wake-up and three system calls). A
//! write that finds the writer idle is the next thing it takes.
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::Thread;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

use super::{Error, IN_WRITE, Result, WriteTx};
use crate::runtime::panic_message;

/// Most closures that share one transaction.
pub const MAX_GROUP: usize = 256;

/// How long the writer stays awake after its queue empties, for a caller's next write.
pub const SPIN: Duration = Duration::from_micros(50);

/// How long a caller whose write was taken at once yields before it sleeps on the answer. A
/// one-row write takes 15-40 us on this project's 2-core test VM (SQLCipher's page encryption
/// included; bench/db_bench.rs); a longer one pays the wake-up it would have paid anyway.
pub const ANSWER_SPIN: Duration = Duration::from_micros(200);

/// How long a parked writer thread waits for work before it ends.
pub const IDLE_EXIT: Duration = Duration::from_secs(1);

/// How many waits go without spinning after a spin that waited its whole window in vain.
pub const SKIP_AFTER_MISS: u32 = 64;

/// A bounded busy-wait that backs off when it does not pay: after a miss (the window passed
/// without the awaited event, typically because the cores are busy with other work and the
/// thread it waits for is not running) the next [`SKIP_AFTER_MISS`] waits sleep at once.
struct Spin {
    window: Duration,
    /// Waits left to go without spinning; `u32::MAX` for never (one core).
    skip: std::sync::atomic::AtomicU32,
    /// Waits to skip after a miss (0: a miss changes nothing).
    skip_after_miss: u32,
}

impl Spin {
    fn new(window: Duration, enabled: bool, skip_after_miss: u32) -> Spin {
        let skip = std::sync::atomic::AtomicU32::new(if enabled { 0 } else { u32::MAX });
        Spin { window, skip, skip_after_miss }
    }

    /// Spins until `ready` gives something or the window ends; `None` if it ended (or this
    /// wait skips spinning).
    fn until<T>(&self, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
        if !self.try_now() {
            return None;
        }
        let until = Instant::now() + self.window;
        loop {
            if let Some(found) = ready() {
                return Some(found);
            }
            if Instant::now() >= until {
                self.missed();
                return None;
            }
            std::hint::spin_loop();
        }
    }

    /// Whether this wait spins (and counts one skipped wait if not).
    fn try_now(&self) -> bool {
        let skip = self.skip.load(Ordering::Relaxed);
        if skip == 0 {
            return true;
        }
        if skip != u32::MAX {
            self.skip.store(skip - 1, Ordering::Relaxed);
        }
        false
    }

    fn missed(&self) {
        if self.skip_after_miss > 0 {
            self.skip.store(self.skip_after_miss, Ordering::Relaxed);
        }
    }
}

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

/// A job that needs the connection outside any transaction (ATTACH, export); it runs alone,
/// between groups, and answers its caller itself.
type RawJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// What a queued item does.
enum Work {
    /// A write closure, grouped with its neighbours in one transaction.
    Tx(Job),
    /// A raw job, alone.
    Raw(RawJob),
    /// Checkpoint the WAL, close the connection and end the thread; answers when done.
    Close(async_channel::Sender<()>),
}

struct Queued {
    work: Work,
    reject: Reject,
    claim: Arc<AtomicU8>,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Queued>,
    /// The writer is running a group (or a raw job): a write queued now waits behind it.
    busy: bool,
    /// The writer thread is parked (or about to park) and must be unparked for new work.
    parked: bool,
    /// No more work is taken: the database was closed or dropped.
    closed: bool,
    /// Why the writer stopped for good (its own code panicked); later writes fail with it.
    failed: Option<String>,
    /// The connection, while no writer thread holds it.
    conn: Option<Connection>,
    /// The writer thread, while there is one.
    thread: Option<Thread>,
}

/// What the writer thread and the callers share.
struct Shared {
    state: Mutex<State>,
    /// Set when a job is queued, so that the spinning writer need not take the lock to look.
    queued: AtomicBool,
    /// Fires when the writer fails for good.
    failure: event_listener::Event,
    /// Transactions committed, for `status` and for tests that check grouping.
    commits: AtomicU64,
    /// The writer's wait for a next write after its queue empties.
    idle_spin: Spin,
    /// A caller's wait for the answer to a write the writer took at once.
    answer_spin: Spin,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A handle to the writer's queue (and its thread, while it runs). Dropping it (the last clone
/// of the database) closes the connection off the caller's thread: on the writer thread after
/// what is queued, or on the blocking pool when no thread is running.
pub(crate) struct Writer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

/// A queued write's answer, and whether it may wait behind other work (then the caller bounds
/// the wait with its write timeout; otherwise the writer takes it next).
pub(crate) struct Submitted<R> {
    pub answer: async_channel::Receiver<Result<R>>,
    pub behind_other_work: bool,
}

impl Writer {
    /// The writer for `conn`; its thread starts with the first write. Blocking (it asks the
    /// system for its cores): call it where `conn` was opened, on the pool.
    pub(crate) fn new(conn: Connection) -> Writer {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shared = Arc::new(Shared {
            state: Mutex::new(State { conn: Some(conn), ..State::default() }),
            queued: AtomicBool::new(false),
            failure: event_listener::Event::new(),
            commits: AtomicU64::new(0),
            idle_spin: Spin::new(SPIN, cores > 1, 0),
            answer_spin: Spin::new(ANSWER_SPIN, cores > 1, SKIP_AFTER_MISS),
        });
        Writer { shared }
    }

    /// Queues `f`; the answer yields its result after the commit. `claim` lets the caller
    /// abandon the job while it is still queued.
    pub(crate) fn submit<R, F>(&self, f: F, claim: Arc<AtomicU8>) -> Submitted<R>
    where
        F: for<'c> FnOnce(&mut WriteTx<'c>) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, answer) = async_channel::bounded(1);
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
        let behind_other_work = self.enqueue(Queued { work: Work::Tx(job), reject, claim });
        Submitted { answer, behind_other_work }
    }

    /// Queues `f` to run on the writer connection outside any transaction, alone.
    pub(crate) fn submit_raw<R, F>(&self, f: F) -> async_channel::Receiver<Result<R>>
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

    /// Waits for the answer to a write the writer took at once: yielding for a short while
    /// (see the module doc), then asleep.
    pub(crate) async fn answer<R>(&self, answer: async_channel::Receiver<Result<R>>) -> Result<R> {
        let spin = &self.shared.answer_spin;
        if spin.try_now() {
            let until = Instant::now() + spin.window;
            loop {
                match answer.try_recv() {
                    Ok(result) => return result,
                    Err(async_channel::TryRecvError::Closed) => return Err(Error::Closed),
                    // The clock is read after the look, so the last look comes after the window:
                    // other tasks may have run past it while the answer came.
                    Err(async_channel::TryRecvError::Empty) if Instant::now() >= until => {
                        spin.missed();
                        break;
                    }
                    // Not `std::hint::spin_loop`: the loop's other tasks run meanwhile.
                    Err(async_channel::TryRecvError::Empty) => futures_lite::future::yield_now().await,
                }
            }
        }
        answer.recv().await.unwrap_or(Err(Error::Closed))
    }

    /// Finishes the writes queued so far, checkpoints the WAL and closes the connection; later
    /// writes fail with `Closed`. Resolves when the connection is closed.
    pub(crate) async fn close(&self) {
        let (done, closed) = async_channel::bounded(1);
        let reject: Reject = {
            let done = done.clone();
            Box::new(move |_| drop(done))
        };
        self.enqueue(Queued { work: Work::Close(done), reject, claim: Arc::new(AtomicU8::new(QUEUED)) });
        // Err once the sender is gone: closed already, or the writer failed.
        let _ = closed.recv().await;
    }

    /// Queues `queued` and wakes the writer if it parked; whether the writer was busy or had
    /// a queue (the job may wait).
    fn enqueue(&self, queued: Queued) -> bool {
        let mut state = self.shared.lock();
        if let Some(why) = &state.failed {
            let why = why.clone();
            drop(state);
            (queued.reject)(Error::WriterFailed(why));
            return false;
        }
        if state.closed {
            drop(state);
            (queued.reject)(Error::Closed);
            return false;
        }
        let behind_other_work = state.busy || !state.jobs.is_empty();
        let unpark = match (state.thread.clone(), state.conn.take()) {
            (Some(thread), _) => std::mem::replace(&mut state.parked, false).then_some(thread),
            (None, Some(conn)) => match self.spawn_thread(conn) {
                Ok(thread) => {
                    state.thread = Some(thread);
                    None
                }
                Err((conn, err)) => {
                    log::error!("database: cannot start the writer thread: {err}");
                    if let Work::Close(done) = queued.work {
                        // Closing needs no writer thread: nothing is queued (no thread runs),
                        // so close here and checkpoint on the pool, as before the writer had
                        // a thread; `close` resolves when `done` goes.
                        state.closed = true;
                        drop(state);
                        blocking::unblock(move || {
                            let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
                            drop(conn);
                            drop(done);
                        })
                        .detach();
                        return false;
                    }
                    state.conn = Some(conn);
                    drop(state);
                    (queued.reject)(Error::WriterThread(err));
                    return false;
                }
            },
            // Unreachable: the connection is with the thread or here until closed.
            (None, None) => {
                drop(state);
                (queued.reject)(Error::Closed);
                return false;
            }
        };
        state.jobs.push_back(queued);
        self.shared.queued.store(true, Ordering::Release);
        drop(state);
        if let Some(thread) = unpark {
            thread.unpark();
        }
        behind_other_work
    }

    /// Starts a writer thread with `conn` (given back if the system refuses a thread).
    fn spawn_thread(&self, conn: Connection) -> std::result::Result<Thread, (Connection, std::io::Error)> {
        // The connection crosses over through a slot so that a refused spawn can give it back.
        let slot = Arc::new(Mutex::new(Some(conn)));
        let runner = (self.shared.clone(), slot.clone());
        let spawned = std::thread::Builder::new().name("robin-db-writer".into()).spawn(move || {
            let (shared, slot) = runner;
            let conn = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(conn) = conn {
                run_guarded(&shared, conn);
            }
        });
        match spawned {
            Ok(handle) => Ok(handle.thread().clone()),
            Err(err) => {
                let conn = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
                Err((conn.expect("the thread never started"), err))
            }
        }
    }

    /// Resolves with the reason once the writer has failed for good.
    pub(crate) async fn failed(&self) -> String {
        loop {
            let listener = self.shared.failure.listen();
            if let Some(why) = self.shared.lock().failed.clone() {
                return why;
            }
            listener.await;
        }
    }

    /// Transactions committed so far.
    pub(crate) fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // The last handle: nobody can queue anything any more. A running thread finishes what
        // is queued, closes the connection and ends; without one, the pool closes it.
        let mut state = self.shared.lock();
        state.closed = true;
        let unpark = std::mem::replace(&mut state.parked, false).then(|| state.thread.clone()).flatten();
        let idle_conn = state.conn.take();
        drop(state);
        if let Some(thread) = unpark {
            thread.unpark();
        }
        if let Some(conn) = idle_conn {
            blocking::unblock(move || drop(conn)).detach();
        }
    }
}

/// [`run`], and if robin's own code in it panics (a closure's panic is caught per job), the
/// writer stops for good: every queued and later write fails with the reason, and
/// [`Writer::failed`] wakes, so that the daemon exits instead of answering while it can no
/// longer write.
fn run_guarded(shared: &Shared, conn: Connection) {
    // The batch `run` works through lives here, so that what a panic leaves of it (taken from
    // the queue, not yet started) is answered with the reason below instead of being dropped,
    // which would answer `Closed`.
    let mut batch = VecDeque::new();
    let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(shared, conn, &mut batch))) else { return };
    let why = panic_message(&panic);
    log::error!("database: the writer failed: {why}");
    let rejected: Vec<Queued> = {
        let mut state = shared.lock();
        state.failed = Some(why.clone());
        state.busy = false;
        batch.drain(..).chain(state.jobs.drain(..)).collect()
    };
    rejected.into_iter().for_each(|q| (q.reject)(Error::WriterFailed(why.clone())));
    shared.failure.notify(usize::MAX);
}

/// Takes the queue group by group until the database is closed or the writer idles out.
fn run(shared: &Shared, conn: Connection, batch: &mut VecDeque<Queued>) {
    let mut slot = Some(conn);
    loop {
        let Some(taken) = next_group(shared, &mut slot) else { return };
        *batch = taken;
        let Some(conn) = slot.as_mut() else { return };
        crate::runtime::inject_fault("writer");
        // Runs of transaction jobs form groups; a raw job runs alone between them.
        let mut group = Vec::new();
        while let Some(queued) = batch.pop_front() {
            if queued.claim.compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire).is_err() {
                continue;
            }
            match queued.work {
                Work::Tx(job) => group.push((job, queued.reject)),
                Work::Raw(raw) => {
                    run_group(conn, std::mem::take(&mut group)).deliver(shared);
                    raw(conn);
                }
                Work::Close(done) => {
                    run_group(conn, std::mem::take(&mut group)).deliver(shared);
                    close(shared, &mut slot);
                    batch.drain(..).for_each(|q| (q.reject)(Error::Closed));
                    drop(done);
                    return;
                }
            }
        }
        let last = run_group(conn, group);
        // Not busy before the answers go out: a caller that writes again at once must find
        // the writer idle, or it would arm a timer it does not need (see `submit`).
        shared.lock().busy = false;
        last.deliver(shared);
    }
}

/// Waits for work (spinning for [`SPIN`], then parked) and takes up to [`MAX_GROUP`] jobs.
/// `None` ends the thread: the database is closed and nothing is left (the connection closes
/// with the thread), or nothing came for [`IDLE_EXIT`] (the connection goes back to the
/// shared state, for the next write's thread).
fn next_group(shared: &Shared, conn: &mut Option<Connection>) -> Option<VecDeque<Queued>> {
    let mut spun = false;
    let mut idle_since: Option<Instant> = None;
    loop {
        let mut state = shared.lock();
        if !state.jobs.is_empty() {
            let take = state.jobs.len().min(MAX_GROUP);
            state.busy = true;
            if take == state.jobs.len() {
                shared.queued.store(false, Ordering::Release);
            }
            return Some(state.jobs.drain(..take).collect());
        }
        if state.closed {
            state.thread = None;
            return None;
        }
        if idle_since.is_some_and(|since| since.elapsed() >= IDLE_EXIT) {
            state.conn = conn.take();
            state.thread = None;
            state.parked = false;
            return None;
        }
        if !spun {
            drop(state);
            spun = true;
            shared.idle_spin.until(|| shared.queued.load(Ordering::Acquire).then_some(()));
            continue;
        }
        state.parked = true;
        drop(state);
        let since = *idle_since.get_or_insert_with(Instant::now);
        // Unparked by `enqueue` or by the last handle's drop; an early wake-up only loops.
        std::thread::park_timeout(IDLE_EXIT.saturating_sub(since.elapsed()));
    }
}

/// Closes the connection after a WAL checkpoint; later writes fail with `Closed`.
fn close(shared: &Shared, conn: &mut Option<Connection>) {
    if let Some(conn) = conn.take() {
        let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }
    let rejected: Vec<Queued> = {
        let mut state = shared.lock();
        state.closed = true;
        state.thread = None;
        state.busy = false;
        state.jobs.drain(..).collect()
    };
    rejected.into_iter().for_each(|q| (q.reject)(Error::Closed));
}

/// What a group's transaction came to: its callers' answers, not yet sent.
struct Ran {
    deliveries: Vec<Deliver>,
    /// Why the commit failed, if it did.
    commit_error: Option<Arc<rusqlite::Error>>,
    committed: bool,
}

impl Ran {
    const NOTHING: Ran = Ran { deliveries: Vec::new(), commit_error: None, committed: false };

    /// Counts the commit and answers every caller.
    fn deliver(self, shared: &Shared) {
        if self.committed {
            shared.commits.fetch_add(1, Ordering::Relaxed);
        }
        for deliver in self.deliveries {
            deliver(self.commit_error.as_ref());
        }
    }
}

/// Answers a job that never ran through its caller's channel.
fn reject_into<R: Send + 'static>(answer: async_channel::Sender<Result<R>>) -> Reject {
    Box::new(move |err| {
        let _ = answer.try_send(Err(err));
    })
}

/// Runs one group in one transaction; the answers wait for [`Ran::deliver`].
fn run_group(conn: &mut Connection, jobs: Vec<(Job, Reject)>) -> Ran {
    if jobs.is_empty() {
        return Ran::NOTHING;
    }
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(err) => {
            let err = Arc::new(err);
            jobs.into_iter().for_each(|(_, reject)| reject(Error::WriteFailed(err.clone())));
            return Ran::NOTHING;
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
    let committed = any_ok && commit_error.is_none();
    Ran { deliveries, commit_error, committed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_one(writer: &Writer, value: i64) -> Result<i64> {
        let claim = Arc::new(AtomicU8::new(QUEUED));
        let submitted = writer.submit(
            move |tx| {
                tx.execute("INSERT INTO t (v) VALUES (?1)", [value])?;
                Ok(value)
            },
            claim,
        );
        futures_lite::future::block_on(writer.answer(submitted.answer))
    }

    fn has_thread(writer: &Writer) -> bool {
        writer.shared.lock().thread.is_some()
    }

    #[test]
    fn the_thread_starts_with_a_write_and_ends_when_idle() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let writer = Writer::new(conn);
        assert!(!has_thread(&writer), "no thread before the first write");
        assert_eq!(write_one(&writer, 1).unwrap(), 1);
        assert!(has_thread(&writer));
        let deadline = Instant::now() + IDLE_EXIT * 10;
        while has_thread(&writer) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!has_thread(&writer), "the writer thread outlived {IDLE_EXIT:?} without work");
        assert!(writer.shared.lock().conn.is_some(), "the connection was handed back");
        // The next write starts a new thread on the same connection.
        assert_eq!(write_one(&writer, 2).unwrap(), 2);
        let raw = writer
            .submit_raw(|conn| Ok(conn.query_row::<i64, _, _>("SELECT sum(v) FROM t", [], |r| r.get(0))?));
        assert_eq!(futures_lite::future::block_on(raw.recv()).unwrap().unwrap(), 3);
    }

    #[test]
    fn a_pause_between_writes_does_not_turn_the_idle_spin_off() {
        // The idle spin is for a caller that writes again as soon as it has its answer. Its
        // back-off is meant for a busy machine; but its window also passes in vain whenever
        // no next write comes, the normal end of every burst, and that counts as a miss: the
        // next SKIP_AFTER_MISS groups do not spin, so a UI action's few writes after a pause
        // each pay the park and unpark the spin exists to save.
        if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            return; // the spin is off on one core
        }
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        let writer = Writer::new(conn);
        write_one(&writer, 1).unwrap();
        std::thread::sleep(Duration::from_millis(50)); // the user thinks; the machine is idle
        assert_eq!(
            writer.shared.idle_spin.skip.load(Ordering::Relaxed),
            0,
            "an idle pause made the writer skip its idle spin for the next writes"
        );
    }

    #[test]
    fn an_answer_that_came_while_the_loop_was_busy_is_no_miss() {
        // The caller yields to other tasks while it waits; if one of them runs past the
        // window, the answer is there when the caller runs again. That is no sign of a busy
        // machine, yet it was counted as a miss and switched the answer spin off for the next
        // SKIP_AFTER_MISS writes.
        if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            return; // the spin is off on one core
        }
        let conn = Connection::open_in_memory().unwrap();
        let writer = Writer::new(conn);
        let submitted = writer.submit(
            |_| {
                std::thread::sleep(Duration::from_micros(100)); // not answered at the first look
                Ok(())
            },
            Arc::new(AtomicU8::new(QUEUED)),
        );
        let busy_task = async { std::thread::sleep(ANSWER_SPIN * 10) }; // another task, long
        let (result, ()) = futures_lite::future::block_on(futures_lite::future::zip(
            writer.answer(submitted.answer),
            busy_task,
        ));
        result.unwrap();
        assert_eq!(writer.shared.answer_spin.skip.load(Ordering::Relaxed), 0, "counted as a miss");
    }
}
