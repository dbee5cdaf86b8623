#!/usr/bin/env python3
"""Runs the task benchmark for robin and the asyncio peers and prints the results.

Usage: bench/tasks_report.py [--runs 5]   (needs cargo build --release --examples)
Each measurement runs in a fresh process; throughput is reported as the median of the runs
with the range, and the ratio is computed run by run (robin's run i against the peer's run i,
interleaved so that both see the same machine).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROBIN = [os.path.join(ROOT, "target/release/examples/tasks_bench")]
PYTHON = [sys.executable, os.path.join(ROOT, "bench/tasks_bench.py")]


def run(command, mode):
    out = subprocess.run(command + ["--mode", mode], capture_output=True, text=True, check=True, timeout=600).stdout
    return [json.loads(line) for line in out.splitlines()]


def main(runs):
    robin, fair, gather = [], [], []
    for _ in range(runs):
        robin.append(run(ROBIN, "throughput")[0]["per_second"])
        fair.append(run(PYTHON, "throughput")[0]["per_second"])
        gather.append(run(PYTHON, "throughput_gather")[0]["per_second"])
    ratios = [r / p for r, p in zip(robin, fair)]
    print(f"tracked spawn+complete, 100000 tasks, {runs} runs (median [min-max]):")
    print(f"  robin               {statistics.median(robin):>11,.0f}/s [{min(robin):,.0f}-{max(robin):,.0f}]")
    print(f"  asyncio, Event wait {statistics.median(fair):>11,.0f}/s [{min(fair):,.0f}-{max(fair):,.0f}]  "
          f"(the fair peer: it waits as robin does)")
    print(f"  asyncio, re-gather  {statistics.median(gather):>11,.0f}/s [{min(gather):,.0f}-{max(gather):,.0f}]  "
          f"(the first round's peer; does more work)")
    print(f"  robin / fair peer: median {statistics.median(ratios):.1f}x, every run [{min(ratios):.1f}-{max(ratios):.1f}x] "
          f"(target >= 20 in every run)")
    memory = run(ROBIN, "memory")
    by = {r["work"]: r for r in memory}
    tasks_peer, call_later = run(PYTHON, "memory")[0], run(PYTHON, "memory_call_later")[0]
    pending = by["pending_delayed"]
    print(f"{pending['tasks']} pending delayed tasks (1 hour), resident memory:")
    print(f"  robin                        {pending['bytes_per_task']:>6.0f} B/task, RSS {pending['rss_kib'] / 1024:.1f} MiB "
          f"(target < 40 MiB)")
    print(f"  asyncio, call_later handles  {call_later['bytes_per_task']:>6.0f} B/task, RSS {call_later['rss_kib'] / 1024:.1f} MiB "
          f"(the same strategy as robin's)")
    print(f"  asyncio, sleeping Tasks      {tasks_peer['bytes_per_task']:>6.0f} B/task, RSS {tasks_peer['rss_kib'] / 1024:.1f} MiB")
    print(f"robin CPU while they wait: {by['idle_cpu_ticks_per_second_with_pending']['ticks']} clock ticks in 1 s")
    print(json.dumps({"robin": robin, "fair": fair, "gather": gather, "memory": memory,
                      "python_memory": [tasks_peer, call_later]}), file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    main(parser.parse_args().runs)
