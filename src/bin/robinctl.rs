//! `robinctl`: the command-line client of robind's control socket.
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use robin::config::{Args, Config, Environment};
use serde_json::{Value, json};

const USAGE: &str = "\
robinctl: control a running robind

Usage: robinctl [--socket PATH] [--json] COMMAND

Commands:
  ping      check that the daemon answers
  status    version, uptime, endpoints and feature flags

Options:
  --socket PATH   the control socket (default: the one robind would use, honouring
                  --runtime-dir / ROBIN_RUNTIME_DIR / ROBIN_DATA_DIR / XDG_RUNTIME_DIR)
  --json          print the raw JSON result
";

/// How long to wait for the daemon's answer before giving up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("robinctl: error: {message}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<ExitCode, String> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_env();
    let (mut socket, mut raw_json, mut command) = (None::<PathBuf>, false, None::<String>);
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("socket") => socket = Some(parser.value().map_err(|e| e.to_string())?.into()),
            Long("json") => raw_json = true,
            Long("help") | Short('h') => {
                print!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            Value(value) if command.is_none() => command = Some(value.string().map_err(|e| e.to_string())?),
            other => return Err(other.unexpected().to_string()),
        }
    }
    let Some(method) = command else {
        eprint!("{USAGE}");
        return Ok(ExitCode::from(2));
    };
    let socket = match socket {
        Some(path) => path,
        None => {
            let config =
                Config::resolve(&Args::default(), &Environment::from_process()).map_err(|e| e.to_string())?;
            config.ipc_socket_path()
        }
    };
    let reply = call(&socket, &method)?;
    if let Some(error) = reply.get("error") {
        return Err(error["message"].as_str().unwrap_or("unknown error").to_string());
    }
    let result = &reply["result"];
    if raw_json {
        println!("{result}");
    } else {
        print_human(&method, result);
    }
    Ok(ExitCode::SUCCESS)
}

fn call(socket: &PathBuf, method: &str) -> Result<Value, String> {
    let stream = UnixStream::connect(socket)
        .map_err(|e| format!("cannot connect to {} ({e}); is robind running?", socket.display()))?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(|e| e.to_string())?;
    let mut request = json!({ "id": 1, "method": method }).to_string();
    request.push('\n');
    (&stream).write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).map_err(|e| format!("no reply from robind: {e}"))?;
    serde_json::from_str(&line).map_err(|e| format!("unreadable reply from robind: {e}"))
}

fn print_human(method: &str, result: &Value) {
    match (method, result) {
        ("ping", Value::Bool(true)) => println!("pong"),
        (_, Value::Object(map)) => {
            for (key, value) in map {
                match value {
                    Value::String(s) => println!("{key:<12} {s}"),
                    other => println!("{key:<12} {other}"),
                }
            }
        }
        (_, other) => println!("{other}"),
    }
}
