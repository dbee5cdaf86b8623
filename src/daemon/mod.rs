//! Start-up and shutdown: the table of contents of a running `robind`.
//!
//! Owns the order of things. Before the loop: lock the data directory (or, as a companion,
//! hand over to the robind holding it, in `companion.rs`), take or bind the listeners, connect
//! to systemd, install signal handlers and the companion's lifelines, read the API token (all
//! blocking work, done while no loop exists to stall). On the loop: open the database, start the
//! scheduler, serve, announce readiness, wait for a signal. After a signal: tell systemd, stop
//! accepting, close connections, cancel tasks, close the database and leave the loop; the
//! socket file and the lock are released after the loop has stopped.
//!
//! May touch: each part's constructor and public handles. It holds no business logic.
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::Timer;
use async_signal::{Signal, Signals};
use futures_lite::StreamExt;

use crate::config::{Config, Environment, Feature};
use crate::control::{Controller, Endpoints, Session};
use crate::notifier::payloads::{DbUpgradeStatus, UpgradeStep};
use crate::notifier::{self, Message, Notifier, NotifierHandle};
use crate::peers::Policy;
use crate::runtime::Spawner;
use crate::server::ApiToken;
use crate::systemd::{self, ActivatedSockets, ServiceManager};
use crate::tasks::{self, Scheduler, TaskManager};
use crate::{db, ipc, jobs, lockfile, outbound, server};

mod companion;
mod ready;
mod reload;
mod supervise;

use futures_lite::FutureExt;
use ready::{announce_ready, keep_watchdog_fed, notify, signal_name};
use supervise::Supervisor;

/// `Result` with this part's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit status after a second signal cut a graceful shutdown short.
pub const FORCED_EXIT_CODE: i32 = 130;
/// How long the database gets to finish its last write and checkpoint at shutdown.
pub const DATABASE_CLOSE_GRACE: Duration = Duration::from_millis(1000);
/// How long WebSocket clients get to take their close frame at shutdown.
pub const CLIENT_CLOSE_GRACE: Duration = Duration::from_millis(300);

/// Why the daemon could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data directory is taken or unusable.
    #[error(transparent)]
    Lock(#[from] lockfile::Error),
    /// The HTTP listener could not be bound.
    #[error("cannot listen on {addr} (set --listen or ROBIN_LISTEN to a free address)")]
    Listen {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// What the socket layer reported.
        #[source]
        source: std::io::Error,
    },
    /// The control socket could not be created.
    #[error(transparent)]
    Ipc(#[from] ipc::Error),
    /// A systemd facility (notify socket, activated sockets) failed.
    #[error("systemd integration failed: {what}")]
    Systemd {
        /// Which facility.
        what: &'static str,
        /// What the socket layer reported.
        #[source]
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers")]
    Signals(#[source] std::io::Error),
    /// The database could not be opened.
    #[error(transparent)]
    Database(#[from] db::Error),
    /// The API token file could not be read or written.
    #[error(transparent)]
    Token(#[from] server::TokenError),
    /// The kernel cannot say who is behind a TCP connection, and no token keeps others out.
    #[error(
        "cannot tell which user is behind a TCP connection (netlink sock_diag); allow AF_NETLINK, \
         or require an API token with --generate-api-token"
    )]
    PeerLookup(#[source] std::io::Error),
    /// A core task ended or panicked; the daemon stopped so that it can be restarted whole.
    #[error("{0}")]
    CoreTask(String),
    /// `--exit-with-parent`, and the parent is already gone.
    #[error(
        "--exit-with-parent: the process that started robind (pid {pid}) has already exited, or robind \
         was started by init, which never exits; drop --exit-with-parent when no app owns robind"
    )]
    ParentGone {
        /// The parent's pid as recorded at start (0: unknown, 1: init).
        pid: i32,
    },
    /// A robind holds the data directory but did not answer; attaching to it failed.
    #[error(
        "robind {} holds data directory {}{} but did not answer on its control socket {} within \
         {:?} ({why}); it may be stopped, hung, or still opening its database: {}",
        companion::pid_text(*.pid), .dir.display(), companion::held_for_text(*.held_for),
        .socket.display(), companion::ATTACH_TIMEOUT, companion::what_to_do(*.pid)
    )]
    NotAnswering {
        /// The data directory.
        dir: std::path::PathBuf,
        /// The holder's pid, from the lock file.
        pid: Option<u32>,
        /// How long the lock has been held, from the lock file's time.
        held_for: Option<Duration>,
        /// The control socket that was tried.
        socket: std::path::PathBuf,
        /// What went wrong with the last try.
        why: String,
    },
    /// Companion mode could not be set up.
    #[error("{0}")]
    Companion(String),
    /// A listener other machines can reach, and no token to keep them out.
    #[error(
        "refusing to listen on {0} without an API token: other machines could use the whole API; \
         set --generate-api-token or --api-token-file, or listen on 127.0.0.1"
    )]
    ExposedWithoutToken(std::net::SocketAddr),
}

