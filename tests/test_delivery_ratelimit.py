"""Rate limiter invariants with a fake clock, and the chat/bot interplay with a real one."""

from __future__ import annotations

import asyncio
import itertools
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.delivery.ratelimit import Limits, Window, _shape


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 40), window=st.floats(0.5, 60),
       rtts=st.lists(st.floats(0, 0.5), min_size=1, max_size=120),
       gaps=st.lists(st.floats(0, 0.2), min_size=120, max_size=120))
def test_no_window_ever_holds_more_than_n_arrivals(n, window, rtts, gaps):
    clock = Clock()
    w = Window(n, window, clock=clock)
    slots = []
    for i, rtt in enumerate(rtts):
        clock.t += gaps[i]  # the caller shows up whenever
        d = w.delay()
        while d > 0:
            clock.t += d
            d = w.delay()
        slot = w.record()
        slot.end = slot.start + rtt  # the request returns rtt later (arrival somewhere between)
        w.done(slot, slot.end)
        slots.append(slot)
    for k in range(len(slots) - n):
        # Whatever the arrival inside [start, end], n+1 consecutive sends span more than a window.
        assert slots[k + n].start >= slots[k].end + w.window - 1e-9
    for a, b in itertools.pairwise(slots):
        assert b.start - a.start >= w.spacing - 1e-9


def test_a_pause_holds_everyone_back():
    clock = Clock()
    w = Window(30, 1.0, clock=clock)
    w.pause(5)
    assert abs(w.delay() - 5) < 1e-9
    clock.t += 5
    assert w.delay() == 0


def test_rates_become_windows():
    assert _shape(30, 1.0) == (30, 1.0)
    assert _shape(20, 60.0) == (20, 60.0)
    n, window = _shape(0.5, 1.0)
    assert (n, window) == (1, 2.0)
    n, window = _shape(29.5, 1.0)
    assert n == 29 and abs(window - 29 / 29.5) < 1e-9


def _limits(bot: float, chat: float, group_per_min: float = 20) -> Limits:
    cfg = SimpleNamespace(per_bot_per_second=bot, per_chat_per_second=chat,
                          per_group_per_minute=group_per_min)
    return Limits({"telegram": cfg})


def test_groups_and_private_chats_get_their_own_limits():
    lim = _limits(30, 1, 20)
    assert lim.chat("telegram", "-100", "supergroup").n == 20
    assert lim.chat("telegram", "-5", "private").n == 20  # a negative id is a group whatever it says
    assert lim.chat("telegram", "7", "private").n == 1
    assert lim.chat("console", "terminal", "private") is None and lim.bot("console") is None
    assert lim.bot("telegram").n == 30


async def test_waiting_for_the_bot_does_not_shorten_a_chats_gap():
    lim = _limits(1000, 1)
    lim.chats[("telegram", "1")] = Window(1, 0.2)  # this chat: one message per 0.2 s
    loop = asyncio.get_running_loop()
    p1 = await lim.acquire("telegram", "1", "private")
    p1.done()
    lim.pause_bot("telegram", 0.3)  # the bot waits longer than the chat's gap
    p2 = await lim.acquire("telegram", "1", "private")
    t2 = loop.time()
    p2.done()
    p3 = await lim.acquire("telegram", "1", "private")
    t3 = loop.time()
    p3.done()
    assert t3 - t2 >= 0.2  # measured from when message 2 really went, not from when it queued


async def test_concurrent_acquires_respect_the_bot_window():
    lim = _limits(20, 1000)
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def one(i: int) -> None:
        p = await lim.acquire("telegram", str(i), "private")
        times.append(loop.time())
        await asyncio.sleep(0.002)
        p.done()

    await asyncio.gather(*(one(i) for i in range(30)))
    times.sort()
    for k in range(len(times) - 20):
        assert times[k + 20] - times[k] >= 1.0
