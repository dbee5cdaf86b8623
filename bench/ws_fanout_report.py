#!/usr/bin/env python3
"""Runs the fan-out benchmark for robin and its peers in one go and prints tables.

Usage: bench/ws_fanout_report.py [--quick] [--paced-runs N]
Needs: cargo build --release --bins --examples, the tokio peer built
(cargo build --release --manifest-path bench/ws_peer_tokio/Cargo.toml), and tests/.venv
(tests/run.sh makes it). Every server and client runs on 127.0.0.1; every run has a timeout.

The peers: asyncio + websockets (bench/ws_fanout.py) and tokio + tokio-tungstenite
(bench/ws_peer_tokio, its own crate, outside robin's dependency graph). A server's CPU time is
exact: its user + system time from wait4(2) when it exits, whole process (start-up, the
handshakes and its 1 s linger after the last message included).
"""
import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
PYTHON = os.path.join(ROOT, "tests", ".venv", "bin", "python")
LOAD = os.path.join(RELEASE, "examples", "ws_load")
TOKIO_PEER = os.path.join(ROOT, "bench", "ws_peer_tokio", "target", "release", "ws_peer_tokio")
SERVERS = {
    "robin": [os.path.join(RELEASE, "examples", "ws_fanout")],
    "tokio": [TOKIO_PEER],
    "python": [PYTHON, os.path.join(ROOT, "bench", "ws_fanout.py")],
}
# The burst: 5,000 x 1 KB as fast as the producer can, to 50 clients that each read steadily
# at 2 MB/s, slower than the producer (about 5.5 MB per client: 2.7 s to read).
BURST = dict(clients=50, messages=5000, size=1000, read_rate=2_000_000)
# CPU per delivery: long enough (2,000,000 deliveries) that start-up and the handshakes, about
# 13-19 ms of CPU, weigh under 5%.
CPU_CASE = dict(clients=100, messages=20_000, size=100)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kib(pid: int, key: str) -> int:
    """A /proc/PID/status value in KiB (KeyError once the process has exited)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def reap(process: subprocess.Popen, timeout: float = 30) -> resource.struct_rusage:
    """Waits for the process to exit and returns its own resource usage (wait4), killing it if it
    has not exited within the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return usage
        if time.monotonic() > deadline:
            process.kill()
            deadline = float("inf")
        time.sleep(0.02)


