//! The command catalogue: what a client may ask, and how each method's params are parsed.
//!
//! [`COMMANDS`] is the one table of methods: the dispatcher, `unknown method` messages and
//! the property tests all read it.
use std::path::PathBuf;

use serde_json::Value;

use super::error::{Error, Result};
use super::params::{self, Invalid, Params};
use crate::db::Account;
use crate::tasks::TaskId;

/// Something a client asks the daemon to do.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Command {
    /// Liveness check; answers `true`.
    Ping,
    /// Version, uptime, pid, endpoints, feature flags and notifier counters.
    Status,
    /// The ready line: how to reach this daemon (what `--attach-existing` prints).
    Ready,
    /// Broadcasts a message a client built, checked against the typed catalogue.
    Broadcast(crate::notifier::Message),
    /// A user-facing error or warning from a client, through the messages aggregator.
    MessagesAdd {
        /// Error or warning.
        verbosity: crate::notifier::Verbosity,
        /// The text the user sees.
        value: String,
    },
    /// Begins a task the client runs; it belongs to the client's connection.
    TasksBegin {
        /// What the task is, as `tasks.list` shows it.
        name: String,
        /// Units of work, for progress reports.
        total: Option<u64>,
        /// Whether a failure is a user-facing error (rotki's `exception_is_error`).
        exception_is_error: bool,
    },
    /// Progress of an external task.
    TasksProgress {
        /// The task.
        id: TaskId,
        /// Units done in all.
        processed: u64,
        /// Units to do, when it changed.
        total: Option<u64>,
    },
    /// Ends an external task with a result or an error.
    TasksEnd {
        /// The task.
        id: TaskId,
        /// The result, or the error's text.
        outcome: std::result::Result<Value, String>,
    },
    /// Takes the kept user-facing errors and warnings (`GET /api/1/messages`).
    Messages,
    /// Turns the periodic scheduler on or off: `{"enabled": bool}`.
    Schedule {
        /// Whether periodic jobs should run.
        enabled: bool,
    },
    /// The live and recently finished tasks.
    TasksList,
    /// The async task API's tasks: `{"pending": [ids], "completed": [ids]}` (`GET /api/1/tasks`).
    TasksIds,
    /// Cancels a task by number, or every task whose name starts with a prefix.
    TasksCancel(CancelTarget),
    /// Runs a registered job now; answers its task number (rotki's `async_query`).
    TasksRun(String),
    /// A task's outcome, as `GET /api/1/tasks/<id>` gives it (read once).
    TasksResult(TaskId),
    /// The feature flags.
    Flags,
    /// Tracks an asset (a price API id, or an ERC-20 token with its details).
    AssetsAdd(crate::db::Asset),
    /// Stops tracking an asset.
    AssetsRemove(String),
    /// The tracked assets: their identifiers, or with `details` their token fields too.
    AssetsList {
        /// Objects with `decimals`, `symbol` and `price_id` instead of identifiers.
        details: bool,
    },
    /// Tracks an account.
    AccountsAdd(Account),
    /// Stops tracking an account and cancels its running queries.
    AccountsRemove {
        /// The chain the account is on, such as `eth`.
        chain: String,
        /// The account's address, lower-cased.
        address: String,
    },
    /// The tracked accounts.
    AccountsList,
    /// One setting, or all of them with defaults.
    SettingsGet(Option<String>),
    /// Changes a setting.
    SettingsSet {
        /// The setting's name, one of [`params::SETTINGS`].
        name: String,
        /// The new value, already checked.
        value: String,
    },
    /// Writes a backup of the current database to a file outside the live data.
    Backup {
        /// The file to write, absolute.
        path: PathBuf,
        /// Whether an existing file there may be replaced.
        overwrite: bool,
    },
    /// Opens a user's encrypted database (created on first unlock) and makes it current.
    Unlock {
        /// The user's name (also the directory name).
        username: String,
        /// The database password.
        password: crate::db::Password,
    },
    /// Closes the user's database and returns to the default one.
    Logout,
    /// The latest balance snapshot and the balances behind it.
    Snapshot,
    /// The net value over time: snapshots' id, time, currency and total, oldest first.
    Snapshots(crate::db::HistoryRange),
}

/// What `tasks.cancel` cancels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelTarget {
    /// One task by number.
    Id(TaskId),
    /// Every live task whose name starts with this.
    NamePrefix(String),
}

