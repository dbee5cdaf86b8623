//! `robinctl`: the command-line client of robind's control socket.
//!
//! Exit status: 0 success, 1 the daemon refused or failed the command, 2 usage error,
//! 3 no daemon reachable, 4 a task run with `--wait` failed.
#![forbid(unsafe_code)]
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use robin::config::{Args, Config, Environment};
use robin::control::client::{Client, Error};
use serde_json::{Value, json};

const USAGE: &str = "\
robinctl: control a running robind

Usage: robinctl [--socket PATH] [--json] COMMAND [ARGS]

Commands:
  status                       version, uptime, endpoints, database, tasks, scheduler
  ping                         check that the daemon answers
  tasks                        running and recent tasks
  cancel ID | --prefix NAME    cancel a task, or every task whose name starts with NAME
  run JOB [--wait]             run a job now (e.g. db_backup); --wait shows progress
  messages                     errors and warnings that no UI has seen
  watch                        print notifications as they happen (Ctrl-C to stop)
  schedule on|off              turn the periodic scheduler on or off
  assets list|add ID|remove ID
  accounts list|add ADDRESS [--label TEXT]|remove ADDRESS
  settings [NAME [VALUE]]      show all settings, one, or change one
  backup PATH [--overwrite]    write a backup of the database to PATH (a new file,
                               unless --overwrite; never inside the data directory)
  unlock USER [--password-stdin]  open USER's encrypted database (asks for the password)
  logout                       close it and return to the default database
  snapshot                     the latest balance snapshot
  flags                        the feature flags

Options:
  --socket PATH   the control socket (default: where robind puts it, honouring
                  ROBIN_RUNTIME_DIR / ROBIN_DATA_DIR / XDG_RUNTIME_DIR)
  --json          print results as JSON, for scripts

Exit status: 0 ok, 1 the daemon refused the command, 2 usage, 3 no daemon, 4 task failed.
";

/// How a run ended, as an exit status.
enum Failure {
    Usage(String),
    Daemon(String),
    Unreachable(String),
    TaskFailed(String),
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        match err {
            Error::Connect { .. } => Failure::Unreachable(err.to_string()),
            other => Failure::Daemon(other.to_string()),
        }
    }
}

fn main() -> ExitCode {
    let (message, code) = match run() {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Daemon(m)) => (m, 1),
        Err(Failure::Usage(m)) => (format!("{m}\n\n{USAGE}"), 2),
        Err(Failure::Unreachable(m)) => (m, 3),
        Err(Failure::TaskFailed(m)) => (m, 4),
    };
    eprintln!("robinctl: {message}");
    ExitCode::from(code)
}

struct Options {
    socket: Option<PathBuf>,
    json: bool,
    words: Vec<String>,
}

fn parse() -> Result<Options, Failure> {
    use lexopt::prelude::*;
    let usage = |e: lexopt::Error| Failure::Usage(e.to_string());
    let mut opts = Options { socket: None, json: false, words: Vec::new() };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            Long("socket") => opts.socket = Some(parser.value().map_err(usage)?.into()),
            Long("json") => opts.json = true,
            Long("help") | Short('h') => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            Long("wait") => opts.words.push("--wait".into()),
            Long("password-stdin") => opts.words.push("--password-stdin".into()),
            Long("prefix") => opts.words.push("--prefix".into()),
            Long("overwrite") => opts.words.push("--overwrite".into()),
            Long("label") => {
                opts.words.push("--label".into());
                opts.words.push(parser.value().map_err(usage)?.string().map_err(usage)?);
            }
            Value(value) => opts.words.push(value.string().map_err(usage)?),
            other => return Err(Failure::Usage(other.unexpected().to_string())),
        }
    }
    Ok(opts)
}

