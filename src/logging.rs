//! Leveled logs on stderr, journald-aware, with a filter that can change while running.
//!
//! Owns the global `log` logger. The filter uses `RUST_LOG` syntax (resolved by `config`) and
//! can be replaced at any time ([`set_filter`]: SIGHUP with a new `log_level`).
//! When stderr is the journal (`JOURNAL_STREAM` names stderr's device and inode) each line
//! starts with a `<N>` syslog priority and carries no timestamp, since journald adds its own;
//! otherwise lines carry a UTC timestamp and the level.
//!
//! May touch: stderr. A log line is one small `write(2)` to stderr, which we accept on the loop
//! thread: every daemon logs this way, and journald drains the pipe.
use std::io::Write;
use std::sync::{OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// The installed logger, when robin installed it.
static LOGGER: OnceLock<Logger> = OnceLock::new();

/// robin's logger: a replaceable filter and one line per record on stderr.
struct Logger {
    filter: RwLock<env_filter::Filter>,
    style: Style,
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.filter.read().is_ok_and(|filter| filter.enabled(metadata))
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.filter.read().is_ok_and(|filter| filter.matches(record)) {
            return;
        }
        let line = match self.style {
            Style::Journal => {
                format!("<{}>{}: {}\n", priority(record.level()), record.target(), record.args())
            }
            Style::Terminal => format!(
                "{} {:<5} {}: {}\n",
                utc_timestamp(SystemTime::now()),
                record.level(),
                record.target(),
                record.args()
            ),
        };
        // One write per line, so lines from several threads never interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

fn parse_filter(filter: &str) -> Result<env_filter::Filter, String> {
    let mut builder = env_filter::Builder::new();
    builder.try_parse(filter).map_err(|e| format!("invalid log filter '{filter}': {e}"))?;
    Ok(builder.build())
}

/// How lines are framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `2026-11-26T23:46:36.123Z INFO robin::daemon: message`
    Terminal,
    /// `<6>robin::daemon: message`
    Journal,
}

impl Style {
    /// Journal style when `JOURNAL_STREAM` matches this process's stderr, terminal otherwise.
    pub fn detect(journal_stream: Option<&std::ffi::OsStr>) -> Style {
        let Some(stream) = journal_stream.and_then(|s| s.to_str()) else {
            return Style::Terminal;
        };
        let stderr_id =
            rustix::fs::fstat(std::io::stderr()).ok().map(|st| format!("{}:{}", st.st_dev, st.st_ino));
        match stderr_id {
            Some(id) if id == stream => Style::Journal,
            _ => Style::Terminal,
        }
    }
}

/// Installs the global logger. Calling it twice keeps the first logger (tests may race to it).
pub fn init(filter: &str, style: Style) {
    // `config` has checked the filter; should it still not parse, errors are better than silence.
    let filter = parse_filter(filter).or_else(|_| parse_filter("error")).expect("'error' is a filter");
    let max_level = filter.filter();
    let logger = LOGGER.get_or_init(|| Logger { filter: RwLock::new(filter), style });
    if log::set_logger(logger).is_ok() {
        log::set_max_level(max_level);
    }
}

/// Replaces the filter of the installed logger.
pub fn set_filter(filter: &str) -> Result<(), String> {
    let logger = LOGGER.get().ok_or("robin's logger is not installed")?;
    let filter = parse_filter(filter)?;
    let max_level = filter.filter();
    *logger.filter.write().map_err(|_| "the log filter lock is poisoned")? = filter;
    log::set_max_level(max_level);
    Ok(())
}

/// Whether stderr is the journal according to the environment (used by `init` callers).
pub fn style_from_env() -> Style {
    Style::detect(std::env::var_os("JOURNAL_STREAM").as_deref())
}

/// The syslog priority of a log level, as sd-daemon(3) defines the `<N>` prefix.
fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// Formats a time as RFC 3339 UTC with milliseconds, without a date-time crate.
fn utc_timestamp(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm (also robinctl's
/// dates).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_736_796_123);
        assert_eq!(utc_timestamp(t), "2026-11-26T23:46:36.123Z");
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert!(utc_timestamp(leap).starts_with("2000-02-29T00:00:00"));
    }

    #[test]
    fn journal_style_needs_a_matching_stream() {
        assert_eq!(Style::detect(None), Style::Terminal);
        assert_eq!(Style::detect(Some("1:2".as_ref())), Style::Terminal);
        let st = rustix::fs::fstat(std::io::stderr()).unwrap();
        let id = format!("{}:{}", st.st_dev, st.st_ino);
        assert_eq!(Style::detect(Some(id.as_ref())), Style::Journal);
    }

    #[test]
    fn priorities_follow_sd_daemon() {
        assert_eq!(priority(log::Level::Error), 3);
        assert_eq!(priority(log::Level::Info), 6);
    }
}
