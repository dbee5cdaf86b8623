#!/usr/bin/env python3
"""Runs the HTTP client benchmark (robin vs httpx against robind's keep-alive /api/1/ping on
127.0.0.1, at concurrency 1 and 50) and the query_balances cost for 500 addresses.

Usage: bench/http_report.py   (needs cargo build --release --bins --examples, and tests/.venv)
"""
import json
import os
import socket
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "target/release/examples/http_bench")
PYTHON = os.path.join(ROOT, "tests/.venv/bin/python")

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
with tempfile.TemporaryDirectory() as tmp:
    server = subprocess.Popen([os.path.join(ROOT, "target/release/robind"), "--listen", f"127.0.0.1:{port}",
                               "--data-dir", f"{tmp}/d", "--runtime-dir", f"{tmp}/r"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=dict(os.environ, HOME=tmp), text=True)
    try:
        server.stdout.readline()
        url = f"http://127.0.0.1:{port}/api/1/ping"
        rows = []
        for concurrency, requests in [(1, 5000), (50, 20000)]:
            for command in ([BENCH, "rps", url, str(requests), str(concurrency)],
                            [PYTHON, os.path.join(ROOT, "bench/http_bench.py"), url, str(requests), str(concurrency)]):
                out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600).stdout
                rows.append(json.loads(out))
    finally:
        server.terminate()
        server.wait(timeout=10)
print("| client | concurrency | requests | requests/s |")
print("|---|---|---|---|")
for r in rows:
    print(f"| {r['client']} | {r['concurrency']} | {r['requests']} | {r['per_second']:,.0f} |")
for c in (1, 50):
    robin, py = [r for r in rows if r["concurrency"] == c]
    print(f"concurrency {c}: robin/httpx = {robin['per_second'] / py['per_second']:.1f}x (target >= 5)")
out = subprocess.run([BENCH, "balances", "500"], capture_output=True, text=True, check=True, timeout=600).stdout
b = json.loads(out)
print(f"query_balances, {b['addresses']} addresses against a local node: {b['seconds'] * 1000:.0f} ms, "
      f"peak RSS {b['peak_rss_kib'] / 1024:.1f} MiB (total {b['total']} EUR)")
print(json.dumps(rows), file=sys.stderr)
