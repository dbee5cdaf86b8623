//! The session: which database is current (the default one, or an unlocked user's) and the
//! switch between them.
//!
//! Commands and jobs ask the session for the current database when they run, so after an
//! `unlock` they work on the user's database. A switch starts clean, as a rotki login does:
//! every task is cancelled, scheduling is off, and last-run times and job intervals come from
//! the new database. The session also knows the data directory's layout, and so what a backup
//! must leave alone ([`Session::live_area`]).
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::controller::Caller;
use super::error::{Error, Result};
use super::params;
use crate::db::{self, Database};
use crate::tasks::{DatabaseStore, Scheduler, TaskManager};

/// The directory inside the data directory that holds one directory per user.
const USERS_DIR_NAME: &str = "users";

/// The current database and who unlocked it. Lives on the loop thread; share it as `Rc`.
#[derive(Debug)]
pub struct Session {
    /// Cancelled on every switch.
    tasks: TaskManager,
    /// The periodic scheduler, when the `scheduler` feature is on.
    scheduler: RefCell<Option<Rc<Scheduler>>>,
    /// The default (plain) database opened at start-up.
    default: RefCell<Option<Database>>,
    /// The unlocked user and their database, if any.
    user: RefCell<Option<(String, Database)>>,
    /// The data directory (user databases live in `DATA/users/<username>/robin.db`) and how
    /// user databases are opened.
    data_dir: RefCell<Option<(PathBuf, db::Options)>>,
    /// An unlock or logout is in progress: another one is refused until it ends.
    switching: Cell<bool>,
    /// Wrong passwords in a row per caller, and when that caller may try again.
    failures: RefCell<HashMap<Guesser, (u32, Instant)>>,
    /// The daemon's own files that no backup may replace, besides the data directory.
    protected: RefCell<db::LiveArea>,
}

/// The longest a caller waits between unlock attempts after wrong passwords.
pub const MAX_UNLOCK_BACKOFF: Duration = Duration::from_secs(300);
/// Who a wrong password is counted against: the user when the kernel says who it is (a
/// loopback client chooses its source address among 127.0.0.0/8, so an address would be a
/// fresh guesser at each attempt), else the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Guesser {
    Uid(u32),
    Addr(std::net::IpAddr),
    Unidentified,
}

impl Guesser {
    fn of(caller: &Caller) -> Guesser {
        match (caller.uid, caller.addr) {
            (Some(uid), _) => Guesser::Uid(uid),
            (None, Some(addr)) => Guesser::Addr(addr),
            (None, None) => Guesser::Unidentified,
        }
    }
}

/// Callers whose failures are remembered; the oldest are forgotten past this.
const MAX_REMEMBERED_CALLERS: usize = 1024;

/// Holds the session's switch for one unlock or logout.
struct Switching<'a>(&'a Cell<bool>);

impl<'a> Switching<'a> {
    fn begin(flag: &'a Cell<bool>) -> Result<Switching<'a>> {
        if flag.replace(true) {
            return Err(Error::Conflict(
                "another unlock or logout is in progress; try again when it ends".into(),
            ));
        }
        Ok(Switching(flag))
    }
}

impl Drop for Switching<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl Session {
    /// A session with no database yet.
    pub fn new(tasks: TaskManager) -> Rc<Session> {
        Rc::new(Session {
            tasks,
            scheduler: RefCell::default(),
            default: RefCell::default(),
            user: RefCell::default(),
            data_dir: RefCell::default(),
            switching: Cell::new(false),
            failures: RefCell::default(),
            protected: RefCell::new(process_files()),
        })
    }

    /// The current database: the unlocked user's, else the default one.
    pub fn database(&self) -> Option<Database> {
        if let Some((_, db)) = self.user.borrow().as_ref() {
            return Some(db.clone());
        }
        self.default.borrow().clone()
    }

    /// The current database, or the error a command reports without one.
    pub fn require_database(&self) -> Result<Database> {
        self.database().ok_or(Error::NoDatabase)
    }

    /// The unlocked user, if any.
    pub fn user(&self) -> Option<String> {
        self.user.borrow().as_ref().map(|(name, _)| name.clone())
    }

    /// Sets the default database (or none, after it closed).
    pub fn set_default_database(&self, database: Option<Database>) {
        *self.default.borrow_mut() = database;
    }