/// Runs the daemon until SIGTERM or SIGINT, then shuts down gracefully.
pub fn run(config: Config, env: &Environment) -> Result<()> {
    let systemd_err = |what| move |source| Error::Systemd { what, source };
    let activated = ActivatedSockets::take(env.get(systemd::ENV_LISTEN_FDNAMES).map(|v| v.as_os_str()))
        .map_err(systemd_err("socket activation"))?;
    // Recorded first: the parent that exec'd us, before it has had much time to die.
    let parent = rustix::process::getppid();
    // Whatever robind creates (databases, backups, logs of SQLite) is its user's alone, even
    // when it was started with a umask of 022.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let mut lock = match lockfile::DataDirLock::acquire(&config.data_dir.value) {
        Ok(lock) => lock,
        Err(lockfile::Error::AlreadyRunning { dir, owner }) if config.attaches() => {
            let line = companion::attach(&config, &dir, &owner)?;
            log::info!("robind pid {} already serves {}; printed its ready line", line.pid, dir.display());
            println!("{}", line.to_line());
            return Ok(());
        }
        Err(err) => return Err(err.into()),
    };
    let tcp = match activated.http {
        Some(listener) => listener,
        None => TcpListener::bind(config.listen.value)
            .map_err(|source| Error::Listen { addr: config.listen.value, source })?,
    };
    // The socket file, when we made it, is dropped after the loop so its unlink stays off-loop.
    let (ipc_listener, socket_file) = bind_control_socket(&config, activated.ipc)?;
    if let Some(path) = ipc_listener
        .as_ref()
        .and_then(|l| l.local_addr().ok()?.as_pathname().map(std::path::Path::to_path_buf))
    {
        lock.record_control_socket(&path)?;
    }
    let service = ServiceManager::connect(env.get(systemd::ENV_NOTIFY_SOCKET).map(|v| v.as_os_str()))
        .map_err(systemd_err("NOTIFY_SOCKET"))?;
    let signals =
        Signals::new([Signal::Term, Signal::Int, Signal::Hup, Signal::Usr1]).map_err(Error::Signals)?;
    // After the handlers: the parent's death arrives as a SIGTERM, which must find them.
    let parent = config.exit_with_parent.value.then(|| companion::follow_parent(parent)).transpose()?;
    let lifeline = config.stdin_lifeline.value.then(companion::stdin_lifeline).transpose()?;
    let watchdog = systemd::watchdog_interval(
        env.get(systemd::ENV_WATCHDOG_USEC).map(|v| v.as_os_str()),
        env.get(systemd::ENV_WATCHDOG_PID).map(|v| v.as_os_str()),
    );
    if config.features.enabled(Feature::Ipc) || config.generate_api_token.value {
        ipc::secure_dir(&config.runtime_dir.value)?;
    }
    let token = api_token(&config)?;
    let local = tcp.local_addr().map_err(|source| Error::Listen { addr: config.listen.value, source })?;
    // On loopback the kernel says which user each client is; elsewhere only a token can.
    if !local.ip().is_loopback() && token.is_none() {
        return Err(Error::ExposedWithoutToken(local));
    }
    raise_fd_limit();

    let ex = Spawner::new();
    let parts = wire(&ex, &config, tcp, ipc_listener, token)?;
    let lifecycle = Lifecycle { service, watchdog, signals, parent, lifeline };
    // On the heap: the loop's main future holds every part's state machine (tens of KiB), and
    // each stack page it once occupied would stay resident for the daemon's whole life.
    let served = ex.block_on(Box::pin(serve(&ex, config, env, parts, lifecycle)));
    // The socket goes before the lock: once the lock is free, a new robind may bind its own.
    drop(socket_file);
    drop(lock);
    served
}

