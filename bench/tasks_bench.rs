//! Task tracker benchmark: tracked spawn+complete throughput on the loop thread, and memory
//! per pending delayed task (bench/tasks_bench.py is the asyncio peer).
//!
//! ```sh
//! cargo run --release --example tasks_bench -- [--tasks 100000]
//! ```
use std::rc::Rc;
use std::time::{Duration, Instant};

use robin::runtime::Spawner;
use robin::tasks::{SpawnOptions, TaskManager};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn main() {
    let (mut tasks_n, mut mode) = (100_000u64, String::from("throughput"));
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--tasks" => tasks_n = args.next().and_then(|v| v.parse().ok()).expect("--tasks N"),
            // Each mode runs in a fresh process: memory freed by one would flatter the other.
            "--mode" => mode = args.next().expect("--mode throughput|memory"),
            other => panic!("unknown flag {other}"),
        }
    }
    let ex = Spawner::new();
    let tasks = TaskManager::new(ex.clone(), Rc::new(|_| {}), Rc::new(|_| {}));
    if mode == "memory" {
        return memory(&ex, &tasks, tasks_n);
    }

    // Throughput: spawn N tracked tasks that complete at once, and wait for all of them.
    let started = Instant::now();
    ex.block_on(async {
        for i in 0..tasks_n {
            tasks.spawn_and_track("bench", async move { Ok::<_, String>(i) }, SpawnOptions::default());
        }
        assert!(tasks.wait_for_all(Duration::from_secs(120)).await);
    });
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"implementation": "robin", "work": "spawn_complete", "tasks": tasks_n,
                           "seconds": seconds, "per_second": tasks_n as f64 / seconds})
    );
}

/// N tasks waiting on a one-hour delay: resident memory, and CPU while they wait.
fn memory(ex: &Spawner, tasks: &TaskManager, tasks_n: u64) {
    let before = rss_kib();
    ex.block_on(async {
        let hour = SpawnOptions { delay: Some(Duration::from_secs(3600)), ..SpawnOptions::default() };
        for _ in 0..tasks_n {
            tasks.spawn_and_track("delayed", async { Ok::<_, String>(()) }, hour.clone());
        }
        // The same 200 ms the peers wait, so the delay driver has armed its one timer and any
        // allocation it makes is counted.
        async_io::Timer::after(Duration::from_millis(200)).await;
    });
    let after = rss_kib();
    assert_eq!(tasks.count() as u64, tasks_n);
    println!(
        "{}",
        serde_json::json!({"implementation": "robin", "work": "pending_delayed", "tasks": tasks_n,
                           "rss_kib": after, "bytes_per_task": ((after - before) * 1024) as f64 / tasks_n as f64})
    );
    let cpu_before = std::fs::read_to_string("/proc/self/stat").unwrap();
    ex.block_on(async_io::Timer::after(Duration::from_secs(1)));
    let cpu_after = std::fs::read_to_string("/proc/self/stat").unwrap();
    let ticks = |stat: &str| -> u64 {
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    println!(
        "{}",
        serde_json::json!({"implementation": "robin", "work": "idle_cpu_ticks_per_second_with_pending",
                           "ticks": ticks(&cpu_after) - ticks(&cpu_before)})
    );
}
