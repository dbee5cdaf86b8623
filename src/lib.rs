//! robin: the asynchronous backend core of a desktop portfolio tracker.
//!
//! One OS thread runs a smol [`LocalExecutor`](async_executor::LocalExecutor) driven by
//! [`async_io::block_on`]. Everything that talks to clients lives on it: the inbound HTTP and
//! WebSocket server ([`server`]), the local control socket ([`ipc`]), the command layer they
//! share ([`control`]) and the notifier ([`notifier`]); the jobs ([`jobs`]) run there as tracked
//! tasks ([`tasks`]) and query the outside world through the outbound client ([`outbound`]).
//! Work that would block (files, SQLite) goes to the `blocking` thread pool; [`runtime`] marks
//! the loop thread so such calls can check where they are.
//!
//! The `robind` binary is a thin wrapper over [`daemon::run`]; `robinctl` is a client of the
//! control socket. Both use this library, and so do the integration tests and examples.
//!
//! # Examples
//!
//! Start the HTTP listener on its own, on an ephemeral loopback port, and ping it:
//!
//! ```
//! use std::rc::Rc;
//! use robin::control::{Controller, Session};
//! use robin::{notifier::Notifier, runtime::Spawner, server, tasks::TaskManager};
//!
//! let ex = Spawner::new();
//! let tasks = TaskManager::new(ex.clone(), Rc::new(|_| {}), Rc::new(|_| {}));
//! let notifier = Notifier::new(Default::default());
//! let controller = Controller::new(Default::default(), notifier, tasks.clone(), Session::new(tasks));
//! let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! let server = server::Server::new(listener, Rc::new(controller), server::Limits::default()).unwrap();
//! let _accept = ex.spawn(server.serve());
//!
//! let reply = ex.block_on(async move {
//!     let mut conn = smol::Async::<std::net::TcpStream>::connect(addr).await.unwrap();
//!     use futures_lite::{AsyncReadExt, AsyncWriteExt};
//!     conn.write_all(b"GET /api/1/ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
//!     let mut reply = String::new();
//!     conn.read_to_string(&mut reply).await.unwrap();
//!     reply
//! });
//! assert!(reply.starts_with("HTTP/1.1 200 OK"));
//! assert!(reply.ends_with(r#"{"result":true,"message":""}"#));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod config;
pub mod control;
pub mod daemon;
pub mod db;
pub mod ipc;
pub mod jobs;
pub mod lockfile;
pub mod logging;
pub mod notifier;
pub mod outbound;
pub mod ownership;
pub mod peers;
pub mod runtime;
pub mod server;
pub mod systemd;
pub mod tasks;

/// The version string reported by `--version`, `status` and the `User-Agent`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Formats an error and its chain of causes on one line: `outer: inner: root`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // `#[error(transparent)]` and friends can repeat the same text one level down.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
