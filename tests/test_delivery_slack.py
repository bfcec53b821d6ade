"""Delivery end to end on Slack: the real adapter (slack_sdk) against the fake Web API.

Assertions are on what the fake ACCEPTED: no loss, no duplicate, order per channel, and no
429 that our own per-channel pace should have prevented.
"""

from __future__ import annotations

import pytest

from bot.app import App
from bot.config import load_settings
from bot.delivery import queue as outbox
from bot.delivery.worker import DeliveryWorker
from bot.store import subscriptions as subs
from tests.fakes.slack import FakeSlack

TOKEN = "xoxb-test-token"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_TEST_SECRET", "s3cret")


async def _app(db_url: str, fake: FakeSlack) -> App:
    settings = load_settings(text=f"""
database: {{url: "{db_url}"}}
sources: []
adapters:
  slack: {{bot_token: "${{SLACK_TEST_TOKEN}}", signing_secret: "${{SLACK_TEST_SECRET}}", mode: http,
          port: 0, base_url: "{fake.base_url}", timeout: 2, user_locale: false}}
delivery: {{max_attempts: 4, backoff_base: 0.05, backoff_max: 0.2}}
""")
    return await App.open(settings)


def _payload(text: str) -> dict:
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


async def _queue(app: App, channels: list[str], parts: int) -> dict[str, list[str]]:
    expected = {}
    async with app.store.begin() as conn:
        for ch in channels:
            sub = await subs.upsert(conn, subs.defaults(app.settings, "slack", ch, chat_type="group"))
            texts = [f"{ch} part {i}" for i in range(parts)]
            await outbox.enqueue(conn, adapter="slack", chat_id=ch, chat_type="group",
                                 subscription_id=sub.id, payloads=[_payload(t) for t in texts],
                                 plain_payloads=[{"text": t} for t in texts])
            expected[ch] = texts
    return expected


async def _drain(app: App) -> DeliveryWorker:
    w = DeliveryWorker(app, ["slack"], poll_interval=0.05)
    await w.run(until_drained=True, give_up_after=30)
    return w


async def test_slack_pace_retry_after_and_gone_channels(db_url: str) -> None:
    async with FakeSlack() as fake:
        app = await _app(db_url, fake)
        try:
            # More parts than the fake's burst of 3 per channel: only our pace avoids its 429s.
            expected = await _queue(app, ["C1", "C2", "C3", "C4"], parts=5)
            fake.fail_channel("C4", "channel_not_found")
            fake.inject("ratelimited", channel="C2", times=1, retry_after=1)
            fake.inject("server_error", channel="C3", times=1)
            w = await _drain(app)
            for ch in ("C1", "C2", "C3"):
                assert fake.texts(ch) == expected[ch]  # every part once, in order
            assert fake.texts("C4") == []
            assert fake.count_429("channel") == 0  # our 1 msg/s per channel held
            assert fake.count_429("forced") == 1 and w.counts["retry_after"] == 1
            assert w.counts["transient"] == 1
            gone = await subs.get(app.store, "slack", "C4")
            assert gone is not None and not gone.active and gone.retired_reason == "not_found"
            st = await outbox.status(app.store)
            assert st["pending"] == 0 and st["dead"] == 5 and st["sent"] == 15
        finally:
            await app.close()
