//! `robind`: the robin daemon. All the work is in the library; see `robin::daemon`.
#![forbid(unsafe_code)]
use std::process::ExitCode;

use robin::config::{Args, Config, Environment, Mode, USAGE};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { error, status }) => {
            eprintln!("robind: error: {}", robin::error_chain(&*error));
            ExitCode::from(status)
        }
    }
}

/// An error and the exit status it maps to: 2 for bad configuration, 1 for everything else.
struct Failure {
    error: Box<dyn std::error::Error>,
    status: u8,
}

fn run() -> Result<(), Failure> {
    let usage = |error: robin::config::Error| Failure { error: error.into(), status: 2 };
    let args = Args::parse(std::env::args_os().skip(1)).map_err(usage)?;
    match args.mode {
        Mode::Help => {
            print!("{USAGE}");
            return Ok(());
        }
        Mode::Version => {
            println!("robind {}", robin::VERSION);
            return Ok(());
        }
        Mode::Run | Mode::PrintConfig => {}
    }
    let env = Environment::from_process();
    let config = Config::resolve(&args, &env).map_err(usage)?;
    if config.mode == Mode::PrintConfig {
        print!("{}", config.render());
        return Ok(());
    }
    robin::logging::init(&config.log_level.value, robin::logging::style_from_env());
    robin::daemon::run(config, &env).map_err(|error| Failure { error: error.into(), status: 1 })
}
