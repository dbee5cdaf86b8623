#!/usr/bin/env python3
"""The aiosqlite peers of bench/db_bench.rs: small writes per second.

Usage: db_bench.py [--small 2000]
Same table and pragmas as robin (WAL, synchronous=NORMAL); prints one JSON line per measurement:
- small_writes: one awaited write at a time, one transaction each;
- small_writes_concurrent: 64 tasks at once, one transaction per write (taking turns);
- small_writes_concurrent, grouped: 64 tasks at once, their writes grouped the way robin groups
  them: a writer takes up to 256 queued writes, runs each in its own savepoint inside one
  BEGIN IMMEDIATE ... COMMIT, and answers every caller after the commit; and the same without
  the savepoints (faster, but one failing write undoes its group).
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

            for savepoints, label in ((True, "python_aiosqlite_grouped"),
                                      (False, "python_aiosqlite_grouped_no_savepoints")):
                base = small + done * (2 if savepoints else 3)
                started = time.perf_counter()
                await grouped(db, base, savepoints)
                seconds = time.perf_counter() - started
                print(json.dumps({"implementation": label, "work": "small_writes_concurrent",
                                  "operations": done, "seconds": seconds, "per_second": done / seconds}))


MAX_GROUP = 256


async def grouped(db, base: int, savepoints: bool) -> None:
    """64 tasks queue writes; one writer commits them in groups, as robin's writer does. Without
    savepoints one failing write would undo its whole group: less isolation than robin's, and
    two fewer statements (each a thread hop in aiosqlite) per write."""
    queue: asyncio.Queue = asyncio.Queue()

    async def drain() -> None:
        while True:
            first = await queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < MAX_GROUP and not queue.empty():
                item = queue.get_nowait()
                if item is None:
                    queue.put_nowait(None)
                    break
                group.append(item)
            await db.execute("BEGIN IMMEDIATE")
            for row_id, _ in group:
                if savepoints:
                    await db.execute("SAVEPOINT member")
                await db.execute("INSERT INTO t (id, name, amount) VALUES (?, 'small', '1')", (row_id,))
                if savepoints:
                    await db.execute("RELEASE member")
            await db.execute("COMMIT")
            for _, answered in group:
                answered.set_result(None)

    async def writer(t: int) -> None:
        loop = asyncio.get_running_loop()
        for i in range(WRITES_PER_TASK):
            answered = loop.create_future()
            queue.put_nowait((base + t * WRITES_PER_TASK + i, answered))
            await answered

    draining = asyncio.create_task(drain())
    await asyncio.gather(*(writer(t) for t in range(CONCURRENT)))
    queue.put_nowait(None)
    await draining


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=2000)
    asyncio.run(main(parser.parse_args().small))