/// Raises the soft limit on open files to the hard limit: every client is a file descriptor,
/// and the default soft limit (1024) is below the listener's own connection bound.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => log::debug!("open files limit raised from {:?} to {:?}", limit.current, limit.maximum),
            Err(err) => log::warn!("cannot raise the open files limit ({:?}): {err}", limit.current),
        }
    }
}

/// The control socket: the one systemd handed over, or a fresh one (when the feature is on).
fn bind_control_socket(
    config: &Config,
    activated: Option<UnixListener>,
) -> Result<(Option<UnixListener>, Option<ipc::SocketFile>)> {
    Ok(match (config.features.enabled(Feature::Ipc), activated) {
        (false, _) => (None, None),
        (true, Some(listener)) => (Some(listener), None),
        (true, None) => {
            let (listener, file) = ipc::bind(&config.ipc_socket_path())?;
            (Some(listener), Some(file))
        }
    })
}

/// The API token to require: generated fresh into the runtime directory when asked, else read
/// from `--api-token-file`, else none.
fn api_token(config: &Config) -> Result<Option<ApiToken>> {
    if config.generate_api_token.value {
        return Ok(Some(ApiToken::generate(&config.generated_token_path())?));
    }
    Ok(config.api_token_file.as_ref().map(|file| ApiToken::read(&file.value)).transpose()?)
}

/// The loop's parts, wired together (the controller lives on in the listeners).
struct Parts {
    notifier: Rc<Notifier>,
    tasks: TaskManager,
    session: Rc<Session>,
    http: server::Server,
    ipc: Option<ipc::Server>,
    endpoints: Endpoints,
    /// What a reload can change.
    live: reload::Live,
}

/// systemd, signals and the companion's lifelines: what tells the daemon to stop and whom it
/// tells.
struct Lifecycle {
    service: ServiceManager,
    watchdog: Option<Duration>,
    signals: Signals,
    /// The parent being followed (`--exit-with-parent`), as recorded at start.
    parent: Option<rustix::process::Pid>,
    /// Hears when standard input closes (`--stdin-lifeline`).
    lifeline: Option<async_channel::Receiver<&'static str>>,
}

fn wire(
    ex: &Spawner,
    config: &Config,
    tcp: TcpListener,
    ipc_listener: Option<UnixListener>,
    token: Option<ApiToken>,
) -> Result<Parts> {
    let notifier = Notifier::new(config.notifier.clone());
    let tasks = task_manager(ex, &notifier);
    let session = Session::new(tasks.clone());
    session.protect(|live| {
        let mut live = live.with_dir(config.runtime_dir.value.clone());
        if let Some(file) = &config.config_file {
            live = live.with_file(file.value.clone(), "configuration file");
        }
        if let Some(file) = &config.api_token_file {
            live = live.with_file(file.value.clone(), "API token file");
        }
        live
    });
    let controller =
        Rc::new(Controller::new(config.features.clone(), notifier.clone(), tasks.clone(), session.clone()));
    let listen_err = |source| Error::Listen { addr: config.listen.value, source };
    let access = server::Access {
        allowed_origins: config.ws_origins.value.clone(),
        api_token: token.as_ref().map(|t| t.token.clone()),
        ..server::Access::for_listener(tcp.local_addr().map_err(listen_err)?)
    };
    let peers = tcp_peers(config, token.is_some())?;
    let http = server::Server::with_access(
        tcp,
        controller.clone(),
        server::Limits::default(),
        access.clone(),
        peers,
    )
    .map_err(listen_err)?;
    let ipc = ipc_listener
        .map(|listener| {
            ipc::Server::new(listener, controller.clone())
                .map(|s| s.with_allowed_uids(&config.ipc_allow_uids))
        })
        .transpose()
        .map_err(|source| ipc::Error::Bind { path: config.ipc_socket_path(), source })?;
    let endpoints = Endpoints {
        http: http.local_addr().ok(),
        ipc: ipc.as_ref().and_then(ipc::Server::path),
        api_token_file: token.map(|t| t.file),
        data_dir: config.data_dir.value.clone(),
        websockets: config.features.enabled(Feature::Websockets),
    };
    controller.set_endpoints(endpoints.clone());
    let live = reload::Live {
        server: http.handle(),
        access,
        ipc_policy: ipc.as_ref().map(ipc::Server::policy_handle),
        scheduler: None,
    };
    Ok(Parts { notifier, tasks, session, http, ipc, endpoints, live })
}

