"""``digestbot digest --send``: queue every active subscription's digest now, then drain the
outbox as the leader (or wait while the running service, which leads, drains it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from bot.delivery.enqueue import Composer, Recorder, enqueue_digest
from bot.delivery.queue import DEAD, PENDING, pending_count, utcnow
from bot.delivery.worker import DeliveryWorker, start_send_only
from bot.store import leases
from bot.store import subscriptions as subs
from bot.store.tables import outbox as t_out

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)


async def send_now(app: App, *, composer: Composer | None = None, recorder: Recorder | None = None,
                   give_up_after: float | None = None) -> dict[str, int]:
    """``digestbot digest --send``: compose for every active subscription now, queue, start
    the adapters that have something to send (send-only), and drain the outbox."""
    now = utcnow()
    configured = set(app.settings.adapter_configs)
    active = await subs.list_active(app.store)
    messages = 0
    n_subs = 0
    async with app.store.connect() as conn:
        # Rows after this one are the ones queued now: their dead letters are this command's.
        before = int((await conn.execute(select(func.max(t_out.c.id)))).scalar() or 0)
    for s in active:
        if s.adapter not in configured:
            log.warning("subscription %s:%s skipped: adapter %s is not configured", s.adapter, s.chat_id,
                        s.adapter)
            continue
        n_subs += 1
        try:
            messages += await enqueue_digest(app, s, now=now, composer=composer, recorder=recorder)
        except Exception:  # one bad subscription must not stop the others
            log.exception("composing the digest for %s:%s failed", s.adapter, s.chat_id)
    async with app.store.connect() as conn:
        names: set[str] = set((await conn.execute(
            select(t_out.c.adapter).where(t_out.c.status == PENDING).distinct())).scalars().all())
    names &= configured
    started: list[str] = []
    for name in sorted(names):
        try:
            await start_send_only(app.adapter(name))
            started.append(name)
        except Exception:
            log.exception("adapter %s could not start; its messages stay queued", name)
    worker = DeliveryWorker(app, started)
    if started:
        await _drain_as_leader(app, worker, started, give_up_after)
    # Counted in the store (messages queued since this command began that ended as dead letters):
    # when a running service delivered them, our own worker saw nothing.
    async with app.store.connect() as conn:
        dead = int((await conn.execute(select(func.count()).select_from(t_out).where(
            t_out.c.id > before, t_out.c.status == DEAD))).scalar_one())
    return {
        "subscriptions": n_subs,
        "messages": messages,
        "sent": worker.counts["sent"],
        "dead": max(dead, worker.counts["dead"]),
        "pending": await pending_count(app.store),
    }


async def _drain_as_leader(app: App, worker: DeliveryWorker, adapters: list[str],
                           give_up_after: float | None) -> None:
    """Drain the outbox, or wait while the running service drains it.

    Sending is the leader's job (one sender per bot keeps the platform's limit): when a
    ``digestbot run`` leads, it sends what we queued and we wait; otherwise we take the
    lease ourselves for the time of the drain, so a service starting meanwhile waits."""
    ttl = leases.lease_ttl()
    if not await leases.acquire(app.store, leases.LEADER, app.instance_id, ttl):
        log.info("the running service delivers; waiting for the outbox to drain")
        deadline = None if give_up_after is None else time.monotonic() + give_up_after
        while await pending_count(app.store, adapters) > 0:
            if deadline is not None and time.monotonic() > deadline:
                return
            if await leases.holder_of(app.store, leases.LEADER) is None and await leases.acquire(
                    app.store, leases.LEADER, app.instance_id, ttl):
                break  # the service went away: finish the job ourselves
            await asyncio.sleep(0.5)
        else:
            return

    async def renew() -> None:
        while True:
            await asyncio.sleep(ttl / 3)
            with contextlib.suppress(Exception):
                await leases.acquire(app.store, leases.LEADER, app.instance_id, ttl)

    keeper = asyncio.create_task(renew())
    try:
        await worker.run(until_drained=True, give_up_after=give_up_after)
    finally:
        keeper.cancel()
        with contextlib.suppress(BaseException):
            await keeper
        with contextlib.suppress(Exception):
            await leases.release(app.store, leases.LEADER, app.instance_id)
