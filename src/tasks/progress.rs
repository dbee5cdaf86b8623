//! Progress reports from long tasks, rate-limited so a tight loop cannot flood clients.
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The shortest time between two reports of one task (the last report always goes out).
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// One progress report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressReport {
    /// What the work is, as its creator named it (a job's name, such as `query_prices`).
    pub topic: &'static str,
    /// Units to do.
    pub total: u64,
    /// Units done.
    pub processed: u64,
}

/// Where progress goes (the daemon maps it to `progress_updates` messages).
pub type ProgressSink = Rc<dyn Fn(ProgressReport)>;

/// Counts a task's progress and reports it at most every [`PROGRESS_INTERVAL`].
pub struct Progress {
    /// What the work is.
    topic: &'static str,
    /// Units to do.
    total: Cell<u64>,
    /// Units done.
    processed: Cell<u64>,
    /// When the last report went out.
    last_sent: Cell<Option<Instant>>,
    /// Where reports go.
    sink: ProgressSink,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress").field("total", &self.total).field("processed", &self.processed).finish()
    }
}

impl Progress {
    pub(crate) fn new(topic: &'static str, total: u64, sink: ProgressSink) -> Progress {
        let progress = Progress {
            topic,
            total: Cell::new(total),
            processed: Cell::new(0),
            last_sent: Cell::new(None),
            sink,
        };
        progress.send();
        progress
    }

    /// Records `n` more units done; reports if the interval passed or the work is complete.
    pub fn advance(&self, n: u64) {
        self.set_processed(self.processed.get().saturating_add(n));
    }

    /// Records that `processed` units are done in all (a client counting for itself); reports
    /// like [`advance`](Self::advance).
    pub fn set_processed(&self, processed: u64) {
        let processed = processed.min(self.total.get());
        self.processed.set(processed);
        let due = self.last_sent.get().is_none_or(|at| at.elapsed() >= PROGRESS_INTERVAL);
        if due || processed == self.total.get() {
            self.send();
        }
    }

    /// Units to do.
    pub fn total(&self) -> u64 {
        self.total.get()
    }

    /// Changes how many units there are to do; the next report says so (under the same rate
    /// limit: a changing total does not make reports more frequent).
    pub fn set_total(&self, total: u64) {
        self.total.set(total);
    }

    /// Units done so far.
    pub fn processed(&self) -> u64 {
        self.processed.get()
    }

    fn send(&self) {
        self.last_sent.set(Some(Instant::now()));
        (self.sink)(ProgressReport {
            topic: self.topic,
            total: self.total.get(),
            processed: self.processed.get(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn a_tight_loop_sends_the_first_and_last_reports_only() {
        let sent = Rc::new(RefCell::new(Vec::new()));
        let record = sent.clone();
        let progress = Progress::new(
            "query_prices",
            10_000,
            Rc::new(move |p: ProgressReport| record.borrow_mut().push(p.processed)),
        );
        for _ in 0..10_000 {
            progress.advance(1);
        }
        assert_eq!(*sent.borrow(), vec![0, 10_000], "start and finish; the loop took far less than 250 ms");
    }
}
