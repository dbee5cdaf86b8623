//! The dispatcher: [`Controller::execute`] turns a command into calls on the daemon's parts.
use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use serde_json::{Value, json};

use super::command::{CancelTarget, Command};
use super::error::{Error, Result};
use super::link::{Link, ProgressSink};
use super::params;
use super::ready::ReadyLine;
use super::session::Session;
use super::wire::{self, Request};
use crate::config::{Feature, Features};
use crate::notifier::{IncomingHandler, Notifier, Subscription};
use crate::tasks::{Outcome, TaskId, TaskManager};

/// Where the daemon can be reached, filled in once the listeners are bound.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// The HTTP/WebSocket listener.
    pub http: Option<SocketAddr>,
    /// The control socket.
    pub ipc: Option<PathBuf>,
    /// The file holding the API token, when one is required.
    pub api_token_file: Option<PathBuf>,
    /// The data directory being served.
    pub data_dir: PathBuf,
    /// Whether `/ws` accepts clients (feature flag `websockets`).
    pub websockets: bool,
}

/// Who sent a request, as far as its transport knows: the uid the kernel reports for a
/// control-socket or loopback client, the address of any TCP client.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Caller {
    /// The client's user, when the kernel says (Unix socket credentials, loopback TCP).
    pub uid: Option<u32>,
    /// The client's address, for TCP clients.
    pub addr: Option<std::net::IpAddr>,
    /// The connection, when it can own external tasks and take notifications (the control
    /// socket).
    pub link: Option<Link>,
}

impl Caller {
    /// A client on the control socket.
    pub fn local(uid: u32) -> Caller {
        Caller { uid: Some(uid), addr: None, link: None }
    }

    /// Whether the caller may do what only the daemon's own user could do by hand (write
    /// files with its rights): its own uid, root, or a client the kernel cannot name, which
    /// only gets in by the API token.
    pub fn acts_as_owner(&self) -> bool {
        self.uid.is_none_or(|uid| uid == 0 || uid == rustix::process::getuid().as_raw())
    }
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.uid, self.addr) {
            (Some(uid), Some(addr)) => write!(f, "uid {uid} at {addr}"),
            (Some(uid), None) => write!(f, "uid {uid}"),
            (None, Some(addr)) => write!(f, "{addr}"),
            (None, None) => f.write_str("an unidentified client"),
        }
    }
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
    /// Broadcasts, subscriptions and the kept user-facing messages.
    notifier: Rc<Notifier>,
    /// Tracked tasks.
    tasks: TaskManager,
    /// The current database and the scheduler.
    session: Rc<Session>,
    /// Where clients' tasks report progress (built once, shared by every link).
    external_progress: ProgressSink,
}

impl Controller {
    /// A controller over the daemon's parts.
    pub fn new(
        features: Features,
        notifier: Rc<Notifier>,
        tasks: TaskManager,
        session: Rc<Session>,
    ) -> Controller {
        Controller {
            started: Instant::now(),
            features,
            endpoints: RefCell::default(),
            external_progress: external_progress(notifier.clone()),
            notifier,
            tasks,
            session,
        }
    }

    /// The session: the current database and the scheduler.
    pub fn session(&self) -> &Rc<Session> {
        &self.session
    }

    /// Records where the daemon listens (reported by `status`).
    pub fn set_endpoints(&self, endpoints: Endpoints) {
        *self.endpoints.borrow_mut() = endpoints;
    }

    /// Whether the `/api/1/` routes are on.
    pub fn http_api_enabled(&self) -> bool {
        self.features.enabled(Feature::HttpApi)
    }

    /// Whether WebSocket clients may attach (feature flag `websockets`).
    pub fn websockets_enabled(&self) -> bool {
        self.features.enabled(Feature::Websockets)
    }

    /// The one way to follow the notifications, for `/ws` and the control socket's
    /// `subscribe` alike: replay after `since`, then every new message.
    pub fn subscribe(&self, since: Option<u64>) -> Subscription {
        self.notifier.subscribe(since)
    }

    /// What answers a WebSocket client's text messages: the response when it is a request
    /// (`{"method": ..}`), the text itself otherwise (rotki echoes). Holds the controller
    /// weakly: a session outliving the daemon's controller just echoes.
    pub fn websocket_handler(self: &Rc<Self>, caller: Caller) -> IncomingHandler {
        let controller = Rc::downgrade(self);
        Rc::new(move |text: String| {
            let (controller, caller) = (controller.clone(), caller.clone());
            Box::pin(async move {
                let looks_like_request = text.trim_start().starts_with('{') && text.contains("\"method\"");
                match (looks_like_request, controller.upgrade()) {
                    (true, Some(controller)) => match Request::parse(text.as_bytes()) {
                        Ok(request) => Some(controller.answer(request, &caller).await.to_string()),
                        Err(_) => Some(text), // not a request after all: echo
                    },
                    _ => Some(text),
                }
            })
        })
    }

