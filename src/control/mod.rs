//! The one command layer: typed requests, their responses, and the dispatcher.
//!
//! Owns [`Command`] (what a client may ask), its parsing from a method name plus JSON params,
//! and [`Controller::execute`], which turns a command into calls on the daemon's parts. The IPC
//! socket and the HTTP routes (and later the WebSocket) hand requests here, so each command is
//! written once and behaves the same on every transport.
//!
//! May touch: the public handles of the other parts. It is, with `daemon`, the only module that
//! imports several siblings.
//!
//! # Examples
//!
//! ```
//! use robin::control::{Command, Controller};
//! use serde_json::json;
//!
//! let controller = Controller::for_tests();
//! let command = Command::parse("ping", None).unwrap();
//! let result = futures_lite::future::block_on(controller.execute(command)).unwrap();
//! assert_eq!(result, json!(true));
//!
//! let err = Command::parse("pnig", None).unwrap_err();
//! assert!(err.to_string().starts_with("unknown method 'pnig' (known: ping, status, flags, messages"), "{err}");
//! ```
mod params;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use serde_json::{Value, json};

use crate::config::{Feature, Features};
use crate::db::{Account, Database};
use crate::notifier::Notifier;
use crate::tasks::{Outcome, Scheduler, TaskId, TaskManager};

/// `Result` with this part's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a WebSocket client's text message gets back: the response when it is a request
/// (`{"method": ..}`), the text itself otherwise (rotki echoes). Holds the controller weakly:
/// the notifier keeps this handler and the controller keeps the notifier.
pub fn websocket_handler(controller: &Rc<Controller>) -> crate::notifier::IncomingHandler {
    let controller = Rc::downgrade(controller);
    Rc::new(move |text: String| {
        let controller = controller.clone();
        Box::pin(async move {
            let looks_like_request = text.trim_start().starts_with('{') && text.contains("\"method\"");
            match (looks_like_request, controller.upgrade()) {
                (true, Some(controller)) => match Request::parse(text.as_bytes()) {
                    Ok(request) => Some(controller.answer(request).await.to_string()),
                    Err(_) => Some(text), // not a request after all: echo
                },
                _ => Some(text),
            }
        })
    })
}

/// The methods a client can call, in the order `unknown method` lists them.
pub const METHODS: [&str; 21] = [
    "ping",
    "status",
    "flags",
    "messages",
    "schedule",
    "tasks.list",
    "tasks.cancel",
    "tasks.run",
    "tasks.result",
    "assets.add",
    "assets.remove",
    "assets.list",
    "accounts.add",
    "accounts.remove",
    "accounts.list",
    "settings.get",
    "settings.set",
    "backup",
    "unlock",
    "logout",
    "snapshot",
];

/// A request that failed. The message is meant for the person or script that sent it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No command has that name.
    #[error("unknown method '{0}' (known: {known})", known = METHODS.join(", "))]
    UnknownMethod(String),
    /// The command needs a part that is switched off.
    #[error("{0}")]
    Disabled(&'static str),
    /// The command needs a database and none is open.
    #[error("no database is open")]
    NoDatabase,
    /// The database refused or failed.
    #[error("{}", crate::error_chain(.0))]
    Database(#[from] crate::db::Error),
    /// The request conflicts with the daemon's state (e.g. unlock while unlocked).
    #[error("{0}")]
    Conflict(String),
    /// No API task has that number (or its result was read already).
    #[error("No task with id {0} found")]
    UnknownTask(TaskId),
    /// A job could not be run on demand.
    #[error(transparent)]
    RunNow(#[from] crate::tasks::RunNowError),
    /// The params do not fit the command.
    #[error("invalid params for '{method}': {reason}")]
    InvalidParams {
        /// The method called.
        method: String,
        /// What is wrong with the params.
        reason: String,
    },
}

impl Error {
    /// A stable numeric code for the IPC protocol (JSON-RPC's numbering where one exists).
    pub fn code(&self) -> i64 {
        match self {
            Error::UnknownMethod(_) => -32601,
            Error::InvalidParams { .. } => -32602,
            Error::Disabled(_) => -32000,
            Error::NoDatabase => -32001,
            Error::Database(crate::db::Error::WrongPassword(_)) => -32006,
            Error::Database(_) => -32002,
            Error::RunNow(_) => -32003,
            Error::UnknownTask(_) => -32004,
            Error::Conflict(_) => -32005,
        }
    }

    /// The HTTP status for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::UnknownMethod(_) => 404,
            Error::InvalidParams { .. } => 400,
            Error::Disabled(_) | Error::NoDatabase => 409,
            Error::Database(crate::db::Error::WrongPassword(_)) => 401,
            Error::Database(_) => 500,
            Error::Conflict(_) => 409,
            Error::RunNow(crate::tasks::RunNowError::UnknownJob(..)) => 404,
            Error::RunNow(_) => 409,
            Error::UnknownTask(_) => 404,
        }
    }
}

