//! Start-up and shutdown: the table of contents of a running `robind`.
//!
//! Owns the order of things. Before the loop: lock the data directory, take or bind the
//! listeners, connect to systemd, install signal handlers (all blocking work, done while no
//! loop exists to stall). On the loop: serve, announce readiness, wait for a signal. After a
//! signal: tell systemd, stop accepting, close connections, and leave the loop; the socket file
//! and the lock are released after the loop has stopped.
//!
//! May touch: each part's constructor. It holds no business logic.
use std::io::Write;
use std::net::TcpListener;
use std::rc::Rc;
use std::time::Duration;

use async_io::Timer;
use async_signal::{Signal, Signals};
use futures_lite::StreamExt;
use serde_json::json;

use crate::config::{Config, Environment, Feature};
use crate::control::{Controller, Endpoints};
use crate::runtime::Spawner;
use crate::systemd::{self, ActivatedSockets, ServiceManager};
use crate::{ipc, lockfile, web};

/// `Result` with this part's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit status after a second signal cut a graceful shutdown short.
pub const FORCED_EXIT_CODE: i32 = 130;

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

    let controller = Rc::new(Controller::new(config.features.clone()));
    let http = web::Server::new(tcp, controller.clone(), web::Limits::default())
        .map_err(|source| Error::Listen { addr: config.listen.value, source })?;
    let ipc = ipc_listener
        .map(|listener| ipc::Server::new(listener, controller.clone()))
        .transpose()
        .map_err(|source| ipc::Error::Bind { path: config.ipc_socket_path(), source })?;
    let endpoints = Endpoints { http: http.local_addr().ok(), ipc: ipc.as_ref().and_then(ipc::Server::path) };
    controller.set_endpoints(endpoints.clone());

    let ex = Spawner::new();
    ex.block_on(serve(&ex, http, ipc, service, signals, watchdog, endpoints));
    Ok(())
}

/// The loop's main future: serve until a signal, then stop everything it started.
async fn serve(
    ex: &Spawner,
    http: web::Server,
    ipc: Option<ipc::Server>,
    service: ServiceManager,
    mut signals: Signals,
    watchdog: Option<Duration>,
    endpoints: Endpoints,
) {
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

    http_task.cancel().await;
    if let Some(task) = ipc_task {
        task.cancel().await;
    }
    if let Some(task) = watchdog_task {
        task.cancel().await;
    }
    log::info!("stopped");
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