/// Builds a command from its params; the error says what is wrong with them.
type Parser = fn(&Params<'_>) -> std::result::Result<Command, Invalid>;

/// Every method, in the order `unknown method` lists them, with its parser.
pub const COMMANDS: &[(&str, Parser)] = &[
    ("ping", |p| p.none(Command::Ping)),
    ("status", |p| p.none(Command::Status)),
    ("flags", |p| p.none(Command::Flags)),
    ("messages", |p| p.none(Command::Messages)),
    ("schedule", |p| Ok(Command::Schedule { enabled: p.required_bool("enabled")? })),
    ("tasks.list", |p| p.none(Command::TasksList)),
    ("tasks.ids", |p| p.none(Command::TasksIds)),
    ("tasks.cancel", parse_cancel),
    ("tasks.run", |p| Ok(Command::TasksRun(p.required_str("job")?.to_string()))),
    ("tasks.result", |p| Ok(Command::TasksResult(TaskId(p.required_u64("id")?)))),
    ("assets.add", parse_assets_add),
    ("assets.remove", |p| Ok(Command::AssetsRemove(params::asset_identifier(p.required_str("asset")?)?))),
    ("assets.list", |p| Ok(Command::AssetsList { details: p.optional_bool("details")?.unwrap_or(false) })),
    ("accounts.add", parse_account_add),
    ("accounts.remove", |p| {
        let address = params::evm_address(p.required_str("address")?)?;
        Ok(Command::AccountsRemove { chain: params::chain(p.optional_str("chain")?)?, address })
    }),
    ("accounts.list", |p| p.none(Command::AccountsList)),
    ("settings.get", parse_settings_get),
    ("settings.set", |p| {
        let name = p.required_str("name")?;
        let value = params::setting(name, p.required_str("value")?)?;
        Ok(Command::SettingsSet { name: name.to_string(), value })
    }),
    ("backup", parse_backup),
    ("unlock", parse_unlock),
    ("logout", |p| p.none(Command::Logout)),
    ("snapshot", |p| p.none(Command::Snapshot)),
    ("snapshots", parse_snapshots),
    ("ready", |p| p.none(Command::Ready)),
    ("broadcast", parse_broadcast),
    ("messages.add", parse_messages_add),
    ("tasks.begin", parse_tasks_begin),
    ("tasks.progress", |p| {
        let (processed, total) = (p.required_u64("processed")?, p.optional_u64("total")?);
        Ok(Command::TasksProgress { id: TaskId(p.required_u64("id")?), processed, total })
    }),
    ("tasks.end", parse_tasks_end),
];

/// The method names, in table order.
pub fn methods() -> impl Iterator<Item = &'static str> {
    COMMANDS.iter().map(|(name, _)| *name)
}

/// The method names as one comma-separated list, for messages.
pub fn known_methods() -> String {
    methods().collect::<Vec<_>>().join(", ")
}

impl Command {
    /// Parses a method name and its params (`None` or `{}` for commands that take none).
    pub fn parse(method: &str, params: Option<&Value>) -> Result<Command> {
        let (_, parse) = COMMANDS
            .iter()
            .find(|(name, _)| *name == method)
            .ok_or_else(|| Error::UnknownMethod(method.to_string()))?;
        parse(&Params::new(params))
            .map_err(|Invalid(reason)| Error::InvalidParams { method: method.to_string(), reason })
    }
}

fn parse_cancel(p: &Params<'_>) -> std::result::Result<Command, Invalid> {
    let usage = r#"expected {"id": N} or {"name_prefix": "..."} (one of them)"#;
    let target = match (p.optional_u64("id").ok().flatten(), p.optional_str("name_prefix").ok().flatten()) {
        (Some(id), None) => CancelTarget::Id(TaskId(id)),
        (None, Some(prefix)) if !prefix.is_empty() => CancelTarget::NamePrefix(prefix.to_string()),
        _ => return Err(Invalid(usage.into())),
    };
    Ok(Command::TasksCancel(target))
}

fn parse_account_add(p: &Params<'_>) -> std::result::Result<Command, Invalid> {
    let address = params::evm_address(p.required_str("address")?)?;
    let chain = params::chain(p.optional_str("chain")?)?;
    let label = p.optional_str("label")?.map(params::label).transpose()?;
    Ok(Command::AccountsAdd(Account { chain, address, label }))
}

