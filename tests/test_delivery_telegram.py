"""Delivery end to end: the real Telegram adapter (python-telegram-bot) against the fake Bot API.

Assertions are on what the fake ACCEPTED: no loss, no duplicate, order per chat, no 429 that
our own limits should have prevented.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path

import pytest

from bot.app import App
from bot.config import load_settings
from bot.delivery import enqueue
from bot.delivery import queue as outbox
from bot.delivery.worker import DeliveryWorker
from bot.store import subscriptions as subs
from tests.delivery_helpers import Composer, add_sub
from tests.fakes.telegram import FakeTelegram, TelegramLimits

TOKEN = "123456:TEST-token"


def _config(db_url: str, base_url: str, *, max_attempts: int = 5, bot_rate: float = 30.0) -> str:
    return f"""
database: {{url: "{db_url}"}}
sources: []
adapters:
  # Groups: 20 per 2 s on both sides (instead of per minute) keeps the tests short.
  telegram: {{token: "${{TG_TEST_TOKEN}}", base_url: "{base_url}", request_timeout: 1.5,
             register_commands: false,
             rate_limits: {{per_bot_per_second: {bot_rate}, per_group_per_minute: 600}}}}
delivery:
  max_attempts: {max_attempts}
  backoff_base: 0.05
  backoff_max: 0.2
