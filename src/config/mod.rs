//! Configuration: flags, `ROBIN_*` environment variables, an optional TOML file and defaults.
//!
//! Owns reading and validating configuration into plain structs, in two steps as ripgrep does:
//! [`Args`] only checks what was typed, then [`Config::resolve`] layers flags over environment
//! over file over defaults, validates every value and records where it came from ([`Source`]),
//! which `robind --print-config` shows. Nothing here is async: it runs before the loop starts.
//!
//! May touch: the file system (reading the config file) and the environment snapshot it is given.
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

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use args::{Args, Mode, USAGE};
pub use features::{Feature, Features};

/// `Result` with this part's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The listener address when nothing else is configured: rotki's API port, loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5042";
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
        /// What was given.
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
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys.
    #[error("invalid config file {path}")]
    ParseFile {
        /// The file.
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

    fn get_str(&self, name: &str) -> Result<Option<&str>> {
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

/// The optional TOML file, as written. Unknown keys are an error, not a silent no-op.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    runtime_dir: Option<PathBuf>,
    log_level: Option<String>,
    ws_origins: Option<Vec<String>>,
    ipc_allow_uids: Option<Vec<u32>>,
    api_token_file: Option<PathBuf>,
    generate_api_token: Option<bool>,
    #[serde(default)]
    websocket: WebSocketSettings,
    #[serde(default)]
    database: DatabaseSettings,
    #[serde(default)]
    scheduler: SchedulerSettings,
    #[serde(default)]
    http: HttpSettings,
    #[serde(default)]
    features: BTreeMap<String, bool>,
}

/// The `[database]` table, each key optional (the database part has defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Read-only connections kept open (default 2).
    pub readers: Option<usize>,
    /// `synchronous = "full"` makes commits survive power loss too (default "normal").
    pub synchronous: Option<Synchronous>,
    /// Seconds a write may wait for its turn before failing (default 30).
    pub write_timeout_secs: Option<u64>,
    /// Hours between automatic backups into DATA_DIR/backups (default 24; 0 turns them off).
    pub backup_interval_hours: Option<u64>,
    /// Automatic backups kept (default 7).
    pub backup_keep: Option<usize>,
}

/// The `[http]` table: the outbound client's bounds, each optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Seconds to connect (default 10).
    pub connect_timeout_secs: Option<u64>,
    /// Seconds for a whole request (default 30).
    pub timeout_secs: Option<u64>,
    /// Extra attempts for idempotent requests (default 3).
    pub retries: Option<u32>,
    /// Requests in flight per host (default 4).
    pub per_host_concurrency: Option<usize>,
    /// Milliseconds between request starts to one host (default 0).
    pub per_host_interval_ms: Option<u64>,
}

/// The `[scheduler]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSettings {
    /// Most tasks running at once (default 2, as rotki).
    pub max_tasks: Option<usize>,
    /// Seconds between scheduling passes (default 10).
    pub tick_secs: Option<u64>,
    /// Whether scheduling starts on (default false: rotki turns it on after the first balance query).
    pub start_on: Option<bool>,
}

/// `PRAGMA synchronous` as written in the config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Durable across crashes of robind.
    Normal,
    /// Durable across power loss.
    Full,
}

/// The `[websocket]` table: notifier bounds, each optional (the notifier has defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketSettings {
    /// Messages kept for `since` replay.
    pub replay_messages: Option<usize>,
    /// Bytes kept for `since` replay.
    pub replay_bytes: Option<usize>,
    /// Frames queued per client before it is closed as too slow.
    pub client_queue_messages: Option<usize>,
    /// Bytes queued per client before it is closed as too slow.
    pub client_queue_bytes: Option<usize>,
    /// Largest message a client may send.
    pub max_message_bytes: Option<usize>,
}

/// The effective configuration of the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// What the command line asked for (run, print the config, help, version).
    pub mode: Mode,
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
    /// Notifier bounds from the `[websocket]` table.
    pub websocket: WebSocketSettings,
    /// Database settings from the `[database]` table.
    pub database: DatabaseSettings,
    /// Scheduler settings from the `[scheduler]` table.
    pub scheduler: SchedulerSettings,
    /// Outbound HTTP settings from the `[http]` table.
    pub http: HttpSettings,
    /// The feature flags.
    pub features: Features,
}

