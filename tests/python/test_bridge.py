"""clients/python/robin_bridge.py against the real robind (run by tests/run.sh).

Each test starts robind on fresh directories and an ephemeral loopback port, and talks to it
the way migrated Python code would: through robin_bridge on the control socket, with a
`websockets` client on /ws and plain HTTP for the task API.
"""
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from websockets.sync.client import connect

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))

import robin_bridge  # noqa: E402

ROBIND = os.environ.get("ROBIND", os.path.join(ROOT, "target", "debug", "robind"))
PATIENCE = 10.0


class Robind:
    """A running robind and where it listens."""

    def __init__(self, tmp_path):
        self.dir = tmp_path
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ROBIN_", "XDG_", "NOTIFY_SOCKET", "LISTEN_"))}
        env["ROBIN_LOG"] = "info"
        self.log = open(tmp_path / "robind.log", "wb")
        self.process = subprocess.Popen(
            [ROBIND, "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"), "--runtime-dir", str(tmp_path / "run")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
        )
        line = self.process.stdout.readline()
        assert line, "robind exited before its ready line: " + (tmp_path / "robind.log").read_text()
        self.ready = json.loads(line)
        self.socket = self.ready["ipc"]
        self.http = "http://" + self.ready["http"]

    def get(self, path):
        with urllib.request.urlopen(self.http + path, timeout=PATIENCE) as reply:
            return json.loads(reply.read())["result"]

    def task_outcome(self, task_id):
        """GET /api/1/tasks/<id> once the task finished."""
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            try:
                result = self.get("/api/1/tasks/{}".format(task_id))
            except urllib.error.HTTPError as err:  # a failed task answers 500 with its outcome
                result = json.loads(err.read())["result"]
            if result["status"] == "completed":
                return result
            time.sleep(0.02)
        raise AssertionError("task {} did not finish".format(task_id))

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(PATIENCE)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


@pytest.fixture
def robind(tmp_path):
    daemon = Robind(tmp_path)
    yield daemon
    daemon.stop()


def ws_messages(ws, count):
    """The next `count` text frames, as received."""
    return [ws.recv(timeout=PATIENCE) for _ in range(count)]


def test_a_broadcast_reaches_websocket_clients_byte_for_byte_in_rotkis_shape(robind):
    bridge = robin_bridge.Bridge(robind.socket)
    with connect(robind.ready["ws"], open_timeout=PATIENCE) as ws:
        time.sleep(0.1)  # let robind register the client before the first broadcast
        sent = [
            ("legacy", {"verbosity": "warning", "value": "disk almost full"}),
            ("progress_updates", {"subtype": "multiple_prices_query_status", "total": 3, "processed": 1}),
            ("refresh_balances", {"type": "blockchain_balances", "blockchain": "eth"}),
        ]
        seqs = [bridge.broadcast_ws_message(kind, data) for kind, data in sent]
        received = ws_messages(ws, len(sent))
    for (kind, data), seq, frame in zip(sent, seqs, received):
        expected = json.dumps({"type": kind, "data": data, "seq": seq}, separators=(",", ":"))
        assert frame == expected
    assert bridge.stats() == {"sent": 3, "dropped": 0, "refused": 0}


def test_an_invalid_payload_is_refused_with_the_field_named(robind, caplog):
    bridge = robin_bridge.Bridge(robind.socket)
    bad = {"subtype": "multiple_prices_query_status", "total": "3", "processed": 1}
    with caplog.at_level(logging.ERROR, logger="robin_bridge"):
        assert bridge.broadcast_ws_message("progress_updates", bad) is None
    assert bridge.stats()["refused"] == 1
    assert "data.total" in caplog.text
    with pytest.raises(robin_bridge.RobinError) as refused:
        bridge.call("broadcast", {"type": "legacy", "data": {"verbosity": "loud", "value": "x"}})
    assert refused.value.code == -32602
    assert "data.verbosity" in refused.value.message


