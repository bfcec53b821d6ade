"""Shared machinery of the loopback fakes: an aiohttp server on 127.0.0.1 that runs either in
the caller's event loop (``async with``) or in a thread with a loop of its own (``in_thread()``),
request-body decoding, and the rate limiters both platforms need.

State of a fake is guarded by one ``threading.RLock`` so tests may read it from any thread while
the fake's loop writes it.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Self

from aiohttp import web


class FakeServer:
    """Base class: subclasses add routes in ``_setup(app)``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self.port: int = 0

    # -- lifecycle -------------------------------------------------------------------------
    def _setup(self, app: web.Application) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _on_stop(self) -> None:
        """Hook: wake long-running handlers so shutdown is quick."""

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Self:
        self._loop = asyncio.get_running_loop()
        self._closing = False
        app = web.Application(client_max_size=16 * 1024 * 1024)
        self._setup(app)
        # A short shutdown timeout: a test must never wait for a parked long poll.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[union-attr]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._runner = runner
        return self

    async def stop(self) -> None:
        self._closing = True
        await self._on_stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @classmethod
    @contextmanager
    def in_thread(cls, **kwargs: Any) -> Iterator[Self]:
        """``with FakeX.in_thread(**ctor_kwargs) as fake:`` — the fake serves from a background
        thread (own event loop), so a blocking test can drive a subprocess against it."""
        fake = cls(**kwargs)
        with fake.threaded():
            yield fake

    @contextmanager
    def threaded(self) -> Iterator[Self]:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # surfaced to the caller below
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.stop())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name=f"{type(self).__name__}-loop", daemon=True)
        thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start")
        if failure:
            raise failure[0]
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)

    # -- cross-thread helpers ----------------------------------------------------------------
    def _call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` in the fake's loop, from whichever thread we are on."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn()
        else:
            loop.call_soon_threadsafe(fn)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Blocking wait (for thread mode); returns whether ``predicate`` came true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate():
                    return True
            time.sleep(0.01)
        with self._lock:
            return predicate()

    async def await_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:  # noqa: ASYNC109
        """Async wait (for in-loop mode); returns whether ``predicate`` came true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate():
                    return True
            await asyncio.sleep(0.01)
        with self._lock:
            return predicate()


# -- request bodies -------------------------------------------------------------------------
async def read_params(request: web.Request) -> dict[str, Any]:
    """Query string + body (JSON, url-encoded form or multipart) as one dict. Form values stay
    strings; callers decode the fields they know to be JSON (``json_field``)."""
    params: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return params
    ctype = request.content_type
    if ctype == "application/json":
        raw = await request.read()
        if raw.strip():
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("JSON body must be an object")
            params.update(body)
    elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        # File parts stay FileField objects; text parts are str.
        params.update(form.items())
    else:
        raw = await request.read()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            if isinstance(body, dict):
                params.update(body)
    return params


def json_field(params: dict[str, Any], key: str) -> Any:
    """A field that form encodings carry as a JSON string and JSON bodies carry as a value."""
    value = params.get(key)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[") or stripped in ("true", "false", "null"):
            return json.loads(stripped)
    return value


def bool_field(params: dict[str, Any], key: str, default: bool = False) -> bool:
    value = params.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def int_field(params: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = params.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ValueError(f"{key} must be a number")
    return int(value)


def utf16_len(text: str) -> int:
    """Length as Telegram and JavaScript count it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


# -- rate limiters ----------------------------------------------------------------------------
class SlidingWindow:
    """At most ``limit`` events in any window of ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._events: deque[float] = deque()

    def check(self, now: float) -> float:
        """0 if an event may happen now, else seconds until it may."""
        while self._events and self._events[0] <= now - self.window:
            self._events.popleft()
        if len(self._events) < self.limit:
            return 0.0
        return max(self._events[0] + self.window - now, 1e-3)

    def hit(self, now: float) -> None:
        # Arrival times may be recorded slightly out of order (handlers race); keep them sorted.
        if self._events and now < self._events[-1]:
            bisect.insort(self._events, now)
        else:
            self._events.append(now)


class TokenBucket:
    """``rate`` events per second on average with bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at: float | None = None

    def _refill(self, now: float) -> None:
        if self._at is not None:
            if now <= self._at:  # an earlier arrival handled later: no time has passed for it
                return
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def check(self, now: float) -> float:
        self._refill(now)
        if self._tokens >= 1.0:
            return 0.0
        return max((1.0 - self._tokens) / self.rate, 1e-3)

    def hit(self, now: float) -> None:
        self._refill(now)
        self._tokens -= 1.0


def retry_after_seconds(wait: float) -> int:
    """Both platforms announce whole seconds, at least one."""
    return max(1, math.ceil(wait))