impl Config {
    /// Resolves flags over environment over file over defaults, reading the config file if one
    /// is named. This is the only step that does I/O.
    pub fn resolve(args: &Args, env: &Environment) -> Result<Config> {
        let config_file = pick_path(args.config.clone(), "--config", env, ENV_CONFIG, None);
        let file = match &config_file {
            Some(setting) => read_file(&setting.value)?,
            None => FileConfig::default(),
        };
        let file_source = || Source::File(config_file.as_ref().map(|s| s.value.clone()).unwrap());
        let file_dir = config_file.as_ref().and_then(|s| s.value.parent().map(Path::to_path_buf));
        let in_file_dir = |p: PathBuf| match &file_dir {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p,
        };

        let listen = match (&args.listen, env.get_str(ENV_LISTEN)?, &file.listen) {
            (Some(raw), _, _) => parse_listen(raw, "--listen", Source::Flag("--listen"))?,
            (None, Some(raw), _) => parse_listen(raw, ENV_LISTEN, Source::Env(ENV_LISTEN.into()))?,
            (None, None, Some(raw)) => parse_listen(raw, &file_key("listen", &config_file), file_source())?,
            (None, None, None) => parse_listen(DEFAULT_LISTEN, "default", Source::Default)?,
        };

        let file_data_dir = file.data_dir.map(|p| (in_file_dir(p), file_source()));
        let data_dir = match pick_path(args.data_dir.clone(), "--data-dir", env, ENV_DATA_DIR, file_data_dir)
        {
            Some(setting) => setting,
            None => Setting { value: default_data_dir(env)?, source: Source::Default },
        };

        let file_runtime_dir = file.runtime_dir.map(|p| (in_file_dir(p), file_source()));
        let runtime_dir = match pick_path(
            args.runtime_dir.clone(),
            "--runtime-dir",
            env,
            ENV_RUNTIME_DIR,
            file_runtime_dir,
        ) {
            Some(setting) => setting,
            None => Setting { value: default_runtime_dir(env, &data_dir.value), source: Source::Default },
        };

        let log_level = pick_log_level(args, env, file.log_level, &config_file)?;

        let mut features = Features::defaults();
        for (name, value) in &file.features {
            let origin = file_key(&format!("features.{name}"), &config_file);
            let feature = Feature::from_name(name).ok_or_else(|| unknown_feature(name, origin))?;
            features.set(feature, *value, file_source());
        }
        apply_feature_env(&mut features, env)?;

        let ws_origins = if !args.ws_origins.is_empty() {
            Setting { value: args.ws_origins.clone(), source: Source::Flag("--ws-origin") }
        } else if let Some(raw) = env.get_str(ENV_WS_ORIGINS)? {
            let value = raw.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_string).collect();
            Setting { value, source: Source::Env(ENV_WS_ORIGINS.into()) }
        } else if let Some(value) = file.ws_origins {
            Setting { value, source: file_source() }
        } else {
            Setting { value: Vec::new(), source: Source::Default }
        };
        let file_token = file.api_token_file.map(|p| (in_file_dir(p), file_source()));
        let api_token_file =
            pick_path(args.api_token_file.clone(), "--api-token-file", env, ENV_API_TOKEN_FILE, file_token);
        let generate_api_token = if args.generate_api_token {
            Setting { value: true, source: Source::Flag("--generate-api-token") }
        } else if let Some(raw) = env.get_str(ENV_GENERATE_API_TOKEN)? {
            let value = features::parse_bool(raw).ok_or_else(|| Error::InvalidValue {
                origin: ENV_GENERATE_API_TOKEN.into(),
                value: raw.into(),
                reason: "expected true or false".into(),
            })?;
            Setting { value, source: Source::Env(ENV_GENERATE_API_TOKEN.into()) }
        } else if let Some(value) = file.generate_api_token {
            Setting { value, source: file_source() }
        } else {
            Setting { value: false, source: Source::Default }
        };