"""


def _limits(**kw) -> TelegramLimits:
    return TelegramLimits(group_per_window=20, group_window=2.0, **kw)


@pytest.fixture(autouse=True)
def _token(monkeypatch):
    monkeypatch.setenv("TG_TEST_TOKEN", TOKEN)


async def _app(db_url: str, fake: FakeTelegram, **kw) -> App:
    settings = load_settings(text=_config(db_url, fake.base_url, **kw))
    return await App.open(settings)


def _payload(text: str) -> dict:
    return {"text": text, "parse_mode": "HTML", "link_preview_options": {"is_disabled": True}}


async def _queue(app: App, chats: dict[str, str], parts: int = 2) -> dict[str, list[str]]:
    """Queue ``parts`` numbered messages per chat; returns the expected texts per chat."""
    expected = {}
    async with app.store.begin() as conn:
        for chat, chat_type in chats.items():
            sid = await subs.upsert(conn, subs.defaults(app.settings, "telegram", chat, chat_type=chat_type))
            texts = [f"chat {chat} part {i}" for i in range(parts)]
            await outbox.enqueue(conn, adapter="telegram", chat_id=chat, chat_type=chat_type,
                                 subscription_id=sid.id, payloads=[_payload(f"<b>{t}</b>") for t in texts],
                                 plain_payloads=[{"text": t} for t in texts])
            expected[chat] = texts
    return expected


async def _drain(app: App, seconds: float = 30) -> DeliveryWorker:
    w = DeliveryWorker(app, ["telegram"], poll_interval=0.05)
    await w.run(until_drained=True, give_up_after=seconds)
    return w


def _accepted(fake: FakeTelegram, chat: str) -> list[str]:
    return [m.visible_text for m in fake.messages(int(chat))]


async def test_429_storm_loses_and_repeats_nothing(db_url):
    async with FakeTelegram(limits=_limits(private_burst=1.0)) as fake:
        app = await _app(db_url, fake)
        try:
            chats = {str(1000 + i): "private" for i in range(15)}
            expected = await _queue(app, chats, parts=2)
            # The first 12 sends meet a flood, whenever they come.
            fake.inject("flood", times=12, retry_after=1)
            w = await _drain(app)
            for chat, texts in expected.items():
                assert _accepted(fake, chat) == texts
            assert fake.count_429("forced") >= 1
            # After the storm, only the platform's forced 429s: none caused by our own pace.
            dbg = [(r.chat_id, r.description, round(r.time % 100, 3)) for r in fake.rejected()]
            bad = {str(r.chat_id) for r in fake.rejected()}
            dbg += [(m.chat_id, m.visible_text, round(m.time % 100, 3)) for m in fake.messages()
                    if str(m.chat_id) in bad]
            assert fake.count_429("bot") == fake.count_429("chat") == 0, dbg
            assert w.counts["retry_after"] == fake.count_429("forced")
            assert (await outbox.status(app.store))["pending"] == 0
        finally:
            await app.close()


async def test_5xx_and_dropped_connections_are_retried(db_url):
    async with FakeTelegram(limits=_limits()) as fake:
        app = await _app(db_url, fake)
        try:
            expected = await _queue(app, {"2001": "private", "2002": "private", "-3001": "group"}, parts=2)
            fake.inject("bad_gateway", times=3)
            fake.inject("server_error", chat_id=2002, times=1)
            fake.inject("drop", chat_id=-3001, times=1, delay=0.1)
            w = await _drain(app)
            for chat, texts in expected.items():
                assert _accepted(fake, chat) == texts
            assert w.counts["transient"] == 5 and w.counts["dead"] == 0
        finally:
            await app.close()


async def test_timeouts_are_retried_and_at_most_the_timed_out_message_repeats(db_url):
    async with FakeTelegram(limits=_limits()) as fake:
        app = await _app(db_url, fake)
        try:
            expected = await _queue(app, {"2101": "private"}, parts=3)
            # Slower than the adapter's 1.5 s timeout: the fake still accepts it, like Telegram.
            fake.inject("slow", chat_id=2101, times=1, delay=2.0)
            await _drain(app)
            got = _accepted(fake, "2101")
            assert [t for i, t in enumerate(got) if i == 0 or got[i - 1] != t] == expected["2101"]
            assert len(got) <= len(expected["2101"]) + 1
        finally:
            await app.close()


async def test_blocked_kicked_and_gone_chats_retire_their_subscriptions(db_url):
    async with FakeTelegram(limits=_limits()) as fake:
        app = await _app(db_url, fake)
        try:
            chats = {"4001": "private", "4002": "private", "-4003": "group", "4004": "private",
                     "4005": "private"}
            expected = await _queue(app, chats, parts=2)
            fake.fail_chat(4001, "blocked")
            fake.fail_chat(-4003, "kicked")
            fake.fail_chat(4004, "deactivated")
            fake.fail_chat(4005, "not_found")
            await _drain(app)
            assert _accepted(fake, "4002") == expected["4002"]
            reasons = {}
            for chat in chats:
                s = await subs.get(app.store, "telegram", chat)
                reasons[chat] = (s.active, s.retired_reason)
            assert reasons == {"4001": (False, "blocked"), "4002": (True, None), "-4003": (False, "kicked"),
                               "4004": (False, "deactivated"), "4005": (False, "not_found")}
            # One refused try per gone chat; their second parts were never attempted.
            refused = fake.rejected(method="sendMessage")
            assert sorted(str(r.chat_id) for r in refused) == ["-4003", "4001", "4004", "4005"]
            st = await outbox.status(app.store)
            assert st["dead"] == 8 and st["pending"] == 0
        finally:
            await app.close()


async def test_migrated_group_follows_to_the_supergroup(db_url):
    async with FakeTelegram(limits=_limits()) as fake:
        app = await _app(db_url, fake)
        try:
            expected = await _queue(app, {"-5001": "group"}, parts=3)
            fake.fail_chat(-5001, "migrated", migrate_to=-1005001)
            await _drain(app)
            assert _accepted(fake, "-5001") == []
            assert _accepted(fake, "-1005001") == expected["-5001"]
            moved = await subs.get(app.store, "telegram", "-1005001")
            assert moved is not None and moved.active
            assert await subs.get(app.store, "telegram", "-5001") is None
        finally:
            await app.close()


async def test_markup_rejected_goes_out_as_plain_text_and_is_logged(db_url, caplog):
    async with FakeTelegram(limits=_limits()) as fake:
        app = await _app(db_url, fake)
        try:
            async with app.store.begin() as conn:
                await outbox.enqueue(conn, adapter="telegram", chat_id="6001",
                                     payloads=[_payload("<blink>broken</blink> markup"),
                                               _payload("<b>fine</b>")],
                                     plain_payloads=[{"text": "broken markup"}, {"text": "fine"}])
            with caplog.at_level(logging.ERROR):
                await _drain(app)
            msgs = fake.messages(6001)
            got = [(m.visible_text, m.parse_mode) for m in msgs]
            assert got == [("broken markup", None), ("fine", "HTML")]
            assert any("markup" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
        finally:
            await app.close()


async def test_dead_letter_after_max_attempts_is_listed_by_the_cli(db_url, tmp_path: Path):
    async with FakeTelegram(limits=_limits()) as fake:
        app = await _app(db_url, fake, max_attempts=3)
        try:
            expected = await _queue(app, {"7001": "private", "7002": "private"}, parts=1)
            fake.inject("bad_gateway", chat_id=7001, times=None)
            w = await _drain(app)
            assert _accepted(fake, "7002") == expected["7002"]
            assert _accepted(fake, "7001") == [] and w.counts["dead"] == 1
            assert len(fake.requests("sendMessage")) == 3 + 1
        finally:
            await app.close()
        cfg = tmp_path / "c.yaml"
        cfg.write_text(_config(db_url, fake.base_url))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "outbox", "--json", "--config", str(cfg),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "TG_TEST_TOKEN": TOKEN})
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, stderr.decode()

        st = json.loads(stdout)
        assert (st["pending"], st["sent"], st["dead"]) == (0, 1, 1)
        (d,) = st["dead_letters"]
        assert d["chat_id"] == "7001" and d["adapter"] == "telegram" and d["attempts"] == 3
        assert "Bad Gateway" in d["reason"]


async def test_pace_holds_the_bot_limit_without_429(db_url):
    # A lower bot limit on both sides keeps the test short; the benchmark does 30 msg/s.
    async with FakeTelegram(limits=_limits(bot_per_second=10)) as fake:
        app = await _app(db_url, fake, bot_rate=10)
        try:
            chats = {str(8000 + i): "private" for i in range(30)}
            await _queue(app, chats, parts=1)
            await _drain(app)
            msgs = fake.messages()
            assert len(msgs) == 30 and fake.count_429() == 0
            span = msgs[-1].mono - msgs[0].mono
            assert 29 / span >= 0.9 * 10  # close to the limit, not far under it
        finally:
            await app.close()


async def test_real_renderer_digest_through_enqueue_digest(db_url):
    async with FakeTelegram(limits=_limits(), strict_html=True) as fake:
        app = await _app(db_url, fake)
        try:
            sid = await add_sub(app.store, "telegram", "9001")
            comp = Composer(parts=3)
            n = await enqueue.enqueue_digest(app, sid, composer=comp.compose, recorder=comp.record)
            assert n >= 1
            await _drain(app)
            msgs = fake.messages(9001)
            assert len(msgs) == n and all(m.parse_mode == "HTML" for m in msgs)
            text = "\n".join(m.visible_text for m in msgs)
            for i in range(3):
                assert f"9001 d1 p{i}" in text
        finally:
            await app.close()
