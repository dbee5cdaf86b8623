#!/usr/bin/env python3
"""The asyncio peer of bench/tasks_bench.rs: create_task plus a tracking set.

Usage: tasks_bench.py [--tasks 100000]; prints JSON lines like the Rust side.
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


async def main(n: int, mode: str) -> None:
    tracked = set()

    def track(coro):
        task = asyncio.create_task(coro)
        tracked.add(task)
        task.add_done_callback(tracked.discard)
        return task

    async def quick(i):
        return i

    if mode == "throughput":
        started = time.perf_counter()
        for i in range(n):
            track(quick(i))
        while tracked:
            await asyncio.gather(*list(tracked))
        seconds = time.perf_counter() - started
        print(json.dumps({"implementation": "python_asyncio", "work": "spawn_complete", "tasks": n,
                          "seconds": seconds, "per_second": n / seconds}))
        return

    async def delayed():
        await asyncio.sleep(3600)

    before = rss_kib()
    for _ in range(n):
        track(delayed())
    await asyncio.sleep(0.2)
    after = rss_kib()
    print(json.dumps({"implementation": "python_asyncio", "work": "pending_delayed", "tasks": n,
                      "rss_kib": after, "bytes_per_task": (after - before) * 1024 / n}))
    for task in list(tracked):
        task.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--mode", choices=["throughput", "memory"], default="throughput")
    opts = parser.parse_args()
    asyncio.run(main(opts.tasks, opts.mode))