def test_an_external_task_shows_in_the_task_api_with_progress_on_ws_and_its_outcome(robind):
    bridge = robin_bridge.Bridge(robind.socket)
    seen = {}

    @bridge.track("import_csv", total=3)
    def import_csv(rows, task=None):
        seen["id"] = task.task_id
        seen["pending"] = robind.get("/api/1/tasks")["pending"]
        seen["running"] = [t["name"] for t in bridge.call("tasks.list")["running"]]
        for n in range(1, rows + 1):
            task.progress(n)
            time.sleep(0.3)  # past robind's progress rate limit, so each report goes out
        return {"rows": rows}

    with connect(robind.ready["ws"], open_timeout=PATIENCE) as ws:
        time.sleep(0.1)
        assert import_csv(3) == {"rows": 3}
        frames = [json.loads(frame) for frame in ws_messages(ws, 4)]
    task_id = seen["id"]
    assert seen["pending"] == [task_id]
    assert seen["running"] == ["import_csv"]
    progress = [f["data"] for f in frames if f["type"] == "progress_updates"]
    assert progress[-1] == {"subtype": "task_status", "task_id": task_id, "name": "import_csv", "total": 3, "processed": 3}
    assert [p["processed"] for p in progress] == sorted(p["processed"] for p in progress)
    outcome = robind.task_outcome(task_id)
    assert outcome["outcome"] == {"result": {"rows": 3}, "message": ""}
    assert outcome["status_code"] == 200


def test_an_exception_ends_the_task_as_failed_and_reaches_the_user(robind):
    bridge = robin_bridge.Bridge(robind.socket)
    with pytest.raises(ValueError):
        with bridge.track("sync_kraken") as task:
            raise ValueError("invalid API key")
    outcome = robind.task_outcome(task.task_id)
    assert outcome["status_code"] == 500
    assert "ValueError: invalid API key" in outcome["outcome"]["message"]
    assert any("invalid API key" in e for e in robind.get("/api/1/messages")["errors"])


CLIENT = """
import sys, time
sys.path.insert(0, sys.argv[1])
import robin_bridge
bridge = robin_bridge.Bridge(sys.argv[2])
with bridge.track("long_import", total=100) as task:
    print(task.task_id, flush=True)
    time.sleep(60)
"""


def test_a_client_killed_mid_task_ends_it_as_failed(robind):
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, os.path.join(ROOT, "clients", "python"), robind.socket],
        stdout=subprocess.PIPE,
    )
    try:
        task_id = int(client.stdout.readline())
        assert robind.get("/api/1/tasks")["pending"] == [task_id]
    finally:
        client.kill()
        client.wait(PATIENCE)
    outcome = robind.task_outcome(task_id)
    assert outcome["status_code"] == 500
    assert "the client went away" in outcome["outcome"]["message"]


def test_a_cancelled_task_is_told_to_its_client(robind):
    bridge = robin_bridge.Bridge(robind.socket)
    with bridge.track("slow_report", total=10) as task:
        assert task.progress(1)
        robin_bridge.Bridge(robind.socket).call("tasks.cancel", {"id": task.task_id})
        deadline = time.monotonic() + PATIENCE
        while task.progress(2) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert task.cancelled, (bridge.stats(), bridge._cancelled, task.task_id)
    # Cancelled, so no outcome is kept for the task API, and it is no longer pending.
    assert robind.get("/api/1/tasks")["pending"] == []
    assert task.task_id not in [t["id"] for t in bridge.call("tasks.list")["running"]]


def _too_long(signum, frame):
    raise AssertionError("a bridge call blocked far past its timeout")


def test_robind_down_costs_at_most_the_timeout_and_is_counted(robind):
    robind.process.send_signal(signal.SIGSTOP)  # accepts connections, never answers
    signal.signal(signal.SIGALRM, _too_long)
    signal.alarm(int(PATIENCE))  # a bridge that ignored its timeout would hang here for ever
    try:
        bridge = robin_bridge.Bridge(robind.socket, timeout=0.2)
        started = time.monotonic()
        assert bridge.broadcast_ws_message("legacy", {"verbosity": "error", "value": "x"}) is None
        took = time.monotonic() - started
        assert took < 0.2 + 0.5, took  # the timeout, plus scheduling slack on a busy machine
        # Within the retry window the next calls do not even try.
        started = time.monotonic()
        for _ in range(100):
            bridge.add_warning("y")
        assert time.monotonic() - started < 0.5
        assert bridge.stats() == {"sent": 0, "dropped": 101, "refused": 0}
    finally:
        signal.alarm(0)
        robind.process.send_signal(signal.SIGCONT)
    gone = robin_bridge.Bridge(str(robind.dir / "no-such.sock"), timeout=0.2)
    with gone.track("nowhere") as task:
        assert not task.progress(1)
    assert gone.stats()["dropped"] == 1  # tasks.begin; progress and end had no task to report


def test_the_asyncio_api(robind):
    async def main():
        async with robin_bridge.AsyncBridge(robind.socket) as bridge:
            seq = await bridge.broadcast_ws_message("legacy", {"verbosity": "warning", "value": "async"})
            assert isinstance(seq, int)

            @bridge.track("async_job", total=2)
            async def job(task=None):
                await task.progress(2)
                return "done"

            assert await job() == "done"
            return bridge.stats()

    stats = asyncio.run(asyncio.wait_for(main(), PATIENCE))
    assert stats == {"sent": 4, "dropped": 0, "refused": 0}


