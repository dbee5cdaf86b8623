//! Telling the world how the daemon is: systemd's notifications and watchdog, and the ready
//! line on stdout for a companion app.
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use async_io::Timer;
use async_signal::Signal;

use crate::control::{Endpoints, ReadyLine};
use crate::systemd::ServiceManager;

/// Tells systemd and whoever started us (one JSON line on stdout) that we are serving.
pub(super) async fn announce_ready(service: &ServiceManager, endpoints: &Endpoints) {
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
    let line = ReadyLine::owned(endpoints).to_line();
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

pub(super) async fn keep_watchdog_fed(service: Rc<ServiceManager>, period: Duration) {
    log::debug!("systemd watchdog: pinging every {period:?}");
    loop {
        notify(&service, "WATCHDOG=1").await;
        Timer::after(period).await;
    }
}

pub(super) async fn notify(service: &ServiceManager, state: &str) {
    if let Err(err) = service.notify(state).await {
        log::warn!("cannot notify systemd ({state:?}): {err}");
    }
}

pub(super) fn signal_name(signal: Option<std::io::Result<Signal>>) -> &'static str {
    match signal {
        Some(Ok(Signal::Term)) => "SIGTERM",
        Some(Ok(Signal::Int)) => "SIGINT",
        Some(Ok(Signal::Hup)) => "SIGHUP",
        Some(Ok(Signal::Usr1)) => "SIGUSR1",
        _ => "a signal",
    }
}
