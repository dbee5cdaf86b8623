"""robin_bridge: let existing Python code broadcast and track tasks through robind.

The migration bridge across processes. Code that used to serve rotki's WebSocket itself calls
``broadcast_ws_message(message_type=..., data=...)`` as before, and robind delivers the message
to every connected UI, checked against rotki's message shapes. Long work is wrapped in
``track(name)``, so it shows in robind's task list, status page and async task API, with its
progress on ``/ws``.

Standard library only, Python 3.9+. Every call waits at most ``timeout`` seconds (1 by default)
and never raises into the caller when robind is down or refuses a message: it logs (once per
outage) and counts, as robin's Rust bridge does. ``stats()`` says what was sent and dropped.

    import robin_bridge

    robin_bridge.broadcast_ws_message("legacy", {"verbosity": "warning", "value": "disk almost full"})

    @robin_bridge.track("import_csv", total=3)
    def import_csv(task):
        for row in range(3):
            ...
            task.progress(row + 1)

    async def sync_exchange():
        async with robin_bridge.AsyncBridge() as bridge:
            async with bridge.track("sync_kraken") as task:
                await task.progress(1, total=10)

The control socket is found as ``robinctl`` finds it: ``ROBIN_SOCKET``, else the runtime
directory (``ROBIN_RUNTIME_DIR``, ``runtime_dir`` in ``ROBIN_CONFIG``'s file on Python 3.11+,
``$XDG_RUNTIME_DIR/robin``, else ``DATA_DIR/run``) joined with ``robind.sock``.
"""

import asyncio
import decimal
import functools
import inspect
import itertools
import json
import logging
import os
import socket
import threading
import time

__all__ = [
    "AsyncBridge",
    "Bridge",
    "RobinError",
    "add_error",
    "add_warning",
    "broadcast_ws_message",
    "configure",
    "default_socket_path",
    "stats",
    "track",
]

__version__ = "0.1.0"

log = logging.getLogger("robin_bridge")

#: How long a call waits for robind by default, in seconds.
DEFAULT_TIMEOUT = 1.0
#: After a failed connection, calls return at once (counted as dropped) for this long.
RETRY_AFTER = 1.0
#: Requests written at once by ``broadcast_many`` before their answers are read.
PIPELINE_BATCH = 128
#: Longest answer line read from robind.
MAX_LINE = 1 << 20


class RobinError(Exception):
    """robind answered a call with an error (only raised by ``Bridge.call``)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class _Unavailable(Exception):
    """robind could not be reached or did not answer in time."""


def default_socket_path():
    """The control socket, found the way robinctl finds it."""
    env = os.environ
    if env.get("ROBIN_SOCKET"):
        return env["ROBIN_SOCKET"]
    runtime = env.get("ROBIN_RUNTIME_DIR") or _from_config_file("runtime_dir")
    if not runtime and env.get("XDG_RUNTIME_DIR"):
        runtime = os.path.join(env["XDG_RUNTIME_DIR"], "robin")
    if not runtime:
        data = env.get("ROBIN_DATA_DIR") or _from_config_file("data_dir")
        if not data:
            base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
            data = os.path.join(base, "robin")
        runtime = os.path.join(data, "run")
    return os.path.join(runtime, "robind.sock")


def _from_config_file(key):
    path = os.environ.get("ROBIN_CONFIG")
    if not path:
        return None
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        return None
    try:
        with open(path, "rb") as file:
            value = tomllib.load(file).get(key)
    except (OSError, ValueError):
        return None
    if isinstance(value, str) and not os.path.isabs(value):
        value = os.path.join(os.path.dirname(path), value)
    return value


class _Counters:
    """What a bridge did: sent, dropped (robind unreachable), refused (robind said no)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.values = {"sent": 0, "dropped": 0, "refused": 0}

    def add(self, key):
        with self._lock:
            self.values[key] += 1

    def snapshot(self):
        with self._lock:
            return dict(self.values)


class _Outage:
    """Logs once when robind goes away and once when it is back."""

    def __init__(self):
        self.down_until = 0.0
        self.logged = False

    def failed(self, why):
        self.down_until = time.monotonic() + RETRY_AFTER
        if not self.logged:
            log.warning("robind is not reachable (%s); dropping messages until it is", why)
            self.logged = True

    def recovered(self):
        if self.logged:
            log.info("robind is reachable again")
            self.logged = False

    def waiting(self):
        return time.monotonic() < self.down_until


