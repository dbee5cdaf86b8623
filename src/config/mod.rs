//! Configuration: flags, `ROBIN_*` environment variables, an optional TOML file and defaults.
//!
//! Owns reading and validating configuration into plain structs, in two steps as ripgrep does:
//! [`Args`] only checks what was typed, then [`Config::resolve`] layers flags over environment
//! over file over defaults, validates every value and records where it came from ([`Source`]),
//! which `robind --print-config` shows. Nothing here is async: it runs before the loop starts.
//!
//! The result holds each part's own options ([`notifier::Limits`](crate::notifier::Limits),
//! [`db::Options`](crate::db::Options), ...), checked against their ranges, so the daemon
//! hands them over as they are.
//!
//! May touch: the file system (reading the config file), the environment snapshot it is given,
//! and the option types of the parts it configures (plain data).
//!
//! # Examples
//!
//! ```
//! use robin::config::{Args, Config, Environment, Source};
//!
//! let args = Args::parse(["--listen".into(), "127.0.0.1:0".into()]).unwrap();
//! let env = Environment::from_pairs([("HOME", "/home/ada"), ("ROBIN_LOG", "debug")]);
//! let config = Config::resolve(&args, &env).unwrap();
//!
//! assert_eq!(config.listen.value.port(), 0);
//! assert_eq!(config.listen.source, Source::Flag("--listen"));
//! assert_eq!(config.log_level.value, "debug");
//! assert_eq!(config.data_dir.value, std::path::Path::new("/home/ada/.local/share/robin"));
//! ```
mod args;
mod features;
mod file;
mod render;
mod resolve;
mod tables;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

pub use args::{Args, Mode, USAGE};
pub use features::{Feature, Features};

/// `Result` with this part's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The listener address when nothing else is configured: rotki's API port, loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5042";
/// Browser origins allowed when nothing else is configured: rotki's desktop app, whose page
/// is `app://localhost`. No web page can claim an `app://` origin, so this lets in the app and
/// nothing else.
pub const DEFAULT_WS_ORIGINS: &[&str] = &["app://localhost"];
/// The log filter when nothing else is configured.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// The directory under `$XDG_DATA_HOME` / `$XDG_RUNTIME_DIR` that robin uses.
pub const APP_DIR: &str = "robin";

/// Environment variable for `--listen`.
pub const ENV_LISTEN: &str = "ROBIN_LISTEN";
/// Environment variable for `--data-dir`.
pub const ENV_DATA_DIR: &str = "ROBIN_DATA_DIR";
/// Environment variable for `--runtime-dir`.
pub const ENV_RUNTIME_DIR: &str = "ROBIN_RUNTIME_DIR";
/// Environment variable for `--config`.
pub const ENV_CONFIG: &str = "ROBIN_CONFIG";
/// Environment variable for `--log-level`.
pub const ENV_LOG: &str = "ROBIN_LOG";
/// The conventional Rust log filter variable, read after `ROBIN_LOG`.
pub const ENV_RUST_LOG: &str = "RUST_LOG";
/// Environment variable for `--ws-origin`, comma separated.
pub const ENV_WS_ORIGINS: &str = "ROBIN_WS_ORIGINS";
/// Environment variable for `--api-token-file`.
pub const ENV_API_TOKEN_FILE: &str = "ROBIN_API_TOKEN_FILE";
/// Environment variable for `--generate-api-token`.
pub const ENV_GENERATE_API_TOKEN: &str = "ROBIN_GENERATE_API_TOKEN";
/// Environment variable for `--exit-with-parent`.
pub const ENV_EXIT_WITH_PARENT: &str = "ROBIN_EXIT_WITH_PARENT";
/// Environment variable for `--stdin-lifeline`.
pub const ENV_STDIN_LIFELINE: &str = "ROBIN_STDIN_LIFELINE";
/// Environment variable for `--attach-existing`.
pub const ENV_ATTACH_EXISTING: &str = "ROBIN_ATTACH_EXISTING";
/// The default database's file name inside the data directory.
pub const DATABASE_FILE_NAME: &str = "robin.db";
/// The generated API token's file name inside the runtime directory.
pub const API_TOKEN_FILE_NAME: &str = "api-token";

