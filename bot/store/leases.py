"""Leases: one process at a time does a job (the scheduler, Telegram long polling).

A lease is a row in ``leases`` with a holder and an expiry. The holder renews it well
before it expires; when the holder dies, the row expires and another process takes it
over on its next try. The same code serves SQLite (one process, trivially the holder)
and PostgreSQL (several processes; the row is locked ``FOR UPDATE`` while deciding).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.store.tables import leases as t_leases

if TYPE_CHECKING:
    from bot.store.db import Store

log = logging.getLogger(__name__)

# A dead holder's lease is taken over within TTL + RETRY seconds (< 30 s).
TTL = 20.0
RETRY = 5.0
# The scheduler, the delivery worker and polling adapters run where this lease is held.
LEADER = "leader"


def lease_ttl() -> float:
    """``DIGESTBOT_LEASE_TTL`` (seconds) shortens take-overs, e.g. in tests; default TTL."""
    try:
        return max(1.0, float(os.environ.get("DIGESTBOT_LEASE_TTL", TTL)))
    except ValueError:
        return TTL


async def acquire(store: Store, name: str, holder: str, ttl: float = TTL, *,
                  now: datetime | None = None) -> bool:
    """Take or renew ``name`` for ``holder``; False when someone else holds it."""
    now = now or datetime.now(UTC)
    until = now + timedelta(seconds=ttl)
    q = select(t_leases).where(t_leases.c.name == name)
    if store.is_postgres:
        q = q.with_for_update()
    try:
        async with store.begin() as conn:
            row = (await conn.execute(q)).first()
            if row is None:
                await conn.execute(insert(t_leases).values(name=name, holder=holder, expires_at=until))
                return True
            if row.holder != holder and row.expires_at > now:
                return False
            await conn.execute(update(t_leases).where(t_leases.c.name == name)
                               .values(holder=holder, expires_at=until))
            return True
    except IntegrityError:  # another process inserted it first
        return False


async def release(store: Store, name: str, holder: str) -> None:
    async with store.begin() as conn:
        await conn.execute(delete(t_leases).where(t_leases.c.name == name, t_leases.c.holder == holder))


async def holder_of(store: Store, name: str) -> str | None:
    async with store.connect() as conn:
        row = (await conn.execute(select(t_leases).where(t_leases.c.name == name))).first()
    if row is None or row.expires_at <= datetime.now(UTC):
        return None
    return str(row.holder)


Callback = Callable[[], Awaitable[None]]


@dataclass(eq=False)
class LeaseKeeper:
    """Keeps trying to hold a lease; runs ``on_acquired`` / ``on_lost`` as it changes hands."""

    store: Store
    name: str
    holder: str
    _: KW_ONLY
    on_acquired: Callback
    on_lost: Callback
    ttl: float = TTL
    retry: float = RETRY
    held: bool = field(default=False, init=False)
    first_try: asyncio.Event = field(default_factory=asyncio.Event, init=False)  # set after the first attempt
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"lease-{self.name}")

    async def _loop(self) -> None:
        while True:
            try:
                ok = await acquire(self.store, self.name, self.holder, self.ttl)
            except Exception:  # the database is away: we can no longer be sure we hold it
                log.exception("lease %s: renewing failed", self.name)
                ok = False
            if ok and not self.held:
                self.held = True
                log.info("lease %s acquired by %s", self.name, self.holder)
                await self._call(self.on_acquired)
            elif not ok and self.held:
                self.held = False
                log.warning("lease %s lost by %s", self.name, self.holder)
                await self._call(self.on_lost)
            self.first_try.set()
            # Renew at a third of the TTL; a waiting process tries every RETRY seconds.
            await asyncio.sleep(min(self.retry, self.ttl / 3))

    async def _call(self, fn: Callback) -> None:
        try:
            await fn()
        except Exception:
            log.exception("lease %s: callback failed", self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.held:
            self.held = False
            await self._call(self.on_lost)
            with contextlib.suppress(Exception):
                await release(self.store, self.name, self.holder)