/// Something a client asks the daemon to do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Liveness check; answers `true`.
    Ping,
    /// Version, uptime, pid, endpoints, feature flags and notifier counters.
    Status,
    /// Takes the kept user-facing errors and warnings (`GET /api/1/messages`).
    Messages,
    /// Turns the periodic scheduler on or off: `{"enabled": bool}`.
    Schedule {
        /// On or off.
        enabled: bool,
    },
    /// The live and recently finished tasks.
    TasksList,
    /// Cancels a task by number, or every task whose name starts with a prefix.
    TasksCancel(CancelTarget),
    /// Runs a registered job now; answers its task number (rotki's `async_query`).
    TasksRun(String),
    /// A task's outcome, as `GET /api/1/tasks/<id>` gives it (read once).
    TasksResult(TaskId),
    /// The feature flags.
    Flags,
    /// Tracks an asset.
    AssetsAdd(String),
    /// Stops tracking an asset.
    AssetsRemove(String),
    /// The tracked assets.
    AssetsList,
    /// Tracks an account.
    AccountsAdd(Account),
    /// Stops tracking an account and cancels its running queries.
    AccountsRemove {
        /// Its chain.
        chain: String,
        /// Its address.
        address: String,
    },
    /// The tracked accounts.
    AccountsList,
    /// One setting, or all of them with defaults.
    SettingsGet(Option<String>),
    /// Changes a setting.
    SettingsSet {
        /// Which.
        name: String,
        /// The new value, checked.
        value: String,
    },
    /// Writes a backup of the database to a path.
    Backup(PathBuf),
    /// Opens a user's encrypted database (created on first unlock) and makes it current.
    Unlock {
        /// The user's name (also the directory name).
        username: String,
        /// The database password.
        password: crate::db::Password,
    },
    /// Closes the user's database and returns to the default one.
    Logout,
    /// The latest balance snapshot and the balances behind it.
    Snapshot,
}

/// What `tasks.cancel` cancels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelTarget {
    /// One task by number.
    Id(TaskId),
    /// Every live task whose name starts with this.
    NamePrefix(String),
}

