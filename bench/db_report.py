#!/usr/bin/env python3
"""Runs the database benchmark (robin, raw rusqlite, SQLCipher, aiosqlite) and prints a table.

Usage: bench/db_report.py [--runs 5]   (needs cargo build --release --examples, and tests/.venv)
Each run starts fresh processes for robin's side and for the Python peers, one after the other;
every figure is the median of the runs with its range, and every ratio is computed run by run
(robin's run i against the peer's run i) and then summarised the same way.
"""
import argparse
import collections
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROBIN = [os.path.join(ROOT, "target/release/examples/db_bench")]
PYTHON = [os.path.join(ROOT, "tests/.venv/bin/python"), os.path.join(ROOT, "bench/db_bench.py")]


def rows(command):
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600).stdout
    return [json.loads(line) for line in out.splitlines()]


def spread(values, fmt):
    return f"{fmt(statistics.median(values))} [{fmt(min(values))}-{fmt(max(values))}]"


def main(runs):
    runs_by = collections.defaultdict(list)  # (implementation, work) -> [row per run]
    for _ in range(runs):
        for row in rows(ROBIN) + rows(PYTHON):
            runs_by[(row["implementation"], row["work"])].append(row)
    print(f"{runs} runs; median [min-max]")
    print()
    print("| implementation | work | operations | seconds | per second |")
    print("|---|---|---|---|---|")
    for (implementation, work), measured in runs_by.items():
        print(f"| {implementation} | {work} | {measured[0]['operations']} | "
              f"{spread([m['seconds'] for m in measured], lambda v: f'{v:.4f}')} | "
              f"{spread([m['per_second'] for m in measured], lambda v: f'{v:,.0f}')} |")
    print()

    def ratio(a, b, key):
        return [x[key] / y[key] for x, y in zip(runs_by[a], runs_by[b])]

    for work in ("bulk_insert", "full_scan_cold", "full_scan"):
        r = ratio(("robin_plain", work), ("raw_rusqlite", work), "seconds")
        print(f"{work}: robin / raw rusqlite time = {spread(r, lambda v: f'{v:.2f}x')} (target <= 1.2)")
    r = ratio(("robin_plain", "small_writes"), ("python_aiosqlite", "small_writes"), "per_second")
    print(f"small_writes, one awaited at a time: robin / aiosqlite = {spread(r, lambda v: f'{v:.1f}x')} (target >= 10)")
    r = ratio(("raw_rusqlite", "small_writes"), ("python_aiosqlite", "small_writes"), "per_second")
    print(f"small_writes, one at a time: raw rusqlite on one thread (the floor: no loop, no thread hop) / aiosqlite = {spread(r, lambda v: f'{v:.1f}x')}")
    r = ratio(("robin_plain", "small_writes"), ("raw_rusqlite", "small_writes"), "per_second")
    print(f"small_writes, one at a time: robin / raw rusqlite = {spread(r, lambda v: f'{v:.2f}x')}")
    for peer, what in (("python_aiosqlite", "a commit per write"),
                       ("python_aiosqlite_grouped", "grouped, a savepoint per write as robin's"),
                       ("python_aiosqlite_grouped_no_savepoints", "grouped, no savepoints: less isolation")):
        r = ratio(("robin_plain", "small_writes_concurrent"), (peer, "small_writes_concurrent"), "per_second")
        print(f"small_writes_concurrent, 64 tasks: robin / aiosqlite ({what}) = {spread(r, lambda v: f'{v:.1f}x')}")
    for work, what in (("bulk_insert", ""), ("full_scan_cold", " (each page decrypted and checked)"),
                       ("full_scan", " (hot: the table in robin's page cache)"), ("small_writes", ""),
                       ("small_writes_concurrent", "")):
        overhead = [v - 1 for v in ratio(("robin_sqlcipher", work), ("robin_plain", work), "seconds")]
        print(f"SQLCipher overhead, {work}{what}: {spread(overhead, lambda v: f'{v * 100:+.0f}%')} (target < 20%)")
    overhead = [v - 1 for v in ratio(("raw_sqlcipher", "small_writes"), ("raw_rusqlite", "small_writes"), "seconds")]
    print(f"SQLCipher's own overhead per single-write commit, raw rusqlite on one thread: {spread(overhead, lambda v: f'{v * 100:+.0f}%')}")
    print(json.dumps({f"{k[0]}/{k[1]}": v for k, v in runs_by.items()}), file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    main(parser.parse_args().runs)