/// How the TCP listener tells users apart: by uid where the kernel can say (it cannot in a
/// sandbox without AF_NETLINK); there, the API token alone is accepted as the gate.
fn tcp_peers(config: &Config, has_token: bool) -> Result<server::Peers> {
    match server::Peers::by_uid(Policy::new(&config.ipc_allow_uids)) {
        Ok(peers) => Ok(peers),
        Err(err) if has_token => {
            log::warn!("cannot tell TCP clients' users apart ({err}); the API token is the only gate");
            Ok(server::Peers::TokenOnly)
        }
        Err(err) => Err(Error::PeerLookup(err)),
    }
}

/// The task tracker, reporting user errors to the messages aggregator and job progress as
/// `progress_updates`.
fn task_manager(ex: &Spawner, notifier: &Rc<Notifier>) -> TaskManager {
    let (errors, progress) = (notifier.clone(), notifier.clone());
    TaskManager::new(
        ex.clone(),
        Rc::new(move |message| errors.add_error(message)),
        Rc::new(move |report| {
            if let Some(message) = jobs::progress_message(&report) {
                progress.broadcast(&message);
            }
        }),
    )
}

/// The loop's main future: serve until a stop signal or a failed core task, then stop
/// everything it started.
async fn serve(
    ex: &Spawner,
    mut config: Config,
    env: &Environment,
    parts: Parts,
    lifecycle: Lifecycle,
) -> Result<()> {
    let Lifecycle { service, watchdog, mut signals, parent, lifeline } = lifecycle;
    let supervisor = Supervisor::new(ex);
    let mut stoppers =
        Stoppers { signals: &mut signals, parent, lifeline: lifeline.as_ref(), supervisor: &supervisor };
    let Parts { notifier, tasks, session, http, ipc, endpoints, mut live } = parts;
    let (notifier_handle, notifier_pump) =
        notifier::channel(notifier.clone(), notifier::handle::DEFAULT_BRIDGE_CAPACITY);
    notifier::install_global(notifier_handle.clone());
    let (tasks_handle, tasks_pump) = tasks::remote_channel(tasks.clone());
    tasks::install_global(tasks_handle);
    let pumps = [supervisor.spawn("notifier", notifier_pump), supervisor.spawn("tasks", tasks_pump)];

    // The listeners are bound (clients queue in the backlog) but not served until the database
    // is open: a client that gets in must find the data there, and READY=1 means all of it.
    let service = Rc::new(service);
    notify(&service, "STATUS=opening the database").await;
    let database = open_databases(&config, &session, notifier_handle).await?;
    let writer = database.clone();
    let mut running = vec![supervisor.spawn("database writer", async move {
        log::error!("database writer: {}", writer.writer_failed().await);
    })];
    let scheduler = config
        .features
        .enabled(Feature::Scheduler)
        .then(|| start_scheduler(&config, &session, &tasks, &notifier, &database));
    running.extend(scheduler.clone().map(|scheduler| supervisor.spawn("scheduler", scheduler.run())));
    live.scheduler = scheduler.clone();
    session.set_scheduler(scheduler);
    session.apply_schedule_settings().await;
    running.push(supervisor.spawn("http listener", http.serve()));
    running.extend(ipc.map(|server| supervisor.spawn("control socket", server.serve())));
    running.extend(
        watchdog.map(|period| supervisor.spawn("watchdog", keep_watchdog_fed(service.clone(), period))),
    );
    announce_ready(&service, &endpoints).await;

    let failure = loop {
        let event = match stoppers.next_event().await {
            // Reading the file can block (a FIFO, a stalled mount): a stop must still get in.
            Event::Reload => {
                let reloaded = async {
                    reload::reload(&mut config, env, &mut live).await;
                    None
                };
                match reloaded.or(stoppers.next_stop()).await {
                    Some(stop) => stop,
                    None => continue,
                }
            }
            event => event,
        };
        match event {
            Event::Stop(why) => {
                log::info!("{why}; shutting down");
                break None;
            }
            Event::Failed(why) => {
                log::error!("{why}; shutting down so that the service manager can restart robind");
                break Some(why);
            }
            Event::Reload => {}
            Event::Status => log_status(&session, &tasks, &notifier).await,
        }
    };
    notify(&service, "STOPPING=1\nSTATUS=shutting down").await;
    // A second stop signal means "now": do not wait for the rest of the graceful path.
    let _force = ex.spawn(async move {
        loop {
            if let Event::Stop(why) = next_signal(&mut signals, None).await {
                log::warn!("{why} during shutdown, exiting immediately");
                std::process::exit(FORCED_EXIT_CODE);
            }
        }
    });
    shutdown(&notifier, &tasks, &session, running, database).await;
    for pump in pumps {
        pump.cancel().await;
    }
    log::info!("stopped");
    failure.map_or(Ok(()), |why| Err(Error::CoreTask(why)))
}

