//! The control layer's error: what a client is told when a command fails.
use serde_json::{Value, json};

use super::command::known_methods;
use super::wire::{CODE_INVALID_PARAMS, CODE_METHOD_NOT_FOUND};
use crate::tasks::TaskId;

/// `Result` with this part's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A request that failed. The message is meant for the person or script that sent it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No command has that name.
    #[error("unknown method '{0}' (known: {known})", known = known_methods())]
    UnknownMethod(String),
    /// The params do not fit the command.
    #[error("invalid params for '{method}': {reason}")]
    InvalidParams {
        /// The method called.
        method: String,
        /// What is wrong with the params, in words the caller can act on.
        reason: String,
    },
    /// The command needs a part that is switched off.
    #[error("{0}")]
    Disabled(&'static str),
    /// The command needs a database and none is open.
    #[error("no database is open")]
    NoDatabase,
    /// The database refused or failed.
    #[error("{}", crate::error_chain(.0))]
    Database(#[from] crate::db::Error),
    /// The request conflicts with the daemon's state (e.g. unlock while unlocked).
    #[error("{0}")]
    Conflict(String),
    /// No API task has that number (or its result was read already).
    #[error("No task with id {0} found")]
    UnknownTask(TaskId),
    /// The caller may use the daemon, but not for this (see `ipc_allow_uids`).
    #[error("{0}")]
    NotAllowed(String),
    /// A job could not be run on demand.
    #[error(transparent)]
    RunNow(#[from] crate::tasks::RunNowError),
}

impl Error {
    /// A stable numeric code for the control protocol (JSON-RPC's numbering where one exists).
    pub fn code(&self) -> i64 {
        match self {
            Error::UnknownMethod(_) => CODE_METHOD_NOT_FOUND,
            Error::InvalidParams { .. } => CODE_INVALID_PARAMS,
            Error::Disabled(_) => -32000,
            Error::NoDatabase => -32001,
            Error::Database(crate::db::Error::WrongPassword(_)) => -32006,
            Error::Database(crate::db::Error::BackupExists(_)) => -32005,
            Error::Database(err) if err.is_refusal() => CODE_INVALID_PARAMS,
            Error::Database(_) => -32002,
            Error::RunNow(_) => -32003,
            Error::UnknownTask(_) => -32004,
            Error::Conflict(_) => -32005,
            Error::NotAllowed(_) => -32007,
        }
    }

    /// The HTTP status for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::UnknownMethod(_) => 404,
            Error::InvalidParams { .. } => 400,
            Error::Disabled(_) | Error::NoDatabase => 409,
            Error::Database(crate::db::Error::WrongPassword(_)) => 401,
            Error::Database(crate::db::Error::BackupExists(_)) => 409,
            Error::Database(err) if err.is_refusal() => 400,
            Error::Database(_) => 500,
            Error::Conflict(_) => 409,
            Error::RunNow(crate::tasks::RunNowError::UnknownJob(..)) => 404,
            Error::RunNow(_) => 409,
            Error::UnknownTask(_) => 404,
            Error::NotAllowed(_) => 403,
        }
    }

    /// What goes in the `result` field of rotki's HTTP envelope with this error (`null` for
    /// most; rotki's task API says which task was not found).
    pub fn http_result(&self) -> Value {
        match self {
            Error::UnknownTask(_) => json!({ "status": "not-found", "outcome": null }),
            _ => Value::Null,
        }
    }
}