    /// Answers one request: `{"id", "result"}` or `{"id", "error": {"code", "message"}}`.
    pub async fn answer(&self, request: Request, caller: &Caller) -> Value {
        let outcome = match Command::parse(&request.method, request.params.as_ref()) {
            Ok(command) => self.execute(command, caller).await,
            Err(err) => Err(err),
        };
        match outcome {
            Ok(result) => wire::result_response(&request.id, result),
            Err(err) => wire::error_response(&request.id, err.code(), &err.to_string()),
        }
    }

    /// Runs one command for `caller`.
    pub async fn execute(&self, command: Command, caller: &Caller) -> Result<Value> {
        match command {
            Command::Ping => Ok(Value::Bool(true)),
            Command::Status => Ok(self.status()),
            Command::Ready => Ok(json!(ReadyLine::owned(&self.endpoints.borrow()))),
            Command::Flags => Ok(self.flags()),
            Command::Messages => Ok(serde_json::to_value(self.notifier.drain_messages()).unwrap_or_default()),
            Command::Schedule { enabled } => self.schedule(enabled),
            Command::TasksList => Ok(self.tasks.describe()),
            Command::TasksIds => Ok(json!({
                "pending": self.tasks.pending_results(),
                "completed": self.tasks.completed_results(),
            })),
            Command::TasksCancel(CancelTarget::Id(id)) => {
                Ok(json!({ "cancelled": u64::from(self.tasks.cancel(id)) }))
            }
            Command::TasksCancel(CancelTarget::NamePrefix(prefix)) => {
                Ok(json!({ "cancelled": self.tasks.cancel_matching(|name| name.starts_with(&prefix)) }))
            }
            Command::TasksRun(job) => {
                let scheduler = self.session.scheduler().ok_or(SCHEDULER_OFF)?;
                let ids = scheduler.run_now(&job).await?;
                Ok(json!({ "task_id": ids.first(), "task_ids": ids }))
            }
            Command::TasksResult(id) => self.task_result(id),
            Command::Unlock { username, password } => {
                let db = self.session.unlock(username.clone(), password, caller).await?;
                Ok(json!({ "username": username, "database": db.describe() }))
            }
            Command::Logout => self.session.logout().await.map(|_| Value::Bool(true)),
            Command::Broadcast(message) => {
                let published = self.notifier.publish(&message);
                Ok(json!({ "seq": published.seq, "delivered": published.delivered }))
            }
            Command::MessagesAdd { verbosity, value } => {
                let message =
                    crate::notifier::Message::Legacy(crate::notifier::LegacyData { verbosity, value });
                let published = self.notifier.publish(&message);
                Ok(json!({ "seq": published.seq, "delivered": published.delivered }))
            }
            Command::TasksBegin { name, total, exception_is_error } => {
                let link = caller.link.as_ref().ok_or(NEEDS_A_LINK)?;
                let id = link.begin(&self.tasks, name, total, exception_is_error, &self.external_progress)?;
                Ok(json!({ "task_id": id }))
            }
            Command::TasksProgress { id, processed, total } => {
                let link = caller.link.as_ref().ok_or(NEEDS_A_LINK)?;
                link.progress(id, processed, total, &self.external_progress)?;
                Ok(Value::Bool(true))
            }
            Command::TasksEnd { id, outcome } => {
                let link = caller.link.as_ref().ok_or(NEEDS_A_LINK)?;
                link.end(id, outcome)?;
                Ok(Value::Bool(true))
            }
            Command::Backup { .. } if !caller.acts_as_owner() => Err(Error::NotAllowed(format!(
                "a backup writes files with the rights of robind's user (uid {}); {caller} may not ask for one",
                rustix::process::getuid().as_raw()
            ))),
            data => self.execute_on_database(data).await,
        }
    }