def _remaining(deadline):
    """Seconds left until ``deadline``; _Unavailable when none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Unavailable("no answer in time")
    return left


class _NotJson(Exception):
    """A request that cannot be sent: its params are not JSON."""


def _json_default(value):
    # Amounts in rotki's payloads are decimal strings; a Decimal is sent as one.
    if isinstance(value, decimal.Decimal) and value.is_finite():
        return str(value)
    raise TypeError("{!r} is not JSON".format(value))


def _request_line(request_id, method, params):
    """One request as a line; _NotJson when the params cannot be JSON (NaN, an object)."""
    try:
        text = json.dumps({"id": request_id, "method": method, "params": params}, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as err:
        raise _NotJson(str(err)) from None
    return text.encode() + b"\n"


def _decode_reply(line, expected_id, abandoned, on_notification):
    """The reply to ``expected_id`` in ``line``; None for a notification (handled) or the late
    answer of a call that gave up waiting (skipped)."""
    message = json.loads(line)
    if not isinstance(message, dict):
        raise _Unavailable("an answer that is not a JSON object")
    if "method" in message and "id" not in message:
        on_notification(message)
        return None
    if message.get("id") in abandoned:
        abandoned.discard(message.get("id"))
        return None
    if message.get("id") != expected_id:
        raise _Unavailable("an answer out of order")
    if "error" in message and not isinstance(message["error"], dict):
        raise _Unavailable("an error answer without code and message")
    return message


class Bridge:
    """A synchronous, thread-safe connection to robind's control socket.

    One connection, opened on first use and again after a failure (at most once per
    ``RETRY_AFTER`` seconds). Tasks begun with ``track`` belong to this connection: if it closes
    before they end, robind ends them as failed ("the client went away").
    """

    def __init__(self, socket_path=None, timeout=DEFAULT_TIMEOUT):
        self.socket_path = socket_path or default_socket_path()
        self.timeout = timeout
        self._lock = threading.RLock()
        self._sock = None
        self._buffer = b""
        self._ids = itertools.count(1)
        self._counters = _Counters()
        self._outage = _Outage()
        self._cancelled = set()
        self._abandoned = set()

    # -- the public API -------------------------------------------------------------------

    def broadcast_ws_message(self, message_type, data):
        """Broadcasts ``{"type": message_type, "data": data}`` to every UI; its ``seq``, or None
        when it was dropped or refused (see ``stats()`` and the log)."""
        result = self._send("broadcast", {"type": message_type, "data": data})
        return None if result is None else result.get("seq")

    def add_error(self, value):
        """A user-facing error, through robind's messages aggregator (kept if no UI listens)."""
        return self._send("messages.add", {"verbosity": "error", "value": str(value)}) is not None

    def add_warning(self, value):
        """A user-facing warning, through robind's messages aggregator."""
        return self._send("messages.add", {"verbosity": "warning", "value": str(value)}) is not None

    def broadcast_many(self, messages):
        """Broadcasts ``(message_type, data)`` pairs pipelined on the connection (all requests
        written, then all answers read); how many were accepted."""
        requests = [("broadcast", {"type": kind, "data": data}) for kind, data in messages]
        accepted = 0
        # In batches, each with its own timeout: a batch is one write and its answers.
        for start in range(0, len(requests), PIPELINE_BATCH):
            results = self._send_many(requests[start : start + PIPELINE_BATCH])
            accepted += sum(1 for result in results if result is not None)
        return accepted

    def track(self, name, total=None, exception_is_error=True):
        """A task named ``name``, as a context manager or a decorator (for functions and
        coroutines; a decorated function may take the task as a keyword ``task``)."""
        return _Tracker(self, name, total, exception_is_error)

    def stats(self):
        """``{"sent", "dropped", "refused"}`` counts for this bridge."""
        return self._counters.snapshot()

    def call(self, method, params=None):
        """One call; raises RobinError when robind refuses, OSError when it is unreachable."""
        with self._lock:
            try:
                return self._call_locked(method, params or {})
            except _Unavailable as err:
                raise OSError(str(err)) from None

    def close(self):
        with self._lock:
            self._drop_connection()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the plumbing ---------------------------------------------------------------------

    def _send(self, method, params):
        results = self._send_many([(method, params)])
        return results[0]

    def _send_many(self, requests):
        deadline = time.monotonic() + self.timeout
        if not self._lock.acquire(timeout=self.timeout):
            # Another thread's call holds the connection past our whole budget.
            for _ in requests:
                self._counters.add("dropped")
            return [None] * len(requests)
        try:
            return self._send_many_locked(requests, deadline)
        finally:
            self._lock.release()

    def _send_many_locked(self, requests, deadline):
        results = [None] * len(requests)
        if self._outage.waiting():
            for _ in requests:
                self._counters.add("dropped")
            return results
        # Requests that cannot be JSON are the caller's mistake: refused here, logged, counted.
        lines, sendable = [], []
        for index, (method, params) in enumerate(requests):
            request_id = next(self._ids)
            try:
                lines.append(_request_line(request_id, method, params))
                sendable.append((index, method, request_id))
            except _NotJson as err:
                self._counters.add("refused")
                log.error("cannot send %s: %s", method, err)
        if not sendable:
            return results
        replies = []
        try:
            sock = self._connection(deadline)
            sock.settimeout(_remaining(deadline))
            sock.sendall(b"".join(lines))
        except (OSError, _Unavailable) as err:
            # A write that failed half way leaves the stream unusable.
            self._drop_connection()
            return self._dropped(sendable, results, err)
        try:
            for _, _, request_id in sendable:
                replies.append(self._read_reply(request_id, deadline))
        except (socket.timeout, _Unavailable, OSError, ValueError) as err:
            if isinstance(err, socket.timeout) or str(err) == "no answer in time":
                # robind is slow, not gone: keep the connection (and the tasks it owns), and
                # skip the late answers when they come.
                self._abandoned.update(request_id for _, _, request_id in sendable[len(replies):])
            else:
                self._drop_connection()
            self._dropped(sendable[len(replies):], results, err)
            sendable = sendable[: len(replies)]
        else:
            self._outage.recovered()
        for (index, method, _), reply in zip(sendable, replies):
            if "error" in reply:
                self._counters.add("refused")
                log.error("robind refused %s: %s", method, reply["error"].get("message"))
            else:
                self._counters.add("sent")
                results[index] = reply.get("result")
        return results

    def _dropped(self, sendable, results, why):
        self._outage.failed(why)
        for _ in sendable:
            self._counters.add("dropped")
        return results

    def _call_locked(self, method, params):
        deadline = time.monotonic() + self.timeout
        try:
            sock = self._connection(deadline)
            request_id = next(self._ids)
            sock.settimeout(_remaining(deadline))
            sock.sendall(_request_line(request_id, method, params))
            reply = self._read_reply(request_id, deadline)
        except _NotJson as err:
            raise RobinError(-32602, "the params are not JSON: {}".format(err)) from None
        except (OSError, ValueError) as err:
            self._drop_connection()
            raise _Unavailable(str(err)) from None
        except _Unavailable:
            self._drop_connection()
            raise
        if "error" in reply:
            raise RobinError(reply["error"].get("code"), reply["error"].get("message"))
        return reply.get("result")

    def _connection(self, deadline):
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(_remaining(deadline))
                sock.connect(self.socket_path)
            except (OSError, _Unavailable):
                sock.close()
                raise
            self._sock, self._buffer = sock, b""
        return self._sock

    def _read_reply(self, request_id, deadline):
        while True:
            end = self._buffer.find(b"\n")
            while end < 0:
                if len(self._buffer) > MAX_LINE:
                    raise _Unavailable("an answer line too long")
                self._sock.settimeout(_remaining(deadline))
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise _Unavailable("robind closed the connection")
                self._buffer += chunk
                end = self._buffer.find(b"\n")
            line, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
            reply = _decode_reply(line, request_id, self._abandoned, self._on_notification)
            if reply is not None:
                return reply

    def _on_notification(self, message):
        if message.get("method") == "task_cancelled" and isinstance(message.get("params"), dict):
            task_id = message["params"].get("task_id")
            self._cancelled.add(task_id)
            log.info("robind cancelled task %s", task_id)

    def _drop_connection(self):
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._buffer = b""
                self._abandoned.clear()


