#!/usr/bin/env python3
"""The migration bridge: broadcasts from one Python process through robind to 100 WebSocket
clients, next to the same Python process serving the WebSocket itself with `websockets`.

Usage: bench/bridge_report.py
Needs: cargo build --release --bins --examples, and tests/.venv (tests/run.sh makes it).
Both sides send the fan-out benchmark's messages (2000 legacy warnings of 100 bytes, then
"bench_done") as fast as they can to the same load generator (examples/ws_load, 100 clients),
which measures deliveries and latency. Everything runs on 127.0.0.1.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ws_fanout_report import LOAD, PYTHON, ROOT, free_port, run_case, start_robind, status_kib  # noqa: E402

CLIENTS, MESSAGES, SIZE = 100, 2000, 100
SENDER = os.path.join(ROOT, "bench", "bridge_sender.py")


def run_bridge(pipelined):
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        daemon = start_robind(tmp, port)
        try:
            ready = json.loads(daemon.stdout.readline())
            load = subprocess.Popen([LOAD, "--port", str(port), "--clients", str(CLIENTS), "--timeout", "300"],
                                    stdout=subprocess.PIPE, text=True)
            command = [PYTHON, SENDER, "--socket", ready["ipc"], "--clients", str(CLIENTS),
                       "--messages", str(MESSAGES), "--size", str(SIZE)] + (["--pipelined"] if pipelined else [])
            sender = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            sent = json.loads(sender.stdout.read())
            sender.wait(timeout=60)
            sender_peak = sent["peak_rss_kib"]
            result = json.loads(load.communicate(timeout=330)[0])
            result.update(server="robind + bridge" + (" (pipelined)" if pipelined else ""), sender=sent,
                          python_peak_rss_kib=sender_peak, robind_peak_rss_kib=status_kib(daemon.pid, "VmHWM"),
                          lost=CLIENTS * MESSAGES - result["deliveries"])
            return result
        finally:
            daemon.terminate()
            daemon.wait(timeout=10)


RUNS = 5


def median_run(runs, key):
    """The run with the median `key`, and the range of `key` over all runs."""
    ordered = sorted(runs, key=key)
    return ordered[len(ordered) // 2], (key(ordered[0]), key(ordered[-1]))


def main():
    # Each row is the median of RUNS runs (by deliveries per second), with the spread beside it:
    # a run is short, and this machine's runs differ by 2x from one to the next.
    rows = []
    for pipelined in (False, True):
        row, spread = median_run([run_bridge(pipelined) for _ in range(RUNS)], lambda r: r["deliveries_per_sec"])
        rows.append(dict(row, spread=spread))
    peers = []
    for _ in range(RUNS):
        peer = run_case("python", CLIENTS, MESSAGES, SIZE)
        peer.update(server="python + websockets", python_peak_rss_kib=peer["peak_rss_kib"], robind_peak_rss_kib=None)
        peers.append(peer)
    peer, spread = median_run(peers, lambda r: r["deliveries_per_sec"])
    rows.append(dict(peer, spread=spread))
    print(f"{RUNS} runs of each; the median run (by deliveries/s), and the range over the runs\n")
    print("| sender | clients | messages | size | messages/s to all clients [range] | deliveries/s | p50 ms | p99 ms | lost | cut off | Python process peak RSS MiB | robind peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        robind = f"{r['robind_peak_rss_kib'] / 1024:.1f}" if r["robind_peak_rss_kib"] else "-"
        low, high = (v / CLIENTS for v in r["spread"])
        print(f"| {r['server']} | {CLIENTS} | {MESSAGES} | {SIZE} | {r['deliveries_per_sec'] / CLIENTS:,.0f} [{low:,.0f}-{high:,.0f}] "
              f"| {r['deliveries_per_sec']:,.0f} | {r['p50_us'] / 1000:.2f} | {r['p99_us'] / 1000:.2f} | {r['lost']} "
              f"| {r['cut_off']} | {r['python_peak_rss_kib'] / 1024:.1f} | {robind} |")
    for r in rows[:2]:
        s = r["sender"]
        print(f"{r['server']}, median run: the Python sender made {s['per_sec']:,.0f} broadcast calls/s "
              f"({s['sent']} accepted, {s['refused_or_dropped']} refused or dropped)")
    print("What differs: the bridge sender waits for robind's answer to each call (or each batch "
          "of 128 when pipelined), and each message is checked against rotki's shape, while "
          "websockets.broadcast() returns without waiting; robind's frames carry `,\"seq\":N` "
          "(about 10 bytes more); a pipelined batch's messages share one send time, so their "
          "latency includes the batch's wait; the robind rows run three processes (sender, "
          "robind, load) on the machine's cores, the Python row two (server, load); the Python "
          "process's RSS holds 100 WebSocket connections in the last row and none in the others; "
          "back-pressure differs: robind closes a client that stops reading for 5 s once it is "
          "1024 messages or 1 MiB behind, and any client 8192 messages or 8 MiB behind, the peer "
          "buffers without limit (write_limit 1 GiB).")
    print(json.dumps({"runs": rows}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
