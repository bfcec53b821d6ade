"""Queueing a digest: compose it, render it, and put it in the outbox in one transaction.

The transaction that queues the parts is the one that advances the subscription's window
(``last_digest_at``) and records what was delivered, so a crash at any moment either left
the digest unqueued and the window where it was (it will be composed again), or queued it
for good.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.delivery.queue import enqueue, utcnow
from bot.digest import compose, record_delivered
from bot.model import Digest, Subscription
from bot.store import subscriptions as subs
from bot.store.tables import subscriptions as t_subs

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

# The window a digest covers starts this much before the previous one ended. An ingest
# transaction stamps ``ingested_at`` when it starts and becomes visible when it commits; the
# overlap makes sure such articles are not missed, and the deliveries table (what each
# subscription was already sent) keeps the overlap from repeating anything.
WINDOW_OVERLAP = timedelta(minutes=10)

Composer = Callable[..., Awaitable[Digest]]
Recorder = Callable[[AsyncConnection, int, Digest], Awaitable[None]]


class _Raced(Exception):
    """Another run advanced the window first; roll back and queue nothing."""


def window_start(app: App, sub: Subscription, now: datetime) -> datetime:
    if sub.last_digest_at is None:
        return now - timedelta(hours=app.settings.digest.lookback_hours)
    return sub.last_digest_at - WINDOW_OVERLAP


async def enqueue_digest(app: App, sub: Subscription | int, *, now: datetime | None = None,
                         composer: Composer | None = None, recorder: Recorder | None = None,
                         send_empty: bool = False) -> int:
    """Compose ``sub``'s digest and queue it; returns the number of messages queued.

    An empty digest is not sent unless ``send_empty`` (the terminal at start-up, where
    "nothing new" is an answer the user is waiting for).

    The window advances to ``now`` in the same transaction that queues the messages, and
    only if no one else advanced it meanwhile (a scheduled run racing ``/digest`` or
    ``digest --send``), so a digest is queued exactly once per window."""
    now = now or utcnow()
    composer, recorder = composer or compose, recorder or record_delivered
    fresh = await subs.get_by_id(app.store, sub if isinstance(sub, int) else int(sub.id or 0))
    if fresh is None or not fresh.active:
        return 0
    if fresh.last_digest_at is not None and fresh.last_digest_at >= now:
        return 0
    adapter = app.adapter(fresh.adapter)
    start = window_start(app, fresh, now)
    digest = await composer(app, fresh, now=now, window_start=start)
    payloads: list[dict[str, Any]] = []
    plains: list[dict[str, Any]] | None = None
    if digest.entries or send_empty:
        payloads = adapter.render(digest)
        try:
            plains = adapter.render(digest, plain=True)
        except Exception:  # a plain variant is a fallback; its absence must not stop the digest
            log.exception("plain rendering failed for subscription %s", fresh.id)
    old = fresh.last_digest_at
    try:
        async with app.store.begin() as conn:
            guard = t_subs.c.last_digest_at.is_(None) if old is None else t_subs.c.last_digest_at == old
            res = await conn.execute(update(t_subs).where(t_subs.c.id == fresh.id, guard)
                                     .values(last_digest_at=now))
            if not res.rowcount:
                raise _Raced
            if payloads:
                await enqueue(conn, adapter=fresh.adapter, chat_id=fresh.chat_id, chat_type=fresh.chat_type,
                              subscription_id=fresh.id, payloads=payloads, plain_payloads=plains, now=now)
                await recorder(conn, int(fresh.id or 0), digest)
    except _Raced:
        log.info("digest for subscription %s was queued by someone else meanwhile", fresh.id)
        return 0
    if digest.entries:
        log.info("queued digest for %s:%s (%d stories, %d messages)", fresh.adapter, fresh.chat_id,
                 len(digest.entries), len(payloads))
    else:
        log.info("no new stories for %s:%s since %s", fresh.adapter, fresh.chat_id,
                 (old or start).isoformat(timespec="seconds"))
    if payloads:
        app.wake_delivery()
    return len(payloads)