        Ok(Config {
            mode: args.mode,
            listen,
            data_dir,
            runtime_dir,
            config_file,
            log_level,
            ws_origins,
            ipc_allow_uids: file.ipc_allow_uids.unwrap_or_default(),
            api_token_file,
            generate_api_token,
            websocket: file.websocket,
            database: file.database,
            scheduler: file.scheduler,
            http: file.http,
            features,
        })
    }

    /// The configuration as TOML that could be fed back through `--config`, each value followed by
    /// a comment that says where it came from.
    pub fn render(&self) -> String {
        let mut out =
            String::from("# robind effective configuration; '# ...' says where each value came from\n");
        let line = |out: &mut String, key: &str, value: String, source: &Source| {
            let _ = writeln!(out, "{key} = {value}  # {source}");
        };
        line(&mut out, "listen", toml_string(&self.listen.value.to_string()), &self.listen.source);
        line(
            &mut out,
            "data_dir",
            toml_string(&self.data_dir.value.to_string_lossy()),
            &self.data_dir.source,
        );
        line(
            &mut out,
            "runtime_dir",
            toml_string(&self.runtime_dir.value.to_string_lossy()),
            &self.runtime_dir.source,
        );
        line(&mut out, "log_level", toml_string(&self.log_level.value), &self.log_level.source);
        let origins: Vec<String> = self.ws_origins.value.iter().map(|o| toml_string(o)).collect();
        line(&mut out, "ws_origins", format!("[{}]", origins.join(", ")), &self.ws_origins.source);
        match &self.api_token_file {
            Some(file) => {
                line(&mut out, "api_token_file", toml_string(&file.value.to_string_lossy()), &file.source)
            }
            None => out.push_str("# api_token_file: none\n"),
        }
        let generate = &self.generate_api_token;
        line(&mut out, "generate_api_token", generate.value.to_string(), &generate.source);
        match &self.config_file {
            Some(file) => {
                let _ = writeln!(out, "# config file: {} ({})", file.value.display(), file.source);
            }
            None => out.push_str("# config file: none\n"),
        }
        out.push_str("\n[features]\n");
        for (feature, setting) in self.features.iter() {
            let _ = writeln!(
                out,
                "{} = {}  # {}; {}",
                feature.name(),
                setting.value,
                setting.source,
                feature.description()
            );
        }
        out
    }

    /// The default (unencrypted) database, opened at start-up.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.value.join(DATABASE_FILE_NAME)
    }

    /// Where a generated API token is written.
    pub fn generated_token_path(&self) -> PathBuf {
        self.runtime_dir.value.join(API_TOKEN_FILE_NAME)
    }

    /// The control socket's path inside the runtime directory.
    pub fn ipc_socket_path(&self) -> PathBuf {
        self.runtime_dir.value.join(IPC_SOCKET_NAME)
    }
}

/// The control socket's file name inside the runtime directory.
pub const IPC_SOCKET_NAME: &str = "robind.sock";

fn read_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| Error::ReadFile { path: path.to_path_buf(), source })?;
    toml::from_str(&text).map_err(|source| Error::ParseFile { path: path.to_path_buf(), source })
}

fn file_key(key: &str, file: &Option<Setting<PathBuf>>) -> String {
    let path = file.as_ref().map(|s| s.value.display().to_string()).unwrap_or_default();
    format!("`{key}` in {path}")
}

fn unknown_feature(name: &str, origin: String) -> Error {
    Error::UnknownFeature { name: name.to_string(), origin, known: features::known_names() }
}

fn parse_listen(raw: &str, origin: &str, source: Source) -> Result<Setting<SocketAddr>> {
    // Only literal addresses: a host name would need DNS, which must not run on the loop and
    // would make "which interface am I exposed on" depend on a resolver.
    let value = raw.trim().parse::<SocketAddr>().map_err(|_| Error::InvalidValue {
        origin: origin.to_string(),
        value: raw.to_string(),
        reason: "expected IP:PORT such as 127.0.0.1:5042 or [::1]:5042".to_string(),
    })?;
    Ok(Setting { value, source })
}

fn pick_path(
    flag: Option<PathBuf>,
    flag_name: &'static str,
    env: &Environment,
    var: &str,
    file: Option<(PathBuf, Source)>,
) -> Option<Setting<PathBuf>> {
    if let Some(value) = flag {
        return Some(Setting { value, source: Source::Flag(flag_name) });
    }
    if let Some(value) = env.get(var) {
        return Some(Setting { value: PathBuf::from(value), source: Source::Env(var.to_string()) });
    }
    file.map(|(value, source)| Setting { value, source })
}

