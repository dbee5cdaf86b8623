//! The file's tables, checked and turned into the options each part takes.
//!
//! Every value is checked against a range here, at start-up, with an error that names the key;
//! nothing is clamped silently and no part sees a value it cannot use.
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use super::file::{DatabaseTable, HttpTable, SchedulerTable, WebSocketTable};
use super::{Error, Result};
use crate::{db, notifier, outbound, tasks};

/// Hours in a year: the longest automatic backup interval.
const HOURS_PER_YEAR: u64 = 366 * 24;
/// The most bytes any one buffer bound may be set to.
const MAX_BUFFER_BYTES: usize = 256 * 1024 * 1024;
/// The most frames a client's queue bound may be set to.
const MAX_QUEUE_MESSAGES: usize = 1_000_000;

/// Names a table key for error messages: `` `[database] readers` in /etc/robin.toml ``.
struct Key<'a> {
    table: &'static str,
    file: Option<&'a Path>,
}

impl Key<'_> {
    /// The value of `name`, or `default` when absent; an error when outside `range`.
    fn get<T: PartialOrd + Display + Copy>(
        &self,
        name: &str,
        value: Option<T>,
        default: T,
        range: RangeInclusive<T>,
    ) -> Result<T> {
        let Some(value) = value else { return Ok(default) };
        if range.contains(&value) {
            return Ok(value);
        }
        let file = self.file.map(|f| format!(" in {}", f.display())).unwrap_or_default();
        Err(Error::InvalidValue {
            origin: format!("`[{}] {name}`{file}", self.table),
            value: value.to_string(),
            reason: format!("expected {} to {}", range.start(), range.end()),
        })
    }

    /// `write_timeout_secs`, which the `[websocket]` and `[database]` tables both take: 1 s
    /// to an hour.
    fn write_timeout(&self, value: Option<u64>, default: Duration) -> Result<Duration> {
        self.get("write_timeout_secs", value, default.as_secs(), 1..=3600).map(secs)
    }
}

pub(super) fn notifier_limits(table: &WebSocketTable, file: Option<&Path>) -> Result<notifier::Limits> {
    let key = Key { table: "websocket", file };
    let d = notifier::Limits::default();
    let client_queue_messages = key.get(
        "client_queue_messages",
        table.client_queue_messages,
        d.client_queue_messages,
        1..=MAX_QUEUE_MESSAGES,
    )?;
    let client_queue_bytes = key.get(
        "client_queue_bytes",
        table.client_queue_bytes,
        d.client_queue_bytes,
        1024..=MAX_BUFFER_BYTES,
    )?;
    Ok(notifier::Limits {
        replay_messages: key.get(
            "replay_messages",
            table.replay_messages,
            d.replay_messages,
            0..=1_000_000,
        )?,
        replay_bytes: key.get("replay_bytes", table.replay_bytes, d.replay_bytes, 0..=MAX_BUFFER_BYTES)?,
        client_queue_messages,
        client_queue_bytes,
        // A hard bound below its soft bound would make the soft one meaningless: refused, with
        // the soft bound named in the expected range. Left unset, it is at least the soft one.
        client_queue_max_messages: key.get(
            "client_queue_max_messages",
            table.client_queue_max_messages,
            d.client_queue_max_messages.max(client_queue_messages),
            client_queue_messages..=MAX_QUEUE_MESSAGES,
        )?,
        client_queue_max_bytes: key.get(
            "client_queue_max_bytes",
            table.client_queue_max_bytes,
            d.client_queue_max_bytes.max(client_queue_bytes),
            client_queue_bytes..=MAX_BUFFER_BYTES,
        )?,
        slow_client_grace: secs(key.get(
            "slow_client_grace_secs",
            table.slow_client_grace_secs,
            d.slow_client_grace.as_secs(),
            1..=3600,
        )?),
        max_incoming_message: key.get(
            "max_message_bytes",
            table.max_message_bytes,
            d.max_incoming_message,
            1024..=16 * 1024 * 1024,
        )?,
        write_timeout: key.write_timeout(table.write_timeout_secs, d.write_timeout)?,
        ..d
    })
}

pub(super) fn database_options(table: &DatabaseTable, file: Option<&Path>) -> Result<db::Options> {
    let key = Key { table: "database", file };
    let d = db::Options::default();
    Ok(db::Options {
        readers: key.get("readers", table.readers, d.readers, 1..=64)?,
        synchronous: table.synchronous.unwrap_or(d.synchronous),
        write_timeout: key.write_timeout(table.write_timeout_secs, d.write_timeout)?,
        ..d
    })
}

