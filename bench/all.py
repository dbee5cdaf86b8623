#!/usr/bin/env python3
"""Every robin benchmark in one run, on this machine, as one Markdown report.

Usage: bench/all.py > bench/RESULTS.md
Builds the release binaries and examples, prepares tests/.venv for the Python peers (through
tests/run.sh's requirements), then runs footprint, fan-out, tasks, database and HTTP reports.
Every server and client runs on 127.0.0.1.
"""
import datetime
import os
import platform
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PYTHON = os.path.join(ROOT, "tests/.venv/bin/python")


def run(title, command):
    print(f"\n## {title}\n\n`{' '.join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in command)}`\n")
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        print(f"failed ({out.returncode}):\n```\n{out.stderr[-2000:]}\n```")
        return
    body = out.stdout.strip()
    print(body if body.startswith("|") else f"```\n{body}\n```")


def main():
    subprocess.run(["cargo", "build", "--release", "--bins", "--examples", "-q"], cwd=ROOT, check=True)
    # robind again on its own, as README's `cargo run --release --bin robind` builds it: built
    # with the examples, dev-dependencies' features change some crates' symbol hashes, and
    # link/robind.order (written from a lone robind) would no longer match (about 1.2 MiB
    # more idle RSS, measured with bench/footprint.py).
    subprocess.run(["cargo", "build", "--release", "--bin", "robind", "-q"], cwd=ROOT, check=True)
    # The tokio peer is its own crate (own workspace and lock file): tokio stays out of robin's graph.
    subprocess.run(["cargo", "build", "--release", "-q", "--manifest-path", "bench/ws_peer_tokio/Cargo.toml"],
                   cwd=ROOT, check=True)
    if not os.path.exists(VENV_PYTHON):
        sys.exit("tests/.venv is missing: run tests/run.sh once (it installs websockets, aiosqlite, httpx)")
    cores = os.cpu_count()
    print(f"# robin benchmarks\n\n{datetime.date.today()}, {platform.machine()}, {cores} cores, "
          f"{platform.python_implementation()} {platform.python_version()} for the Python peers.")
    run("Footprint (robind, 20 starts)", [sys.executable, os.path.join(ROOT, "bench/footprint.py"), "--runs", "20"])
    run("WebSocket fan-out: robin vs tokio + tokio-tungstenite and asyncio + websockets", [VENV_PYTHON, os.path.join(ROOT, "bench/ws_fanout_report.py")])
    run("Migration bridge: Python through robind vs Python serving websockets", [VENV_PYTHON, os.path.join(ROOT, "bench/bridge_report.py")])
    run("Tasks: robin vs asyncio", [VENV_PYTHON, os.path.join(ROOT, "bench/tasks_report.py")])
    run("Database: robin vs raw rusqlite and aiosqlite", [VENV_PYTHON, os.path.join(ROOT, "bench/db_report.py")])
    run("HTTP client: robin vs httpx", [VENV_PYTHON, os.path.join(ROOT, "bench/http_report.py")])


if __name__ == "__main__":
    main()
