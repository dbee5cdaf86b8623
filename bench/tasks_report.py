#!/usr/bin/env python3
"""Runs the task benchmark for robin and the asyncio peer and prints a table.

Usage: bench/tasks_report.py   (needs cargo build --release --examples)
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
rows = []
for command in ([os.path.join(ROOT, "target/release/examples/tasks_bench")],
                [sys.executable, os.path.join(ROOT, "bench/tasks_bench.py")]):
    for mode in ("throughput", "memory"):
        out = subprocess.run(command + ["--mode", mode], capture_output=True, text=True, check=True,
                             timeout=600).stdout
        rows += [json.loads(line) for line in out.splitlines()]
by = {(r["implementation"], r["work"]): r for r in rows}
robin, python = by[("robin", "spawn_complete")], by[("python_asyncio", "spawn_complete")]
print(f"tracked spawn+complete, {robin['tasks']} tasks: robin {robin['per_second']:,.0f}/s, "
      f"asyncio {python['per_second']:,.0f}/s = {robin['per_second'] / python['per_second']:.1f}x (target >= 20)")
robin, python = by[("robin", "pending_delayed")], by[("python_asyncio", "pending_delayed")]
print(f"{robin['tasks']} pending delayed tasks: robin {robin['bytes_per_task']:.0f} B/task, RSS "
      f"{robin['rss_kib'] / 1024:.1f} MiB (target < 40); asyncio {python['bytes_per_task']:.0f} B/task, "
      f"RSS {python['rss_kib'] / 1024:.1f} MiB")
idle = by[("robin", "idle_cpu_ticks_per_second_with_pending")]
print(f"robin CPU while they wait: {idle['ticks']} clock ticks in 1 s")
print(json.dumps(rows), file=sys.stderr)
