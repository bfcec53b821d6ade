"""The delivery worker against an in-process adapter: order, retries, classification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.delivery import enqueue
from bot.delivery import queue as outbox
from bot.delivery.worker import DeliveryWorker
from bot.model import SendError
from bot.store import subscriptions as subs
from tests.delivery_helpers import Composer, FakeAdapter, add_sub, fast_settings, make_app, sub_row


async def _queue(app, composer, chat_ids, **kw):
    ids = {}
    for c in chat_ids:
        ids[c] = await add_sub(app.store, "telegram", c, **kw)
        await enqueue.enqueue_digest(app, ids[c], composer=composer.compose, recorder=composer.record)
    return ids


async def _drain(app, **kw) -> DeliveryWorker:
    w = DeliveryWorker(app, ["telegram"], poll_interval=0.05, **kw)
    await w.run(until_drained=True, give_up_after=20)
    return w


async def test_every_message_once_in_order_per_chat(store):
    fake = FakeAdapter(delay=0.002)
    app = await make_app(store, fake)
    composer = Composer(parts=4)
    chats = [str(100 + i) for i in range(12)]
    await _queue(app, composer, chats)
    w = await _drain(app, capacity=5)
    assert w.counts["sent"] == 48
    for c in chats:
        assert fake.texts(c) == [f"<b>{c} d1 p{i}</b>" for i in range(4)]
    st = await outbox.status(store)
    assert (st["pending"], st["sent"], st["dead"]) == (0, 48, 0)


async def test_window_advances_with_the_queue_and_only_once(store):
    fake = FakeAdapter()
    app = await make_app(store, fake)
    composer = Composer()
    sid = await add_sub(store, "telegram", "7")
    now = datetime.now(UTC)
    assert await enqueue.enqueue_digest(app, sid, now=now, composer=composer.compose,
                                       recorder=composer.record) == 1
    row = await sub_row(store, sid)
    assert row.last_digest_at == now.replace(microsecond=row.last_digest_at.microsecond)
    # The first window looks back digest.lookback_hours.
    _, start, end = composer.calls[0]
    assert end - start == timedelta(hours=app.settings.digest.lookback_hours)
    # Same instant again: nothing new is queued.
    assert await enqueue.enqueue_digest(app, sid, now=now, composer=composer.compose,
                                       recorder=composer.record) == 0
    later = now + timedelta(hours=1)
    assert await enqueue.enqueue_digest(app, sid, now=later, composer=composer.compose,
                                       recorder=composer.record) == 1
    # The next window starts where the last ended (minus the overlap the deliveries table absorbs).
    _, start2, _ = composer.calls[-1]
    assert start2 == row.last_digest_at - enqueue.WINDOW_OVERLAP
    assert (await outbox.status(store))["pending"] == 2


async def test_a_racing_compose_queues_nothing(store):
    fake = FakeAdapter()
    app = await make_app(store, fake)
    sid = await add_sub(store, "telegram", "8")
    now = datetime.now(UTC)

    class Racer(Composer):
        async def compose(self, app, sub, *, now, window_start):
            # Someone else queues this window while we compose.
            await subs.set_last_digest_at(app.store, sub.id, now)
            return await super().compose(app, sub, now=now, window_start=window_start)

    r = Racer()
    assert await enqueue.enqueue_digest(app, sid, now=now, composer=r.compose, recorder=r.record) == 0
    assert (await outbox.status(store))["pending"] == 0


async def test_transient_failures_retry_with_backoff_then_succeed(store):
    fake = FakeAdapter(script={"1": [SendError("transient", "502 Bad Gateway"),
                                     SendError("transient", "timed out"), None]})
    app = await make_app(store, fake)
    c = Composer(parts=2)
    await _queue(app, c, ["1", "2"])
    w = await _drain(app)
    assert fake.texts("1") == ["<b>1 d1 p0</b>", "<b>1 d1 p1</b>"]
    assert fake.texts("2") == ["<b>2 d1 p0</b>", "<b>2 d1 p1</b>"]
    assert w.counts["transient"] == 2 and w.counts["sent"] == 4


async def test_dead_letter_after_max_attempts(store):
    settings = fast_settings(max_attempts=3)
    fake = FakeAdapter(script={"1": [SendError("transient", "502 Bad Gateway")] * 10})
    app = await make_app(store, fake, settings)
    c = Composer(parts=2)
    await _queue(app, c, ["1"])
    w = await _drain(app)
    st = await outbox.status(store)
    # Part 1 died after 3 attempts; part 2 then went out (one failed attempt in its own right).
    assert st["dead"] >= 1
    d = st["dead_letters"][-1]
    assert d["attempts"] == 3 and "502 Bad Gateway" in d["reason"] and d["chat_id"] == "1"
    assert "gave up after 3 attempts" in d["reason"]
    assert w.counts["dead"] == st["dead"]
    assert st["pending"] == 0


async def test_retry_after_is_obeyed_and_not_an_attempt(store):
    settings = fast_settings(max_attempts=1)
    fake = FakeAdapter(script={"1": [SendError("retry_after", "Too Many Requests", retry_after=0.6)]})
    app = await make_app(store, fake, settings)
    c = Composer(parts=2)
    await _queue(app, c, ["1"])
    loop_t0 = __import__("asyncio").get_running_loop().time()
    w = await _drain(app)
    assert fake.texts("1") == ["<b>1 d1 p0</b>", "<b>1 d1 p1</b>"]
    assert fake.sent[0].at - loop_t0 >= 0.55  # waited as asked
    assert w.counts["retry_after"] == 1 and w.counts["dead"] == 0


async def test_retry_after_from_two_chats_pauses_the_whole_bot(store):
    fake = FakeAdapter(script={"1": [SendError("retry_after", "flood", retry_after=0.8)],
                               "2": [SendError("retry_after", "flood", retry_after=0.8)]})
    app = await make_app(store, fake)
    c = Composer()
    await _queue(app, c, ["1", "2", "3"])
    t0 = __import__("asyncio").get_running_loop().time()

    # Chat 3 has no trouble of its own, but after the two 429s it must wait with the bot.
    order = []
    fake.on_send = lambda chat, payload: order.append(chat)
    w = DeliveryWorker(app, ["telegram"], poll_interval=0.05, capacity=2)
    await w.run(until_drained=True, give_up_after=20)
    assert order[:2] == ["1", "2"]
    third = next(s for s in fake.sent if s.chat_id == "3")
    assert third.at - t0 >= 0.7
    assert sorted(s.chat_id for s in fake.sent) == ["1", "2", "3"]


@pytest.mark.parametrize("kind", ["blocked", "kicked", "deactivated", "not_found"])
async def test_gone_chats_retire_their_subscription(store, kind):
    fake = FakeAdapter(script={"1": [SendError(kind, f"Forbidden: {kind}")]})
    app = await make_app(store, fake)
    c = Composer(parts=3)
    ids = await _queue(app, c, ["1", "2"])
    w = await _drain(app)
    assert fake.texts("1") == []
    assert len(fake.texts("2")) == 3
    assert fake.calls == 4  # one try for the gone chat, nothing more
    s1 = await subs.get_by_id(store, ids["1"])
    assert s1 is not None and not s1.active and s1.retired_reason == kind
    assert (await subs.get_by_id(store, ids["2"])).active
    st = await outbox.status(store)
    assert st["dead"] == 3 and st["pending"] == 0 and w.counts["retired"] == 1


async def test_migrated_group_moves_and_resends_in_order(store):
    fake = FakeAdapter(script={"-100": [SendError("migrated", "upgraded", new_chat_id="-100999")]})
    app = await make_app(store, fake)
    c = Composer(parts=3)
    ids = await _queue(app, c, ["-100"], chat_type="group")
    await _drain(app)
    assert fake.texts("-100") == []
    assert fake.texts("-100999") == ["<b>-100 d1 p0</b>", "<b>-100 d1 p1</b>", "<b>-100 d1 p2</b>"]
    moved = await subs.get_by_id(store, ids["-100"])
    assert moved.chat_id == "-100999" and moved.active and moved.chat_type == "supergroup"


async def test_markup_rejected_is_resent_plain(store, caplog):
    fake = FakeAdapter(script={"1": [SendError("markup", "can't parse entities")]})
    app = await make_app(store, fake)
    c = Composer(parts=2)
    await _queue(app, c, ["1"])
    await _drain(app)
    assert [(s.text, s.plain) for s in fake.sent] == [("1 d1 p0", True), ("<b>1 d1 p1</b>", False)]
    assert any(r.levelname == "ERROR" and "markup" in r.getMessage() for r in caplog.records)


async def test_fatal_is_a_dead_letter_at_once(store):
    fake = FakeAdapter(script={"1": [SendError("fatal", "Bad Request: message is too long")]})
    app = await make_app(store, fake)
    c = Composer(parts=1)
    await _queue(app, c, ["1"])
    await _drain(app)
    st = await outbox.status(store)
    assert st["dead"] == 1 and st["dead_letters"][0]["attempts"] == 1
    assert "message is too long" in st["dead_letters"][0]["reason"]


async def test_unexpected_exception_is_transient(store):
    fake = FakeAdapter(script={"1": [ConnectionResetError("reset")]})  # type: ignore[list-item]
    app = await make_app(store, fake)
    await _queue(app, Composer(), ["1"])
    w = await _drain(app)
    assert fake.texts("1") == ["<b>1 d1 p0</b>"] and w.counts["transient"] == 1


async def test_claims_of_a_dead_process_are_released(store):
    fake = FakeAdapter()
    app = await make_app(store, fake)
    await _queue(app, Composer(parts=2), ["1"])
    import socket

    # A holder on this host whose pid no longer exists (pid 2**22+1 is above pid_max defaults).
    ghost = f"{socket.gethostname()}:{2**22 + 1}:abc"
    rows = await outbox.claim(store, holder=ghost, adapters=["telegram"], limit=10, ttl=600)
    assert len(rows) == 1  # only the head of the chat
    assert await outbox.claim(store, holder="other", adapters=["telegram"], limit=10, ttl=600) == []
    await _drain(app)
    assert fake.texts("1") == ["<b>1 d1 p0</b>", "<b>1 d1 p1</b>"]


async def test_live_foreign_claims_are_respected(store):
    fake = FakeAdapter()
    app = await make_app(store, fake)
    await _queue(app, Composer(), ["1", "2"])
    rows = await outbox.claim(store, holder="elsewhere:1:x", adapters=["telegram"], limit=1, ttl=600)
    assert len(rows) == 1
    w = DeliveryWorker(app, ["telegram"], poll_interval=0.05)
    await w.run(until_drained=True, give_up_after=1.0)
    assert len(fake.sent) == 1 and fake.sent[0].chat_id != rows[0].chat_id