def run_case(name: str, clients: int, messages: int, size: int, rate=None, read_rate=None) -> dict:
    port = free_port()
    args = ["--port", str(port), "--clients", str(clients), "--messages", str(messages), "--size", str(size)]
    if rate:
        args += ["--rate", str(rate)]
    server = subprocess.Popen(SERVERS[name] + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    usage = None
    try:
        assert server.stdout.readline().strip() == "READY", f"{name} did not print READY"
        load_args = [LOAD, "--port", str(port), "--clients", str(clients), "--timeout", "300"]
        if read_rate:
            load_args += ["--read-rate", str(read_rate)]
        load = subprocess.Popen(load_args, stdout=subprocess.PIPE, text=True)
        load_out = load.stdout.read()
        load_usage = reap(load, timeout=330)
        result = json.loads(load_out)
        usage = reap(server)
        peak_kib = usage.ru_maxrss  # KiB on Linux; exact, and there after the server exited
        fanout = [line.split(" ", 1)[1] for line in server.stdout.read().splitlines() if line.startswith("FANOUT ")]
        result["fanout"] = json.loads(fanout[0]) if fanout else None
        # Preemptions: how often each process was made to wait for a core while it could run.
        result["server_preempted"], result["load_preempted"] = usage.ru_nivcsw, load_usage.ru_nivcsw
        cpu_s = usage.ru_utime + usage.ru_stime
        result.update(server=name, messages=messages, size=size, rate=rate, read_rate=read_rate,
                      peak_rss_kib=peak_kib, lost=clients * messages - result["deliveries"], cpu_s=cpu_s,
                      cpu_us_per_delivery=cpu_s * 1e6 / result["deliveries"] if result["deliveries"] else None)
        return result
    finally:
        if usage is None:
            reap(server)


def start_robind(tmp: str, port: int) -> subprocess.Popen:
    """The release robind on 127.0.0.1:port with its directories in tmp; its ready line is the
    first line of its stdout."""
    env = dict(os.environ, HOME=tmp, ROBIN_LOG="warn")
    return subprocess.Popen([os.path.join(RELEASE, "robind"), "--listen", f"127.0.0.1:{port}",
                             "--data-dir", f"{tmp}/d", "--runtime-dir", f"{tmp}/r"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)


def idle_per_connection(clients: int) -> dict:
    """robind's resident memory per idle WebSocket connection."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        daemon = start_robind(tmp, port)
        try:
            daemon.stdout.readline()
            time.sleep(1.0)
            before = status_kib(daemon.pid, "VmRSS")
            load = subprocess.Popen([LOAD, "--port", str(port), "--clients", str(clients), "--idle", "3"],
                                    stdout=subprocess.PIPE, text=True)
            assert load.stdout.readline().strip() == "CONNECTED"
            time.sleep(0.5)
            after = status_kib(daemon.pid, "VmRSS")
            load.wait(timeout=30)
            return {"clients": clients, "rss_before_kib": before, "rss_after_kib": after,
                    "per_connection_kib": round((after - before) / clients, 2)}
        finally:
            daemon.terminate()
            daemon.wait(timeout=10)


def fmt_cpu(r: dict) -> str:
    return "-" if r["cpu_us_per_delivery"] is None else f"{r['cpu_us_per_delivery']:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="N=100 only, one paced run, no burst")
    parser.add_argument("--paced-runs", type=int, default=5, help="runs of the paced case per server")
    parser.add_argument("--cpu-runs", type=int, default=3, help="runs of the CPU case per server")
    opts = parser.parse_args()
    if not os.path.exists(TOKIO_PEER):
        sys.exit("the tokio peer is not built: cargo build --release --manifest-path bench/ws_peer_tokio/Cargo.toml")
    names = ("robin", "tokio", "python")
    # (clients, messages, size): flat out, for throughput and CPU per delivery.
    flat = [(100, 2000, 100)] + ([] if opts.quick else [(1000, 2000, 100)])
    rows = [run_case(name, *case) for case in flat for name in names]
    # Paced, for latency: several runs each, interleaved, since one run's tail says little.
    paced_runs = 1 if opts.quick else opts.paced_runs
    paced = [run_case(name, 100, 2000, 100, rate=1000) for _ in range(paced_runs) for name in names]
    print("| server | clients | messages | size | rate/s | deliveries/s | p50 ms | p99 ms | lost | cut off "
          "| peak RSS MiB | server CPU s | CPU us/delivery |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows + paced:
        print(f"| {r['server']} | {r['clients']} | {r['messages']} | {r['size']} | {r['rate'] or 'max'} "
              f"| {r['deliveries_per_sec']:,.0f} | {r['p50_us'] / 1000:.2f} | {r['p99_us'] / 1000:.2f} | {r['lost']} "
              f"| {r['cut_off']} | {r['peak_rss_kib'] / 1024:.1f} | {r['cpu_s']:.3f} | {fmt_cpu(r)} |")
    for clients, _, _ in flat:
        by = {r["server"]: r for r in rows if r["clients"] == clients}
        # A run that lost messages or had clients cut off did less work: no ratio for it.
        spoiled = [f"{r['server']} lost {r['lost']} and cut off {r['cut_off']}"
                   for r in by.values() if r["lost"] or r["cut_off"]]
        if spoiled:
            print(f"N={clients}: no ratios, the runs did not deliver everything ({'; '.join(spoiled)})")
            continue
        robin, tokio, python = by["robin"], by["tokio"], by["python"]
        print(f"N={clients}: robin/python deliveries per second = "
              f"{robin['deliveries_per_sec'] / python['deliveries_per_sec']:.1f}x, "
              f"robin/tokio = {robin['deliveries_per_sec'] / tokio['deliveries_per_sec']:.1f}x")
        print(f"N={clients}: server CPU per delivery: robin {fmt_cpu(robin)} us, tokio peer {fmt_cpu(tokio)} us "
              f"(tokio/robin = {tokio['cpu_us_per_delivery'] / robin['cpu_us_per_delivery']:.2f}x), "
              f"python {fmt_cpu(python)} us")
    cpu_runs = 1 if opts.quick else opts.cpu_runs
    cpu = [run_case(name, **CPU_CASE) for _ in range(cpu_runs) for name in ("robin", "tokio")]
    median = {}
    for name in ("robin", "tokio"):
        runs = sorted(r["cpu_us_per_delivery"] for r in cpu if r["server"] == name and not r["lost"])
        if not runs:
            print(f"CPU per delivery: every {name} run lost messages; no figure")
            continue
        median[name] = runs[len(runs) // 2]
        print(f"server CPU per delivery, {CPU_CASE['clients']} clients x {CPU_CASE['messages']:,} x "
              f"{CPU_CASE['size']} B flat out, {len(runs)} runs: {name} {median[name]:.3f} us "
              f"[{runs[0]:.3f}-{runs[-1]:.3f}]")
    if len(median) == 2:
        print(f"tokio peer / robin CPU per delivery = {median['tokio'] / median['robin']:.2f}x (medians)")
    rows += cpu
    for name in names:
        p99s = [r["p99_us"] / 1000 for r in paced if r["server"] == name]
        print(f"paced, 100 clients at 1,000 msg/s, {paced_runs} runs: {name} p99 ms "
              f"{', '.join(f'{p:.2f}' for p in p99s)} (worst {max(p99s):.2f})")
    # Where robin's tail comes from: its own share (t to every writer having run) against the
    # whole, and how often the server and the load generator were preempted on the shared cores.
    print(f"paced robin runs, load average {os.getloadavg()[0]:.1f} at the end:")
    for r in (r for r in paced if r["server"] == "robin"):
        own = r["fanout"] or {}
        print(f"  end-to-end p50 {r['p50_us'] / 1000:.2f} / p99 {r['p99_us'] / 1000:.2f} ms; robin's share "
              f"(t to the last client's writev) p50 {own.get('p50_us', 0) / 1000:.2f} / p99 "
              f"{own.get('p99_us', 0) / 1000:.2f} / max {own.get('max_us', 0) / 1000:.2f} ms; preempted: "
              f"server {r['server_preempted']:,}, load generator {r['load_preempted']:,} times")
    if not opts.quick:
        burst = [run_case(name, BURST["clients"], BURST["messages"], BURST["size"], read_rate=BURST["read_rate"])
                 for name in names]
        print(f"\nburst: {BURST['messages']:,} x {BURST['size']:,} B as fast as the producer can to "
              f"{BURST['clients']} clients each reading steadily at {BURST['read_rate'] / 1e6:g} MB/s")
        print("| server | clients closed | deliveries | lost | seconds | peak RSS MiB | server CPU s |")
        print("|---|---|---|---|---|---|---|")
        for r in burst:
            print(f"| {r['server']} | {r['cut_off']} of {r['clients']} | {r['deliveries']:,} | {r['lost']:,} "
                  f"| {r['seconds']:.1f} | {r['peak_rss_kib'] / 1024:.1f} | {r['cpu_s']:.2f} |")
        rows += burst
    print("What differs in the tokio peer: tungstenite frames each message once per client (robin once for all); "
          "its queue is bounded by count only (1024, robin's default; robin also by bytes, 1 MiB, then keeps a "
          "reading client up to 8192 / 8 MiB); otherwise the same work on one thread (see "
          "bench/ws_peer_tokio/src/main.rs). The Python peer buffers without limit (write_limit 1 GiB).")
    idle = idle_per_connection(1000)
    print(f"robind idle: {idle['rss_before_kib']} KiB -> {idle['rss_after_kib']} KiB with 1000 idle WebSocket "
          f"clients = {idle['per_connection_kib']} KiB per connection")
    print(json.dumps({"runs": rows + paced, "idle": idle}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
