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
  assets list|remove ID
  assets add ID [--symbol S]   track an asset by its price id (bitcoin), or an ERC-20 token:
  assets add eip155:1/erc20:CONTRACT --decimals N [--symbol S] [--price-id ID]
  accounts list|add ADDRESS [--label TEXT]|remove ADDRESS
  settings [NAME [VALUE]]      show all settings, one, or change one
  backup PATH [--overwrite]    write a backup of the database to PATH (a new file,
                               unless --overwrite; never inside the data directory)
  unlock USER [--password-stdin]  open USER's encrypted database (asks for the password)
  logout                       close it and return to the default database
  snapshot                     the latest balance snapshot: asset, amount, price, value, share
  history [--limit N]          the net value over time (and a sparkline on a terminal)
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
            Long(name @ ("label" | "decimals" | "symbol" | "price-id" | "limit")) => {
                opts.words.push(format!("--{name}"));
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
        ["assets", "list"] => ("assets.list", json!({ "details": true })),
        ["assets", "add", id, options @ ..] => ("assets.add", asset_params(id, options)?),
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
        ["history"] => ("snapshots", json!({})),
        ["history", "--limit", n] => {
            ("snapshots", json!({ "limit": n.parse::<u64>().map_err(|_| usage("--limit takes a number"))? }))
        }
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

/// `assets add ID [--decimals N] [--symbol S] [--price-id P]` as the command's params.
fn asset_params(id: &str, options: &[&str]) -> Result<Value, Failure> {
    let mut params = json!({ "asset": id });
    for pair in options.chunks(2) {
        match pair {
            ["--decimals", n] => {
                params["decimals"] = json!(n.parse::<u64>().map_err(|_| usage("--decimals takes a number"))?)
            }
            ["--symbol", symbol] => params["symbol"] = json!(symbol),
            ["--price-id", id] => params["price_id"] = json!(id),
            _ => return Err(usage(&format!("assets add: unexpected {}", pair.join(" ")))),
        }
    }
    Ok(params)
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
        ("assets.list", Value::Array(items)) => print_assets(items),
        ("snapshot", _) => print_snapshot(result),
        ("snapshots", Value::Array(items)) => print_history(items),
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

/// One asset per line: its id, then a token's symbol, decimals and price id.
fn print_assets(items: &[Value]) {
    for asset in items {
        let mut line = plain(&asset["asset"]);
        for (key, label) in [("symbol", ""), ("decimals", "decimals "), ("price_id", "priced as ")] {
            if !asset[key].is_null() {
                line.push_str(&format!("  {label}{}", plain(&asset[key])));
            }
        }
        println!("{line}");
    }
}

/// The latest snapshot as a table: asset, amount, price, value and share of the total.
fn print_snapshot(snapshot: &Value) {
    if snapshot["id"].is_null() {
        println!(
            "no snapshot yet: track an account (robinctl accounts add ADDRESS), set rpc_url, then run query_balances"
        );
        return;
    }
    let currency = plain(&snapshot["currency"]);
    let total: f64 = plain(&snapshot["total"]).parse().unwrap_or(0.0);
    println!(
        "snapshot {} at {} ({currency})",
        plain(&snapshot["id"]),
        utc(snapshot["time"].as_i64().unwrap_or(0))
    );
    println!("{:<12} {:>22} {:>14} {:>16} {:>7}", "ASSET", "AMOUNT", "PRICE", "VALUE", "SHARE");
    for entry in snapshot["entries"].as_array().into_iter().flatten() {
        let name =
            entry["symbol"].as_str().map_or_else(|| short_asset(&plain(&entry["asset"])), str::to_string);
        // The share is for reading only: the exact figures are the strings beside it.
        let share = match plain(&entry["value"]).parse::<f64>() {
            Ok(value) if total > 0.0 => format!("{:.1}%", value / total * 100.0),
            _ => "-".to_string(),
        };
        let price = if entry["price"].is_null() { "no price".to_string() } else { plain(&entry["price"]) };
        println!(
            "{name:<12} {:>22} {price:>14} {:>16} {share:>7}",
            plain(&entry["amount"]),
            plain(&entry["value"])
        );
    }
    println!("{:<12} {:>22} {:>14} {:>16}", "TOTAL", "", "", plain(&snapshot["total"]));
}

/// A token's identifier cut to its contract's start, for a table column.
fn short_asset(asset: &str) -> String {
    match asset.strip_prefix("eip155:1/erc20:") {
        Some(contract) => format!("{}…", &contract[..contract.len().min(10)]),
        None => asset.to_string(),
    }
}

/// The net value over time, oldest first, with a sparkline when a person is watching.
fn print_history(items: &[Value]) {
    if items.is_empty() {
        println!("no snapshots yet");
        return;
    }
    println!("{:<20} {:>18} {:<5}", "TIME (UTC)", "NET VALUE", "");
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        let total = plain(&item["total"]);
        values.push(total.parse::<f64>().unwrap_or(0.0));
        println!("{:<20} {total:>18} {}", utc(item["time"].as_i64().unwrap_or(0)), plain(&item["currency"]));
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        println!("{}", sparkline(&values));
    }
}

/// Values as a one-line chart of block characters, lowest to highest.
fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let (low, high) = values.iter().fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    let span = high - low;
    values
        .iter()
        .map(|v| if span > 0.0 { BARS[(((v - low) / span) * 7.0).round() as usize] } else { BARS[3] })
        .collect()
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` in UTC.
fn utc(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = robin::logging::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_sparklines_read_right() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(sparkline(&[1.0, 8.0, 4.5]), "▁█▅");
        assert_eq!(sparkline(&[5.0, 5.0]), "▄▄");
    }
}
