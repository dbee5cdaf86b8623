#!/usr/bin/env python3
"""Runs the database benchmark (robin, raw rusqlite, SQLCipher, aiosqlite) and prints a table.

Usage: bench/db_report.py   (needs cargo build --release --examples, and tests/.venv)
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
rows = []
out = subprocess.run([os.path.join(ROOT, "target/release/examples/db_bench")], capture_output=True, text=True,
                     check=True, timeout=600).stdout
rows += [json.loads(line) for line in out.splitlines()]
out = subprocess.run([os.path.join(ROOT, "tests/.venv/bin/python"), os.path.join(ROOT, "bench/db_bench.py")],
                     capture_output=True, text=True, check=True, timeout=600).stdout
rows += [json.loads(line) for line in out.splitlines()]
by = {(r["implementation"], r["work"]): r for r in rows}

print("| implementation | work | operations | seconds | per second |")
print("|---|---|---|---|---|")
for r in rows:
    print(f"| {r['implementation']} | {r['work']} | {r['operations']} | {r['seconds']:.4f} | {r['per_second']:,.0f} |")
for work in ("bulk_insert", "full_scan"):
    print(f"{work}: robin/raw rusqlite time = "
          f"{by[('robin_plain', work)]['seconds'] / by[('raw_rusqlite', work)]['seconds']:.2f}x (target <= 1.2)")
for work in ("small_writes", "small_writes_concurrent"):
    ratio = by[("robin_plain", work)]["per_second"] / by[("python_aiosqlite", work)]["per_second"]
    print(f"{work}: robin/aiosqlite = {ratio:.1f}x (target >= 10)")
for work in ("bulk_insert", "full_scan", "small_writes", "small_writes_concurrent"):
    overhead = by[("robin_sqlcipher", work)]["seconds"] / by[("robin_plain", work)]["seconds"] - 1
    print(f"SQLCipher overhead, {work}: {overhead * 100:+.0f}% (target < 20%)")
print(json.dumps(rows), file=sys.stderr)