def test_a_short_stall_drops_calls_but_keeps_the_tasks(robind):
    bridge = robin_bridge.Bridge(robind.socket, timeout=0.3)
    with bridge.track("survives_a_stall", total=3) as task:
        assert task.progress(1)
        robind.process.send_signal(signal.SIGSTOP)
        try:
            assert not task.progress(2)  # times out: dropped, not raised
        finally:
            time.sleep(0.5)
            robind.process.send_signal(signal.SIGCONT)
        time.sleep(robin_bridge.RETRY_AFTER)  # past the retry window, robind answers again
        assert task.progress(3)
    outcome = robind.task_outcome(task.task_id)
    assert outcome["status_code"] == 200, outcome  # not "the client went away"
    assert bridge.stats()["dropped"] == 1


def test_values_that_are_not_json_are_refused_not_raised(robind, caplog):
    import decimal

    bridge = robin_bridge.Bridge(robind.socket)
    with connect(robind.ready["ws"], open_timeout=PATIENCE) as ws:
        time.sleep(0.1)
        data = {"subtype": "csv_import_result", "source_name": "kraken", "total": 1, "processed": 1, "messages": []}
        assert bridge.broadcast_ws_message("progress_updates", data) is not None
        with caplog.at_level(logging.ERROR, logger="robin_bridge"):
            assert bridge.broadcast_ws_message("legacy", {"verbosity": "error", "value": float("nan")}) is None
            assert bridge.broadcast_ws_message("legacy", {"verbosity": "error", "value": object()}) is None
        assert "cannot send broadcast" in caplog.text
        # A Decimal goes as the decimal string rotki's payloads use.
        assert bridge.broadcast_ws_message("legacy", {"verbosity": "warning", "value": decimal.Decimal("1.50")}) is not None
        frames = [json.loads(f) for f in ws_messages(ws, 2)]
    assert frames[1]["data"]["value"] == "1.50"
    assert bridge.stats() == {"sent": 2, "dropped": 0, "refused": 2}


def _fake_robind(path, answer):
    """A Unix socket server answering each request line with `answer(request)` (bytes)."""
    import socket as sockets
    import threading

    server = sockets.socket(sockets.AF_UNIX)
    server.bind(path)
    server.listen(8)

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=lambda c=conn: _answer_lines(c, answer), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return server


def _answer_lines(conn, answer):
    with conn:
        for line in conn.makefile("rb"):
            reply = answer(json.loads(line))
            if reply is not None:
                conn.sendall(reply)


def test_garbage_from_the_socket_never_raises_into_the_caller(tmp_path):
    replies = iter([b"[1, 2]\n", b'{"id": 2, "error": "flat"}\n', b"not json\n", b'"a string"\n'])
    server = _fake_robind(str(tmp_path / "fake.sock"), lambda request: next(replies, b"\n"))
    try:
        for _ in range(4):
            bridge = robin_bridge.Bridge(str(tmp_path / "fake.sock"), timeout=0.5)
            assert bridge.broadcast_ws_message("legacy", {"verbosity": "error", "value": "x"}) is None
            assert bridge.stats()["dropped"] == 1

        async def main():
            async with robin_bridge.AsyncBridge(str(tmp_path / "fake.sock"), timeout=0.5) as bridge:
                return await bridge.add_error("y"), bridge.stats()

        assert asyncio.run(main()) == (False, {"sent": 0, "dropped": 1, "refused": 0})
    finally:
        server.close()


def test_the_asyncio_timeout_bounds_each_call_even_when_calls_queue(tmp_path):
    def slowly(request):
        time.sleep(0.4)
        return json.dumps({"id": request["id"], "result": {"seq": 1}}).encode() + b"\n"

    server = _fake_robind(str(tmp_path / "slow.sock"), slowly)

    async def main():
        async with robin_bridge.AsyncBridge(str(tmp_path / "slow.sock"), timeout=1.0) as bridge:
            started = time.monotonic()
            calls = [bridge.broadcast_ws_message("legacy", {"verbosity": "error", "value": str(i)}) for i in range(10)]
            await asyncio.gather(*calls)
            return time.monotonic() - started, bridge.stats()

    try:
        took, stats = asyncio.run(asyncio.wait_for(main(), PATIENCE))
    finally:
        server.close()
    assert took < 1.0 + 0.8, took  # every call gave up by its own deadline; slack for a busy machine
    assert stats["sent"] >= 1 and stats["sent"] + stats["dropped"] == 10, stats
