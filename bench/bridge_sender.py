#!/usr/bin/env python3
"""One Python process broadcasting through robind with clients/python/robin_bridge.py.

Usage: bridge_sender.py --socket PATH --clients N --messages M --size S [--pipelined]
Waits until robind has N WebSocket clients, then broadcasts M legacy warnings whose value is
"seq=<i> t=<ns since epoch at send> <S bytes>" (the fan-out benchmark's messages), then one
whose value is "bench_done". One call per message and its answer awaited, or, with
--pipelined, `broadcast_many` (128 requests written before their answers are read). Prints
{"sent", "refused_or_dropped", "seconds", "per_sec", "peak_rss_kib"} on stdout.
"""
import argparse
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))

import robin_bridge  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--pipelined", action="store_true")
    opts = parser.parse_args()
    bridge = robin_bridge.Bridge(opts.socket, timeout=10)
    deadline = time.monotonic() + 60
    while bridge.call("status")["notifier"]["clients"] < opts.clients:
        if time.monotonic() > deadline:
            sys.exit("the WebSocket clients did not connect")
        time.sleep(0.05)
    pad = "x" * opts.size
    warning = lambda value: ("legacy", {"verbosity": "warning", "value": value})  # noqa: E731
    start = time.monotonic()
    if opts.pipelined:
        batch = 128
        for first in range(0, opts.messages, batch):
            count = min(batch, opts.messages - first)
            # The send time is taken per batch: each message's latency includes its batch's wait.
            now = time.time_ns()
            bridge.broadcast_many([warning(f"seq={first + i} t={now} {pad}") for i in range(count)])
    else:
        for seq in range(opts.messages):
            bridge.broadcast_ws_message(*warning(f"seq={seq} t={time.time_ns()} {pad}"))
    seconds = time.monotonic() - start
    bridge.broadcast_ws_message(*warning("bench_done"))
    stats = bridge.stats()
    print(json.dumps({"sent": stats["sent"] - 1, "refused_or_dropped": stats["refused"] + stats["dropped"],
                      "seconds": seconds, "per_sec": opts.messages / seconds,
                      "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


if __name__ == "__main__":
    main()
