//! Start-up and shutdown: the table of contents of a running `robind`.
//!
//! Owns the order of things. Before the loop: lock the data directory, take or bind the
//! listeners, connect to systemd, install signal handlers (all blocking work, done while no
//! loop exists to stall). On the loop: serve, announce readiness, wait for a signal. After a
//! signal: tell systemd, stop accepting, close connections, and leave the loop; the socket file
//! and the lock are released after the loop has stopped.
//!
//! May touch: each part's constructor. It holds no business logic.
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::Timer;
use async_signal::{Signal, Signals};
use futures_lite::StreamExt;
use serde_json::json;

use crate::config::{Config, Environment, Feature};
use crate::control::{Controller, Endpoints};
use crate::notifier::{self, Notifier};
use crate::runtime::Spawner;
use crate::systemd::{self, ActivatedSockets, ServiceManager};
use crate::tasks::{self, Scheduler, TaskManager};
use crate::{bridge, db, ipc, jobs, lockfile, web};

/// `Result` with this part's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit status after a second signal cut a graceful shutdown short.
pub const FORCED_EXIT_CODE: i32 = 130;
/// How often prices are queried.
pub const PRICES_INTERVAL: Duration = Duration::from_secs(300);
/// How often balances are queried.
pub const BALANCES_INTERVAL: Duration = Duration::from_secs(3600);
/// Hours between automatic database backups, unless configured.
pub const DEFAULT_BACKUP_INTERVAL_HOURS: u64 = 24;
/// Automatic backups kept, unless configured.
pub const DEFAULT_BACKUP_KEEP: usize = 7;
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
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The control socket could not be created.
    #[error(transparent)]
    Ipc(#[from] ipc::Error),
    /// A systemd facility (notify socket, activated sockets) failed.
    #[error("systemd integration failed: {what}")]
    Systemd {
        /// Which one.
        what: &'static str,
        /// The cause.
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
    #[error("cannot {action} API token file {}", .path.display())]
    Token {
        /// "read" or "write".
        action: &'static str,
        /// The token file.
        path: std::path::PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Runs the daemon until SIGTERM or SIGINT, then shuts down gracefully.
pub fn run(config: Config, env: &Environment) -> Result<()> {
    let systemd_err = |what| move |source| Error::Systemd { what, source };
    let activated = ActivatedSockets::take(env).map_err(systemd_err("socket activation"))?;
    let _lock = lockfile::DataDirLock::acquire(&config.data_dir.value)?;

    let tcp = match activated.http {
        Some(listener) => listener,
        None => {
            let addr = config.listen.value;
            TcpListener::bind(addr).map_err(|source| Error::Listen { addr, source })?
        }
    };
    // The socket file, when we made it, is dropped after the loop so its unlink stays off-loop.
    let (ipc_listener, _socket_file) = match (config.features.enabled(Feature::Ipc), activated.ipc) {
        (false, _) => (None, None),
        (true, Some(listener)) => (Some(listener), None),
        (true, None) => {
            let (listener, file) = ipc::bind(&config.ipc_socket_path())?;
            (Some(listener), Some(file))
        }
    };
    let service = ServiceManager::from_env(env).map_err(systemd_err("NOTIFY_SOCKET"))?;
    let signals = Signals::new([Signal::Term, Signal::Int]).map_err(Error::Signals)?;
    let watchdog = systemd::watchdog_interval(env);

    let api_token = api_token(&config)?;

    let ex = Spawner::new();
    let notifier = Notifier::new(notifier_limits(&config));
    let tasks = task_manager(&ex, &notifier);
    let controller = Rc::new(Controller::new(config.features.clone(), notifier.clone(), tasks.clone()));
    // WebSocket clients may send the same requests as the control socket, answered in-band.
    notifier.set_incoming_handler(crate::control::websocket_handler(&controller));
    let access = web::Access {
        allowed_origins: config.ws_origins.value.clone(),
        api_token: api_token.as_ref().map(|(token, _)| token.clone()),
        ..web::Access::for_listener(
            tcp.local_addr().map_err(|source| Error::Listen { addr: config.listen.value, source })?,
        )
    };
    let http = web::Server::with_access(tcp, controller.clone(), web::Limits::default(), access)
        .map_err(|source| Error::Listen { addr: config.listen.value, source })?;
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
        api_token_file: api_token.map(|(_, path)| path),
    };
    controller.set_endpoints(endpoints.clone());

    let parts = Parts { http, ipc, notifier, service, watchdog, endpoints };
    let database = DatabaseSetup { path: config.database_path(), options: database_options(&config) };
    let schedule = schedule_setup(&config);
    ex.block_on(serve(&ex, parts, controller, database, schedule, signals))
}

/// What the loop runs, built before it starts.
struct Parts {
    http: web::Server,
    ipc: Option<ipc::Server>,
    notifier: Rc<Notifier>,
    service: ServiceManager,
    watchdog: Option<Duration>,
    endpoints: Endpoints,
}

fn notifier_limits(config: &Config) -> notifier::Limits {
    let defaults = notifier::Limits::default();
    let ws = &config.websocket;
    notifier::Limits {
        replay_messages: ws.replay_messages.unwrap_or(defaults.replay_messages),
        replay_bytes: ws.replay_bytes.unwrap_or(defaults.replay_bytes),
        client_queue_messages: ws.client_queue_messages.unwrap_or(defaults.client_queue_messages),
        client_queue_bytes: ws.client_queue_bytes.unwrap_or(defaults.client_queue_bytes),
        max_incoming_message: ws.max_message_bytes.unwrap_or(defaults.max_incoming_message),
        ..defaults
    }
}

/// The API token to require, and the file it lives in: generated fresh into the runtime
/// directory when asked, else read from `--api-token-file`, else none.
fn api_token(config: &Config) -> Result<Option<(String, PathBuf)>> {
    if config.generate_api_token.value {
        let path = config.generated_token_path();
        let write_err = |source| Error::Token { action: "write", path: path.clone(), source };
        let token = random_token().map_err(write_err)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&config.runtime_dir.value)
            .map_err(write_err)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(write_err)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(write_err)?;
        file.write_all(token.as_bytes()).map_err(write_err)?;
        return Ok(Some((token, path)));
    }
    let Some(setting) = &config.api_token_file else { return Ok(None) };
    let path = setting.value.clone();
    let read_err = |source| Error::Token { action: "read", path: path.clone(), source };
    let token = std::fs::read_to_string(&path).map_err(read_err)?.trim().to_string();
    if token.is_empty() {
        return Err(read_err(std::io::Error::new(std::io::ErrorKind::InvalidData, "the file is empty")));
    }
    Ok(Some((token, path)))
}

/// 256 random bits from the kernel, as 64 hex digits.
fn random_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The loop's main future: serve until a signal, then stop everything it started.
async fn serve(
    ex: &Spawner,
    parts: Parts,
    controller: Rc<Controller>,
    database: DatabaseSetup,
    schedule: Option<ScheduleSetup>,
    mut signals: Signals,
) -> Result<()> {
    let Parts { http, ipc, notifier, service, watchdog, endpoints } = parts;
    let (bridge_handle, bridge_pump) =
        bridge::notifier_channel(notifier.clone(), bridge::DEFAULT_BRIDGE_CAPACITY);
    bridge::install_global(bridge_handle.clone());
    let bridge_task = ex.spawn(bridge_pump);

    // The listeners are bound (clients queue in the backlog) but not served until the database
    // is open: a client that gets in must find the data there, and READY=1 means all of it.
    notify(&service, "STATUS=opening the database").await;
    let users_dir = database.path.parent().map(|p| p.join("users")).unwrap_or_default();
    let user_options = broadcasting_migrations(&database.options, bridge_handle.clone());
    let database = open_database(database, bridge_handle).await?;
    controller.set_database(Some(database.clone()));
    controller.set_user_databases(users_dir, user_options);
    let scheduler =
        schedule.map(|setup| start_scheduler(setup, controller.tasks().clone(), &controller, &database));
    let scheduler_task = scheduler.clone().map(|scheduler| ex.spawn(scheduler.run()));
    controller.set_scheduler(scheduler);
    controller.apply_schedule_settings().await;

    let http_task = ex.spawn(http.serve());
    let ipc_task = ipc.map(|server| ex.spawn(server.serve()));
    let service = Rc::new(service);
    let watchdog_task = watchdog.map(|period| ex.spawn(keep_watchdog_fed(service.clone(), period)));

    announce_ready(&service, &endpoints).await;

    let signal = signals.next().await;
    log::info!("received {}, shutting down", signal_name(signal));
    notify(&service, "STOPPING=1\nSTATUS=shutting down").await;
    // A second signal means "now": do not wait for the rest of the graceful path.
    let _force = ex.spawn(async move {
        let signal = signals.next().await;
        log::warn!("received {} during shutdown, exiting immediately", signal_name(signal));
        std::process::exit(FORCED_EXIT_CODE);
    });

    // WebSocket clients get a close frame (1001) and a moment to take it; then every
    // connection is dropped with the listener.
    notifier.close_all();
    let deadline = Instant::now() + CLIENT_CLOSE_GRACE;
    while notifier.client_count() > 0 && Instant::now() < deadline {
        Timer::after(Duration::from_millis(10)).await;
    }
    http_task.cancel().await;
    if let Some(task) = ipc_task {
        task.cancel().await;
    }
    if let Some(task) = watchdog_task {
        task.cancel().await;
    }
    // Tasks stop at their next await; a database write they started finishes or rolls back.
    if let Some(task) = scheduler_task {
        task.cancel().await;
    }
    let cancelled = controller.tasks().clear();
    if cancelled > 0 {
        log::info!("cancelled {cancelled} running tasks");
    }
    controller.close_user_database().await;
    controller.set_database(None);
    if crate::runtime::timeout(DATABASE_CLOSE_GRACE, database.close()).await.is_none() {
        log::warn!(
            "the database did not close within {DATABASE_CLOSE_GRACE:?}; its last write finishes or rolls back"
        );
    }
    bridge_task.cancel().await;
    log::info!("stopped");
    Ok(())
}

/// The task tracker, reporting user errors to the messages aggregator and progress as
/// `progress_updates`.
fn task_manager(ex: &Spawner, notifier: &Rc<Notifier>) -> TaskManager {
    let errors = notifier.clone();
    let progress = notifier.clone();
    TaskManager::new(
        ex.clone(),
        Rc::new(move |message| errors.add_error(message)),
        Rc::new(move |data| {
            progress.broadcast(notifier::MessageType::ProgressUpdates, &data);
        }),
    )
}

/// How the scheduler runs, when the `scheduler` feature is on.
struct ScheduleSetup {
    max_tasks: usize,
    tick: Duration,
    start_on: bool,
    backup_interval: Option<Duration>,
    backup_keep: usize,
    http: crate::http::Settings,
}

fn schedule_setup(config: &Config) -> Option<ScheduleSetup> {
    if !config.features.enabled(Feature::Scheduler) {
        return None;
    }
    let (scheduler, database) = (&config.scheduler, &config.database);
    let hours = database.backup_interval_hours.unwrap_or(DEFAULT_BACKUP_INTERVAL_HOURS);
    Some(ScheduleSetup {
        max_tasks: scheduler.max_tasks.unwrap_or(tasks::DEFAULT_MAX_TASKS).max(1),
        tick: scheduler
            .tick_secs
            .map(Duration::from_secs)
            .unwrap_or(tasks::DEFAULT_TICK)
            .max(Duration::from_secs(1)),
        start_on: scheduler.start_on.unwrap_or(false),
        backup_interval: (hours > 0).then(|| Duration::from_secs(hours * 3600)),
        backup_keep: database.backup_keep.unwrap_or(DEFAULT_BACKUP_KEEP).max(1),
        http: http_settings(&config.http),
    })
}

/// Builds the scheduler over the database's last-run times and registers robin's jobs.
fn start_scheduler(
    setup: ScheduleSetup,
    tasks: TaskManager,
    controller: &Controller,
    database: &db::Database,
) -> Rc<Scheduler> {
    let store = Rc::new(tasks::DatabaseStore::new(database.clone()));
    let scheduler =
        Rc::new(Scheduler::new(tasks, setup.max_tasks, setup.tick, Rc::new(tasks::SystemClock), store));
    if let Some(interval) = setup.backup_interval {
        // The job reads the current database when it runs: after unlock, the user's.
        let (slot, keep) = (controller.database_slot(), setup.backup_keep);
        scheduler.register(tasks::PeriodicJob {
            name: "db_backup".into(),
            interval,
            jitter: Duration::from_secs(60),
            maybe: Box::new(move || {
                let Some(db) = slot.borrow().clone() else { return Vec::new() };
                // Each database keeps its backups beside it: a user's never mix with (or are
                // pruned with) the default database's.
                let dir = db.path().parent().map(|p| p.join("backups")).unwrap_or_default();
                vec![Box::pin(async move {
                    let path =
                        db.rotate_backup(&dir, keep, None).await.map_err(|e| crate::error_chain(&e))?;
                    Ok(serde_json::json!({ "backup": path.display().to_string() }))
                })]
            }),
        });
    }
    register_query_jobs(&scheduler, controller, setup.http);
    scheduler.set_should_schedule(setup.start_on);
    scheduler
}

fn http_settings(table: &crate::config::HttpSettings) -> crate::http::Settings {
    let defaults = crate::http::Settings::default();
    crate::http::Settings {
        connect_timeout: table
            .connect_timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(defaults.connect_timeout),
        timeout: table.timeout_secs.map(Duration::from_secs).unwrap_or(defaults.timeout),
        retries: table.retries.unwrap_or(defaults.retries),
        per_host_concurrency: table.per_host_concurrency.unwrap_or(defaults.per_host_concurrency).max(1),
        per_host_interval: table
            .per_host_interval_ms
            .map(Duration::from_millis)
            .unwrap_or(defaults.per_host_interval),
        ..defaults
    }
}

/// Starts one run of a query job.
type JobRunner = fn(Rc<jobs::JobContext>) -> tasks::JobFuture;

/// Registers query_prices and query_balances; both run only while a database is open.
fn register_query_jobs(scheduler: &Rc<Scheduler>, controller: &Controller, http: crate::http::Settings) {
    let weak = Rc::downgrade(scheduler);
    let notifier = controller.notifier();
    let ctx = Rc::new(jobs::JobContext {
        http: Rc::new(crate::http::Client::new(http)),
        database: controller.database_slot(),
        tasks: controller.tasks().clone(),
        broadcast: Rc::new(move |kind, data| {
            notifier.broadcast(kind, &data);
        }),
        // rotki's rule: periodic scheduling starts after the first balance query.
        after_balances: Rc::new(move || {
            if let Some(scheduler) = weak.upgrade() {
                scheduler.set_should_schedule(true);
            }
        }),
    });
    let query_jobs: [(&str, Duration, JobRunner); 2] = [
        ("query_prices", PRICES_INTERVAL, |ctx| Box::pin(jobs::query_prices(ctx))),
        ("query_balances", BALANCES_INTERVAL, |ctx| Box::pin(jobs::query_balances(ctx))),
    ];
    for (name, interval, run) in query_jobs {
        let ctx = ctx.clone();
        scheduler.register(tasks::PeriodicJob {
            name: name.into(),
            interval,
            jitter: interval / 20,
            maybe: Box::new(move || {
                if ctx.database.borrow().is_none() {
                    return Vec::new();
                }
                vec![run(ctx.clone())]
            }),
        });
    }
}

/// Where the default database is and how to open it.
struct DatabaseSetup {
    path: PathBuf,
    options: db::Options,
}

fn database_options(config: &Config) -> db::Options {
    let defaults = db::Options::default();
    let settings = &config.database;
    db::Options {
        readers: settings.readers.unwrap_or(defaults.readers).max(1),
        synchronous: match settings.synchronous {
            Some(crate::config::Synchronous::Full) => db::Synchronous::Full,
            Some(crate::config::Synchronous::Normal) => db::Synchronous::Normal,
            None => defaults.synchronous,
        },
        write_timeout: settings.write_timeout_secs.map(Duration::from_secs).unwrap_or(defaults.write_timeout),
        ..defaults
    }
}

/// Database options that broadcast migration progress as `db_upgrade_status`.
fn broadcasting_migrations(options: &db::Options, notifier: bridge::NotifierHandle) -> db::Options {
    db::Options {
        on_migration: Arc::new(move |progress| {
            let data = serde_json::to_value(&progress).unwrap_or_default();
            notifier.broadcast(notifier::MessageType::DbUpgradeStatus, data);
        }),
        ..options.clone()
    }
}

/// Opens the default (plain) database, broadcasting migration progress as `db_upgrade_status`.
async fn open_database(setup: DatabaseSetup, notifier: bridge::NotifierHandle) -> Result<db::Database> {
    let options = broadcasting_migrations(&setup.options, notifier);
    let database = db::Database::open(&setup.path, None, options).await?;
    log::info!("database {} open (schema version {})", setup.path.display(), database.schema_version());
    Ok(database)
}

/// Tells systemd and whoever started us (one JSON line on stdout) that we are serving.
async fn announce_ready(service: &ServiceManager, endpoints: &Endpoints) {
    let http = endpoints.http.map(|a| a.to_string());
    let ipc = endpoints.ipc.as_ref().map(|p| p.display().to_string());
    log::info!(
        "robind {} ready: http on {}, control socket {}",
        crate::VERSION,
        http.as_deref().unwrap_or("-"),
        ipc.as_deref().unwrap_or("disabled")
    );
    let status = format!("READY=1\nSTATUS=serving on {}", http.as_deref().unwrap_or("-"));
    notify(service, &status).await;
    let line = json!({
        "event": "ready",
        "version": crate::VERSION,
        "pid": std::process::id(),
        "http": http,
        "ws": endpoints.http.map(|a| format!("ws://{a}/ws")),
        "ipc": ipc,
        "api_token_file": endpoints.api_token_file.as_ref().map(|p| p.display().to_string()),
    })
    .to_string();
    // stdout may be a pipe nobody drains yet; a blocked write must not stall the loop.
    let written = blocking::unblock(move || {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").and_then(|()| out.flush())
    })
    .await;
    if let Err(err) = written {
        log::debug!("could not print the ready line on stdout: {err}");
    }
}

async fn keep_watchdog_fed(service: Rc<ServiceManager>, period: Duration) {
    log::debug!("systemd watchdog: pinging every {period:?}");
    loop {
        notify(&service, "WATCHDOG=1").await;
        Timer::after(period).await;
    }
}

async fn notify(service: &ServiceManager, state: &str) {
    if let Err(err) = service.notify(state).await {
        log::warn!("cannot notify systemd ({state:?}): {err}");
    }
}

fn signal_name(signal: Option<std::io::Result<Signal>>) -> &'static str {
    match signal {
        Some(Ok(Signal::Term)) => "SIGTERM",
        Some(Ok(Signal::Int)) => "SIGINT",
        _ => "a signal",
    }
}
