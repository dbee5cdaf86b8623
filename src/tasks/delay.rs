//! Delayed tasks: one driver and one timer for all of them.
use std::rc::Weak;
use std::time::Instant;

use async_io::Timer;
use futures_lite::FutureExt;

use super::manager::{Inner, Run};

/// Starts delayed tasks when they are due: one timer for all of them, re-armed when an earlier
/// deadline arrives. Holds the tracker weakly, so dropping the tracker ends it.
pub(super) async fn drive_delayed(manager: Weak<Inner>) {
    loop {
        let (listener, next) = {
            let Some(inner) = manager.upgrade() else { return };
            let listener = inner.delay_changed.listen();
            let next = inner.delayed.borrow().first().map(|(at, _)| *at);
            (listener, next)
        };
        match next {
            None => listener.await,
            Some(due) if due > Instant::now() => {
                async {
                    listener.await;
                }
                .or(async {
                    Timer::at(due).await;
                })
                .await
            }
            Some(_) => {
                let Some(inner) = manager.upgrade() else { return };
                start_due(&inner);
            }
        }
    }
}

/// Moves every due delayed task onto the executor.
fn start_due(inner: &Inner) {
    let now = Instant::now();
    loop {
        let Some(&(due, id)) = inner.delayed.borrow().first() else { return };
        if due > now {
            return;
        }
        inner.delayed.borrow_mut().pop_first();
        let mut live = inner.live.borrow_mut();
        let Some(entry) = live.get_mut(&id) else { continue };
        if let Run::Delayed(_, work) = std::mem::replace(&mut entry.run, Run::Moving) {
            entry.run = Run::Running(inner.spawner.spawn(work));
        }
    }
}
