"""A Python `websockets` client of robin's /ws, driven by tests/python_client.rs.

Usage: ws_client.py URL COUNT
Sends "hello from python", then prints every text message it receives as one line on stdout
until it has COUNT of them (the echo included). Exits 1 after 20 s without them.
"""
import asyncio
import sys

import websockets


async def main(url: str, count: int) -> None:
    async with websockets.connect(url, max_size=2**20) as ws:
        await ws.send("hello from python")
        for _ in range(count):
            message = await ws.recv()
            print(message, flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(sys.argv[1], int(sys.argv[2])), timeout=20))
    except asyncio.TimeoutError:
        sys.exit("timed out waiting for messages")
