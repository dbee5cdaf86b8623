#!/usr/bin/env python3
"""Runs the fan-out benchmark for robin and the Python peer in one go and prints a table.

Usage: bench/ws_fanout_report.py [--quick]
Needs: cargo build --release --bins --examples, and tests/.venv (tests/run.sh makes it).
Every server and client runs on 127.0.0.1; every run has a timeout.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
PYTHON = os.path.join(ROOT, "tests", ".venv", "bin", "python")
LOAD = os.path.join(RELEASE, "examples", "ws_load")
SERVERS = {
    "robin": [os.path.join(RELEASE, "examples", "ws_fanout")],
    "python": [PYTHON, os.path.join(ROOT, "bench", "ws_fanout.py")],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def run_case(name: str, clients: int, messages: int, size: int, rate=None) -> dict:
    port = free_port()
    args = ["--port", str(port), "--clients", str(clients), "--messages", str(messages), "--size", str(size)]
    if rate:
        args += ["--rate", str(rate)]
    server = subprocess.Popen(SERVERS[name] + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout.readline().strip() == "READY", f"{name} did not print READY"
        load = subprocess.run([LOAD, "--port", str(port), "--clients", str(clients), "--timeout", "300"],
                              capture_output=True, text=True, timeout=330)
        peak_kib = status_kib(server.pid, "VmHWM")  # the server lingers 1 s after bench_done
        result = json.loads(load.stdout)
        result.update(server=name, messages=messages, size=size, rate=rate, peak_rss_kib=peak_kib,
                      lost=clients * messages - result["deliveries"])
        return result
    finally:
        server.wait(timeout=30)


def start_robind(tmp: str, port: int) -> subprocess.Popen:
    """The release robind on 127.0.0.1:port with its directories in tmp; its ready line is the
    first line of its stdout."""
    env = dict(os.environ, HOME=tmp, ROBIN_LOG="warn")
    return subprocess.Popen([os.path.join(RELEASE, "robind"), "--listen", f"127.0.0.1:{port}",
                             "--data-dir", f"{tmp}/d", "--runtime-dir", f"{tmp}/r"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)


def idle_per_connection(clients: int) -> dict:
    """robind's resident memory per idle WebSocket connection."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        daemon = start_robind(tmp, port)
        try:
            daemon.stdout.readline()
            time.sleep(1.0)
            before = status_kib(daemon.pid, "VmRSS")
            load = subprocess.Popen([LOAD, "--port", str(port), "--clients", str(clients), "--idle", "3"],
                                    stdout=subprocess.PIPE, text=True)
            assert load.stdout.readline().strip() == "CONNECTED"
            time.sleep(0.5)
            after = status_kib(daemon.pid, "VmRSS")
            load.wait(timeout=30)
            return {"clients": clients, "rss_before_kib": before, "rss_after_kib": after,
                    "per_connection_kib": round((after - before) / clients, 2)}
        finally:
            daemon.terminate()
            daemon.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="N=100 only")
    opts = parser.parse_args()
    # (clients, messages, size, rate): flat out for throughput, then paced for latency.
    cases = [(100, 2000, 100, None)] + ([] if opts.quick else [(1000, 2000, 100, None), (100, 2000, 100, 1000)])
    rows = [run_case(name, *case) for case in cases for name in ("robin", "python")]
    print("| server | clients | messages | size | rate/s | deliveries/s | p50 ms | p99 ms | lost | cut off | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['server']} | {r['clients']} | {r['messages']} | {r['size']} | {r['rate'] or 'max'} "
              f"| {r['deliveries_per_sec']:,.0f} | {r['p50_us'] / 1000:.2f} | {r['p99_us'] / 1000:.2f} | {r['lost']} "
              f"| {r['cut_off']} | {r['peak_rss_kib'] / 1024:.1f} |")
    for case in cases[:2]:
        robin, python = [r for r in rows if r["clients"] == case[0] and r["rate"] is None]
        # A run that lost messages or had clients cut off did less work: no ratio for it.
        spoiled = [f"{r['server']} lost {r['lost']} and cut off {r['cut_off']}"
                   for r in (robin, python) if r["lost"] or r["cut_off"]]
        if spoiled:
            print(f"N={case[0]}: no ratio, the runs did not deliver everything ({'; '.join(spoiled)})")
        else:
            print(f"N={case[0]}: robin/python deliveries per second = "
                  f"{robin['deliveries_per_sec'] / python['deliveries_per_sec']:.1f}x")
    idle = idle_per_connection(1000)
    print(f"robind idle: {idle['rss_before_kib']} KiB -> {idle['rss_after_kib']} KiB with 1000 idle WebSocket "
          f"clients = {idle['per_connection_kib']} KiB per connection")
    print(json.dumps({"runs": rows, "idle": idle}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
