#!/usr/bin/env python3
"""Fan-out benchmark server in Python (asyncio + websockets): the peer robin is compared with.

Same interface as `cargo run --release --example ws_fanout`:
    ws_fanout.py --port P --clients N --messages M --size S [--rate R]
Listens on ws://127.0.0.1:P/ws, prints READY, waits for N clients, broadcasts M legacy
warnings whose value is "seq=<i> t=<ns since epoch at send> <S bytes>", then one whose value is
"bench_done", waits until every client has left (at most 60 s: slow readers take what is still
queued) and exits 1 s later. Uses websockets.broadcast(), the library's
own fan-out helper, with the write limit raised so that no message is skipped.
"""
import argparse
import asyncio
import json
import time

from websockets.asyncio.server import broadcast, serve

# robin's frames are compact JSON; so are the peer's (and the load generator looks for
# `"value":"bench_done"` without spaces). robin's also carry `,"seq":N`, about 10 bytes more.
COMPACT = (",", ":")


async def main(opts: argparse.Namespace) -> None:
    clients = set()
    enough = asyncio.Event()

    async def handler(ws):
        clients.add(ws)
        if len(clients) >= opts.clients:
            enough.set()
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async with serve(handler, "127.0.0.1", opts.port, write_limit=2**30, max_queue=None):
        print("READY", flush=True)
        await enough.wait()
        pad = "x" * opts.size
        start = time.monotonic()
        for seq in range(opts.messages):
            if opts.rate:
                delay = start + seq / opts.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            value = f"seq={seq} t={time.time_ns()} {pad}"
            message = {"type": "legacy", "data": {"verbosity": "warning", "value": value}}
            broadcast(clients, json.dumps(message, separators=COMPACT))
            await asyncio.sleep(0)
        done = {"type": "legacy", "data": {"verbosity": "warning", "value": "bench_done"}}
        broadcast(clients, json.dumps(done, separators=COMPACT))
        give_up = time.monotonic() + 60
        while clients and time.monotonic() < give_up:
            await asyncio.sleep(0.01)
        await asyncio.sleep(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--rate", type=float)
    asyncio.run(main(parser.parse_args()))