fn parse_settings_get(p: &Params<'_>) -> std::result::Result<Command, Invalid> {
    let name = p.optional_str("name")?;
    if let Some(name) = name {
        params::setting_default(name)?;
    }
    Ok(Command::SettingsGet(name.map(str::to_string)))
}

/// Longest text `messages.add` takes.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;
/// Longest external task name, in characters.
pub const MAX_TASK_NAME_CHARS: usize = 128;

fn parse_broadcast(p: &Params<'_>) -> std::result::Result<Command, Invalid> {
    let kind = p.required_str("type")?;
    let data = p.value("data").cloned().unwrap_or(Value::Null);
    crate::notifier::Message::from_parts(kind, data)
        .map(Command::Broadcast)
        .map_err(|e| Invalid(e.to_string()))
}

fn parse_messages_add(p: &Params<'_>) -> std::result::Result<Command, Invalid> {
    use crate::notifier::Verbosity;
    let verbosity = match p.required_str("verbosity")? {
        "error" => Verbosity::Error,
        "warning" => Verbosity::Warning,
        other => return Err(Invalid(format!("\"verbosity\" is \"error\" or \"warning\", not \"{other}\""))),
    };
    let value = p.required_str("value")?;
    if value.len() > MAX_MESSAGE_BYTES {
        return Err(Invalid(format!("\"value\" is longer than {MAX_MESSAGE_BYTES} bytes")));
    }
    Ok(Command::MessagesAdd { verbosity, value: value.to_string() })
}

fn parse_tasks_begin(p: &Params<'_>) -> std::result::Result<Command, Invalid> {
    let name = p.required_str("name")?;
    if name.is_empty() || name.chars().count() > MAX_TASK_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Invalid(format!(
            "\"name\" is 1 to {MAX_TASK_NAME_CHARS} characters without control characters"
        )));
    }
    Ok(Command::TasksBegin {
        name: name.to_string(),
        total: p.optional_u64("total")?,
        exception_is_error: p.optional_bool("exception_is_error")?.unwrap_or(true),
    })
}

fn parse_tasks_end(p: &Params<'_>) -> std::result::Result<Command, Invalid> {
    let id = TaskId(p.required_u64("id")?);
    let outcome = match (p.value("result"), p.optional_str("error")?) {
        (Some(_), Some(_)) => return Err(Invalid("give \"result\" or \"error\", not both".into())),
        (None, Some(error)) => Err(error.to_string()),
        (result, None) => Ok(result.cloned().unwrap_or(Value::Null)),
    };
    Ok(Command::TasksEnd { id, outcome })
}

/// Snapshots `snapshots` returns when no `limit` is given.
pub const DEFAULT_HISTORY_LIMIT: u32 = 1000;
/// The most snapshots one `snapshots` call returns.
pub const MAX_HISTORY_LIMIT: u32 = 10_000;
/// Most decimals a token may have: robin's exact decimals carry 28 places.
pub const MAX_TOKEN_DECIMALS: u64 = 28;

fn parse_assets_add(p: &Params<'_>) -> std::result::Result<Command, Invalid> {
    let raw = p.required_str("asset")?;
    let decimals = p.optional_u64("decimals")?;
    let symbol = p.optional_str("symbol")?.map(params::symbol).transpose()?;
    let price_id = p.optional_str("price_id")?.map(params::asset).transpose()?;
    let Some(contract) = raw.strip_prefix(crate::db::Asset::ERC20_PREFIX) else {
        if decimals.is_some() {
            return Err(Invalid(format!(
                "\"decimals\" is for tokens (\"{}<contract>\"), not '{raw}'",
                crate::db::Asset::ERC20_PREFIX
            )));
        }
        return Ok(Command::AssetsAdd(crate::db::Asset {
            symbol,
            price_id,
            ..crate::db::Asset::plain(params::asset(raw)?)
        }));
    };
    let contract = params::evm_address(contract)?;
    let decimals = match decimals {
        Some(d) if d <= MAX_TOKEN_DECIMALS => d as u32,
        Some(d) => return Err(Invalid(format!("\"decimals\" is 0 to {MAX_TOKEN_DECIMALS}, not {d}"))),
        None => return Err(Invalid("a token needs \"decimals\" (6 for USDC, 18 for most)".into())),
    };
    Ok(Command::AssetsAdd(crate::db::Asset {
        asset: format!("{}{contract}", crate::db::Asset::ERC20_PREFIX),
        decimals: Some(decimals),
        symbol,
        price_id,
    }))
}

