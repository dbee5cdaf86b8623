//! Fan-out benchmark server: the real notifier broadcasting to N WebSocket clients.
//!
//! ```sh
//! cargo run --release --example ws_fanout -- --port P --clients N --messages M --size S [--rate R]
//! ```
//!
//! Listens on `ws://127.0.0.1:P/ws` and prints `READY` on stdout. Once N clients are connected
//! it broadcasts M `legacy` warnings whose value is `seq=<i> t=<ns since the Unix epoch at
//! send> <S bytes of padding>` (at R messages per second when `--rate` is given, else as fast
//! as the clients take them), then one whose value is `bench_done`, waits until every client
//! has left (at most 60 s: slow readers take what is still queued) and exits 1 s later. When
//! paced, it then prints `FANOUT {"p50_us": .., "p99_us": .., "max_us": ..}` on stdout: the
//! server's own share of the latency, from `t` to the moment every client's writer has run
//! (taken when the producer's `yield_now` returns, as the executor runs the woken writers
//! first). This
//! interface is how robin is compared with other implementations (bench/ws_fanout.py is the
//! Python peer): keep it exact.
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_io::Timer;
use robin::control::Controller;
use robin::notifier::{LegacyData, Limits, Message, Notifier, Verbosity};
use robin::runtime::Spawner;
use robin::server;

/// A `legacy` warning carrying `value`: the benchmark's message shape on both sides.
fn warning(value: String) -> Message {
    Message::Legacy(LegacyData { verbosity: Verbosity::Warning, value })
}

struct Options {
    port: u16,
    clients: usize,
    messages: u64,
    size: usize,
    rate: Option<f64>,
}

fn parse() -> Result<Options, lexopt::Error> {
    use lexopt::prelude::*;
    let mut opts = Options { port: 0, clients: 1, messages: 1000, size: 100, rate: None };
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("port") => opts.port = parser.value()?.parse()?,
            Long("clients") => opts.clients = parser.value()?.parse()?,
            Long("messages") => opts.messages = parser.value()?.parse()?,
            Long("size") => opts.size = parser.value()?.parse()?,
            Long("rate") => opts.rate = Some(parser.value()?.parse()?),
            other => return Err(other.unexpected()),
        }
    }
    Ok(opts)
}

fn main() {
    let opts = parse().unwrap_or_else(|err| {
        eprintln!("ws_fanout: {err}");
        std::process::exit(2);
    });
    let listener = std::net::TcpListener::bind(("127.0.0.1", opts.port)).expect("bind");
    let ex = Spawner::new();
    let notifier = Notifier::new(Limits::default());
    let tasks = robin::tasks::TaskManager::new(ex.clone(), Rc::new(|_| {}), Rc::new(|_| {}));
    let controller = Rc::new(Controller::new(
        robin::config::Features::defaults(),
        notifier.clone(),
        tasks.clone(),
        robin::control::Session::new(tasks),
    ));
    let server = server::Server::new(listener, controller, server::Limits::default()).expect("listener");
    let _serving = ex.spawn(server.serve());
    println!("READY");

    ex.block_on(async {
        while notifier.client_count() < opts.clients {
            Timer::after(Duration::from_millis(5)).await;
        }
        let pad = "x".repeat(opts.size);
        let started = Instant::now();
        let mut fanout_us = Vec::new();
        for seq in 0..opts.messages {
            if let Some(rate) = opts.rate {
                Timer::at(started + Duration::from_secs_f64(seq as f64 / rate)).await;
            }
            let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
            notifier.broadcast(&warning(format!("seq={seq} t={t} {pad}")));
            // Let the client writers run between bursts, as the daemon's bridge pump does
            // (robin::notifier::handle::BURST_BEFORE_YIELD); each writer then sends its burst in one writev.
            if opts.rate.is_some() || (seq + 1) % robin::notifier::handle::BURST_BEFORE_YIELD as u64 == 0 {
                futures_lite::future::yield_now().await;
            }
            if opts.rate.is_some() {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
                fanout_us.push(((now - t) / 1000) as u64);
            }
        }
        notifier.broadcast(&warning("bench_done".into()));
        let give_up = Instant::now() + Duration::from_secs(60);
        while notifier.client_count() > 0 && Instant::now() < give_up {
            Timer::after(Duration::from_millis(10)).await;
        }
        Timer::after(Duration::from_secs(1)).await;
        if !fanout_us.is_empty() {
            fanout_us.sort_unstable();
            let at = |p: f64| fanout_us[((fanout_us.len() as f64 * p) as usize).min(fanout_us.len() - 1)];
            println!(
                "FANOUT {{\"p50_us\": {}, \"p99_us\": {}, \"max_us\": {}}}",
                at(0.5),
                at(0.99),
                fanout_us[fanout_us.len() - 1]
            );
        }
    });
    let stats = notifier.stats();
    eprintln!("ws_fanout: done; notifier stats {}", stats.to_json());
}
