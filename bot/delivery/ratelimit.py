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

from pydantic import BaseModel, ConfigDict, Field

Clock = Callable[[], float]

# Group-like chats share Telegram's per-group limit (20 msg/min).
GROUP_TYPES = frozenset({"group", "supergroup", "channel"})
SMOOTH = 0.8


class RateLimits(BaseModel):
    """One platform's send limits; each adapter's config model carries its own (``rate_limits``)."""

    model_config = ConfigDict(extra="forbid")

    per_bot_per_second: float = Field(default=30.0, gt=0)
    per_chat_per_second: float = Field(default=1.0, gt=0)
    per_group_per_minute: float = Field(default=20.0, gt=0)


class Slot:
    """One counted send: when it started and, once the request returned, when it ended."""

    __slots__ = ("end", "start")

    def __init__(self, start: float):
        self.start = start
        self.end: float | None = None


class Window:
    """Sliding-window limiter with even spacing and a pause (``retry_after``).

    The platform counts *arrivals*; an arrival lies between our send's start and the end of
    its request. So the count in the window keeps a send until ``end + window`` (a send in
    flight stays counted), which holds however long the client library took to put the
    request on the wire, while the spacing between starts keeps the pace even.
    """

    def __init__(self, n: int, window: float, *, margin: float = 0.0, clock: Clock = time.monotonic):
        self.n = max(1, int(n))
        self.window = window + margin
        # Spacing a little under window/n: it smooths bursts, while the count in the window
        # (the limit the platform enforces) is what binds, so a late wake-up is made up for.
        self.spacing = SMOOTH * self.window / self.n
        self.clock = clock
        self.sent: deque[Slot] = deque()
        self.paused_until = 0.0
        self._lock = asyncio.Lock()
        self.last_used = 0.0

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self.clock() + max(0.0, seconds))

    def delay(self, now: float | None = None) -> float:
        """Seconds until a send is allowed (0 when it is allowed now)."""
        now = self.clock() if now is None else now
        while self.sent and self.sent[0].end is not None and self.sent[0].end <= now - self.window:
            self.sent.popleft()
        wait = self.paused_until - now
        if self.sent:
            wait = max(wait, self.sent[-1].start + self.spacing - now)
            if len(self.sent) >= self.n:
                oldest = self.sent[0].end
                # Still in flight: it cannot expire before it ends; look again shortly.
                wait = max(wait, oldest + self.window - now if oldest is not None else 0.002)
        return max(0.0, wait)

    def record(self, now: float | None = None) -> Slot:
        slot = Slot(self.clock() if now is None else now)
        self.sent.append(slot)
        self.last_used = slot.start
        return slot

    def done(self, slot: Slot, now: float | None = None) -> None:
        slot.end = self.clock() if now is None else now
        self.last_used = slot.end

    async def ready(self) -> None:
        """Wait until a send would be allowed, without counting one."""
        while True:
            wait = self.delay()
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    async def acquire(self) -> Slot:
        # The lock makes waiters go one at a time, in arrival order (asyncio.Lock is FIFO).
        async with self._lock:
            while True:
                wait = self.delay()
                if wait <= 0:
                    return self.record()
                await asyncio.sleep(wait)


class Permit:
    """The slots one send took; ``done()`` when its request has returned (or failed)."""

    __slots__ = ("slots",)

    def __init__(self, slots: list[tuple[Window, Slot]]):
        self.slots = slots

    def done(self) -> None:
        for w, slot in self.slots:
            if slot.end is None:
                w.done(slot)


def _shape(rate: float, per: float) -> tuple[int, float]:
    """``rate`` sends per ``per`` seconds as (n, window): 30/s -> (30, 1.0); 0.5/s -> (1, 2.0)."""
    if rate >= 1:
        n = int(rate)
        return n, per * n / rate
    return 1, per / rate


class Limits:
    """All limiters of one process: one per adapter (the bot) and one per chat.

    ``limits`` maps an adapter name to its ``RateLimits`` (or any object with the same three
    fields); adapters without an entry are not limited (the console).
    """

    def __init__(self, limits: dict[str, Any], *, margin: float = 0.005, clock: Clock = time.monotonic):
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

    async def acquire(self, adapter: str, chat_id: str, chat_type: str) -> Permit:
        """Wait until both the chat and the bot may send, then count the send for both.

        The chat's turn is only *checked* before queueing for the bot and *recorded* after,
        so time spent waiting for the bot (or a bot-wide pause) never shortens the gap the
        chat sees between two of its messages. Callers send one message per chat at a time
        and call ``done()`` on the permit when the request has returned.
        """
        chat = self.chat(adapter, chat_id, chat_type)
        bot = self.bot(adapter)
        while True:
            if chat is not None:
                await chat.ready()
            slots: list[tuple[Window, Slot]] = []
            if bot is not None:
                slots.append((bot, await bot.acquire()))
            if chat is None:
                return Permit(slots)
            if chat.delay() <= 0:
                slots.append((chat, chat.record()))
                return Permit(slots)
            # The chat was paused while we queued for the bot: that bot slot goes unused.
            for w, slot in slots:
                w.done(slot)

    def pause_chat(self, adapter: str, chat_id: str, chat_type: str, seconds: float) -> None:
        w = self.chat(adapter, chat_id, chat_type)
        if w is not None:
            w.pause(seconds)

    def pause_bot(self, adapter: str, seconds: float) -> None:
        w = self.bot(adapter)
        if w is not None:
            w.pause(seconds)
