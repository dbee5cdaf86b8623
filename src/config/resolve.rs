//! Resolving flags over environment over file over defaults into a [`Config`].
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::file::{FileConfig, read_file};
use super::{
    APP_DIR, Args, Config, DEFAULT_LISTEN, DEFAULT_LOG_LEVEL, DEFAULT_WS_ORIGINS, ENV_API_TOKEN_FILE,
    ENV_ATTACH_EXISTING, ENV_CONFIG, ENV_DATA_DIR, ENV_EXIT_WITH_PARENT, ENV_GENERATE_API_TOKEN, ENV_LISTEN,
    ENV_LOG, ENV_RUNTIME_DIR, ENV_RUST_LOG, ENV_STDIN_LIFELINE, ENV_WS_ORIGINS, Environment, Error, Feature,
    Features, Result, Setting, Source, features, tables,
};

impl Config {
    /// Resolves flags over environment over file over defaults, reading the config file if one
    /// is named. This is the only step that does I/O.
    pub fn resolve(args: &Args, env: &Environment) -> Result<Config> {
        let config_file = pick_path(args.config.clone(), "--config", env, ENV_CONFIG, None);
        let file = match &config_file {
            Some(setting) => read_file(&setting.value)?,
            None => FileConfig::default(),
        };
        let layers = Layers { args, env, config_file: &config_file };
        let file_path = config_file.as_ref().map(|s| s.value.as_path());

        let data_dir = match layers.path(args.data_dir.clone(), "--data-dir", ENV_DATA_DIR, file.data_dir) {
            Some(setting) => setting,
            None => Setting { value: default_data_dir(env)?, source: Source::Default },
        };
        let runtime_dir =
            match layers.path(args.runtime_dir.clone(), "--runtime-dir", ENV_RUNTIME_DIR, file.runtime_dir) {
                Some(setting) => setting,
                None => Setting { value: default_runtime_dir(env, &data_dir.value), source: Source::Default },
            };
        Ok(Config {
            mode: args.mode,
            args: args.clone(),
            listen: layers.listen(file.listen.as_deref())?,
            data_dir,
            runtime_dir,
            log_level: pick_log_level(args, env, file.log_level, &config_file)?,
            ws_origins: layers.origins(file.ws_origins)?,
            ipc_allow_uids: file.ipc_allow_uids.unwrap_or_default(),
            api_token_file: layers.path(
                args.api_token_file.clone(),
                "--api-token-file",
                ENV_API_TOKEN_FILE,
                file.api_token_file,
            ),
            generate_api_token: layers.switch(
                args.generate_api_token,
                "--generate-api-token",
                ENV_GENERATE_API_TOKEN,
                file.generate_api_token,
            )?,
            // A launch's relation to its parent is not a property of the installation: these
            // come from the command line or the environment, never from a shared config file.
            exit_with_parent: layers.switch(
                args.exit_with_parent,
                "--exit-with-parent",
                ENV_EXIT_WITH_PARENT,
                None,
            )?,
            stdin_lifeline: layers.switch(
                args.stdin_lifeline,
                "--stdin-lifeline",
                ENV_STDIN_LIFELINE,
                None,
            )?,
            attach_existing: layers.switch(
                args.attach_existing,
                "--attach-existing",
                ENV_ATTACH_EXISTING,
                None,
            )?,
            notifier: tables::notifier_limits(&file.websocket, file_path)?,
            database: tables::database_options(&file.database, file_path)?,
            backups: tables::backup_policy(&file.database, file_path)?,
            scheduler: tables::scheduler_options(&file.scheduler, file_path)?,
            outbound: tables::outbound_settings(&file.http, file_path)?,
            features: layers.features(&file.features)?,
            config_file,
        })
    }
}

/// The layers a value can come from, and how to name each in messages.
struct Layers<'a> {
    args: &'a Args,
    env: &'a Environment,
    config_file: &'a Option<Setting<PathBuf>>,
}

impl Layers<'_> {
    fn file_source(&self) -> Source {
        Source::File(self.config_file.as_ref().map(|s| s.value.clone()).unwrap_or_default())
    }

    /// A path from the flag, the variable or the file (relative to the file's directory).
    fn path(
        &self,
        flag: Option<PathBuf>,
        name: &'static str,
        var: &str,
        file: Option<PathBuf>,
    ) -> Option<Setting<PathBuf>> {
        let file_dir = self.config_file.as_ref().and_then(|s| s.value.parent());
        let in_file_dir = |p: PathBuf| match file_dir {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p,
        };
        pick_path(flag, name, self.env, var, file.map(|p| (in_file_dir(p), self.file_source())))
    }

    fn listen(&self, file: Option<&str>) -> Result<Setting<SocketAddr>> {
        match (&self.args.listen, self.env.get_str(ENV_LISTEN)?, file) {
            (Some(raw), _, _) => parse_listen(raw, "--listen", Source::Flag("--listen")),
            (None, Some(raw), _) => parse_listen(raw, ENV_LISTEN, Source::Env(ENV_LISTEN.into())),
            (None, None, Some(raw)) => {
                parse_listen(raw, &file_key("listen", self.config_file), self.file_source())
            }
            (None, None, None) => parse_listen(DEFAULT_LISTEN, "default", Source::Default),
        }
    }

    fn origins(&self, file: Option<Vec<String>>) -> Result<Setting<Vec<String>>> {
        Ok(if !self.args.ws_origins.is_empty() {
            Setting { value: self.args.ws_origins.clone(), source: Source::Flag("--ws-origin") }
        } else if let Some(raw) = self.env.get_str(ENV_WS_ORIGINS)? {
            let value = raw.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_string).collect();
            Setting { value, source: Source::Env(ENV_WS_ORIGINS.into()) }
        } else if let Some(value) = file {
            Setting { value, source: self.file_source() }
        } else {
            let value = DEFAULT_WS_ORIGINS.iter().map(|o| o.to_string()).collect();
            Setting { value, source: Source::Default }
        })
    }

    /// An on/off switch: the flag turns it on; else the variable, else the file, else off.
    fn switch(
        &self,
        flag: bool,
        name: &'static str,
        var: &'static str,
        file: Option<bool>,
    ) -> Result<Setting<bool>> {
        Ok(if flag {
            Setting { value: true, source: Source::Flag(name) }
        } else if let Some(raw) = self.env.get_str(var)? {
            let value = features::parse_bool(raw).ok_or_else(|| Error::InvalidValue {
                origin: var.into(),
                value: raw.into(),
                reason: "expected true or false".into(),
            })?;
            Setting { value, source: Source::Env(var.into()) }
        } else if let Some(value) = file {
            Setting { value, source: self.file_source() }
        } else {
            Setting { value: false, source: Source::Default }
        })
    }

    fn features(&self, file: &std::collections::BTreeMap<String, bool>) -> Result<Features> {
        let mut features = Features::defaults();
        for (name, value) in file {
            let origin = file_key(&format!("features.{name}"), self.config_file);
            let feature = Feature::from_name(name).ok_or_else(|| unknown_feature(name, origin))?;
            features.set(feature, *value, self.file_source());
        }
        apply_feature_env(&mut features, self.env)?;
        Ok(features)
    }
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
            // A bare module path such as `robin::server` means "everything from it". A bare word
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

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
        for ok in ["info", "robin=debug,warn", "robin::server", "DEBUG", "robin=trace/foo", ""] {
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
        assert_eq!(config.database.readers, 4);
        assert_eq!(config.database.synchronous, crate::db::Synchronous::Full);
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