/// What the main future wakes for.
enum Event {
    /// SIGTERM or SIGINT, the parent's death or the end of standard input: why, for the log.
    Stop(String),
    /// SIGHUP: read the configuration again.
    Reload,
    /// SIGUSR1: log a status summary.
    Status,
    /// A core task ended or panicked.
    Failed(String),
}

/// Everything that can end the main loop.
struct Stoppers<'a> {
    signals: &'a mut Signals,
    /// The followed parent, when `--exit-with-parent` is on.
    parent: Option<rustix::process::Pid>,
    lifeline: Option<&'a async_channel::Receiver<&'static str>>,
    supervisor: &'a Supervisor,
}

impl Stoppers<'_> {
    async fn next_event(&mut self) -> Event {
        let lifeline = async {
            match self.lifeline {
                Some(lifeline) => {
                    Event::Stop(lifeline.recv().await.unwrap_or("standard input closed").into())
                }
                None => std::future::pending().await,
            }
        };
        let failure = async { Event::Failed(self.supervisor.failure().await) };
        next_signal(self.signals, self.parent).or(lifeline).or(failure).await
    }

    /// The next stop or failure, passing over reload and status requests (while a reload
    /// is under way).
    async fn next_stop(&mut self) -> Option<Event> {
        loop {
            match self.next_event().await {
                event @ (Event::Stop(_) | Event::Failed(_)) => return Some(event),
                _ => log::info!("a reload is still under way; this SIGHUP or SIGUSR1 is ignored"),
            }
        }
    }
}

/// The next signal; a SIGTERM after the followed parent died says so.
async fn next_signal(signals: &mut Signals, parent: Option<rustix::process::Pid>) -> Event {
    match signals.next().await {
        Some(Ok(Signal::Hup)) => Event::Reload,
        Some(Ok(Signal::Usr1)) => Event::Status,
        Some(Ok(Signal::Term)) if parent.is_some_and(companion::parent_gone) => Event::Stop(format!(
            "the process that started robind (pid {}) exited",
            rustix::process::Pid::as_raw(parent)
        )),
        other => Event::Stop(format!("received {}", signal_name(other))),
    }
}

/// SIGUSR1: one log line with what `status` reports, for an operator without robinctl.
async fn log_status(session: &Session, tasks: &TaskManager, notifier: &Notifier) {
    let stats = notifier.stats();
    let database = session.database().map(|db| db.path().display().to_string());
    log::info!(
        "status: robind {} pid {}, database {}, user {}, {} tasks running, {} WebSocket clients, notifier {}",
        crate::VERSION,
        std::process::id(),
        database.as_deref().unwrap_or("none"),
        session.user().as_deref().unwrap_or("none"),
        tasks.count(),
        notifier.client_count(),
        stats.to_json()
    );
}

