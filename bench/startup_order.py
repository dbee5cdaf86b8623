#!/usr/bin/env python3
"""Writes link/robind.order: the functions a release robind runs from exec until it is idle,
and while idle WebSocket clients connect, for lld to place together (see build.rs).

Usage: bench/startup_order.py [--clients N]
Needs valgrind (callgrind) and cargo; the clients need target/release/examples/ws_load
(cargo build --release --examples), else only start-up and idle are recorded.

1. Relinks the release robind with a link map (cargo rustc ... -Wl,-Map), so that addresses in
   the stripped binary can be named.
2. Runs it under callgrind with its directories in a temporary directory, waits for its ready
   line, connects the clients, waits, and has callgrind dump what ran so far (not the shutdown).
3. Maps each instruction callgrind saw run in robind to the input section of the link map that
   holds it; the section's name is the symbol's (`.text.<symbol>`). Writes them in the order
   callgrind listed them.

Symbol names carry hashes of the crate's build (Cargo.lock, profile, toolchain): run this again
after changing those, and after larger code changes, then rebuild. Every run has a timeout.
"""
import argparse, bisect, json, os, re, signal, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
MAP = os.path.join(RELEASE, "robind.map")
ORDER = os.path.join(ROOT, "link", "robind.order")
# `.text.<symbol>`, `.text.unlikely.<symbol>`, `.text.hot.<symbol>`: the symbol is what lld orders by.
SECTION = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s+\S.*:\(\.text\.(?:unlikely\.|hot\.)?(.+)\)$")


def link_with_map():
    subprocess.run(["cargo", "rustc", "--release", "--bin", "robind", "--", "-C", f"link-arg=-Wl,-Map={MAP}"],
                   cwd=ROOT, check=True, timeout=3600)


def text_sections():
    sections = []
    with open(MAP) as f:
        for line in f:
            m = SECTION.match(line)
            if m and m.group(3) != "startup":
                sections.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3)))
    sections.sort()
    return sections


def run_under_callgrind(tmp, clients):
    out = os.path.join(tmp, "callgrind.out")
    env = dict(os.environ, HOME=tmp, ROBIN_LOG="warn")
    daemon = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--dump-instr=yes", "--dump-line=no", f"--callgrind-out-file={out}",
         os.path.join(RELEASE, "robind"), "--listen", "127.0.0.1:0", "--data-dir", f"{tmp}/d",
         "--runtime-dir", f"{tmp}/r"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        ready = json.loads(daemon.stdout.readline())
        time.sleep(2)
        ws_load = os.path.join(RELEASE, "examples", "ws_load")
        if clients and os.access(ws_load, os.X_OK):
            port = ready["http"].rsplit(":", 1)[1]
            load = subprocess.Popen([ws_load, "--port", port, "--clients", str(clients), "--idle", "5"],
                                    stdout=subprocess.PIPE, text=True)
            assert load.stdout.readline().strip() == "CONNECTED", "ws_load did not connect"
            time.sleep(2)
        elif clients:
            print(f"no {ws_load}: start-up and idle only", file=sys.stderr)
        subprocess.run(["callgrind_control", "--dump", str(daemon.pid)], check=True, timeout=60,
                       stdout=subprocess.DEVNULL)
        time.sleep(2)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    return f"{out}.1"


def executed_addresses(dump):
    """Addresses of the instructions callgrind saw run in robind. Instruction-level: a stripped
    binary has no function boundaries, and a function entered by a tail call would otherwise be
    counted as part of its caller."""
    objects, current, address, seen = {}, None, 0, []
    with open(dump, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"^(c?ob)=\((\d+)\)(?: (.*))?$", line)
            if m:
                objects.setdefault(m.group(2), m.group(3))
                if m.group(1) == "ob":
                    current = objects[m.group(2)]
                continue
            # Cost lines start with the instruction's address: absolute, relative to the last
            # one (+n, -n), or the same (*); `calls=` lines are followed by one of them.
            m = re.match(r"^(0x[0-9a-f]+|[+-]\d+|\*)(?:\s|$)", line)
            if not m:
                continue
            token = m.group(1)
            if token.startswith("0x"):
                address = int(token, 16)
            elif token != "*":
                address += int(token)
            if current and current.endswith("/robind"):
                seen.append(address)
    return seen


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=20)
    opts = parser.parse_args()
    link_with_map()
    sections = text_sections()
    starts = [s[0] for s in sections]
    with tempfile.TemporaryDirectory() as tmp:
        addresses = executed_addresses(run_under_callgrind(tmp, opts.clients))
    order, placed, unplaced = [], set(), set()
    for address in addresses:
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and sections[i][0] <= address < sections[i][0] + sections[i][1]:
            if sections[i][2] not in placed:
                placed.add(sections[i][2])
                order.append(sections[i][2])
        else:
            unplaced.add(address)
    size = sum(s[1] for s in sections if s[2] in placed)
    os.makedirs(os.path.dirname(ORDER), exist_ok=True)
    with open(ORDER, "w") as f:
        f.write("".join(f"{name}\n" for name in order))
    print(f"{len(order)} functions, {size // 1024} KiB of .text, written to {os.path.relpath(ORDER, ROOT)}; "
          f"{len(unplaced)} instructions outside any .text input section (PLT, .init, .text.startup)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