    /// Sets the data directory. Enables `unlock` (user databases live in
    /// `data_dir/users/<username>/robin.db`, opened with `options`) and tells backups what to
    /// leave alone.
    pub fn set_data_dir(&self, data_dir: PathBuf, options: db::Options) {
        *self.data_dir.borrow_mut() = Some((data_dir, options));
    }

    /// What a backup must leave alone besides the current database's own files: the default
    /// database, the data directory's lock file, and everything in the data directory except
    /// the `backups/` directory beside each database. Lists the users on the blocking pool.
    pub async fn live_area(&self) -> db::LiveArea {
        let mut live = self.protected.borrow().clone();
        if let Some(default) = self.default.borrow().as_ref() {
            live = live.with_database(default);
        }
        let data_dir = self.data_dir.borrow().as_ref().map(|(dir, _)| dir.clone());
        match data_dir {
            Some(data_dir) => blocking::unblock(move || live_data_dir(live, &data_dir)).await,
            None => live,
        }
    }

    /// Adds files and directories of the daemon's that no backup may replace or go into (its
    /// configuration file, its runtime directory).
    pub fn protect(&self, extend: impl FnOnce(db::LiveArea) -> db::LiveArea) {
        let current = self.protected.replace(db::LiveArea::new());
        *self.protected.borrow_mut() = extend(current);
    }

    /// Records the scheduler (or none).
    pub fn set_scheduler(&self, scheduler: Option<Rc<Scheduler>>) {
        *self.scheduler.borrow_mut() = scheduler;
    }

    /// The scheduler, when the `scheduler` feature is on.
    pub fn scheduler(&self) -> Option<Rc<Scheduler>> {
        self.scheduler.borrow().clone()
    }

    /// Opens a user's encrypted database (created on first unlock) and makes it current. One
    /// unlock or logout at a time; after a wrong password, `caller` waits longer each time
    /// before it may try again.
    pub async fn unlock(
        &self,
        username: String,
        password: db::Password,
        caller: &Caller,
    ) -> Result<Database> {
        let _switching = Switching::begin(&self.switching)?;
        if let Some(user) = self.user() {
            return Err(Error::Conflict(format!("user '{user}' is unlocked; logout first")));
        }
        self.check_backoff(caller)?;
        let opened = self.open_user(&username, password).await;
        match &opened {
            Err(Error::Database(db::Error::WrongPassword(_))) => self.record_failure(&username, caller),
            Ok(_) => {
                self.failures.borrow_mut().remove(&Guesser::of(caller));
            }
            Err(_) => {}
        }
        opened
    }

    async fn open_user(&self, username: &str, password: db::Password) -> Result<Database> {
        let (dir, options) =
            self.data_dir.borrow().clone().ok_or(Error::Disabled("user databases are not set up"))?;
        let user_dir = dir.join(USERS_DIR_NAME).join(username);
        let create = user_dir.clone();
        blocking::unblock(move || std::fs::DirBuilder::new().recursive(true).mode(0o700).create(create))
            .await
            .map_err(|e| Error::Conflict(format!("cannot create {}: {e}", user_dir.display())))?;
        let db = Database::open(&user_dir.join(crate::config::DATABASE_FILE_NAME), Some(password), options)
            .await?;
        self.switch_to(&db);
        *self.user.borrow_mut() = Some((username.to_string(), db.clone()));
        self.apply_schedule_settings().await;
        log::info!("user '{username}' unlocked");
        Ok(db)
    }

