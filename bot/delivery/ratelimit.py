"""Send-rate limits kept on our side, before the platform enforces its own.

A ``Window`` allows at most ``n`` sends in any ``window`` seconds AND spaces sends at
least ``window / n`` apart. Spacing matters as much as the count: the platform counts
arrivals, and a burst of 30 sends at the start of a second is fragile to network jitter,
while evenly spaced sends are not. ``margin`` widens the window slightly for the same
reason (what we time is the send start, what the platform times is the arrival).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

Clock = Callable[[], float]

# Group-like chats share Telegram's per-group limit (20 msg/min).
GROUP_TYPES = frozenset({"group", "supergroup", "channel"})


class Window:
    """Sliding-window limiter with even spacing and a pause (``retry_after``)."""

    def __init__(self, n: int, window: float, *, margin: float = 0.0, clock: Clock = time.monotonic):
        self.n = max(1, int(n))
        self.window = window + margin
        self.spacing = self.window / self.n
        self.clock = clock
        self.sent: deque[float] = deque()
        self.paused_until = 0.0
        self._lock = asyncio.Lock()
        self.last_used = 0.0

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self.clock() + max(0.0, seconds))

    def delay(self, now: float | None = None) -> float:
        """Seconds until a send is allowed (0 when it is allowed now)."""
        now = self.clock() if now is None else now
        while self.sent and self.sent[0] <= now - self.window:
            self.sent.popleft()
        wait = self.paused_until - now
        if self.sent:
            wait = max(wait, self.sent[-1] + self.spacing - now)
            if len(self.sent) >= self.n:
                wait = max(wait, self.sent[0] + self.window - now)
        return max(0.0, wait)

    def record(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        self.sent.append(now)
        self.last_used = now

    async def ready(self) -> None:
        """Wait until a send would be allowed, without counting one."""
        while True:
            wait = self.delay()
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    async def acquire(self) -> None:
        # The lock makes waiters go one at a time, in arrival order (asyncio.Lock is FIFO).
        async with self._lock:
            while True:
                wait = self.delay()
                if wait <= 0:
                    self.record()
                    return
                await asyncio.sleep(wait)


def _shape(rate: float, per: float) -> tuple[int, float]:
    """``rate`` sends per ``per`` seconds as (n, window): 30/s -> (30, 1.0); 0.5/s -> (1, 2.0)."""
    if rate >= 1:
        n = int(rate)
        return n, per * n / rate
    return 1, per / rate


class Limits:
    """All limiters of one process: one per adapter (the bot) and one per chat.

    ``limits`` maps an adapter name to an object with ``per_bot_per_second``,
    ``per_chat_per_second`` and ``per_group_per_minute`` (``settings.delivery.<adapter>``);
    adapters without an entry are not limited (the console).
    """

    def __init__(self, limits: dict[str, Any], *, margin: float = 0.03, clock: Clock = time.monotonic):
        self.limits = limits
        self.margin = margin
        self.clock = clock
        self.bots: dict[str, Window] = {}
        self.chats: dict[tuple[str, str], Window] = {}

    def bot(self, adapter: str) -> Window | None:
        cfg = self.limits.get(adapter)
        if cfg is None:
            return None
        w = self.bots.get(adapter)
        if w is None:
            n, window = _shape(float(cfg.per_bot_per_second), 1.0)
            w = self.bots[adapter] = Window(n, window, margin=self.margin, clock=self.clock)
        return w

    def chat(self, adapter: str, chat_id: str, chat_type: str) -> Window | None:
        cfg = self.limits.get(adapter)
        if cfg is None:
            return None
        key = (adapter, chat_id)
        w = self.chats.get(key)
        if w is None:
            if len(self.chats) > 20_000:
                self._prune()
            if adapter == "telegram" and (chat_type in GROUP_TYPES or str(chat_id).startswith("-")):
                n, window = _shape(float(cfg.per_group_per_minute), 60.0)
            else:
                n, window = _shape(float(cfg.per_chat_per_second), 1.0)
            # A chat's limit costs no throughput to keep generously: a tenth of its spacing.
            margin = max(self.margin, 0.1 * window / n)
            w = self.chats[key] = Window(n, window, margin=margin, clock=self.clock)
        return w

    def _prune(self) -> None:
        now = self.clock()
        for key, w in list(self.chats.items()):
            if w.last_used < now - w.window and w.paused_until < now:
                del self.chats[key]

    async def acquire(self, adapter: str, chat_id: str, chat_type: str) -> None:
        """Wait until both the chat and the bot may send, then count the send for both.

        The chat's turn is only *checked* before queueing for the bot and *recorded* after,
        so time spent waiting for the bot (or a bot-wide pause) never shortens the gap the
        chat sees between two of its messages. Callers send one message per chat at a time.
        """
        chat = self.chat(adapter, chat_id, chat_type)
        bot = self.bot(adapter)
        while True:
            if chat is not None:
                await chat.ready()
            if bot is not None:
                await bot.acquire()
            if chat is None:
                return
            if chat.delay() <= 0:
                chat.record()
                return
            # The chat was paused while we queued for the bot: that bot slot goes unused.

    def pause_chat(self, adapter: str, chat_id: str, chat_type: str, seconds: float) -> None:
        w = self.chat(adapter, chat_id, chat_type)
        if w is not None:
            w.pause(seconds)

    def pause_bot(self, adapter: str, seconds: float) -> None:
        w = self.bot(adapter)
        if w is not None:
            w.pause(seconds)