    /// The commands that read or write the current database.
    async fn execute_on_database(&self, command: Command) -> Result<Value> {
        let db = self.session.require_database()?;
        match command {
            Command::AssetsAdd(asset) => Ok(json!({ "added": db.add_asset(asset).await? })),
            Command::AssetsRemove(asset) => Ok(json!({ "removed": db.remove_asset(asset).await? })),
            Command::AssetsList { details: false } => Ok(json!(db.assets().await?)),
            Command::AssetsList { details: true } => Ok(json!(db.asset_details().await?)),
            Command::AccountsAdd(account) => Ok(json!({ "added": db.add_account(account).await? })),
            Command::AccountsRemove { chain, address } => {
                let removed = db.remove_account(chain, address.clone()).await?;
                // Its queries are pointless now: stop them, as rotki does.
                let cancelled = self.tasks.cancel_matching(|name| name.contains(&address));
                Ok(json!({ "removed": removed, "cancelled_tasks": cancelled }))
            }
            Command::AccountsList => Ok(json!(db.accounts().await?)),
            Command::SettingsGet(name) => {
                let stored: std::collections::HashMap<String, String> =
                    db.settings().await?.into_iter().collect();
                let value_of =
                    |n: &str, default: &str| stored.get(n).cloned().unwrap_or_else(|| default.to_string());
                Ok(match name {
                    Some(name) => {
                        let default = params::setting_default(&name).unwrap_or("");
                        json!({ name.clone(): value_of(&name, default) })
                    }
                    None => Value::Object(
                        params::SETTINGS
                            .iter()
                            .map(|(n, d, _)| (n.to_string(), Value::String(value_of(n, d))))
                            .collect(),
                    ),
                })
            }
            Command::SettingsSet { name, value } => {
                db.set_setting(name.clone(), value.clone()).await?;
                self.session.apply_interval(&name, &value);
                Ok(json!({ name: value }))
            }
            Command::Snapshot => {
                let balances = db.balances().await?;
                Ok(match db.latest_snapshot().await? {
                    Some(snapshot) => json!({
                        "id": snapshot.id, "time": snapshot.time, "currency": snapshot.currency,
                        "total": snapshot.total, "entries": snapshot.entries, "balances": balances,
                    }),
                    None => json!({ "id": null, "balances": balances }),
                })
            }
            Command::Snapshots(range) => Ok(json!(db.snapshot_history(range).await?)),
            Command::Backup { path, overwrite } => {
                let live = self.session.live_area().await;
                db.backup(crate::db::BackupTarget { path: path.clone(), overwrite, live }, None).await?;
                Ok(json!({ "path": path.display().to_string() }))
            }
            other => unreachable!("{other:?} does not use the database"),
        }
    }

    fn schedule(&self, enabled: bool) -> Result<Value> {
        let scheduler = self.session.scheduler().ok_or(SCHEDULER_OFF)?;
        scheduler.set_should_schedule(enabled);
        log::info!("scheduling turned {}", if enabled { "on" } else { "off" });
        Ok(Value::Bool(enabled))
    }

    /// A finished API task's outcome, once: `{"status": "completed", "outcome": {"result",
    /// "message"}, "status_code": n}` (the status the same request would have had, next to the
    /// outcome as in rotki's answer), or `{"status": "pending"}` while it runs.
    fn task_result(&self, id: TaskId) -> Result<Value> {
        if self.tasks.is_pending_result(id) {
            return Ok(json!({ "status": "pending", "outcome": null }));
        }
        let (outcome, status_code) = match self.tasks.take_result(id) {
            Some(Outcome::Completed(result)) => (json!({ "result": result, "message": "" }), 200),
            Some(Outcome::Failed(err)) => {
                let message = format!("The backend query task died unexpectedly: {err}");
                (json!({ "result": null, "message": message }), 500)
            }
            Some(Outcome::Cancelled) | None => return Err(Error::UnknownTask(id)),
        };
        Ok(json!({ "status": "completed", "outcome": outcome, "status_code": status_code }))
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
            "database": self.session.database().as_ref().map(crate::db::Database::describe),
            "user": self.session.user(),
            "tasks": self.tasks.describe(),
            "scheduler": self.session.scheduler().map(|s| s.describe()),
        })
    }
}

/// Clients' task progress as `progress_updates` (`task_status`, robin's extension).
fn external_progress(notifier: Rc<Notifier>) -> ProgressSink {
    ProgressSink::new(move |id, name, total, processed| {
        let progress =
            crate::notifier::Progress::TaskStatus { task_id: id.0, name: name.to_string(), total, processed };
        notifier.broadcast(&crate::notifier::Message::ProgressUpdates(progress));
    })
}

/// The error for external-task commands on a transport without connections of its own.
const NEEDS_A_LINK: Error = Error::Disabled(
    "tasks.begin, tasks.progress and tasks.end need the control socket: a task belongs to the connection that began it",
);

/// The error for commands that need the scheduler when the feature is off.
const SCHEDULER_OFF: Error = Error::Disabled("the scheduler is off (feature flag scheduler)");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifier::Limits;
    use crate::runtime::Spawner;

    fn controller() -> Controller {
        let tasks = TaskManager::new(Spawner::new(), Rc::new(|_| {}), Rc::new(|_| {}));
        Controller::new(
            Features::defaults(),
            Notifier::new(Limits::default()),
            tasks.clone(),
            Session::new(tasks),
        )
    }

    #[test]
    fn status_reports_features_and_endpoints() {
        let controller = controller();
        controller
            .set_endpoints(Endpoints { http: Some("127.0.0.1:1".parse().unwrap()), ..Endpoints::default() });
        let status =
            futures_lite::future::block_on(controller.execute(Command::Status, &Caller::default())).unwrap();
        assert_eq!(status["http"], "127.0.0.1:1");
        assert_eq!(status["features"]["websockets"], true);
        assert_eq!(status["version"], crate::VERSION);
    }

    #[test]
    fn data_commands_need_a_database() {
        let err = futures_lite::future::block_on(
            controller().execute(Command::AssetsList { details: false }, &Caller::default()),
        )
        .unwrap_err();
        assert!(matches!(err, Error::NoDatabase), "{err}");
    }
}
