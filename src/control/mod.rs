//! The one command layer: typed requests, the envelope every transport carries, the session,
//! and the dispatcher.
//!
//! Owns the command catalogue and its parsing ([`command`]), the request/response envelope and
//! its error codes ([`wire`], shared by `ipc`, `server`, WebSocket clients and [`client`]), the
//! session ([`Session`]: which database is current, unlock and logout), and
//! [`Controller::execute`], which turns a command into calls on the daemon's parts. The control
//! socket, the HTTP routes and the WebSocket hand every request here, so each command is
//! written once and behaves the same on every transport.
//!
//! May touch: the public handles of `notifier`, `tasks` and `db`, the feature flags of
//! `config`, the lock file's name from `lockfile`, and the data directory (it creates users'
//! directories and lists them so that backups stay out). It is, with `daemon`, the only module
//! that imports several siblings.
//!
//! # Examples
//!
//! ```
//! use std::rc::Rc;
//! use robin::config::Features;
//! use robin::control::{Caller, Command, Controller, Session};
//! use robin::notifier::{Limits, Notifier};
//! use robin::runtime::Spawner;
//! use robin::tasks::TaskManager;
//! use serde_json::json;
//!
//! let tasks = TaskManager::new(Spawner::new(), Rc::new(|_| {}), Rc::new(|_| {}));
//! let controller = Controller::new(Features::defaults(), Notifier::new(Limits::default()), tasks.clone(), Session::new(tasks));
//! let command = Command::parse("ping", None).unwrap();
//! let result = futures_lite::future::block_on(controller.execute(command, &Caller::default())).unwrap();
//! assert_eq!(result, json!(true));
//!
//! let err = Command::parse("pnig", None).unwrap_err();
//! assert!(err.to_string().starts_with("unknown method 'pnig' (known: ping, status, flags, messages"), "{err}");
//! ```
pub mod client;
mod command;
mod controller;
mod error;
pub mod link;
mod params;
mod ready;
mod session;
pub mod wire;

/// Task numbers, as commands carry them.
pub use crate::tasks::TaskId;
pub use command::{COMMANDS, CancelTarget, Command, known_methods, methods};
pub use controller::{Caller, Controller, Endpoints};
pub use error::{Error, Result};
pub use link::Link;
pub use params::SETTINGS;
pub use ready::{READY_VERSION, ReadyLine};
pub use session::Session;
pub use wire::Request;