class _TaskState:
    """What both trackers know of their task: its name, total, number and fate."""

    def __init__(self, bridge, name, total, exception_is_error):
        self.bridge = bridge
        self.name = name
        self.total = total
        self.exception_is_error = exception_is_error
        self.task_id = None

    @property
    def cancelled(self):
        """Whether robind cancelled the task (``tasks.cancel``): stop the work when you can."""
        return self.task_id is not None and self.task_id in self.bridge._cancelled


class _Tracker(_TaskState):
    """A task robind tracks while this process does the work (see ``Bridge.track``)."""

    def progress(self, processed, total=None):
        """Reports ``processed`` units done (of ``total``, or the begun total); False once the
        task was cancelled or cannot be reported."""
        if self.task_id is None or self.cancelled:
            return False
        return self.bridge._send("tasks.progress", _progress_params(self, processed, total)) is not None and not self.cancelled

    # -- begin and end --------------------------------------------------------------------

    def _begin(self):
        result = self.bridge._send("tasks.begin", _begin_params(self))
        self.task_id = None if result is None else result.get("task_id")
        return self

    def _end(self, result=None, error=None):
        if self.task_id is None or self.cancelled:
            return
        self.bridge._send("tasks.end", _end_params(self, result, error))

    def __enter__(self):
        return self._begin()

    def __exit__(self, kind, value, traceback):
        if value is None:
            self._end(result=None)
        else:
            self._end(error="{}: {}".format(kind.__name__, value))
        self.bridge._cancelled.discard(self.task_id)  # done with it: the set stays small
        return False

    async def __aenter__(self):
        await asyncio.get_running_loop().run_in_executor(None, self._begin)
        return self

    async def __aexit__(self, kind, value, traceback):
        error = None if value is None else "{}: {}".format(kind.__name__, value)
        await asyncio.get_running_loop().run_in_executor(None, functools.partial(self._end, None, error))
        return False

    def __call__(self, function):
        wants_task = "task" in inspect.signature(function).parameters
        tracker_args = (self.bridge, self.name, self.total, self.exception_is_error)
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args, **kwargs):
                tracker = _Tracker(*tracker_args)
                async with tracker:
                    if wants_task:
                        kwargs["task"] = tracker
                    result = await function(*args, **kwargs)
                    await asyncio.get_running_loop().run_in_executor(None, tracker._end, result)
                    tracker.task_id = None  # ended with its result; __aexit__ has nothing left
                    return result

            return run_async

        @functools.wraps(function)
        def run(*args, **kwargs):
            tracker = _Tracker(*tracker_args)
            with tracker:
                if wants_task:
                    kwargs["task"] = tracker
                result = function(*args, **kwargs)
                tracker._end(result)
                tracker.task_id = None
                return result

        return run


