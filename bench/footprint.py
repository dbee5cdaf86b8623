#!/usr/bin/env python3
"""Footprint of robind: binary size, idle memory and threads, time from exec to READY=1, and
what 1,000 idle WebSocket clients add.

Usage: bench/footprint.py [path/to/robind] [--runs N] [--clients N] [--json]
Builds nothing: pass the binary (default target/release/robind); the client figure needs
target/release/examples/ws_load next to it (cargo build --release --examples), else it is
skipped with a note. Uses only loopback and a temporary directory; every run is bounded by a
timeout.

Idle memory is read 1 s after READY=1, from /proc/PID/status (VmRSS, RssAnon) and
/proc/PID/smaps_rollup (Pss, Private_Clean, Private_Dirty). Private counts the pages only robind
maps: its anonymous memory and the pages of its own binary (no other process maps them). The
figures are the largest over the runs. The page cache of a just-linked binary is dirty until
written back, which smaps reports as Private_Dirty; hence the sync before the first run.
"""
import argparse, json, os, socket, statistics, subprocess, sys, tempfile, time

ROLLUP_KEYS = ("Pss", "Pss_Anon", "Pss_File", "Private_Clean", "Private_Dirty")

def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields

def smaps_rollup(pid):
    """The KiB figures of /proc/PID/smaps_rollup we report (absent ones as 0: old kernels)."""
    fields = dict.fromkeys(ROLLUP_KEYS, 0)
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in fields:
                fields[key] = kib(value)
    return fields

def kib(value):
    return int(value.split()[0])

def memory(pid):
    st = proc_status(pid)
    rollup = smaps_rollup(pid)
    return {"vmrss_kib": kib(st["VmRSS"]), "rssanon_kib": kib(st["RssAnon"]),
            **{f"{key.lower()}_kib": value for key, value in rollup.items()}}

def start(binary, tmp, notify_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROBIN_", "LISTEN_", "XDG_"))}
    env.update(NOTIFY_SOCKET=notify_path, HOME=tmp, ROBIN_LOG="warn")
    args = [binary, "--listen", "127.0.0.1:0", "--data-dir", f"{tmp}/data", "--runtime-dir", f"{tmp}/run"]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

def one_run(binary, clients=0, ws_load=None):
    """One start: (ready_ms, idle memory, threads, memory with `clients` idle WebSocket clients)."""
    with tempfile.TemporaryDirectory() as tmp:
        notify_path = f"{tmp}/notify"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(notify_path)
        sock.settimeout(10)
        t0 = time.perf_counter()
        proc = start(binary, tmp, notify_path)
        try:
            while b"READY=1" not in sock.recv(4096):
                pass
            ready_ms = (time.perf_counter() - t0) * 1000
            ready_line = json.loads(proc.stdout.readline())
            time.sleep(1.0)  # let the short-lived blocking thread that printed the ready line retire
            idle = memory(proc.pid)
            threads = len(os.listdir(f"/proc/{proc.pid}/task"))
            loaded = None
            if clients:
                port = ready_line["http"].rsplit(":", 1)[1]
                load = subprocess.Popen([ws_load, "--port", port, "--clients", str(clients), "--idle", "3"],
                                        stdout=subprocess.PIPE, text=True)
                try:
                    assert load.stdout.readline().strip() == "CONNECTED", "ws_load did not connect"
                    time.sleep(0.5)
                    loaded = memory(proc.pid)
                finally:
                    load.wait(timeout=30)
            return ready_ms, idle, threads, loaded
        finally:
            proc.terminate()
            proc.wait(timeout=10)

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary", nargs="?", default="target/release/robind")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--clients", type=int, default=1000, help="idle WebSocket clients for the per-client figure (0: skip)")
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    os.sync()  # a just-linked binary's dirty page cache would count as Private_Dirty
    runs = [one_run(opts.binary) for _ in range(opts.runs)]
    ready = sorted(r[0] for r in runs)
    result = {
        "binary_bytes": os.path.getsize(opts.binary),
        "ready_ms_median": round(statistics.median(ready), 2),
        "ready_ms_p90": round(ready[int(len(ready) * 0.9) - 1], 2),
    }
    for key in runs[0][1]:
        result[f"idle_{key}"] = max(r[1][key] for r in runs)
    result["idle_threads"] = max(r[2] for r in runs)
    result["runs"] = opts.runs
    ws_load = os.path.join(os.path.dirname(os.path.abspath(opts.binary)), "examples", "ws_load")
    if opts.clients and not os.access(ws_load, os.X_OK):
        print(f"no {ws_load} (cargo build --release --examples): no per-client figure", file=sys.stderr)
    elif opts.clients:
        _, idle, _, loaded = one_run(opts.binary, opts.clients, ws_load)
        result["clients"] = opts.clients
        for key in ("vmrss_kib", "rssanon_kib", "pss_kib", "private_dirty_kib"):
            result[f"clients_{key}"] = loaded[key]
            per_client = (loaded[key] - idle[key]) / opts.clients
            result[f"per_client_{key.removesuffix('_kib')}_kib"] = round(per_client, 2)
    if opts.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:28} {value}")

if __name__ == "__main__":
    sys.exit(main())
