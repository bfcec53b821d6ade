"""Wiring: one ``App`` holds the settings, the store and the adapters of a process.

Nothing is created at import time; ``App.open`` builds it and ``close`` tears it down.
Everything an ``App`` holds is declared here: the parts of the process that reach it
(commands, delivery, the scheduler) find typed fields, never attributes added on the way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.adapters.base import (
    Adapter,
    AdapterContext,
    AdapterEvent,
    AdapterFactory,
    BotRemoved,
    ChatMigrated,
    create_adapter,
    registry,
)
from bot.commands.user_limits import UserRateLimiter
from bot.config import Settings
from bot.digest import compose, default_subscription
from bot.model import Subscription
from bot.monitoring import Metrics
from bot.store import subscriptions as subs
from bot.store.db import Store

log = logging.getLogger(__name__)

# ``digest --preview --format NAME``: the adapter whose renderer NAME means.
PREVIEW_FORMATS = {"telegram": "telegram", "slack": "slack", "text": "console"}

SubscriptionHook = Callable[[Subscription | int | None], Awaitable[Any] | Any]


def _instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(slots=True, eq=False)
class App:
    settings: Settings
    store: Store
    # A process-unique id used for leases and outbox claims.
    instance_id: str = field(default_factory=_instance_id)
    metrics: Metrics = field(default_factory=Metrics)
    # Set by the running service: nudge its delivery worker when rows are queued, and tell its
    # scheduler that a subscription's schedule may have changed. None: nothing runs to be told.
    delivery_wake: Callable[[], None] | None = None
    on_subscription_changed: SubscriptionHook | None = None
    # Per process (and per test): commands' per-user limit, long search queries behind paging
    # buttons, and one ingest pass at a time.
    command_limiter: UserRateLimiter = field(init=False)
    search_tokens: OrderedDict[str, str] = field(default_factory=OrderedDict)
    ingest_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _adapters: dict[str, Adapter] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.command_limiter = UserRateLimiter(self.settings.commands.per_user_per_minute)

    @classmethod
    async def open(cls, settings: Settings) -> App:
        store = await Store.open(settings.database.resolved_url(), echo=settings.database.echo)
        return cls(settings=settings, store=store)

    # -- adapters ---------------------------------------------------------------------------------

    def adapter(self, name: str) -> Adapter:
        """The configured adapter ``name``, created on first use (not started)."""
        if name not in self._adapters:
            if name not in self.settings.adapter_configs:
                raise KeyError(f"adapter {name!r} is not configured (adapters.{name} in the config)")
            context = AdapterContext(default_locale=self.settings.digest.locale, report=self.on_adapter_event)
            self._adapters[name] = create_adapter(name, self.settings.adapter_configs[name], context)
        return self._adapters[name]

    @staticmethod
    def adapter_class(name: str) -> AdapterFactory | None:
        """The installed adapter class ``name`` (configured or not), for its static helpers."""
        return registry().get(name)

    @property
    def adapter_names(self) -> list[str]:
        return list(self.settings.adapter_configs)

    def rate_limits(self) -> dict[str, Any]:
        """Each configured adapter's send limits, from its own config (absent: not limited)."""
        return {name: cfg.rate_limits for name, cfg in self.settings.adapter_configs.items()
                if cfg.rate_limits is not None}

    async def on_adapter_event(self, event: AdapterEvent) -> None:
        """What an adapter reports about a chat, turned into store changes."""
        if isinstance(event, ChatMigrated):
            await subs.move_chat(self.store, event.adapter, event.chat_id, event.new_chat_id)
        elif isinstance(event, BotRemoved):
            sub = await subs.get(self.store, event.adapter, event.chat_id)
            if sub is not None and sub.active and sub.id is not None:
                await subs.retire(self.store, sub.id, event.reason)
                await self.subscription_changed(sub)

    # -- hooks of the running service ---------------------------------------------------------------

    def wake_delivery(self) -> None:
        """Nudge this process's delivery worker (if it runs) that new rows are queued."""
        if self.delivery_wake is not None:
            self.delivery_wake()

    async def subscription_changed(self, sub: Subscription) -> None:
        """Tell the scheduler (if one runs in this process) that a schedule may have changed."""
        if self.on_subscription_changed is None:
            return
        try:
            res = self.on_subscription_changed(sub)
            if hasattr(res, "__await__"):
                await res
        except Exception:  # the change is stored; the scheduler also re-reads on its own cadence
            log.exception("on_subscription_changed hook failed for subscription %s", sub.id)

    # -- digests without a subscription ------------------------------------------------------------

    async def preview_digest(self, *, fmt: str = "text", locale: str | None = None,
                             now: datetime | None = None) -> list[dict[str, Any]]:
        """The digest a new default subscription would get now, rendered for ``fmt`` by that
        adapter's renderer (found through the registry). Ingests nothing."""
        factory = self.adapter_class(PREVIEW_FORMATS.get(fmt, fmt))
        if factory is None or not hasattr(factory, "render_preview"):
            raise ValueError(f"unknown digest format {fmt!r} (telegram, slack or text)")
        digest = await compose(self, default_subscription(self, locale), now=now)
        payloads: list[dict[str, Any]] = factory.render_preview(digest)
        return payloads

    async def close(self) -> None:
        for a in list(self._adapters.values()):
            try:
                await a.stop()
            except Exception:  # closing must go on for the others
                log.exception("stopping adapter %s failed", a.name)
        self._adapters.clear()
        await self.store.close()

    async def __aenter__(self) -> App:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