fn pick_log_level(
    args: &Args,
    env: &Environment,
    file_value: Option<String>,
    config_file: &Option<Setting<PathBuf>>,
) -> Result<Setting<String>> {
    let (value, source, origin) = if let Some(v) = &args.log_level {
        (v.clone(), Source::Flag("--log-level"), "--log-level".to_string())
    } else if let Some(v) = env.get_str(ENV_LOG)? {
        (v.to_string(), Source::Env(ENV_LOG.into()), ENV_LOG.to_string())
    } else if let Some(v) = env.get_str(ENV_RUST_LOG)? {
        (v.to_string(), Source::Env(ENV_RUST_LOG.into()), ENV_RUST_LOG.to_string())
    } else if let Some(v) = file_value {
        let source = Source::File(config_file.as_ref().map(|s| s.value.clone()).unwrap_or_default());
        (v, source, file_key("log_level", config_file))
    } else {
        (DEFAULT_LOG_LEVEL.to_string(), Source::Default, "default".to_string())
    };
    validate_log_filter(&value).map_err(|reason| Error::InvalidValue {
        origin,
        value: value.clone(),
        reason,
    })?;
    Ok(Setting { value, source })
}

/// Checks `RUST_LOG`-style filters: `level`, `target=level`, comma separated.
fn validate_log_filter(filter: &str) -> std::result::Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let spec = filter.split('/').next().unwrap_or_default();
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = match directive.split_once('=') {
            Some((_, level)) => level,
            None if LEVELS.contains(&directive.to_ascii_lowercase().as_str()) => directive,
            // A bare module path such as `robin::web` means "everything from it". A bare word
            // is read as a (mistyped) level instead: `loud` is far likelier than a crate `loud`.
            None if directive.contains("::") => continue,
            None => directive,
        };
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!("unknown log level '{level}' (use {})", LEVELS.join(", ")));
        }
    }
    Ok(())
}

fn apply_feature_env(features: &mut Features, env: &Environment) -> Result<()> {
    let mut names: Vec<&String> = env.vars.keys().filter(|k| k.starts_with(features::ENV_PREFIX)).collect();
    names.sort();
    for var in names {
        let name = var[features::ENV_PREFIX.len()..].to_ascii_lowercase();
        let feature =
            Feature::from_name(&name).ok_or_else(|| unknown_feature(&name, format!("environment {var}")))?;
        let raw = env.get_str(var)?.unwrap_or_default();
        let value = features::parse_bool(raw).ok_or_else(|| Error::InvalidValue {
            origin: var.clone(),
            value: raw.to_string(),
            reason: "expected true or false".to_string(),
        })?;
        features.set(feature, value, Source::Env(var.clone()));
    }
    Ok(())
}

fn default_data_dir(env: &Environment) -> Result<PathBuf> {
    let absolute = |name: &str| env.get(name).map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(base) = absolute("XDG_DATA_HOME") {
        return Ok(base.join(APP_DIR));
    }
    absolute("HOME").map(|home| home.join(".local/share").join(APP_DIR)).ok_or(Error::NoDataDir)
}

fn default_runtime_dir(env: &Environment, data_dir: &Path) -> PathBuf {
    match env.get("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|p| p.is_absolute()) {
        Some(base) => base.join(APP_DIR),
        None => data_dir.join("run"),
    }
}