/// Why the configuration could not be built. Each message names the setting to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command line has an unknown flag or a flag without its value.
    #[error("{0} (see robind --help)")]
    Usage(String),
    /// A value was given but does not parse.
    #[error("invalid value '{value}' for {origin}: {reason}")]
    InvalidValue {
        /// The flag, variable or file key that held it.
        origin: String,
        /// The value as written.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// A feature flag name that the registry does not know.
    #[error("unknown feature flag '{name}' in {origin} (known flags: {known})")]
    UnknownFeature {
        /// The name as written.
        name: String,
        /// Where it was written.
        origin: String,
        /// The flags that exist.
        known: String,
    },
    /// The config file could not be read.
    #[error("cannot read config file {path}")]
    ReadFile {
        /// The config file named by --config or ROBIN_CONFIG.
        path: PathBuf,
        /// What the file system reported.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys.
    #[error("invalid config file {path}")]
    ParseFile {
        /// The config file named by --config or ROBIN_CONFIG.
        path: PathBuf,
        /// What the TOML parser said.
        #[source]
        source: toml::de::Error,
    },
    /// No data directory can be derived from the environment.
    #[error("cannot choose a data directory: set --data-dir, ROBIN_DATA_DIR, XDG_DATA_HOME or HOME")]
    NoDataDir,
}

/// Where a configuration value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Built-in default.
    Default,
    /// A key in the config file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "config file {}", path.display()),
            Source::Env(var) => write!(f, "environment {var}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// A value together with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting<T> {
    /// The effective value.
    pub value: T,
    /// Its origin, for `--print-config` and error messages.
    pub source: Source,
}

/// A snapshot of the process environment, taken once so resolution is a pure function.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    /// Variable name to value; names that are not UTF-8 are left out (robin reads none).
    vars: HashMap<String, OsString>,
}

impl Environment {
    /// Snapshots the current process environment.
    pub fn from_process() -> Self {
        let vars = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v)));
        Environment { vars: vars.collect() }
    }

    /// Builds an environment from pairs, for tests and embedding.
    pub fn from_pairs<K: Into<String>, V: Into<OsString>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Environment { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// The value of `name`, if set and not empty.
    pub fn get(&self, name: &str) -> Option<&OsString> {
        self.vars.get(name).filter(|v| !v.is_empty())
    }

    pub(crate) fn get_str(&self, name: &str) -> Result<Option<&str>> {
        self.get(name)
            .map(|raw| {
                raw.to_str().ok_or_else(|| Error::InvalidValue {
                    origin: name.to_string(),
                    value: raw.to_string_lossy().into_owned(),
                    reason: "not valid UTF-8".to_string(),
                })
            })
            .transpose()
    }
}

/// The effective configuration of the daemon.
#[derive(Clone, Debug)]
pub struct Config {
    /// What the command line asked for (run, print the config, help, version).
    pub mode: Mode,
    /// The command line it was resolved from, to resolve it again on reload.
    pub args: Args,
    /// The HTTP/WebSocket listener address.
    pub listen: Setting<SocketAddr>,
    /// Where the database and the instance lock live.
    pub data_dir: Setting<PathBuf>,
    /// Where the control socket lives.
    pub runtime_dir: Setting<PathBuf>,
    /// The config file that was read, if any.
    pub config_file: Option<Setting<PathBuf>>,
    /// The log filter (`RUST_LOG` syntax).
    pub log_level: Setting<String>,
    /// Origins whose pages may call the API and open `/ws`.
    pub ws_origins: Setting<Vec<String>>,
    /// Users besides the daemon's own and root who may use the control socket.
    pub ipc_allow_uids: Vec<u32>,
    /// A file holding the API token to require, if any.
    pub api_token_file: Option<Setting<PathBuf>>,
    /// Whether to generate a fresh token into the runtime directory at start.
    pub generate_api_token: Setting<bool>,
    /// Whether to shut down when the process that started robind dies (`PR_SET_PDEATHSIG`).
    pub exit_with_parent: Setting<bool>,
    /// Whether to shut down when standard input reaches end of file.
    pub stdin_lifeline: Setting<bool>,
    /// Whether to hand over to a healthy robind already serving the data directory.
    pub attach_existing: Setting<bool>,
    /// The notifier's bounds, from the `[websocket]` table.
    pub notifier: crate::notifier::Limits,
    /// How databases are opened, from the `[database]` table.
    pub database: crate::db::Options,
    /// Automatic backups, from the `[database]` table.
    pub backups: crate::db::BackupPolicy,
    /// The scheduler's bounds, from the `[scheduler]` table.
    pub scheduler: crate::tasks::SchedulerOptions,
    /// The outbound client's bounds, from the `[http]` table.
    pub outbound: crate::outbound::Settings,
    /// The feature flags.
    pub features: Features,
}

impl Config {
    /// The default (unencrypted) database, opened at start-up.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.value.join(DATABASE_FILE_NAME)
    }

    /// Where a generated API token is written.
    pub fn generated_token_path(&self) -> PathBuf {
        self.runtime_dir.value.join(API_TOKEN_FILE_NAME)
    }

    /// Whether robind runs as an app's companion (`--exit-with-parent` or `--stdin-lifeline`).
    pub fn companion(&self) -> bool {
        self.exit_with_parent.value || self.stdin_lifeline.value
    }

    /// Whether finding a healthy robind on the data directory means handing over to it rather
    /// than failing: asked for with `--attach-existing`, and implied in companion mode.
    pub fn attaches(&self) -> bool {
        self.attach_existing.value || self.companion()
    }

    /// The control socket's path inside the runtime directory.
    pub fn ipc_socket_path(&self) -> PathBuf {
        self.runtime_dir.value.join(IPC_SOCKET_NAME)
    }
}

/// The control socket's file name inside the runtime directory.
pub const IPC_SOCKET_NAME: &str = "robind.sock";
