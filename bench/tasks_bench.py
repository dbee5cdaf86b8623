#!/usr/bin/env python3
"""The asyncio peers of bench/tasks_bench.rs.

Usage: tasks_bench.py [--tasks 100000] --mode MODE; prints one JSON line like the Rust side.

Modes, each doing what robin's side does:
- throughput: create_task + a tracking set (rotki's pattern), then wait until the set is empty
  on an asyncio.Event set by the done callback that empties it: robin's wait_for_all.
- throughput_gather: the same tasks, waited for by re-gathering the set until it is empty (the
  first round's peer: it does more work than robin, so its ratio flattered robin).
- memory: N tracked tasks, each a live Task sleeping an hour (asyncio.sleep).
- memory_call_later: N delayed coroutines, each kept unstarted with a loop.call_later handle,
  the strategy robin uses (a queue entry and a boxed future per task, one timer for all).
"""
import argparse
import asyncio
import json
import time


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def quick(i):
    return i


async def throughput(n: int, gather: bool) -> dict:
    tracked = set()
    idle = asyncio.Event()

    def done(task):
        tracked.discard(task)
        if not tracked:
            idle.set()

    started = time.perf_counter()
    for i in range(n):
        task = asyncio.create_task(quick(i))
        tracked.add(task)
        task.add_done_callback(done)
    if gather:
        while tracked:
            await asyncio.gather(*list(tracked))
    else:
        await idle.wait()
    seconds = time.perf_counter() - started
    return {"implementation": "python_asyncio_gather" if gather else "python_asyncio", "work": "spawn_complete",
            "tasks": n, "seconds": seconds, "per_second": n / seconds}


async def memory_tasks(n: int) -> dict:
    tracked = set()

    async def delayed():
        await asyncio.sleep(3600)

    before = rss_kib()
    for _ in range(n):
        task = asyncio.create_task(delayed())
        tracked.add(task)
        task.add_done_callback(tracked.discard)
    await asyncio.sleep(0.2)
    after = rss_kib()
    for task in list(tracked):
        task.cancel()
    return {"implementation": "python_asyncio", "work": "pending_delayed", "tasks": n, "rss_kib": after,
            "bytes_per_task": (after - before) * 1024 / n}


async def memory_call_later(n: int) -> dict:
    loop = asyncio.get_running_loop()
    pending = {}

    async def body():
        return None

    def start(key):
        coro = pending.pop(key)[1]
        asyncio.ensure_future(coro)

    before = rss_kib()
    for key in range(n):
        coro = body()
        pending[key] = (loop.call_later(3600, start, key), coro)
    await asyncio.sleep(0.2)
    after = rss_kib()
    for handle, coro in pending.values():
        handle.cancel()
        coro.close()
    return {"implementation": "python_call_later", "work": "pending_delayed", "tasks": n, "rss_kib": after,
            "bytes_per_task": (after - before) * 1024 / n}


async def main(n: int, mode: str) -> None:
    if mode == "throughput":
        result = await throughput(n, gather=False)
    elif mode == "throughput_gather":
        result = await throughput(n, gather=True)
    elif mode == "memory":
        result = await memory_tasks(n)
    else:
        result = await memory_call_later(n)
    print(json.dumps(result))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--mode", choices=["throughput", "throughput_gather", "memory", "memory_call_later"],
                        default="throughput")
    opts = parser.parse_args()
    asyncio.run(main(opts.tasks, opts.mode))
