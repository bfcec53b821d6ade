"""Wiring: one ``App`` holds the settings, the store and the adapters of a process.

Nothing is created at import time; ``App.open`` builds it and ``close`` tears it down.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.config import Settings
from bot.metrics import Metrics
from bot.store.db import Store

if TYPE_CHECKING:
    from bot.adapters.base import Adapter

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    store: Store
    # A process-unique id used for leases and outbox claims.
    instance_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )
    metrics: Metrics = field(default_factory=Metrics)
    _adapters: dict[str, Adapter] = field(default_factory=dict)

    @classmethod
    async def open(cls, settings: Settings) -> App:
        store = await Store.open(settings.database.resolved_url(), echo=settings.database.echo)
        return cls(settings=settings, store=store)

    def adapter(self, name: str) -> Adapter:
        """The configured adapter ``name``, created on first use (not started)."""
        if name not in self._adapters:
            from bot.adapters.base import create_adapter

            if name not in self.settings.adapter_configs:
                raise KeyError(f"adapter {name!r} is not configured (adapters.{name} in the config)")
            self._adapters[name] = create_adapter(name, self.settings.adapter_configs[name], self)
        return self._adapters[name]

    @property
    def adapter_names(self) -> list[str]:
        return list(self.settings.adapter_configs)

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
