"""A platform added by a package of its own: found through the ``digestbot.adapters`` entry
point, configured by its own model, and sent digests within the limits that model sets.

The adapter below is written to a temporary folder with a ``.dist-info`` beside it, as pip
would install it; nothing in ``bot/`` names it.
"""

from __future__ import annotations

import sys
import textwrap
import time
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.config import load_settings
from bot.delivery.enqueue import enqueue_digest
from bot.delivery.worker import DeliveryWorker
from tests.digest_helpers import NOW, Art, add_story, add_subscription

PIGEON = '''
"""Carrier pigeons: a chat platform with its own package."""

import time
from itertools import pairwise

from bot.adapters.base import AdapterConfig, AdapterContext, RateLimits
from bot.model import Digest, Reply

SENT = []  # (monotonic time, chat id, text)


class PigeonConfig(AdapterConfig):
    loft: str
    # Pigeons tire: two flights a second for the whole loft, one per chat every half second.
    rate_limits: RateLimits | None = RateLimits(per_bot_per_second=2, per_chat_per_second=2,
                                                per_group_per_minute=60)


class PigeonAdapter:
    config_model = PigeonConfig

    def __init__(self, name: str, config: PigeonConfig, context: AdapterContext):
        self.name, self.config, self.context = name, config, context

    async def start(self, on_command):
        self.on_command = on_command

    async def stop(self):
        pass

    def render(self, value, *, plain=False):
        digest = value.digest if isinstance(value, Reply) else value
        if isinstance(digest, Digest):
            return [{"text": digest.heading}] + [{"text": e.headline} for e in digest.entries]
        return [{"text": value.text}]

    async def send(self, chat_id, payload):
        SENT.append((time.monotonic(), chat_id, payload["text"]))
        return str(len(SENT))
'''


@pytest.fixture
def pigeon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    site = tmp_path / "site"
    (site / "digestbot_pigeon-1.0.dist-info").mkdir(parents=True)
    (site / "digestbot_pigeon.py").write_text(textwrap.dedent(PIGEON), encoding="utf-8")
    (site / "digestbot_pigeon-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: digestbot-pigeon\nVersion: 1.0\n", encoding="utf-8")
    (site / "digestbot_pigeon-1.0.dist-info" / "entry_points.txt").write_text(
        "[digestbot.adapters]\npigeon = digestbot_pigeon:PigeonAdapter\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("digestbot_pigeon", None)


async def test_a_third_party_adapter_gets_digests_within_its_own_limits(pigeon: Any, db_url: str) -> None:
    settings = load_settings(text=f'database: {{url: "{db_url}"}}\nsources: []\n'
                                  'adapters: {pigeon: {loft: north}}\n')
    assert settings.adapter_configs["pigeon"].rate_limits.per_bot_per_second == 2  # type: ignore[union-attr]
    app = await App.open(settings)
    try:
        for n in range(3):
            await add_story(app.store, f"第{n}条新闻", [Art(f"第{n}条新闻", url=f"https://p.example/{n}")])
        subs = [await add_subscription(app.store, adapter="pigeon", chat_id=f"loft-{i}") for i in range(2)]
        for sub in subs:
            assert await enqueue_digest(app, sub, now=NOW + timedelta(minutes=5)) == 4  # heading + 3
        started = time.monotonic()
        worker = DeliveryWorker(app, ["pigeon"])
        await worker.run(until_drained=True, give_up_after=30)
        took = time.monotonic() - started
    finally:
        await app.close()

    import digestbot_pigeon

    sent = digestbot_pigeon.SENT
    assert worker.counts["sent"] == 8 and len(sent) == 8
    for sub in subs:
        texts = [text for _, chat, text in sent if chat == sub.chat_id]
        assert texts[1:] == ["第0条新闻", "第1条新闻", "第2条新闻"]
    # Two a second for the loft: eight flights need well over three seconds, never a burst.
    assert took >= 2.5
    gaps = [b[0] - a[0] for a, b in pairwise(sent)]
    assert min(gaps) > 0.3