def _begin_params(tracker):
    params = {"name": tracker.name, "exception_is_error": tracker.exception_is_error}
    if tracker.total is not None:
        params["total"] = tracker.total
    return params


def _progress_params(tracker, processed, total):
    params = {"id": tracker.task_id, "processed": processed}
    if total is not None:
        params["total"] = total
    return params


def _end_params(tracker, result, error):
    if error is not None:
        return {"id": tracker.task_id, "error": error}
    return {"id": tracker.task_id, "result": _jsonable(result)}


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


class AsyncBridge:
    """The same API for asyncio code: every method is a coroutine, and waits at most
    ``timeout`` seconds. Use one per event loop."""

    def __init__(self, socket_path=None, timeout=DEFAULT_TIMEOUT):
        self.socket_path = socket_path or default_socket_path()
        self.timeout = timeout
        self._lock = asyncio.Lock()
        self._streams = None
        self._ids = itertools.count(1)
        self._counters = _Counters()
        self._outage = _Outage()
        self._cancelled = set()
        self._abandoned = set()

    async def broadcast_ws_message(self, message_type, data):
        result = await self._send("broadcast", {"type": message_type, "data": data})
        return None if result is None else result.get("seq")

    async def add_error(self, value):
        return await self._send("messages.add", {"verbosity": "error", "value": str(value)}) is not None

    async def add_warning(self, value):
        return await self._send("messages.add", {"verbosity": "warning", "value": str(value)}) is not None

    def track(self, name, total=None, exception_is_error=True):
        return _AsyncTracker(self, name, total, exception_is_error)

    def stats(self):
        return self._counters.snapshot()

    async def close(self):
        await self._drop_connection()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def _send(self, method, params):
        deadline = time.monotonic() + self.timeout
        request_id = next(self._ids)
        try:
            line = _request_line(request_id, method, params)
        except _NotJson as err:
            self._counters.add("refused")
            log.error("cannot send %s: %s", method, err)
            return None
        try:
            # The wait for the connection counts against the same timeout as the call.
            await asyncio.wait_for(self._lock.acquire(), self.timeout)
        except asyncio.TimeoutError:
            self._counters.add("dropped")
            return None
        try:
            if self._outage.waiting():
                self._counters.add("dropped")
                return None
            try:
                left = max(deadline - time.monotonic(), 0.001)
                reply = await asyncio.wait_for(self._exchange(request_id, line), left)
            except asyncio.TimeoutError as err:
                # Slow, not gone: the connection (and the tasks it owns) stays; the late
                # answer is skipped when it comes.
                self._abandoned.add(request_id)
                self._outage.failed(err or "no answer in time")
                self._counters.add("dropped")
                return None
            except (OSError, _Unavailable, ValueError) as err:
                await self._drop_connection()
                self._outage.failed(err)
                self._counters.add("dropped")
                return None
        finally:
            self._lock.release()
        self._outage.recovered()
        if "error" in reply:
            self._counters.add("refused")
            log.error("robind refused %s: %s", method, reply["error"].get("message"))
            return None
        self._counters.add("sent")
        return reply.get("result")

    async def _exchange(self, request_id, line):
        if self._streams is None:
            self._streams = await asyncio.open_unix_connection(self.socket_path, limit=MAX_LINE)
        reader, writer = self._streams
        writer.write(line)
        await writer.drain()
        while True:
            line = await reader.readline()
            if not line:
                raise _Unavailable("robind closed the connection")
            reply = _decode_reply(line, request_id, self._abandoned, self._on_notification)
            if reply is not None:
                return reply

    def _on_notification(self, message):
        if message.get("method") == "task_cancelled" and isinstance(message.get("params"), dict):
            self._cancelled.add(message["params"].get("task_id"))

    async def _drop_connection(self):
        self._abandoned.clear()
        if self._streams is not None:
            _, writer = self._streams
            self._streams = None
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), self.timeout)
            except (OSError, asyncio.TimeoutError):
                pass


