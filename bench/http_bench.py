#!/usr/bin/env python3
"""The httpx peer of bench/http_bench.rs: GET URL REQUESTS times, CONCURRENCY at once.

Usage: http_bench.py URL REQUESTS CONCURRENCY  (one JSON line on stdout)
"""
import asyncio
import json
import sys
import time

import httpx


async def main(url: str, requests: int, concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        (await client.get(url)).json()  # connect and warm up
        gate = asyncio.Semaphore(concurrency)

        async def one():
            async with gate:
                response = await client.get(url)
                response.raise_for_status()
                return response.json()

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(requests)))
        seconds = time.perf_counter() - started
    print(json.dumps({"client": "python_httpx", "requests": requests, "concurrency": concurrency,
                      "per_second": requests / seconds}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
