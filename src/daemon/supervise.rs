//! The daemon's core tasks never die quietly.
//!
//! Each core task (the listeners, the scheduler, the notifier and task pumps, the watchdog, the
//! database writer) runs under [`Supervisor::spawn`]: if it ends or panics, the reason goes to
//! the daemon's main future, which logs it, shuts down gracefully and exits with a non-zero
//! status, so that systemd's `Restart=on-failure` starts a whole daemon again. A daemon that
//! answers requests while its scheduler or writer is gone is worse than one that restarts.
use std::future::Future;
use std::panic::AssertUnwindSafe;

use async_executor::Task;
use futures_lite::FutureExt;

use crate::runtime::{Spawner, panic_message};

/// Spawns core tasks and hears about their end.
#[derive(Debug)]
pub(super) struct Supervisor {
    /// The loop's executor.
    ex: Spawner,
    /// Where a core task's end is reported (the first report is enough).
    ended: async_channel::Sender<String>,
    /// The daemon's main future waits here.
    reports: async_channel::Receiver<String>,
}

impl Supervisor {
    pub(super) fn new(ex: &Spawner) -> Supervisor {
        let (ended, reports) = async_channel::bounded(1);
        Supervisor { ex: ex.clone(), ended, reports }
    }

    /// Spawns `future` as the core task `name`. Its end, normal or by panic, is reported; a
    /// cancelled task (shutdown) reports nothing.
    pub(super) fn spawn(&self, name: &'static str, future: impl Future<Output = ()> + 'static) -> Task<()> {
        let ended = self.ended.clone();
        self.ex.spawn(async move {
            let why = match AssertUnwindSafe(future).catch_unwind().await {
                Ok(()) => format!("core task {name} stopped unexpectedly"),
                Err(panic) => format!("core task {name} panicked: {}", panic_message(&panic)),
            };
            let _ = ended.try_send(why);
        })
    }

    /// Waits for the first core task to end; the reason.
    pub(super) async fn failure(&self) -> String {
        self.reports.recv().await.unwrap_or_else(|_| "the supervisor stopped".into())
    }
}
