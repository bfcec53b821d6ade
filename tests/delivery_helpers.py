"""Helpers for the outbox / delivery / scheduler tests: an in-process adapter and a composer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select

from bot.adapters.base import AdapterConfig, RateLimits
from bot.app import App
from bot.config import Settings
from bot.model import Digest, DigestEntry, Reply, SendError, Subscription
from bot.store.db import Store
from bot.store.tables import subscriptions as t_subs


@dataclass
class Sent:
    chat_id: str
    text: str
    at: float
    plain: bool


@dataclass
class FakeAdapter:
    """Implements the adapter protocol; ``script[chat_id]`` yields errors (or None) per send."""

    name: str = "telegram"
    sent: list[Sent] = field(default_factory=list)
    script: dict[str, list[SendError | None]] = field(default_factory=dict)
    delay: float = 0.0
    started: int = 0
    calls: int = 0
    on_send: Callable[[str, dict[str, Any]], None] | None = None

    async def start(self, on_command: Any) -> None:
        self.started += 1

    async def stop(self) -> None:
        return None

    def render(self, value: Digest | Reply, *, plain: bool = False) -> list[dict[str, Any]]:
        assert isinstance(value, Digest)
        out = []
        for e in value.entries:
            if plain:
                out.append({"text": e.headline})
            else:
                out.append({"text": f"<b>{e.headline}</b>", "parse_mode": "HTML"})
        return out

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        self.calls += 1
        if self.on_send:
            self.on_send(chat_id, payload)
        if self.delay:
            await asyncio.sleep(self.delay)
        steps = self.script.get(chat_id)
        if steps:
            err = steps.pop(0)
            if err is not None:
                raise err
        loop = asyncio.get_running_loop()
        self.sent.append(Sent(chat_id, payload["text"], loop.time(), "parse_mode" not in payload))
        return str(len(self.sent))

    def texts(self, chat_id: str) -> list[str]:
        return [s.text for s in self.sent if s.chat_id == chat_id]


def fast_settings(**delivery: Any) -> Settings:
    s = Settings()
    s.delivery.backoff_base = 0.01
    s.delivery.backoff_max = 0.05
    for k, v in delivery.items():
        setattr(s.delivery, k, v)
    return s


# Limits that never bind: these tests are about outcomes, not pacing.
FAST_LIMITS = RateLimits(per_bot_per_second=1000, per_chat_per_second=1000, per_group_per_minute=60000)


async def make_app(store: Store, adapter: FakeAdapter, settings: Settings | None = None) -> App:
    settings = settings or fast_settings()
    settings.adapter_configs[adapter.name] = AdapterConfig(rate_limits=FAST_LIMITS)
    app = App(settings=settings, store=store)
    app._adapters[adapter.name] = adapter  # type: ignore[assignment]
    return app


async def add_sub(store: Store, adapter: str, chat_id: str, *, chat_type: str = "private",
                  last_digest_at: datetime | None = None, times: list[str] | None = None,
                  tz: str = "Asia/Shanghai", quiet_hours: str | None = None) -> int:
    now = datetime.now(UTC)
    async with store.begin() as conn:
        res = await conn.execute(insert(t_subs).values(
            adapter=adapter, chat_id=chat_id, chat_type=chat_type, locale="en", timezone=tz,
            times=times or ["08:00"], max_stories=10, filters={}, quiet_hours=quiet_hours, active=True,
            created_at=now, updated_at=now, last_digest_at=last_digest_at))
        return int(res.inserted_primary_key[0])


async def sub_row(store: Store, sub_id: int) -> Any:
    async with store.connect() as conn:
        return (await conn.execute(select(t_subs).where(t_subs.c.id == sub_id))).one()


class Composer:
    """Composes ``parts`` entries named after the subscription and a running digest number."""

    def __init__(self, parts: int = 1):
        self.parts = parts
        self.calls: list[tuple[int, datetime, datetime]] = []

    async def compose(self, app: App, sub: Subscription, *, now: datetime, window_start: datetime) -> Digest:
        self.calls.append((int(sub.id or 0), window_start, now))
        n = len([c for c in self.calls if c[0] == sub.id])
        entries = [DigestEntry(story_id=i, headline=f"{sub.chat_id} d{n} p{i}", summary="", outlets=["x"],
                               outlet_count=1, time=now, url=None) for i in range(self.parts)]
        return Digest(locale=sub.locale, timezone=sub.timezone, generated_at=now, entries=entries,
                      subscription_id=sub.id)

    async def record(self, conn: Any, sub_id: int, digest: Digest) -> None:
        return None