/// Opens the default (plain) database and sets up where users' databases go; both broadcast
/// their migrations as `db_upgrade_status`.
async fn open_databases(
    config: &Config,
    session: &Session,
    notifier: NotifierHandle,
) -> Result<db::Database> {
    let options = broadcasting_migrations(&config.database, notifier);
    let path = config.database_path();
    let database = db::Database::open(&path, None, options.clone()).await?;
    log::info!("database {} open (schema version {})", path.display(), database.schema_version());
    session.set_default_database(Some(database.clone()));
    session.set_data_dir(config.data_dir.value.clone(), options);
    // Nothing is being backed up yet: any temporary backup file there is a crash's leftover.
    let backups = database.backups_dir();
    blocking::unblock(move || db::remove_backup_leftovers(&backups)).await;
    Ok(database)
}

/// The graceful path: WebSocket clients get a close frame (1001) and a moment to take it, the
/// listeners and the scheduler stop, tasks are cancelled, and the databases close.
async fn shutdown(
    notifier: &Notifier,
    tasks: &TaskManager,
    session: &Session,
    running: Vec<async_executor::Task<()>>,
    database: db::Database,
) {
    notifier.close_all();
    let deadline = Instant::now() + CLIENT_CLOSE_GRACE;
    while notifier.client_count() > 0 && Instant::now() < deadline {
        Timer::after(Duration::from_millis(10)).await;
    }
    for task in running {
        task.cancel().await;
    }
    // Tasks stop at their next await; a database write they started finishes or rolls back.
    let cancelled = tasks.clear();
    if cancelled > 0 {
        log::info!("cancelled {cancelled} running tasks");
    }
    session.close_user_database().await;
    session.set_default_database(None);
    if crate::runtime::timeout(DATABASE_CLOSE_GRACE, database.close()).await.is_none() {
        log::warn!(
            "the database did not close within {DATABASE_CLOSE_GRACE:?}; its last write finishes or rolls back"
        );
    }
}

/// Builds the scheduler over the database's last-run times and registers robin's jobs.
fn start_scheduler(
    config: &Config,
    session: &Rc<Session>,
    tasks: &TaskManager,
    notifier: &Rc<Notifier>,
    database: &db::Database,
) -> Rc<Scheduler> {
    let options = config.scheduler;
    let store = Rc::new(tasks::DatabaseStore::new(database.clone()));
    let scheduler = Rc::new(Scheduler::new(
        tasks.clone(),
        options.max_tasks,
        options.tick,
        Rc::new(tasks::SystemClock),
        store,
    ));
    let (weak, notifier) = (Rc::downgrade(&scheduler), notifier.clone());
    let ctx = Rc::new(jobs::JobContext {
        http: Rc::new(outbound::Client::new(config.outbound.clone())),
        session: session.clone(),
        tasks: tasks.clone(),
        broadcast: Rc::new(move |message: Message| {
            notifier.broadcast(&message);
        }),
        // rotki's rule: periodic scheduling starts after the first balance query.
        after_balances: Rc::new(move || {
            if let Some(scheduler) = weak.upgrade() {
                scheduler.set_should_schedule(true);
            }
        }),
    });
    jobs::register(&scheduler, ctx, config.backups);
    scheduler.set_should_schedule(options.start_on);
    scheduler
}

/// Database options that broadcast migration progress as `db_upgrade_status`. The callback
/// runs on a pool thread, so it goes through the thread-safe handle.
fn broadcasting_migrations(options: &db::Options, notifier: NotifierHandle) -> db::Options {
    db::Options {
        on_migration: Arc::new(move |progress: db::MigrationProgress| {
            notifier.broadcast(Message::DbUpgradeStatus(DbUpgradeStatus {
                start_version: progress.start_version,
                target_version: progress.target_version,
                // Each of robin's upgrades is one step.
                current_upgrade: UpgradeStep {
                    to_version: progress.current_version,
                    total_steps: 1,
                    current_step: 1,
                    description: Some(progress.description.to_string()),
                },
            }));
        }),
        ..options.clone()
    }
}