pub(super) fn backup_policy(table: &DatabaseTable, file: Option<&Path>) -> Result<db::BackupPolicy> {
    let key = Key { table: "database", file };
    let d = db::BackupPolicy::default();
    let default_hours = d.interval.map_or(0, |i| i.as_secs() / 3600);
    let hours =
        key.get("backup_interval_hours", table.backup_interval_hours, default_hours, 0..=HOURS_PER_YEAR)?;
    Ok(db::BackupPolicy {
        interval: (hours > 0).then(|| secs(hours * 3600)),
        keep: key.get("backup_keep", table.backup_keep, d.keep, 1..=1000)?,
    })
}

pub(super) fn scheduler_options(
    table: &SchedulerTable,
    file: Option<&Path>,
) -> Result<tasks::SchedulerOptions> {
    let key = Key { table: "scheduler", file };
    let d = tasks::SchedulerOptions::default();
    Ok(tasks::SchedulerOptions {
        max_tasks: key.get("max_tasks", table.max_tasks, d.max_tasks, 1..=64)?,
        tick: secs(key.get("tick_secs", table.tick_secs, d.tick.as_secs(), 1..=3600)?),
        start_on: table.start_on.unwrap_or(d.start_on),
    })
}

pub(super) fn outbound_settings(table: &HttpTable, file: Option<&Path>) -> Result<outbound::Settings> {
    let key = Key { table: "http", file };
    let d = outbound::Settings::default();
    Ok(outbound::Settings {
        connect_timeout: secs(key.get(
            "connect_timeout_secs",
            table.connect_timeout_secs,
            d.connect_timeout.as_secs(),
            1..=300,
        )?),
        timeout: secs(key.get("timeout_secs", table.timeout_secs, d.timeout.as_secs(), 1..=3600)?),
        retries: key.get("retries", table.retries, d.retries, 0..=10)?,
        per_host_concurrency: key.get(
            "per_host_concurrency",
            table.per_host_concurrency,
            d.per_host_concurrency,
            1..=256,
        )?,
        per_host_interval: Duration::from_millis(key.get(
            "per_host_interval_ms",
            table.per_host_interval_ms,
            d.per_host_interval.as_millis() as u64,
            0..=60_000,
        )?),
        ..d
    })
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_outside_their_range_name_the_key() {
        let table = DatabaseTable { readers: Some(0), ..DatabaseTable::default() };
        let err = database_options(&table, Some(Path::new("/etc/robin.toml"))).unwrap_err().to_string();
        assert_eq!(err, "invalid value '0' for `[database] readers` in /etc/robin.toml: expected 1 to 64");
        let table = SchedulerTable { tick_secs: Some(0), ..SchedulerTable::default() };
        assert!(scheduler_options(&table, None).unwrap_err().to_string().contains("tick_secs"));
    }

    #[test]
    fn a_hard_queue_bound_is_never_below_its_soft_bound() -> Result<()> {
        let below = WebSocketTable {
            client_queue_bytes: Some(2 << 20),
            client_queue_max_bytes: Some(1 << 20),
            ..WebSocketTable::default()
        };
        let err = notifier_limits(&below, None).unwrap_err().to_string();
        assert!(err.contains("client_queue_max_bytes") && err.contains("expected 2097152 to"), "{err}");
        // Unset, the hard bound follows a soft bound raised past its default.
        let soft_only = WebSocketTable { client_queue_messages: Some(10_000), ..WebSocketTable::default() };
        assert_eq!(notifier_limits(&soft_only, None)?.client_queue_max_messages, 10_000);
        let grace = WebSocketTable { slow_client_grace_secs: Some(2), ..WebSocketTable::default() };
        assert_eq!(notifier_limits(&grace, None)?.slow_client_grace, Duration::from_secs(2));
        Ok(())
    }

    #[test]
    fn absent_values_take_the_parts_defaults() -> Result<()> {
        assert_eq!(notifier_limits(&WebSocketTable::default(), None)?, notifier::Limits::default());
        assert_eq!(outbound_settings(&HttpTable::default(), None)?, outbound::Settings::default());
        assert_eq!(backup_policy(&DatabaseTable::default(), None)?, db::BackupPolicy::default());
        let off = DatabaseTable { backup_interval_hours: Some(0), ..DatabaseTable::default() };
        assert_eq!(backup_policy(&off, None)?.interval, None);
        Ok(())
    }
}
