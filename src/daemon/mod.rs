//! Start-up and shutdown: the table of contents of a running `robind`.
//!
//! Owns the order of things. Before the loop: lock the data directory, take or bind the
//! listeners, connect to systemd, install signal handlers, read the API token (all blocking
//! work, done while no loop exists to stall). On the loop: open the database, start the
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
use crate::notifier::{self, Message, Notifier, NotifierHandle};
use crate::runtime::Spawner;
use crate::server::ApiToken;
use crate::systemd::{self, ActivatedSockets, ServiceManager};
use crate::tasks::{self, Scheduler, TaskManager};
use crate::{db, ipc, jobs, lockfile, outbound, server};

mod ready;

use ready::{announce_ready, keep_watchdog_fed, notify, signal_name};

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
}

/// Runs the daemon until SIGTERM or SIGINT, then shuts down gracefully.
pub fn run(config: Config, env: &Environment) -> Result<()> {
    let systemd_err = |what| move |source| Error::Systemd { what, source };
    let activated = ActivatedSockets::take(env.get(systemd::ENV_LISTEN_FDNAMES).map(|v| v.as_os_str()))
        .map_err(systemd_err("socket activation"))?;
    let _lock = lockfile::DataDirLock::acquire(&config.data_dir.value)?;
    let tcp = match activated.http {
        Some(listener) => listener,
        None => TcpListener::bind(config.listen.value)
            .map_err(|source| Error::Listen { addr: config.listen.value, source })?,
    };
    // The socket file, when we made it, is dropped after the loop so its unlink stays off-loop.
    let (ipc_listener, _socket_file) = bind_control_socket(&config, activated.ipc)?;
    let service = ServiceManager::connect(env.get(systemd::ENV_NOTIFY_SOCKET).map(|v| v.as_os_str()))
        .map_err(systemd_err("NOTIFY_SOCKET"))?;
    let signals = Signals::new([Signal::Term, Signal::Int]).map_err(Error::Signals)?;
    let watchdog = systemd::watchdog_interval(
        env.get(systemd::ENV_WATCHDOG_USEC).map(|v| v.as_os_str()),
        env.get(systemd::ENV_WATCHDOG_PID).map(|v| v.as_os_str()),
    );
    let token = api_token(&config)?;

    let ex = Spawner::new();
    let parts = wire(&ex, &config, tcp, ipc_listener, token)?;
    ex.block_on(serve(&ex, &config, parts, Lifecycle { service, watchdog, signals }))
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
}

/// systemd and signals: what tells the daemon to stop and whom it tells.
struct Lifecycle {
    service: ServiceManager,
    watchdog: Option<Duration>,
    signals: Signals,
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
    let controller =
        Rc::new(Controller::new(config.features.clone(), notifier.clone(), tasks.clone(), session.clone()));
    // WebSocket clients may send the same requests as the control socket, answered in-band.
    notifier.set_incoming_handler(controller.websocket_handler());
    let listen_err = |source| Error::Listen { addr: config.listen.value, source };
    let access = server::Access {
        allowed_origins: config.ws_origins.value.clone(),
        api_token: token.as_ref().map(|t| t.token.clone()),
        ..server::Access::for_listener(tcp.local_addr().map_err(listen_err)?)
    };
    let http = server::Server::with_access(tcp, controller.clone(), server::Limits::default(), access)
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
    };
    controller.set_endpoints(endpoints.clone());
    Ok(Parts { notifier, tasks, session, http, ipc, endpoints })
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

/// The loop's main future: serve until a signal, then stop everything it started.
async fn serve(ex: &Spawner, config: &Config, parts: Parts, lifecycle: Lifecycle) -> Result<()> {
    let Lifecycle { service, watchdog, mut signals } = lifecycle;
    let (notifier_handle, notifier_pump) =
        notifier::channel(parts.notifier.clone(), notifier::handle::DEFAULT_BRIDGE_CAPACITY);
    notifier::install_global(notifier_handle.clone());
    let (tasks_handle, tasks_pump) = tasks::remote_channel(parts.tasks.clone());
    tasks::install_global(tasks_handle);
    let pumps = [ex.spawn(notifier_pump), ex.spawn(tasks_pump)];

    // The listeners are bound (clients queue in the backlog) but not served until the database
    // is open: a client that gets in must find the data there, and READY=1 means all of it.
    let service = Rc::new(service);
    notify(&service, "STATUS=opening the database").await;
    let database = open_databases(config, &parts.session, notifier_handle).await?;
    let scheduler = config
        .features
        .enabled(Feature::Scheduler)
        .then(|| start_scheduler(config, &parts.session, &parts.tasks, &parts.notifier, &database));
    let mut running = vec![ex.spawn(parts.http.serve())];
    running.extend(scheduler.clone().map(|scheduler| ex.spawn(scheduler.run())));
    parts.session.set_scheduler(scheduler);
    parts.session.apply_schedule_settings().await;
    running.extend(parts.ipc.map(|server| ex.spawn(server.serve())));
    running.extend(watchdog.map(|period| ex.spawn(keep_watchdog_fed(service.clone(), period))));
    announce_ready(&service, &parts.endpoints).await;

    let signal = signals.next().await;
    log::info!("received {}, shutting down", signal_name(signal));
    notify(&service, "STOPPING=1\nSTATUS=shutting down").await;
    // A second signal means "now": do not wait for the rest of the graceful path.
    let _force = ex.spawn(async move {
        let signal = signals.next().await;
        log::warn!("received {} during shutdown, exiting immediately", signal_name(signal));
        std::process::exit(FORCED_EXIT_CODE);
    });
    shutdown(&parts.notifier, &parts.tasks, &parts.session, running, database).await;
    for pump in pumps {
        pump.cancel().await;
    }
    log::info!("stopped");
    Ok(())
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
        on_migration: Arc::new(move |progress| {
            let data = serde_json::to_value(&progress).unwrap_or_default();
            notifier.broadcast(Message::DbUpgradeStatus(data));
        }),
        ..options.clone()
    }
}
