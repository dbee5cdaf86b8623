#!/usr/bin/env python3
"""The aiosqlite peer of bench/db_bench.rs: small writes (one row per transaction) per second.

Usage: db_bench.py [--small 2000]
Same table and pragmas as robin (WAL, synchronous=NORMAL); prints one JSON line.
"""
import argparse
import asyncio
import json
import os
import tempfile
import time

import aiosqlite

CONCURRENT = 64
WRITES_PER_TASK = 200


async def main(small: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with aiosqlite.connect(os.path.join(tmp, "py.db"), isolation_level=None) as db:
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, amount TEXT)")
            started = time.perf_counter()
            for i in range(small):
                await db.execute("BEGIN IMMEDIATE")
                await db.execute("INSERT INTO t (id, name, amount) VALUES (?, 'small', '1')", (i,))
                await db.execute("COMMIT")
            seconds = time.perf_counter() - started
            print(json.dumps({"implementation": "python_aiosqlite", "work": "small_writes", "operations": small,
                              "seconds": seconds, "per_second": small / seconds}))

            # 64 tasks at once. One aiosqlite connection runs one transaction at a time, so the
            # tasks take turns through a lock, which is how such code must be written.
            lock = asyncio.Lock()

            async def writer(t: int) -> None:
                for i in range(WRITES_PER_TASK):
                    async with lock:
                        await db.execute("BEGIN IMMEDIATE")
                        await db.execute("INSERT INTO t (id, name, amount) VALUES (?, 'small', '1')",
                                         (small + t * WRITES_PER_TASK + i,))
                        await db.execute("COMMIT")

            started = time.perf_counter()
            await asyncio.gather(*(writer(t) for t in range(CONCURRENT)))
            seconds = time.perf_counter() - started
            done = CONCURRENT * WRITES_PER_TASK
            print(json.dumps({"implementation": "python_aiosqlite", "work": "small_writes_concurrent",
                              "operations": done, "seconds": seconds, "per_second": done / seconds}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=2000)
    asyncio.run(main(parser.parse_args().small))