fn run() -> Result<(), Failure> {
    let opts = parse()?;
    let socket = match &opts.socket {
        Some(path) => path.clone(),
        None => Config::resolve(&Args::default(), &Environment::from_process())
            .map_err(|e| Failure::Usage(e.to_string()))?
            .ipc_socket_path(),
    };
    let words: Vec<&str> = opts.words.iter().map(String::as_str).collect();
    let mut client = Client::connect(&socket)?;
    let (method, params) = match words.as_slice() {
        ["status"] => ("status", json!({})),
        ["ping"] => ("ping", json!({})),
        ["tasks"] => ("tasks.list", json!({})),
        ["messages"] => ("messages", json!({})),
        ["flags"] => ("flags", json!({})),
        ["cancel", "--prefix", prefix] => ("tasks.cancel", json!({ "name_prefix": prefix })),
        ["cancel", id] => {
            ("tasks.cancel", json!({ "id": id.parse::<u64>().map_err(|_| usage("ID is a task number"))? }))
        }
        ["schedule", "on"] => ("schedule", json!({ "enabled": true })),
        ["schedule", "off"] => ("schedule", json!({ "enabled": false })),
        ["assets", "list"] => ("assets.list", json!({})),
        ["assets", "add", id] => ("assets.add", json!({ "asset": id })),
        ["assets", "remove", id] => ("assets.remove", json!({ "asset": id })),
        ["accounts", "list"] => ("accounts.list", json!({})),
        ["accounts", "add", address] => ("accounts.add", json!({ "address": address })),
        ["accounts", "add", address, "--label", label] => {
            ("accounts.add", json!({ "address": address, "label": label }))
        }
        ["accounts", "remove", address] => ("accounts.remove", json!({ "address": address })),
        ["settings"] => ("settings.get", json!({})),
        ["settings", name] => ("settings.get", json!({ "name": name })),
        ["settings", name, value] => ("settings.set", json!({ "name": name, "value": value })),
        ["backup", path] | ["backup", path, "--overwrite"] | ["backup", "--overwrite", path] => {
            let path = std::path::absolute(path).map_err(|e| usage(&e.to_string()))?;
            ("backup", json!({ "path": path, "overwrite": words.contains(&"--overwrite") }))
        }
        ["run", job] => ("tasks.run", json!({ "job": job })),
        ["unlock", user] | ["unlock", user, "--password-stdin"] | ["unlock", "--password-stdin", user] => {
            let from_stdin = words.contains(&"--password-stdin");
            ("unlock", json!({ "username": user, "password": read_password(user, from_stdin)? }))
        }
        ["logout"] => ("logout", json!({})),
        ["snapshot"] => ("snapshot", json!({})),
        ["run", job, "--wait"] | ["run", "--wait", job] => {
            return run_and_wait(&mut client, &socket, job, opts.json);
        }
        ["watch"] => return watch(client, opts.json),
        [] => return Err(usage("no command given")),
        _ => return Err(usage(&format!("unknown command or arguments: {}", words.join(" ")))),
    };
    let result = client.call(method, params)?;
    if opts.json {
        println!("{result}");
    } else {
        print_human(method, &result);
    }
    Ok(())
}

/// The password, from the terminal without echo, or the first line of stdin for scripts.
fn read_password(user: &str, from_stdin: bool) -> Result<String, Failure> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| usage(&format!("cannot read the password: {e}")))?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        rpassword::prompt_password(format!("password for {user}: "))
            .map_err(|e| usage(&format!("cannot read the password ({e}); use --password-stdin")))?
    };
    if password.is_empty() {
        return Err(usage("the password may not be empty"));
    }
    Ok(password)
}

fn usage(message: &str) -> Failure {
    Failure::Usage(message.to_string())
}

