#!/usr/bin/env python3
"""A synchronous loop "migrated" to robind: it queries something, reports progress and
broadcasts, through clients/python/robin_bridge.py. Nothing else changed in the loop.

Run robind, then this script, and watch what a UI would see:

    cargo run --bin robind &
    robinctl watch &                      # or a browser on the ws URL of robind's ready line
    python3 examples/migrate_sync_loop.py

(`ROBIN_SOCKET=/path/to/robind.sock` if robind runs with another runtime directory.)
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "python"))

import robin_bridge  # noqa: E402

ASSETS = ["bitcoin", "ethereum", "monero", "cardano", "polkadot"]


def query_price(asset):
    """Stands in for the blocking HTTP call the old code made."""
    time.sleep(0.4)
    return 1000.0 + len(asset)


@robin_bridge.track("query_prices_legacy", total=len(ASSETS))
def refresh_prices(task=None):
    prices = {}
    for done, asset in enumerate(ASSETS, 1):
        if task.cancelled:
            robin_bridge.add_warning("price refresh cancelled after {} assets".format(done - 1))
            break
        prices[asset] = query_price(asset)
        task.progress(done)
    # The same message and payload the old WebSocket server sent.
    robin_bridge.broadcast_ws_message("refresh_balances", {"type": "blockchain_balances", "blockchain": "eth"})
    return prices


if __name__ == "__main__":
    print(refresh_prices())
    print("bridge:", robin_bridge.stats())
