//! Tasks that run outside robind: a local process begins one on its control-socket connection
//! (`tasks.begin`), reports progress (`tasks.progress`) and ends it (`tasks.end`), and robind
//! tracks it like its own: in `tasks.list`, the status page and the async task API, with its
//! outcome kept and its failure reported as robin's are.
//!
//! The design keeps the bookkeeping in ownership. Each external task is an ordinary tracked
//! task whose future waits for its outcome on a channel; the sending end lives in the
//! [`Link`] of the connection that began it. `tasks.end` sends the outcome; a connection that
//! closes drops its link and with it the senders, so its unfinished tasks end as failed ("the
//! client went away") without a sweep; `tasks.cancel` drops the future, whose guard tells the
//! client with a notification line on its connection.
//!
//! May touch: the task tracker (to spawn) and the link's notification queue.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use serde_json::{Value, json};

use super::error::{Error, Result};
use crate::tasks::{Progress, SpawnOptions, TaskId, TaskManager};

/// Most tasks one connection may have open at once.
pub const MAX_TASKS_PER_LINK: usize = 256;
/// Most notifications queued for a connection that is not reading them; later ones are
/// dropped (the client can still ask `tasks.list`).
pub const NOTIFICATION_QUEUE: usize = 64;
/// What an external task fails with when its connection closes before `tasks.end`.
pub const CLIENT_WENT_AWAY: &str = "the client went away before ending the task";

/// The outcome a client sends: a result, or an error's text.
type Ending = std::result::Result<Value, String>;

/// A connection that can own external tasks and be told about them (the control socket).
/// Cheap to clone; the connection holds the last clone, and dropping it fails its open tasks.
#[derive(Clone)]
pub struct Link(Rc<LinkInner>);

struct LinkInner {
    notify: async_channel::Sender<Value>,
    tasks: RefCell<HashMap<TaskId, Open>>,
}

/// An open external task, as its link holds it.
struct Open {
    /// Where `tasks.end` sends the outcome.
    ending: async_channel::Sender<Ending>,
    name: Rc<str>,
    /// Rate-limits `tasks.progress` into `progress_updates`; replaced when the total changes.
    progress: Option<Progress>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("open_tasks", &self.0.tasks.borrow().len()).finish()
    }
}

impl PartialEq for Link {
    fn eq(&self, other: &Link) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Link {}

impl std::hash::Hash for Link {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Rc::as_ptr(&self.0).hash(state);
    }
}

impl Link {
    /// A link and the queue of notifications the connection must write to its client.
    pub fn new() -> (Link, async_channel::Receiver<Value>) {
        let (notify, notifications) = async_channel::bounded(NOTIFICATION_QUEUE);
        (Link(Rc::new(LinkInner { notify, tasks: RefCell::default() })), notifications)
    }

    /// Tasks this connection has open.
    pub fn open_tasks(&self) -> usize {
        self.0.tasks.borrow().len()
    }

    /// `tasks.begin`: a tracked task named `name` that ends when this connection says so.
    pub(super) fn begin(
        &self,
        tasks: &TaskManager,
        name: String,
        total: Option<u64>,
        exception_is_error: bool,
        progress_sink: &ProgressSink,
    ) -> Result<TaskId> {
        if self.open_tasks() >= MAX_TASKS_PER_LINK {
            return Err(Error::Conflict(format!(
                "this connection has {MAX_TASKS_PER_LINK} tasks open; end some with tasks.end first"
            )));
        }
        let (ending, outcome) = async_channel::bounded::<Ending>(1);
        let number = Rc::new(Cell::new(None));
        let guard = CancelNotice { link: Rc::downgrade(&self.0), id: number.clone(), done: Cell::new(false) };
        let work = async move {
            let ended = outcome.recv().await;
            guard.done.set(true);
            match ended {
                Ok(Ok(result)) => Ok(result),
                Ok(Err(error)) => Err(error),
                Err(_) => Err(CLIENT_WENT_AWAY.to_string()),
            }
        };
        let options =
            SpawnOptions { exception_is_error, keep_result: true, external: true, ..SpawnOptions::default() };
        let handle = tasks.spawn_and_track(name.clone(), work, options);
        let id = handle.id();
        number.set(Some(id));
        let name: Rc<str> = name.into();
        let progress = total.map(|total| progress_sink.start(id, &name, total));
        self.0.tasks.borrow_mut().insert(id, Open { ending, name, progress });
        log::debug!("external task {id} begun");
        Ok(id)
    }

