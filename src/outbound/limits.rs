//! Per-host concurrency and rate limits, backoff, and a bounded `join_all`.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_lock::{Semaphore, SemaphoreGuardArc};

/// One gate per host: a semaphore for concurrency and the earliest next start for the rate.
#[derive(Debug)]
pub struct HostGates {
    concurrency: usize,
    interval: Duration,
    gates: RefCell<HashMap<String, Rc<Gate>>>,
}

#[derive(Debug)]
struct Gate {
    slots: std::sync::Arc<Semaphore>,
    next_start: Cell<Instant>,
}

impl HostGates {
    /// Gates that let `concurrency` requests run per host, starting at least `interval` apart.
    pub fn new(concurrency: usize, interval: Duration) -> HostGates {
        HostGates { concurrency: concurrency.max(1), interval, gates: RefCell::default() }
    }

    /// Waits for a slot and for the host's rate; the slot is held until the guard drops.
    pub async fn enter(&self, host: &str) -> SemaphoreGuardArc {
        let gate = self
            .gates
            .borrow_mut()
            .entry(host.to_string())
            .or_insert_with(|| {
                Rc::new(Gate {
                    slots: std::sync::Arc::new(Semaphore::new(self.concurrency)),
                    next_start: Cell::new(Instant::now()),
                })
            })
            .clone();
        let guard = gate.slots.acquire_arc().await;
        let start = gate.next_start.get().max(Instant::now());
        gate.next_start.set(start.checked_add(self.interval).unwrap_or(start));
        if start > Instant::now() {
            async_io::Timer::at(start).await;
        }
        guard
    }
}

/// Exponential backoff with jitter: `base * 2^(attempt-1)`, plus up to half of that at random.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let exponential = base.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let jitter = exponential.as_millis() as u64 / 2;
    exponential.saturating_add(Duration::from_millis(if jitter == 0 { 0 } else { fastrand::u64(0..jitter) }))
}

/// Runs the futures with at most `limit` at once and returns their outputs in input order
/// (the seed's `asyncio.gather`, bounded).
pub async fn join_all_bounded<F: Future>(
    futures: impl IntoIterator<Item = F>,
    limit: usize,
) -> Vec<F::Output> {
    let slots = Semaphore::new(limit.max(1));
    let runs = futures.into_iter().map(|future| {
        let slots = &slots;
        async move {
            let _slot = slots.acquire().await;
            future.await
        }
    });
    let mut pending: Vec<(usize, _)> = runs.map(Box::pin).enumerate().collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    // Poll them all together; each waits for a slot before it starts its work.
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(index, future)| match future.as_mut().poll(cx) {
            std::task::Poll::Ready(output) => {
                results[*index] = Some(output);
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    results.into_iter().map(|r| r.expect("every future completed")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let base = Duration::from_millis(100);
        for attempt in 1..=4 {
            let wait = backoff(base, attempt);
            let floor = base * (1 << (attempt - 1));
            assert!(wait >= floor && wait <= floor + floor / 2, "attempt {attempt}: {wait:?}");
        }
    }

    #[test]
    fn join_all_bounded_keeps_order_and_bound() {
        let running = Rc::new(Cell::new(0));
        let peak = Rc::new(Cell::new(0));
        let futures = (0..20).map(|i| {
            let (running, peak) = (running.clone(), peak.clone());
            async move {
                running.set(running.get() + 1);
                peak.set(peak.get().max(running.get()));
                async_io::Timer::after(Duration::from_millis(5)).await;
                running.set(running.get() - 1);
                i * 2
            }
        });
        let out = futures_lite::future::block_on(join_all_bounded(futures, 3));
        assert_eq!(out, (0..20).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(peak.get(), 3);
    }
}