impl Command {
    /// Parses a method name and its params (`None` or `{}` for commands that take none).
    pub fn parse(method: &str, params: Option<&Value>) -> Result<Command> {
        let invalid =
            |reason: &str| Error::InvalidParams { method: method.to_string(), reason: reason.to_string() };
        let command = match method {
            "ping" => Command::Ping,
            "status" => Command::Status,
            "messages" => Command::Messages,
            "tasks.list" => Command::TasksList,
            "schedule" => {
                let enabled = params.and_then(|p| p.get("enabled")).and_then(Value::as_bool);
                return Ok(Command::Schedule {
                    enabled: enabled.ok_or_else(|| invalid(r#"expected {"enabled": true|false}"#))?,
                });
            }
            "tasks.cancel" => {
                let params =
                    params.ok_or_else(|| invalid(r#"expected {"id": N} or {"name_prefix": "..."}"#))?;
                let target = match (
                    params.get("id").and_then(Value::as_u64),
                    params.get("name_prefix").and_then(Value::as_str),
                ) {
                    (Some(id), None) => CancelTarget::Id(id),
                    (None, Some(prefix)) if !prefix.is_empty() => {
                        CancelTarget::NamePrefix(prefix.to_string())
                    }
                    _ => {
                        return Err(invalid(r#"expected {"id": N} or {"name_prefix": "..."} (one of them)"#));
                    }
                };
                return Ok(Command::TasksCancel(target));
            }
            "tasks.run" => {
                return Ok(Command::TasksRun(
                    params::required_str(params, "job").map_err(|r| invalid(&r))?.into(),
                ));
            }
            "tasks.result" => {
                let id = params.and_then(|p| p.get("id")).and_then(Value::as_u64);
                return Ok(Command::TasksResult(id.ok_or_else(|| invalid(r#"expected {"id": N}"#))?));
            }
            "flags" => Command::Flags,
            "assets.list" => Command::AssetsList,
            "accounts.list" => Command::AccountsList,
            "assets.add" | "assets.remove" => {
                let asset =
                    params::required_str(params, "asset").and_then(params::asset).map_err(|r| invalid(&r))?;
                return Ok(if method == "assets.add" {
                    Command::AssetsAdd(asset)
                } else {
                    Command::AssetsRemove(asset)
                });
            }
            "accounts.add" | "accounts.remove" => {
                let address = params::required_str(params, "address")
                    .and_then(params::evm_address)
                    .map_err(|r| invalid(&r))?;
                let chain =
                    params::optional_str(params, "chain").and_then(params::chain).map_err(|r| invalid(&r))?;
                if method == "accounts.remove" {
                    return Ok(Command::AccountsRemove { chain, address });
                }
                let label =
                    params::optional_str(params, "label").map_err(|r| invalid(&r))?.map(str::to_string);
                return Ok(Command::AccountsAdd(Account { chain, address, label }));
            }
            "settings.get" => {
                let name = params::optional_str(params, "name").map_err(|r| invalid(&r))?;
                if let Some(name) = name {
                    if !params::SETTINGS.iter().any(|(n, _, _)| *n == name) {
                        return Err(invalid(&params::setting(name, "").unwrap_err()));
                    }
                }
                return Ok(Command::SettingsGet(name.map(str::to_string)));
            }
            "settings.set" => {
                let name = params::required_str(params, "name").map_err(|r| invalid(&r))?;
                let value = params::required_str(params, "value").map_err(|r| invalid(&r))?;
                let value = params::setting(name, value).map_err(|r| invalid(&r))?;
                return Ok(Command::SettingsSet { name: name.into(), value });
            }
            "unlock" => {
                let username = params::required_str(params, "username")
                    .and_then(params::username)
                    .map_err(|r| invalid(&r))?;
                let password = params::required_str(params, "password").map_err(|r| invalid(&r))?;
                if password.is_empty() {
                    return Err(invalid("the password may not be empty"));
                }
                return Ok(Command::Unlock {
                    username,
                    password: crate::db::Password::new(password.to_string()),
                });
            }
            "logout" => Command::Logout,
            "snapshot" => Command::Snapshot,
            "backup" => {
                let path = PathBuf::from(params::required_str(params, "path").map_err(|r| invalid(&r))?);
                if !path.is_absolute() {
                    return Err(invalid(
                        "path must be absolute (the daemon's working directory is not yours)",
                    ));
                }
                return Ok(Command::Backup(path));
            }
            other => return Err(Error::UnknownMethod(other.to_string())),
        };
        no_params(method, params)?;
        Ok(command)
    }
}

fn no_params(method: &str, params: Option<&Value>) -> Result<()> {
    match params {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(map)) if map.is_empty() => Ok(()),
        Some(_) => Err(Error::InvalidParams { method: method.to_string(), reason: "takes no params".into() }),
    }
}

/// JSON-RPC code: the request is not JSON.
pub const CODE_PARSE_ERROR: i64 = -32700;
/// JSON-RPC code: JSON, but not a request object.
pub const CODE_INVALID_REQUEST: i64 = -32600;

/// One request as every transport carries it: `{"id": .., "method": "..", "params": {..}}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Echoed back in the response (any JSON value; `null` when absent).
    pub id: Value,
    /// The command's name.
    pub method: String,
    /// Its parameters, if any.
    pub params: Option<Value>,
}

impl Request {
    /// Parses a request; the error is the response to send back.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Request, Value> {
        let value: Value = serde_json::from_slice(bytes).map_err(|err| {
            error_response(&Value::Null, CODE_PARSE_ERROR, &format!("malformed JSON: {err}"))
        })?;
        let id = value.get("id").cloned().unwrap_or(Value::Null);
        let Some(method) = value.get("method").and_then(Value::as_str) else {
            let message = r#"invalid request: expected {"id": .., "method": "..", "params": {..}}"#;
            return Err(error_response(&id, CODE_INVALID_REQUEST, message));
        };
        Ok(Request { id, method: method.to_string(), params: value.get("params").cloned() })
    }
}

/// `{"id": id, "error": {"code": code, "message": message}}`.
pub fn error_response(id: &Value, code: i64, message: &str) -> Value {
    json!({ "id": id, "error": { "code": code, "message": message } })
}

/// Where the daemon can be reached, filled in once the listeners are bound.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// The HTTP/WebSocket listener.
    pub http: Option<SocketAddr>,
    /// The control socket.
    pub ipc: Option<PathBuf>,
    /// The file holding the API token, when one is required.
    pub api_token_file: Option<PathBuf>,
}

/// Executes commands against the daemon's parts. Lives on the loop thread.
#[derive(Debug)]
pub struct Controller {
    /// When the daemon started, for `uptime`.
    started: Instant,
    /// The feature flags in force.
    features: Features,
    /// Where the daemon listens.
    endpoints: RefCell<Endpoints>,
    /// Broadcasts and the kept user-facing messages.
    notifier: Rc<Notifier>,
    /// The database commands and jobs use now: the default one, or an unlocked user's.
    database: Rc<RefCell<Option<Database>>>,
    /// The default (plain) database opened at start-up.
    default_database: RefCell<Option<Database>>,
    /// The unlocked user, if any.
    user: RefCell<Option<String>>,
    /// Where user databases live, and how they are opened.
    user_databases: RefCell<Option<(PathBuf, crate::db::Options)>>,
    /// Tracked tasks.
    tasks: TaskManager,
    /// The periodic scheduler, when the `scheduler` feature is on.
    scheduler: RefCell<Option<Rc<Scheduler>>>,
}

/// What `GET /api/1/tasks/<id>` finds.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskQuery {
    /// Finished: rotki's outcome object `{"result": .., "message": ..}` (handed out once).
    Completed(Value),
    /// Still running.
    Pending,
    /// No API task with that number.
    Unknown,
}

impl Controller {
    /// A controller for a daemon with these feature flags and parts.
    pub fn new(features: Features, notifier: Rc<Notifier>, tasks: TaskManager) -> Controller {
        Controller {
            started: Instant::now(),
            features,
            endpoints: RefCell::default(),
            notifier,
            database: Rc::default(),
            default_database: RefCell::default(),
            user: RefCell::default(),
            user_databases: RefCell::default(),
            tasks,
            scheduler: RefCell::default(),
        }
    }

    /// A controller with every feature at its default and fresh parts, for tests and examples.
    /// Its task tracker has an executor of its own that nothing drives.
    pub fn for_tests() -> Controller {
        let notifier = Notifier::new(Default::default());
        let tasks = TaskManager::new(crate::runtime::Spawner::new(), Rc::new(|_| {}), Rc::new(|_| {}));
        Controller::new(Features::defaults(), notifier, tasks)
    }

    /// Records the scheduler (or none).
    pub fn set_scheduler(&self, scheduler: Option<Rc<Scheduler>>) {
        *self.scheduler.borrow_mut() = scheduler;
    }

    /// The notifier (for parts the daemon wires to it).
    pub fn notifier(&self) -> Rc<Notifier> {
        self.notifier.clone()
    }

    /// The task tracker.
    pub fn tasks(&self) -> &TaskManager {
        &self.tasks
    }

    /// `GET /api/1/tasks`: live and finished API tasks.
    pub fn task_ids(&self) -> Value {
        json!({ "pending": self.tasks.pending_results(), "completed": self.tasks.completed_results() })
    }

    /// `GET /api/1/tasks/<id>`: a finished API task's outcome, once.
    pub fn task_result(&self, id: TaskId) -> TaskQuery {
        if self.tasks.is_pending_result(id) {
            return TaskQuery::Pending;
        }
        match self.tasks.take_result(id) {
            Some(Outcome::Completed(result)) => {
                TaskQuery::Completed(json!({ "result": result, "message": "" }))
            }
            Some(Outcome::Failed(err)) => TaskQuery::Completed(
                json!({ "result": null, "message": format!("The backend query task died unexpectedly: {err}") }),
            ),
            Some(Outcome::Cancelled) | None => TaskQuery::Unknown,
        }
    }

    /// The notifier, when WebSocket clients may attach (feature flag `websockets`).
    pub fn websocket_notifier(&self) -> Option<Rc<Notifier>> {
        self.features.enabled(Feature::Websockets).then(|| self.notifier.clone())
    }

    /// Records the open database (or none, after it closed).
    pub fn set_database(&self, database: Option<Database>) {
        *self.default_database.borrow_mut() = database.clone();
        *self.database.borrow_mut() = database;
    }

    /// The current database, shared: jobs read it when they run, so after `unlock` they work
    /// on the user's database.
    pub fn database_slot(&self) -> Rc<RefCell<Option<Database>>> {
        self.database.clone()
    }

    /// Enables `unlock`: user databases live in `dir/<username>/robin.db`.
    pub fn set_user_databases(&self, dir: PathBuf, options: crate::db::Options) {
        *self.user_databases.borrow_mut() = Some((dir, options));
    }

    /// Closes an unlocked user's database, if any (logout, shutdown).
    pub async fn close_user_database(&self) {
        if self.user.borrow_mut().take().is_some() {
            let user_db = self.database.borrow_mut().take();
            *self.database.borrow_mut() = self.default_database.borrow().clone();
            if let Some(db) = user_db {
                db.close().await;
            }
        }
    }

    async fn unlock(&self, username: String, password: crate::db::Password) -> Result<Value> {
        if let Some(user) = self.user.borrow().as_ref() {
            return Err(Error::Conflict(format!("user '{user}' is unlocked; logout first")));
        }
        let (dir, options) =
            self.user_databases.borrow().clone().ok_or(Error::Disabled("user databases are not set up"))?;
        let user_dir = dir.join(&username);
        let create = user_dir.clone();
        blocking::unblock(move || std::fs::DirBuilder::new().recursive(true).mode(0o700).create(create))
            .await
            .map_err(|e| Error::Conflict(format!("cannot create {}: {e}", user_dir.display())))?;
        let db = Database::open(&user_dir.join("robin.db"), Some(password), options).await?;
        self.switch_scheduler(&db);
        *self.database.borrow_mut() = Some(db.clone());
        *self.user.borrow_mut() = Some(username.clone());
        self.apply_schedule_settings().await;
        log::info!("user '{username}' unlocked");
        Ok(json!({ "username": username, "database": db.describe() }))
    }

    async fn logout(&self) -> Result<Value> {
        let Some(username) = self.user.borrow().clone() else {
            return Err(Error::Conflict("no user is unlocked".into()));
        };
        self.close_user_database().await;
        let default = self.default_database.borrow().clone();
        if let Some(db) = default {
            self.switch_scheduler(&db);
        }
        self.apply_schedule_settings().await;
        log::info!("user '{username}' logged out");
        Ok(Value::Bool(true))
    }

    /// Applies the stored job intervals to the scheduler (at start, unlock and logout).
    pub async fn apply_schedule_settings(&self) {
        let Ok(db) = self.db() else { return };
        let Ok(stored) = db.settings().await else { return };
        for (name, value) in stored {
            self.apply_interval(&name, &value);
        }
    }

    fn apply_interval(&self, setting: &str, value: &str) {
        let Some((_, job)) = params::INTERVAL_SETTINGS.iter().find(|(s, _)| *s == setting) else { return };
        let (Some(scheduler), Ok(secs)) = (self.scheduler.borrow().clone(), value.parse::<u64>()) else {
            return;
        };
        scheduler.set_interval(job, std::time::Duration::from_secs(secs));
    }

    /// Logout and login start clean, as rotki's: every task is cancelled, scheduling is off,
    /// and last-run times come from the new database.
    fn switch_scheduler(&self, db: &Database) {
        let cancelled = match self.scheduler.borrow().as_ref() {
            Some(scheduler) => {
                scheduler.set_store(Rc::new(crate::tasks::DatabaseStore::new(db.clone())));
                scheduler.clear()
            }
            None => self.tasks.clear(),
        };
        if cancelled > 0 {
            log::info!("cancelled {cancelled} tasks on the database switch");
        }
    }

    /// Records where the daemon listens (reported by `status`).
    pub fn set_endpoints(&self, endpoints: Endpoints) {
        *self.endpoints.borrow_mut() = endpoints;
    }

    /// Whether the `/api/1/` routes are on.
    pub fn http_api_enabled(&self) -> bool {
        self.features.enabled(Feature::HttpApi)
    }

    /// Accepts a `subscribe` request: the acknowledgement and the optional `since`, parsed
    /// here only; the error is the response.
    pub fn subscription_start(&self, request: &Request) -> std::result::Result<(Value, Option<u64>), Value> {
        let since = request.params.as_ref().and_then(|p| p.get("since"));
        if since.is_some_and(|s| !s.is_u64()) {
            let message = "invalid params for 'subscribe': since must be a message sequence number";
            return Err(error_response(&request.id, -32602, message));
        }
        Ok((json!({ "id": request.id, "result": { "subscribed": true } }), since.and_then(Value::as_u64)))
    }

    /// Streams notifications to a subscribed control-socket client until it goes away.
    pub async fn stream_notifications(
        &self,
        stream: async_io::Async<std::os::unix::net::UnixStream>,
        since: Option<u64>,
    ) {
        self.notifier.serve_line_subscriber(stream, since).await;
    }

    /// Answers one request: `{"id", "result"}` or `{"id", "error": {"code", "message"}}`.
    pub async fn answer(&self, request: Request) -> Value {
        let outcome = match Command::parse(&request.method, request.params.as_ref()) {
            Ok(command) => self.execute(command).await,
            Err(err) => Err(err),
        };
        match outcome {
            Ok(result) => json!({ "id": request.id, "result": result }),
            Err(err) => error_response(&request.id, err.code(), &err.to_string()),
        }
    }

    /// Runs one command.
    pub async fn execute(&self, command: Command) -> Result<Value> {
        match command {
            Command::Ping => Ok(Value::Bool(true)),
            Command::Status => Ok(self.status()),
            Command::Messages => Ok(serde_json::to_value(self.notifier.drain_messages()).unwrap_or_default()),
            Command::Schedule { enabled } => match self.scheduler.borrow().as_ref() {
                Some(scheduler) => {
                    scheduler.set_should_schedule(enabled);
                    log::info!("scheduling turned {}", if enabled { "on" } else { "off" });
                    Ok(Value::Bool(enabled))
                }
                None => Err(Error::Disabled("the scheduler is off (feature flag scheduler)")),
            },
            Command::TasksList => Ok(self.tasks.describe()),
            Command::TasksCancel(CancelTarget::Id(id)) => {
                Ok(json!({ "cancelled": u64::from(self.tasks.cancel(id)) }))
            }
            Command::TasksCancel(CancelTarget::NamePrefix(prefix)) => {
                Ok(json!({ "cancelled": self.tasks.cancel_matching(|name| name.starts_with(&prefix)) }))
            }
            Command::TasksRun(job) => {
                let scheduler = self.scheduler.borrow().clone();
                let scheduler =
                    scheduler.ok_or(Error::Disabled("the scheduler is off (feature flag scheduler)"))?;
                let ids = scheduler.run_now(&job).await?;
                Ok(json!({ "task_id": ids.first(), "task_ids": ids }))
            }
            Command::TasksResult(id) => match self.task_result(id) {
                TaskQuery::Completed(outcome) => Ok(json!({ "status": "completed", "outcome": outcome })),
                TaskQuery::Pending => Ok(json!({ "status": "pending", "outcome": null })),
                TaskQuery::Unknown => Err(Error::UnknownTask(id)),
            },
            Command::Flags => Ok(self.flags()),
            Command::AssetsAdd(asset) => Ok(json!({ "added": self.db()?.add_asset(asset).await? })),
            Command::AssetsRemove(asset) => Ok(json!({ "removed": self.db()?.remove_asset(asset).await? })),
            Command::AssetsList => Ok(json!(self.db()?.assets().await?)),
            Command::AccountsAdd(account) => Ok(json!({ "added": self.db()?.add_account(account).await? })),
            Command::AccountsRemove { chain, address } => {
                let removed = self.db()?.remove_account(chain, address.clone()).await?;
                // Its queries are pointless now: stop them, as rotki does.
                let cancelled = self.tasks.cancel_matching(|name| name.contains(&address));
                Ok(json!({ "removed": removed, "cancelled_tasks": cancelled }))
            }
            Command::AccountsList => Ok(json!(self.db()?.accounts().await?)),
            Command::SettingsGet(name) => {
                let stored: std::collections::HashMap<String, String> =
                    self.db()?.settings().await?.into_iter().collect();
                let value_of =
                    |n: &str, default: &str| stored.get(n).cloned().unwrap_or_else(|| default.to_string());
                match name {
                    Some(name) => {
                        let default =
                            params::SETTINGS.iter().find(|(n, _, _)| *n == name).map_or("", |(_, d, _)| *d);
                        Ok(json!({ name.clone(): value_of(&name, default) }))
                    }
                    None => Ok(Value::Object(
                        params::SETTINGS
                            .iter()
                            .map(|(n, d, _)| (n.to_string(), Value::String(value_of(n, d))))
                            .collect(),
                    )),
                }
            }
            Command::SettingsSet { name, value } => {
                self.db()?.set_setting(name.clone(), value.clone()).await?;
                self.apply_interval(&name, &value);
                Ok(json!({ name: value }))
            }
            Command::Unlock { username, password } => self.unlock(username, password).await,
            Command::Logout => self.logout().await,
            Command::Snapshot => {
                let db = self.db()?;
                let balances = db.balances().await?;
                Ok(match db.latest_snapshot().await? {
                    Some((id, currency, total, entries)) => json!({
                        "id": id, "currency": currency, "total": total, "entries": entries, "balances": balances,
                    }),
                    None => json!({ "id": null, "balances": balances }),
                })
            }
            Command::Backup(path) => {
                self.db()?.backup_to(&path, None).await?;
                Ok(json!({ "path": path.display().to_string() }))
            }
        }
    }

    /// The open database, cloned out of the cell so no borrow is held across an await.
    fn db(&self) -> Result<Database> {
        self.database.borrow().clone().ok_or(Error::NoDatabase)
    }

    fn flags(&self) -> Value {
        Value::Object(
            self.features.iter().map(|(f, s)| (f.name().to_string(), Value::Bool(s.value))).collect(),
        )
    }

    fn status(&self) -> Value {
        let endpoints = self.endpoints.borrow();
        json!({
            "version": crate::VERSION,
            "pid": std::process::id(),
            "uptime_secs": self.started.elapsed().as_secs(),
            "http": endpoints.http.map(|a| a.to_string()),
            "ipc": endpoints.ipc.as_ref().map(|p| p.display().to_string()),
            "features": self.flags(),
            "notifier": self.notifier.stats().to_json(),
            "database": self.database.borrow().as_ref().map(Database::describe),
            "user": self.user.borrow().clone(),
            "tasks": self.tasks.describe(),
            "scheduler": self.scheduler.borrow().as_ref().map(|s| s.describe()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked() {
        assert_eq!(Command::parse("status", Some(&json!({}))).unwrap(), Command::Status);
        let err = Command::parse("ping", Some(&json!([1]))).unwrap_err();
        assert_eq!(err.to_string(), "invalid params for 'ping': takes no params");
        assert_eq!(err.code(), -32602);
    }

    #[test]
    fn status_reports_features_and_endpoints() {
        let controller = Controller::for_tests();
        controller
            .set_endpoints(Endpoints { http: Some("127.0.0.1:1".parse().unwrap()), ..Endpoints::default() });
        let status = futures_lite::future::block_on(controller.execute(Command::Status)).unwrap();
        assert_eq!(status["http"], "127.0.0.1:1");
        assert_eq!(status["features"]["websockets"], true);
        assert_eq!(status["version"], crate::VERSION);
    }
}