class _AsyncTracker(_TaskState):
    """``AsyncBridge.track``: an async context manager, or a decorator for coroutines."""

    async def progress(self, processed, total=None):
        if self.task_id is None or self.cancelled:
            return False
        params = _progress_params(self, processed, total)
        return await self.bridge._send("tasks.progress", params) is not None and not self.cancelled

    async def _end(self, result=None, error=None):
        if self.task_id is None or self.cancelled:
            return
        params = _end_params(self, result, error)
        self.task_id = None  # ended once: a later __aexit__ has nothing left to do
        await self.bridge._send("tasks.end", params)

    async def __aenter__(self):
        result = await self.bridge._send("tasks.begin", _begin_params(self))
        self.task_id = None if result is None else result.get("task_id")
        return self

    async def __aexit__(self, kind, value, traceback):
        error = None if value is None else "{}: {}".format(kind.__name__, value)
        await self._end(None, error)
        return False

    def __call__(self, function):
        wants_task = "task" in inspect.signature(function).parameters
        args_of_tracker = (self.bridge, self.name, self.total, self.exception_is_error)

        @functools.wraps(function)
        async def run(*args, **kwargs):
            tracker = _AsyncTracker(*args_of_tracker)
            async with tracker:
                if wants_task:
                    kwargs["task"] = tracker
                result = await function(*args, **kwargs)
                await tracker._end(result)
                return result

        return run


# -- the module-level API, over one shared Bridge ----------------------------------------

_default = None
_default_lock = threading.Lock()


def configure(socket_path=None, timeout=DEFAULT_TIMEOUT):
    """Points the module-level functions at ``socket_path`` with ``timeout``."""
    global _default
    with _default_lock:
        if _default is not None:
            _default.close()
        _default = Bridge(socket_path, timeout)
        return _default


def _bridge():
    global _default
    with _default_lock:
        if _default is None:
            _default = Bridge()
        return _default


def broadcast_ws_message(message_type, data):
    """rotki's ``broadcast_ws_message``, through robind: the message's seq, or None."""
    return _bridge().broadcast_ws_message(message_type, data)


def add_error(value):
    """A user-facing error (rotki's ``msg_aggregator.add_error``)."""
    return _bridge().add_error(value)


def add_warning(value):
    """A user-facing warning (rotki's ``msg_aggregator.add_warning``)."""
    return _bridge().add_warning(value)


def track(name, total=None, exception_is_error=True):
    """A tracked task, as a context manager or a decorator (see ``Bridge.track``)."""
    return _bridge().track(name, total, exception_is_error)


def stats():
    """The shared bridge's ``{"sent", "dropped", "refused"}``."""
    return _bridge().stats()