fn parse_snapshots(p: &Params<'_>) -> std::result::Result<Command, Invalid> {
    let time = |name: &str| -> std::result::Result<Option<i64>, Invalid> {
        p.optional_u64(name)?
            .map(|t| i64::try_from(t).map_err(|_| Invalid(format!("\"{name}\" is a Unix time in seconds"))))
            .transpose()
    };
    let limit = match p.optional_u64("limit")? {
        None => DEFAULT_HISTORY_LIMIT,
        Some(n) if (1..=u64::from(MAX_HISTORY_LIMIT)).contains(&n) => n as u32,
        Some(n) => return Err(Invalid(format!("\"limit\" is 1 to {MAX_HISTORY_LIMIT}, not {n}"))),
    };
    Ok(Command::Snapshots(crate::db::HistoryRange { from: time("from")?, to: time("to")?, limit }))
}

fn parse_backup(p: &Params<'_>) -> std::result::Result<Command, Invalid> {
    let path = p.required_str("path")?;
    // C interfaces (the kernel's, SQLite's) read a path only up to a NUL: another file than
    // the one named.
    if path.contains('\0') {
        return Err(Invalid("the path contains a NUL byte".into()));
    }
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(Invalid("path must be absolute (the daemon's working directory is not yours)".into()));
    }
    Ok(Command::Backup { path, overwrite: p.optional_bool("overwrite")?.unwrap_or(false) })
}

fn parse_unlock(p: &Params<'_>) -> std::result::Result<Command, Invalid> {
    let username = params::username(p.required_str("username")?)?;
    let password = p.required_str("password")?;
    if password.is_empty() {
        return Err(Invalid("the password may not be empty".into()));
    }
    if password.contains('\0') {
        return Err(Invalid("the password may not contain a NUL character".into()));
    }
    Ok(Command::Unlock { username, password: crate::db::Password::new(password.to_string()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_are_checked() {
        assert_eq!(Command::parse("status", Some(&json!({}))).unwrap(), Command::Status);
        let err = Command::parse("ping", Some(&json!([1]))).unwrap_err();
        assert_eq!(err.to_string(), "invalid params for 'ping': takes no params");
        assert_eq!(err.code(), -32602);
        let err = Command::parse("tasks.cancel", Some(&json!({"id": 1, "name_prefix": "a"}))).unwrap_err();
        assert!(err.to_string().contains("one of them"), "{err}");
    }

    #[test]
    fn backup_params_are_checked() {
        let backup = |params| Command::parse("backup", Some(&params));
        assert_eq!(
            backup(json!({"path": "/tmp/b.db"})).unwrap(),
            Command::Backup { path: "/tmp/b.db".into(), overwrite: false }
        );
        assert_eq!(
            backup(json!({"path": "/tmp/b.db", "overwrite": true})).unwrap(),
            Command::Backup { path: "/tmp/b.db".into(), overwrite: true }
        );
        for (params, reason) in [
            (json!({"path": "b.db"}), "absolute"),
            (json!({"path": "/tmp/b\u{0}.db"}), "NUL"),
            (json!({"path": "/tmp/b.db", "overwrite": "yes"}), "true or false"),
        ] {
            let err = backup(params).unwrap_err();
            assert!(err.to_string().contains(reason), "{err}");
        }
    }

    #[test]
    fn a_password_with_a_nul_is_refused_before_it_reaches_sqlcipher() {
        let err =
            Command::parse("unlock", Some(&json!({"username": "a", "password": "a\u{0}b"}))).unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
        assert!(!err.to_string().contains("a\u{0}b"), "the password is not echoed: {err}");
    }

    #[test]
    fn unknown_methods_list_the_table() {
        let err = Command::parse("pnig", None).unwrap_err();
        assert!(err.to_string().starts_with("unknown method 'pnig' (known: ping, status, flags"), "{err}");
        assert!(
            err.to_string().ends_with(
                "snapshots, ready, broadcast, messages.add, tasks.begin, tasks.progress, tasks.end)"
            ),
            "{err}"
        );
    }

    #[test]
    fn every_table_entry_parses_its_own_name() {
        for name in methods() {
            // With no params a command either parses or says what it needs: never "unknown".
            if let Err(err) = Command::parse(name, None) {
                assert!(matches!(err, Error::InvalidParams { .. }), "{name}: {err}");
            }
        }
    }
}
