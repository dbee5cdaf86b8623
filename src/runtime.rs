//! The one event-loop thread: its executor handle and the guard that keeps blocking work off it.
//!
//! Owns [`Spawner`], a cheap clonable handle to the daemon's single `LocalExecutor`, and the
//! thread-local mark that says "this thread is the loop". Code that is about to block (a file
//! read, a SQLite statement, a thread join) calls [`assert_off_loop`]; in debug builds that
//! panics on the loop thread, so a test that exercises the path catches the mistake, and in
//! release builds it logs once instead of taking the daemon down.
//!
//! May touch: nothing but the executor and the thread-local mark.
//!
//! # Examples
//!
//! ```
//! use robin::runtime::{self, Spawner};
//!
//! let ex = Spawner::new();
//! assert!(!runtime::on_loop_thread());
//! let answer = ex.block_on(async {
//!     assert!(runtime::on_loop_thread());
//!     6 * 7
//! });
//! assert_eq!(answer, 42);
//! assert!(!runtime::on_loop_thread());
//! ```
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_executor::{LocalExecutor, Task};

thread_local! {
    /// Set while this thread is inside [`Spawner::block_on`].
    static ON_LOOP: Cell<bool> = const { Cell::new(false) };
}

/// Whether a blocking call on the loop was already reported (release builds log it once).
static REPORTED: AtomicBool = AtomicBool::new(false);

/// Returns true when the calling thread is running the daemon's event loop.
pub fn on_loop_thread() -> bool {
    ON_LOOP.with(Cell::get)
}

/// Flags a blocking operation attempted on the loop thread.
///
/// `what` names the operation for the message ("sqlite statement", "file read"). Debug builds
/// panic so tests catch it; release builds log an error once, because a stalled loop is bad
/// but a crashed daemon loses the user's notifications.
pub fn assert_off_loop(what: &str) {
    if on_loop_thread() {
        if cfg!(debug_assertions) {
            panic!("blocking operation on the event-loop thread: {what}");
        } else if !REPORTED.swap(true, Ordering::Relaxed) {
            log::error!("blocking operation on the event-loop thread: {what} (reported once)");
        }
    }
}

/// The text of a caught panic's payload (`panic!("...")` gives a `&str` or a `String`).
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

/// The variable that names a fault site for [`inject_fault`] (debug builds only).
pub const ENV_INJECT_PANIC: &str = "ROBIN_INJECT_PANIC";

/// Debug builds only: panics when `ROBIN_INJECT_PANIC` names `site` (`http`, `ipc`,
/// `scheduler`, `notifier`, `writer`), so that tests can prove a failing core task takes the
/// daemon down with a clear log line and a non-zero status instead of leaving it half alive.
/// Release builds compile it to nothing.
pub fn inject_fault(site: &str) {
    #[cfg(debug_assertions)]
    {
        static TARGET: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        let target = TARGET.get_or_init(|| std::env::var(ENV_INJECT_PANIC).ok());
        if target.as_deref() == Some(site) {
            panic!("injected fault in {site} ({ENV_INJECT_PANIC})");
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = site;
}

/// The longest wait robin computes a deadline for; anything longer is treated as this long.
/// Far beyond any real interval, and far from `Instant`'s overflow on every platform.
pub const FOREVER: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + after`, saturating at [`FOREVER`] instead of panicking on overflow: a duration that
/// comes from a setting or a peer must never be able to crash the loop.
pub fn deadline_after(after: std::time::Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(after.min(FOREVER)).unwrap_or(now)
}

/// Runs `future` for at most `limit`: `Some(output)`, or `None` if the time ran out first (the
/// future is then dropped, which cancels it at its current await).
///
/// A hand-written combinator, not an `async fn` or `async` block: those keep the argument
/// future in their state and then a moved copy, doubling its size. On the HTTP read path, which
/// lives as long as every WebSocket client, that cost 8.5 KiB per idle client (measured with
/// bench/ws_fanout_report.py: 10.6 -> 19.1 KiB; an `async move` wrapper still 14.8).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let quick = futures_lite::future::block_on(robin::runtime::timeout(Duration::from_secs(1), async { 7 }));
/// assert_eq!(quick, Some(7));
/// let never = futures_lite::future::pending::<()>();
/// assert_eq!(futures_lite::future::block_on(robin::runtime::timeout(Duration::from_millis(1), never)), None);
/// ```
pub fn timeout<F: Future>(limit: std::time::Duration, future: F) -> Timeout<F> {
    Timeout { future, timer: async_io::Timer::after(limit) }
}

pin_project_lite::pin_project! {
    /// The future [`timeout`] returns.
    #[derive(Debug)]
    #[must_use = "a future does nothing unless awaited"]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        timer: async_io::Timer,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Option<F::Output>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Some(output));
        }
        match std::pin::Pin::new(this.timer).poll(cx) {
            Poll::Ready(_) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A handle to the loop's single executor; clone it freely on the loop thread.
///
/// It is `!Send` on purpose: the executor and every task on it belong to one thread. Code on
/// other threads reaches the loop through channels (see the bridge handles of each part).
#[derive(Clone)]
pub struct Spawner {
    /// The executor itself; dropping the last handle cancels every task still on it.
    ex: Rc<LocalExecutor<'static>>,
}

impl Spawner {
    /// Creates a new, empty executor.
    pub fn new() -> Self {
        Spawner { ex: Rc::new(LocalExecutor::new()) }
    }

    /// Spawns a task on the loop. Keep the returned [`Task`]: dropping it cancels the work.
    pub fn spawn<T: 'static>(&self, future: impl Future<Output = T> + 'static) -> Task<T> {
        self.ex.spawn(future)
    }

    /// Runs the executor on this thread until `future` completes, marking the thread as the loop.
    ///
    /// Tasks still pending when `future` completes stay on the executor; they are cancelled when
    /// the last `Spawner` is dropped.
    pub fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        let _mark = LoopMark::enter();
        async_io::block_on(self.ex.run(future))
    }
}

impl Default for Spawner {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawner").finish_non_exhaustive()
    }
}

/// Sets the loop mark for its lifetime and restores the previous value on drop (even on panic).
struct LoopMark {
    previous: bool,
}

impl LoopMark {
    fn enter() -> Self {
        LoopMark { previous: ON_LOOP.with(|mark| mark.replace(true)) }
    }
}

impl Drop for LoopMark {
    fn drop(&mut self) {
        ON_LOOP.with(|mark| mark.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "blocking operation on the event-loop thread: file read")]
    fn blocking_call_on_loop_panics_in_debug() {
        Spawner::new().block_on(async { assert_off_loop("file read") });
    }

    #[test]
    fn blocking_call_off_loop_is_fine() {
        assert_off_loop("file read");
        let ex = Spawner::new();
        ex.block_on(blocking::unblock(|| assert_off_loop("file read")));
    }

    #[test]
    fn mark_is_cleared_after_a_panicking_loop() {
        let result = std::panic::catch_unwind(|| Spawner::new().block_on(async { panic!("boom") }));
        assert!(result.is_err());
        assert!(!on_loop_thread());
    }
}
