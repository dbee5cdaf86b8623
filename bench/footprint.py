#!/usr/bin/env python3
"""Footprint of robind: binary size, idle RSS and threads, time from exec to READY=1.

Usage: bench/footprint.py [path/to/robind] [--runs N]
Builds nothing: pass the binary (default target/release/robind). Uses only loopback and a
temporary directory; every run is bounded by a timeout.
"""
import argparse, json, os, socket, statistics, subprocess, sys, tempfile, time

def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields

def kib(value):
    return int(value.split()[0])

def start(binary, tmp, notify_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROBIN_", "LISTEN_", "XDG_"))}
    env.update(NOTIFY_SOCKET=notify_path, HOME=tmp, ROBIN_LOG="warn")
    args = [binary, "--listen", "127.0.0.1:0", "--data-dir", f"{tmp}/data", "--runtime-dir", f"{tmp}/run"]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def one_run(binary):
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
            time.sleep(1.0)  # let the short-lived blocking thread that printed the ready line retire
            st = proc_status(proc.pid)
            threads = len(os.listdir(f"/proc/{proc.pid}/task"))
            return ready_ms, kib(st["VmRSS"]), kib(st["RssAnon"]), threads
        finally:
            proc.terminate()
            proc.wait(timeout=10)

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary", nargs="?", default="target/release/robind")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    runs = [one_run(opts.binary) for _ in range(opts.runs)]
    ready = sorted(r[0] for r in runs)
    result = {
        "binary_bytes": os.path.getsize(opts.binary),
        "ready_ms_median": round(statistics.median(ready), 2),
        "ready_ms_p90": round(ready[int(len(ready) * 0.9) - 1], 2),
        "idle_vmrss_kib": max(r[1] for r in runs),
        "idle_rssanon_kib": max(r[2] for r in runs),
        "idle_threads": max(r[3] for r in runs),
        "runs": opts.runs,
    }
    if opts.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:20} {value}")

if __name__ == "__main__":
    sys.exit(main())