    /// `tasks.progress`: `processed` of `total` (the begun total when not given) are done.
    pub(super) fn progress(
        &self,
        id: TaskId,
        processed: u64,
        total: Option<u64>,
        progress_sink: &ProgressSink,
    ) -> Result<()> {
        let mut tasks = self.0.tasks.borrow_mut();
        let open = tasks.get_mut(&id).ok_or_else(|| not_open(id))?;
        let total = match (total, &open.progress) {
            (Some(total), _) => total,
            (None, Some(progress)) => progress.total(),
            (None, None) => {
                return Err(Error::InvalidParams {
                    method: "tasks.progress".into(),
                    reason: "the task was begun without a total: give \"total\"".into(),
                });
            }
        };
        // One counter per task, so that a client changing the total is rate-limited too.
        let progress = open.progress.get_or_insert_with(|| progress_sink.start(id, &open.name, total));
        progress.set_total(total);
        progress.set_processed(processed);
        Ok(())
    }

    /// `tasks.end`: the task's outcome, kept for the task API as a robin task's would be.
    pub(super) fn end(&self, id: TaskId, ending: Ending) -> Result<()> {
        let open = self.0.tasks.borrow_mut().remove(&id).ok_or_else(|| not_open(id))?;
        if let Some(progress) = &open.progress {
            progress.set_processed(progress.total());
        }
        // The channel holds one outcome and only this call sends: it cannot be full.
        let _ = open.ending.try_send(ending);
        Ok(())
    }
}

fn not_open(id: TaskId) -> Error {
    Error::Conflict(format!(
        "task {id} is not open on this connection (ended, cancelled, or begun on another connection)"
    ))
}

/// Tells the client when its task was cancelled by someone else (`tasks.cancel`), and forgets
/// the task on its link.
struct CancelNotice {
    link: Weak<LinkInner>,
    /// Set once the task is spawned and has its number (before it can be cancelled).
    id: Rc<Cell<Option<TaskId>>>,
    /// The outcome arrived (or the link went away): nothing to tell.
    done: Cell<bool>,
}

impl Drop for CancelNotice {
    fn drop(&mut self) {
        if self.done.get() {
            return;
        }
        let (Some(link), Some(id)) = (self.link.upgrade(), self.id.get()) else { return };
        let open = link.tasks.borrow_mut().remove(&id);
        let name = open.map(|open| open.name.to_string());
        let notice = json!({"method": "task_cancelled", "params": {"task_id": id, "name": name}});
        if link.notify.try_send(notice).is_err() {
            log::debug!("external task {id} cancelled; its client is not reading notifications");
        }
    }
}

/// Where external tasks' progress goes: `progress_updates` of robin's `task_status` subtype,
/// rate-limited like robin's own.
#[derive(Clone)]
pub(super) struct ProgressSink(Rc<SendProgress>);

/// `(task, name, total, processed)` to a message.
type SendProgress = dyn Fn(TaskId, &str, u64, u64);

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

impl ProgressSink {
    /// Reports through `send(id, name, total, processed)`.
    pub(super) fn new(send: impl Fn(TaskId, &str, u64, u64) + 'static) -> ProgressSink {
        ProgressSink(Rc::new(send))
    }

    fn start(&self, id: TaskId, name: &Rc<str>, total: u64) -> Progress {
        let (send, name) = (self.0.clone(), name.clone());
        Progress::new(
            "external",
            total,
            Rc::new(move |report: crate::tasks::ProgressReport| {
                send(id, &name, report.total, report.processed)
            }),
        )
    }
}
