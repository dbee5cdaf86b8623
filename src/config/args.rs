//! The low-level command line: what the user typed, checked only for shape.
//!
//! Values stay as strings here; [`super::Config::resolve`] validates them so that an error can
//! name the flag, variable or file line the bad value came from.
use std::ffi::OsString;
use std::path::PathBuf;

use super::Error;

/// What `robind` was asked to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Run the daemon.
    #[default]
    Run,
    /// Print the effective configuration with the source of each value, then exit.
    PrintConfig,
    /// Print usage, then exit.
    Help,
    /// Print the version, then exit.
    Version,
}

/// The flags as typed; `None` means "not given on the command line".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args {
    /// What to do.
    pub mode: Mode,
    /// `--listen ADDR`.
    pub listen: Option<String>,
    /// `--data-dir DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--runtime-dir DIR`.
    pub runtime_dir: Option<PathBuf>,
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--log-level FILTER`.
    pub log_level: Option<String>,
    /// `--ws-origin ORIGIN`, repeatable.
    pub ws_origins: Vec<String>,
    /// `--api-token-file FILE`.
    pub api_token_file: Option<PathBuf>,
    /// `--generate-api-token`.
    pub generate_api_token: bool,
    /// `--exit-with-parent`.
    pub exit_with_parent: bool,
    /// `--stdin-lifeline`.
    pub stdin_lifeline: bool,
    /// `--attach-existing`.
    pub attach_existing: bool,
}

/// The text `robind --help` prints.
pub const USAGE: &str = "\
robind: the robin daemon (portfolio tracker backend)

Usage: robind [OPTIONS]

Options (each also read from the environment variable shown):
  --listen ADDR        HTTP/WebSocket listener, IP:PORT; port 0 picks a free port   [ROBIN_LISTEN]
                       (default 127.0.0.1:5042)
  --data-dir DIR       where the database and the lock live                         [ROBIN_DATA_DIR]
                       (default $XDG_DATA_HOME/robin or ~/.local/share/robin)
  --runtime-dir DIR    where the control socket lives                               [ROBIN_RUNTIME_DIR]
                       (default $XDG_RUNTIME_DIR/robin, or DATA_DIR/run)
  --config FILE        optional TOML configuration file                             [ROBIN_CONFIG]
  --log-level FILTER   error, warn, info, debug, trace, or RUST_LOG syntax          [ROBIN_LOG, RUST_LOG]
  --ws-origin ORIGIN   allow pages from ORIGIN; * matches any run of characters (a port  [ROBIN_WS_ORIGINS]
                       after a final colon: http://localhost:*); a page on this host counts
                       only while robind's user serves its port (repeatable; default
                       app://localhost, rotki's app)
  --api-token-file F   require the token in file F on /ws and /api/1/*                   [ROBIN_API_TOKEN_FILE]
  --generate-api-token write a fresh token to RUNTIME_DIR/api-token (0600) and require it [ROBIN_GENERATE_API_TOKEN]

As an app's companion process (all off by default, and in the systemd units):
  --exit-with-parent   shut down gracefully when the process that started robind dies  [ROBIN_EXIT_WITH_PARENT]
  --stdin-lifeline     shut down gracefully when standard input reaches end of file    [ROBIN_STDIN_LIFELINE]
  --attach-existing    if a healthy robind already serves DATA_DIR, print its ready line [ROBIN_ATTACH_EXISTING]
                       and exit 0 (implied by the two above); see docs/companion.md

  --print-config       print the effective configuration and where each value came from
  --version            print the version
  --help               print this help

Feature flags: ROBIN_FEATURE_<NAME>=true|false, or a [features] table in the config file.
Precedence: flags > ROBIN_* environment > config file > defaults.
When ready, robind prints one JSON line on stdout saying where it listens, and sends READY=1
to $NOTIFY_SOCKET when set.
";

impl Args {
    /// Parses the command line, without the program name.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Args, Error> {
        use lexopt::prelude::*;

        let mut parsed = Args::default();
        let mut parser = lexopt::Parser::from_args(args);
        while let Some(arg) = parser.next().map_err(usage)? {
            match arg {
                Long("listen") => parsed.listen = Some(string_value(&mut parser, "--listen")?),
                Long("data-dir") => parsed.data_dir = Some(parser.value().map_err(usage)?.into()),
                Long("runtime-dir") => parsed.runtime_dir = Some(parser.value().map_err(usage)?.into()),
                Long("config") => parsed.config = Some(parser.value().map_err(usage)?.into()),
                Long("log-level") => parsed.log_level = Some(string_value(&mut parser, "--log-level")?),
                Long("ws-origin") => parsed.ws_origins.push(string_value(&mut parser, "--ws-origin")?),
                Long("api-token-file") => parsed.api_token_file = Some(parser.value().map_err(usage)?.into()),
                Long("generate-api-token") => parsed.generate_api_token = true,
                Long("exit-with-parent") => parsed.exit_with_parent = true,
                Long("stdin-lifeline") => parsed.stdin_lifeline = true,
                Long("attach-existing") => parsed.attach_existing = true,
                Long("print-config") => parsed.mode = Mode::PrintConfig,
                Long("version") | Short('V') => parsed.mode = Mode::Version,
                Long("help") | Short('h') => parsed.mode = Mode::Help,
                other => return Err(usage(other.unexpected())),
            }
        }
        Ok(parsed)
    }
}

fn string_value(parser: &mut lexopt::Parser, flag: &'static str) -> Result<String, Error> {
    let value = parser.value().map_err(usage)?;
    value.into_string().map_err(|raw| Error::InvalidValue {
        origin: flag.to_string(),
        value: raw.to_string_lossy().into_owned(),
        reason: "not valid UTF-8".to_string(),
    })
}

fn usage(err: lexopt::Error) -> Error {
    Error::Usage(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, Error> {
        Args::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn flags_are_collected_as_typed() -> Result<(), Error> {
        let args = parse(&["--listen", "127.0.0.1:0", "--data-dir=/tmp/d", "--print-config"])?;
        assert_eq!(args.listen.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(args.data_dir, Some(PathBuf::from("/tmp/d")));
        assert_eq!(args.mode, Mode::PrintConfig);
        Ok(())
    }

    #[test]
    fn unknown_flag_is_a_usage_error_naming_it() {
        let err = parse(&["--lisen", "x"]).unwrap_err();
        assert!(err.to_string().contains("--lisen"), "{err}");
    }

    #[test]
    fn missing_value_names_the_flag() {
        let err = parse(&["--listen"]).unwrap_err();
        assert!(err.to_string().contains("--listen"), "{err}");
    }
}