/// `run JOB --wait`: starts the job, shows its progress, prints its outcome.
fn run_and_wait(
    client: &mut Client,
    socket: &std::path::Path,
    job: &str,
    json_out: bool,
) -> Result<(), Failure> {
    let started = client.call("tasks.run", json!({ "job": job }))?;
    let id = started["task_id"]
        .as_u64()
        .ok_or_else(|| Failure::Daemon(format!("unexpected answer: {started}")))?;
    // Progress comes on a second connection, subscribed to notifications.
    let mut feed = Client::connect(socket)?;
    feed.subscribe(None)?;
    let spinner = ProgressBar::new_spinner().with_message(format!("{job} (task {id})"));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        while let Ok(Some(message)) = feed.next_message() {
            if tx.send(message).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(24 * 3600);
    let outcome = loop {
        rx.try_iter().for_each(|message| show_progress(&spinner, &message));
        let result = client.call("tasks.result", json!({ "id": id }))?;
        if result["status"] == "completed" {
            break result["outcome"].clone();
        }
        if Instant::now() > deadline {
            return Err(Failure::TaskFailed(format!("task {id} did not finish within a day")));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    spinner.finish_and_clear();
    if json_out {
        println!("{outcome}");
    }
    match outcome["message"].as_str() {
        Some(message) if !message.is_empty() && outcome["result"].is_null() => {
            Err(Failure::TaskFailed(message.to_string()))
        }
        _ => {
            if !json_out {
                println!("{job} (task {id}) completed: {}", outcome["result"]);
            }
            Ok(())
        }
    }
}

/// Moves the bar for a `progress_updates` message; once the job says how much there is, the
/// spinner becomes a bar.
fn show_progress(spinner: &ProgressBar, message: &Value) {
    if message["type"] != "progress_updates" {
        return;
    }
    if let (Some(done), Some(total)) =
        (message["data"]["processed"].as_u64(), message["data"]["total"].as_u64())
    {
        if spinner.length() != Some(total) {
            spinner.set_style(bar_style());
            spinner.set_length(total);
        }
        spinner.set_position(done);
    }
}

/// `watch`: one line per notification; progress updates as bars.
fn watch(mut client: Client, json_out: bool) -> Result<(), Failure> {
    client.subscribe(None)?;
    client.wait_forever()?;
    let bars = MultiProgress::new();
    let mut by_subtype: HashMap<String, ProgressBar> = HashMap::new();
    let style = bar_style();
    while let Some(message) = client.next_message()? {
        if json_out {
            println!("{message}");
            continue;
        }
        if message["type"] == "progress_updates" {
            let subtype = message["data"]["subtype"].as_str().unwrap_or("progress").to_string();
            let bar = by_subtype.entry(subtype.clone()).or_insert_with(|| {
                bars.add(ProgressBar::new(0).with_style(style.clone()).with_message(subtype))
            });
            bar.set_length(message["data"]["total"].as_u64().unwrap_or(0));
            bar.set_position(message["data"]["processed"].as_u64().unwrap_or(0));
            continue;
        }
        let seq = message["seq"].as_u64().map(|s| format!("#{s} ")).unwrap_or_default();
        let _ =
            bars.println(format!("{seq}{}: {}", message["type"].as_str().unwrap_or("?"), message["data"]));
    }
    Ok(())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg:28} [{bar:30}] {pos}/{len}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn print_human(method: &str, result: &Value) {
    match (method, result) {
        ("ping", Value::Bool(true)) => println!("pong"),
        ("tasks.list", _) => print_tasks(result),
        ("status", _) => {
            for key in ["version", "pid", "uptime_secs", "http", "ipc"] {
                println!("{key:<14} {}", plain(&result[key]));
            }
            println!("{:<14} {}", "database", plain(&result["database"]["path"]));
            println!("{:<14} {}", "ws clients", plain(&result["notifier"]["clients"]));
            println!("{:<14} {}", "scheduling", plain(&result["scheduler"]["should_schedule"]));
            print_tasks(&result["tasks"]);
        }
        ("messages", _) => {
            for (kind, key) in [("error", "errors"), ("warning", "warnings")] {
                for text in result[key].as_array().into_iter().flatten() {
                    println!("{kind}: {}", plain(text));
                }
            }
        }
        ("assets.list", Value::Array(items)) => items.iter().for_each(|a| println!("{}", plain(a))),
        ("accounts.list", Value::Array(items)) => {
            for account in items {
                println!(
                    "{:<5} {}  {}",
                    plain(&account["chain"]),
                    plain(&account["address"]),
                    plain(&account["label"])
                );
            }
        }
        (_, Value::Object(map)) => {
            for (key, value) in map {
                println!("{key:<22} {}", plain(value));
            }
        }
        (_, other) => println!("{}", plain(other)),
    }
}

fn print_tasks(tasks: &Value) {
    println!("{:>6}  {:<32} {:>10}", "ID", "RUNNING", "AGE");
    for task in tasks["running"].as_array().into_iter().flatten() {
        println!(
            "{:>6}  {:<32} {:>9}s",
            plain(&task["id"]),
            plain(&task["name"]),
            task["age_ms"].as_u64().unwrap_or(0) / 1000
        );
    }
    println!("{:>6}  {:<32} {:>10}", "ID", "RECENT", "RESULT");
    for task in tasks["recent"].as_array().into_iter().flatten().rev().take(10) {
        println!("{:>6}  {:<32} {:>10}", plain(&task["id"]), plain(&task["name"]), plain(&task["result"]));
    }
}

/// A JSON value as a person reads it: strings without quotes, null as "-".
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}