fn toml_string(value: &str) -> String {
    // serde_json's string escaping is valid TOML basic-string escaping for every input.
    serde_json::Value::String(value.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(args: &[&str], env: &[(&str, &str)]) -> Result<Config> {
        let args = Args::parse(args.iter().map(OsString::from))?;
        Config::resolve(&args, &Environment::from_pairs(env.iter().copied()))
    }

    #[test]
    fn defaults_follow_xdg() -> Result<()> {
        let config = resolve(&[], &[("HOME", "/h"), ("XDG_RUNTIME_DIR", "/run/user/1")])?;
        assert_eq!(config.listen.value.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.data_dir.value, Path::new("/h/.local/share/robin"));
        assert_eq!(config.runtime_dir.value, Path::new("/run/user/1/robin"));
        assert_eq!(config.log_level.value, "info");
        assert!(Feature::ALL.iter().all(|f| config.features.enabled(*f)));
        Ok(())
    }

    #[test]
    fn runtime_dir_falls_back_inside_the_data_dir() -> Result<()> {
        let config = resolve(&[], &[("XDG_DATA_HOME", "/d")])?;
        assert_eq!(config.data_dir.value, Path::new("/d/robin"));
        assert_eq!(config.runtime_dir.value, Path::new("/d/robin/run"));
        Ok(())
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Usage(e.to_string()))?;
        let file = dir.path().join("robin.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:7000\"\ndata_dir = \"data\"\nlog_level = \"warn\"\n[features]\nipc = false\n",
        )
        .unwrap();
        let file_arg = file.to_str().unwrap();

        let only_file = resolve(&["--config", file_arg], &[("HOME", "/h")])?;
        assert_eq!(only_file.listen.value.port(), 7000);
        assert_eq!(only_file.listen.source, Source::File(file.clone()));
        assert_eq!(only_file.data_dir.value, dir.path().join("data"), "relative to the file");
        assert_eq!(only_file.log_level.value, "warn");
        assert!(!only_file.features.enabled(Feature::Ipc));

        let env = [("HOME", "/h"), ("ROBIN_LISTEN", "127.0.0.1:7001"), ("ROBIN_FEATURE_IPC", "true")];
        let with_env = resolve(&["--config", file_arg], &env)?;
        assert_eq!(with_env.listen.value.port(), 7001);
        assert_eq!(with_env.listen.source, Source::Env("ROBIN_LISTEN".into()));
        assert!(with_env.features.enabled(Feature::Ipc));

        let with_flag = resolve(&["--config", file_arg, "--listen", "127.0.0.1:7002"], &env)?;
        assert_eq!(with_flag.listen.value.port(), 7002);
        assert_eq!(with_flag.listen.source, Source::Flag("--listen"));
        Ok(())
    }

    #[test]
    fn bad_values_name_their_origin() {
        let err = resolve(&["--listen", "localhost"], &[("HOME", "/h")]).unwrap_err();
        assert!(err.to_string().contains("--listen"), "{err}");
        let err = resolve(&[], &[("HOME", "/h"), ("ROBIN_LISTEN", "nope")]).unwrap_err();
        assert!(err.to_string().contains("ROBIN_LISTEN"), "{err}");
        let err = resolve(&["--log-level", "loud"], &[("HOME", "/h")]).unwrap_err();
        assert!(err.to_string().contains("--log-level"), "{err}");
    }

    #[test]
    fn unknown_or_unparsable_feature_flags_are_errors() {
        let err = resolve(&[], &[("HOME", "/h"), ("ROBIN_FEATURE_WEBSOCKET", "true")]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("websocket") && text.contains("known flags: websockets"), "{text}");
        let err = resolve(&[], &[("HOME", "/h"), ("ROBIN_FEATURE_IPC", "maybe")]).unwrap_err();
        assert!(err.to_string().contains("ROBIN_FEATURE_IPC"), "{err}");
    }

    #[test]
    fn log_filters_accept_rust_log_syntax() {
        for ok in ["info", "robin=debug,warn", "robin::web", "DEBUG", "robin=trace/foo", ""] {
            assert!(validate_log_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["loud", "robin=verbose"] {
            assert!(validate_log_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn database_table_is_typed() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Usage(e.to_string()))?;
        let file = dir.path().join("robin.toml");
        std::fs::write(&file, "[database]\nreaders = 4\nsynchronous = \"full\"\n").unwrap();
        let config = resolve(&["--config", file.to_str().unwrap()], &[("HOME", "/h")])?;
        assert_eq!(config.database.readers, Some(4));
        assert_eq!(config.database.synchronous, Some(Synchronous::Full));
        std::fs::write(&file, "[database]\nsynchronous = \"sometimes\"\n").unwrap();
        let err = resolve(&["--config", file.to_str().unwrap()], &[("HOME", "/h")]).unwrap_err();
        assert!(robin_chain(&err).contains("sometimes"), "{}", robin_chain(&err));
        Ok(())
    }

    fn robin_chain(err: &Error) -> String {
        crate::error_chain(err)
    }

    #[test]
    fn render_is_valid_toml_that_reads_back() -> Result<()> {
        let config = resolve(&["--listen", "[::1]:0"], &[("HOME", "/h\"q")])?;
        let rendered = config.render();
        let parsed: FileConfig = toml::from_str(&rendered).expect("render must be TOML");
        assert_eq!(parsed.listen.as_deref(), Some("[::1]:0"));
        assert_eq!(parsed.data_dir, Some(PathBuf::from("/h\"q/.local/share/robin")));
        assert!(rendered.contains("# flag --listen"));
        Ok(())
    }
}