    /// Refuses an unlock from a caller still waiting after wrong passwords.
    fn check_backoff(&self, caller: &Caller) -> Result<()> {
        match self.failures.borrow().get(&Guesser::of(caller)) {
            Some((_, until)) if *until > Instant::now() => {
                let wait = until.duration_since(Instant::now()).as_secs() + 1;
                Err(Error::Conflict(format!("too many wrong passwords; try again in {wait} s")))
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong password: the caller waits 1, 2, 4, ... seconds (at most
    /// [`MAX_UNLOCK_BACKOFF`]) before the next attempt. The password itself is never logged.
    fn record_failure(&self, username: &str, caller: &Caller) {
        let mut failures = self.failures.borrow_mut();
        let guesser = Guesser::of(caller);
        if failures.len() >= MAX_REMEMBERED_CALLERS && !failures.contains_key(&guesser) {
            let oldest = failures.iter().min_by_key(|(_, (_, until))| *until).map(|(g, _)| *g);
            if let Some(oldest) = oldest {
                failures.remove(&oldest);
            }
        }
        let count = failures.get(&guesser).map_or(0, |(n, _)| *n).saturating_add(1);
        let wait = Duration::from_secs(1u64 << (count - 1).min(16)).min(MAX_UNLOCK_BACKOFF);
        failures.insert(guesser, (count, crate::runtime::deadline_after(wait)));
        log::warn!(
            "unlock of user '{username}' by {caller}: wrong password ({count} in a row); next attempt allowed in {wait:?}"
        );
    }

    /// Closes the user's database and returns to the default one; the user's name.
    pub async fn logout(&self) -> Result<String> {
        let _switching = Switching::begin(&self.switching)?;
        let Some(username) = self.user() else {
            return Err(Error::Conflict("no user is unlocked".into()));
        };
        self.close_user_database().await;
        if let Some(db) = self.default.borrow().clone() {
            self.switch_to(&db);
        }
        self.apply_schedule_settings().await;
        log::info!("user '{username}' logged out");
        Ok(username)
    }

    /// Closes the unlocked user's database, if any (logout, shutdown).
    pub async fn close_user_database(&self) {
        let user = self.user.borrow_mut().take();
        if let Some((_, db)) = user {
            db.close().await;
        }
    }

    /// Applies the stored job intervals to the scheduler (at start, unlock and logout).
    pub async fn apply_schedule_settings(&self) {
        let Some(db) = self.database() else { return };
        let Ok(stored) = db.settings().await else { return };
        for (name, value) in stored {
            self.apply_interval(&name, &value);
        }
    }

    /// Applies one setting to the scheduler when it is a job's interval.
    pub fn apply_interval(&self, setting: &str, value: &str) {
        let Some((_, job)) = params::INTERVAL_SETTINGS.iter().find(|(s, _)| *s == setting) else { return };
        let (Some(scheduler), Ok(secs)) = (self.scheduler(), value.parse::<u64>()) else { return };
        scheduler.set_interval(job, std::time::Duration::from_secs(secs));
    }

    /// A switch starts clean: every task is cancelled, scheduling is off, and last-run times
    /// come from the new database.
    fn switch_to(&self, db: &Database) {
        let cancelled = match self.scheduler() {
            Some(scheduler) => {
                scheduler.set_store(Rc::new(DatabaseStore::new(db.clone())));
                scheduler.clear()
            }
            None => self.tasks.clear(),
        };
        if cancelled > 0 {
            log::info!("cancelled {cancelled} tasks on the database switch");
        }
    }
}

/// Adds the data directory to `live`: its lock file, the directory itself and each user's
/// directory, with the `backups/` beside each database let through. Blocking: lists the users.
/// The process's own files: its executable and wherever its output goes (a backup onto
/// `/proc/self/exe` through a symlink, or onto the log file that stderr writes to, would
/// replace them). Paths under `/proc/self` are resolved when a backup is checked.
fn process_files() -> db::LiveArea {
    db::LiveArea::new()
        .with_file("/proc/self/exe", "robind's executable")
        .with_file("/proc/self/fd/1", "robind's standard output")
        .with_file("/proc/self/fd/2", "robind's standard error")
}

fn live_data_dir(live: db::LiveArea, data_dir: &Path) -> db::LiveArea {
    let mut live = live
        .with_file(data_dir.join(crate::lockfile::LOCK_FILE_NAME), "lock file")
        .with_dir(data_dir)
        .with_backup_dir(data_dir.join(db::BACKUPS_DIR_NAME));
    // The data directory alone would cover the users' directories, but listing them catches
    // one reached another way too (a bind mount), and lets their backups directories in.
    let users = std::fs::read_dir(data_dir.join(USERS_DIR_NAME)).into_iter().flatten().flatten();
    for user in users {
        let user_dir = user.path();
        live = live.with_backup_dir(user_dir.join(db::BACKUPS_DIR_NAME)).with_dir(user_dir);
    }
    live
}
