"""The outbox table: every message is stored here before any send.

A digest becomes one *batch* of ordered parts (``seq``), queued by ``delivery.enqueue``
in the transaction that advances the subscription's window.

Rows are *claimed* (``claimed_by`` / ``claimed_until``) before they are sent. Only the
oldest pending row of a chat can be claimed, which keeps every chat's messages in order
across processes; on PostgreSQL the claim uses ``FOR UPDATE SKIP LOCKED``, on SQLite (one
writer at a time) the same statement inside a ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import html
import logging
import os
import re
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.model import iso
from bot.store.tables import outbox as t_out

if TYPE_CHECKING:
    from bot.store.db import Store

log = logging.getLogger(__name__)

PENDING, SENT, DEAD = "pending", "sent", "dead"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Row:
    """One claimed outbox message."""

    id: int
    adapter: str
    chat_id: str
    chat_type: str
    subscription_id: int | None
    batch: str
    seq: int
    payload: dict[str, Any]
    plain_payload: dict[str, Any] | None
    attempts: int
    claimed_until: datetime | None


def _row(r: Any) -> Row:
    m = r._mapping
    return Row(id=m["id"], adapter=m["adapter"], chat_id=m["chat_id"], chat_type=m["chat_type"] or "private",
               subscription_id=m["subscription_id"], batch=m["batch"], seq=m["seq"], payload=m["payload"],
               plain_payload=m["plain_payload"], attempts=m["attempts"], claimed_until=m["claimed_until"])


# -- queueing -------------------------------------------------------------------------------------

async def enqueue(conn: AsyncConnection, *, adapter: str, chat_id: str, payloads: list[dict[str, Any]],
                  plain_payloads: list[dict[str, Any]] | None = None, chat_type: str = "private",
                  subscription_id: int | None = None, now: datetime | None = None,
                  batch: str | None = None) -> list[int]:
    """Queue ``payloads`` (in order) for one chat inside the caller's transaction."""
    now = now or utcnow()
    batch = batch or uuid.uuid4().hex
    plains = plain_payloads if plain_payloads and len(plain_payloads) == len(payloads) else None
    ids: list[int] = []
    for seq, payload in enumerate(payloads):
        plain = plains[seq] if plains else plain_fallback(payload)
        res = await conn.execute(t_out.insert().values(
            adapter=adapter, chat_id=str(chat_id), chat_type=chat_type, subscription_id=subscription_id,
            batch=batch, seq=seq, payload=payload, plain_payload=plain, status=PENDING, attempts=0,
            next_attempt_at=now, created_at=now))
        pk = res.inserted_primary_key
        assert pk is not None  # an INSERT of one row always has one
        ids.append(int(pk[0]))
    return ids


def plain_fallback(payload: dict[str, Any]) -> dict[str, Any] | None:
    """A markup-free copy of a payload, used when its renderer gave no plain variant."""
    if "parse_mode" not in payload and "reply_markup" not in payload and "blocks" not in payload:
        return None
    out = {k: v for k, v in payload.items() if k not in ("parse_mode", "reply_markup", "blocks")}
    text = str(payload.get("text") or "")
    if payload.get("parse_mode") == "HTML":
        text = html.unescape(re.sub(r"<[^>]*>", "", text))
    out["text"] = text
    return out


# -- claims ---------------------------------------------------------------------------------------

def _claimable(now: datetime) -> Any:
    head = t_out.alias("head")
    earlier_pending = exists().where(
        head.c.adapter == t_out.c.adapter, head.c.chat_id == t_out.c.chat_id,
        head.c.status == PENDING, head.c.id < t_out.c.id)
    return and_(t_out.c.status == PENDING, t_out.c.next_attempt_at <= now,
                or_(t_out.c.claimed_until.is_(None), t_out.c.claimed_until < now), ~earlier_pending)


async def claim(store: Store, *, holder: str, adapters: Iterable[str], limit: int, ttl: float,
                now: datetime | None = None) -> list[Row]:
    """Claim up to ``limit`` sendable rows: each the oldest pending message of its chat."""
    names = list(adapters)
    if limit <= 0 or not names:
        return []
    now = now or utcnow()
    q = (select(t_out).where(_claimable(now), t_out.c.adapter.in_(names))
         .order_by(t_out.c.next_attempt_at, t_out.c.id).limit(limit))
    if store.is_postgres:
        q = q.with_for_update(skip_locked=True, of=t_out)
    async with store.begin() as conn:
        rows = [_row(r) for r in (await conn.execute(q)).all()]
        if not rows:
            return []
        until = now + timedelta(seconds=ttl)
        await conn.execute(update(t_out).where(t_out.c.id.in_([r.id for r in rows]))
                           .values(claimed_by=holder, claimed_until=until))
    for r in rows:
        r.claimed_until = until
    return rows


async def renew(store: Store, row: Row, *, holder: str, ttl: float) -> bool:
    """Extend our claim on ``row``; False when it is no longer ours to send."""
    now = utcnow()
    until = now + timedelta(seconds=ttl)
    async with store.begin() as conn:
        res = await conn.execute(update(t_out).where(
            t_out.c.id == row.id, t_out.c.status == PENDING,
            or_(t_out.c.claimed_by == holder, t_out.c.claimed_until.is_(None), t_out.c.claimed_until < now),
        ).values(claimed_by=holder, claimed_until=until))
    if res.rowcount:
        row.claimed_until = until
    return bool(res.rowcount)


async def release(store: Store, holder: str, ids: Iterable[int] | None = None) -> int:
    """Give back claims (a clean stop, or messages we decided not to send now)."""
    cond = [t_out.c.claimed_by == holder, t_out.c.status == PENDING]
    if ids is not None:
        cond.append(t_out.c.id.in_(list(ids)))
    async with store.begin() as conn:
        res = await conn.execute(update(t_out).where(*cond).values(claimed_by=None, claimed_until=None))
    return int(res.rowcount or 0)


def _holder_dead(holder: str, host: str) -> bool:
    """A claim by a process of this host that no longer runs (``host:pid:nonce``)."""
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != host:
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


async def release_orphans(store: Store, *, me: str) -> int:
    """Free claims left by processes of this host that died (SIGKILL, power loss) so a
    restart sends at once instead of waiting for the claims to expire. Claims of other
    hosts expire on their own (``claimed_until``)."""
    host = socket.gethostname()
    now = utcnow()
    async with store.connect() as conn:
        holders: list[str] = list((await conn.execute(
            select(t_out.c.claimed_by).where(t_out.c.status == PENDING, t_out.c.claimed_by.is_not(None),
                                             t_out.c.claimed_until >= now).distinct())).scalars().all())
    dead = [h for h in holders if h != me and _holder_dead(h, host)]
    if not dead:
        return 0
    async with store.begin() as conn:
        res = await conn.execute(update(t_out).where(t_out.c.status == PENDING, t_out.c.claimed_by.in_(dead))
                                 .values(claimed_by=None, claimed_until=None))
    n = int(res.rowcount or 0)
    if n:
        log.info("released %d outbox claims left by stopped processes %s", n, ", ".join(dead))
    return n


# -- outcomes -------------------------------------------------------------------------------------

async def mark_sent(store: Store, row_id: int, message_id: str | None, *,
                    now: datetime | None = None) -> None:
    async with store.begin() as conn:
        await conn.execute(update(t_out).where(t_out.c.id == row_id).values(
            status=SENT, sent_at=now or utcnow(), message_id=None if message_id is None else str(message_id),
            attempts=t_out.c.attempts + 1, claimed_by=None, claimed_until=None))


async def reschedule(store: Store | AsyncConnection, row_id: int, *, at: datetime, error: str,
                     count_attempt: bool = True, values: dict[str, Any] | None = None) -> None:
    extra = dict(values or {})
    if count_attempt:
        extra["attempts"] = t_out.c.attempts + 1
    stmt = update(t_out).where(t_out.c.id == row_id, t_out.c.status == PENDING).values(
        next_attempt_at=at, last_error=error[:2000], claimed_by=None, claimed_until=None, **extra)
    if isinstance(store, AsyncConnection):
        await store.execute(stmt)
        return
    async with store.begin() as conn:
        await conn.execute(stmt)


async def mark_dead(conn: AsyncConnection, row_ids: Iterable[int], reason: str, *,
                    count_attempt: bool = True) -> int:
    ids = list(row_ids)
    if not ids:
        return 0
    values: dict[str, Any] = {"status": DEAD, "last_error": reason[:2000], "claimed_by": None,
                              "claimed_until": None}
    if count_attempt:
        values["attempts"] = t_out.c.attempts + 1
    res = await conn.execute(update(t_out).where(t_out.c.id.in_(ids), t_out.c.status == PENDING)
                             .values(**values))
    return int(res.rowcount or 0)


# -- reading --------------------------------------------------------------------------------------

async def pending_count(store: Store, adapters: Iterable[str] | None = None) -> int:
    q = select(func.count()).select_from(t_out).where(t_out.c.status == PENDING)
    if adapters is not None:
        q = q.where(t_out.c.adapter.in_(list(adapters)))
    async with store.connect() as conn:
        return int((await conn.execute(q)).scalar_one())


async def next_due(store: Store, adapters: Iterable[str]) -> datetime | None:
    """When the earliest pending message may be tried (backoff / retry_after)."""
    q = select(func.min(t_out.c.next_attempt_at)).where(t_out.c.status == PENDING,
                                                         t_out.c.adapter.in_(list(adapters)))
    async with store.connect() as conn:
        value = (await conn.execute(q)).scalar_one_or_none()
    if isinstance(value, str):  # SQLite aggregate results bypass the column type
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


async def status(store: Store, *, limit: int = 100) -> dict[str, Any]:
    """Counts by status and the dead letters (newest first) with their reasons."""
    async with store.connect() as conn:
        counts: dict[str, int] = {str(r[0]): int(r[1]) for r in (await conn.execute(
            select(t_out.c.status, func.count()).group_by(t_out.c.status))).all()}
        dead = (await conn.execute(
            select(t_out.c.id, t_out.c.adapter, t_out.c.chat_id, t_out.c.subscription_id, t_out.c.batch,
                   t_out.c.seq, t_out.c.attempts, t_out.c.last_error, t_out.c.created_at)
            .where(t_out.c.status == DEAD).order_by(t_out.c.id.desc()).limit(limit))).all()
    return {
        PENDING: int(counts.get(PENDING, 0)),
        SENT: int(counts.get(SENT, 0)),
        DEAD: int(counts.get(DEAD, 0)),
        "dead_letters": [
            {"id": d.id, "adapter": d.adapter, "chat_id": d.chat_id, "subscription_id": d.subscription_id,
             "batch": d.batch, "seq": d.seq, "attempts": d.attempts, "reason": d.last_error or "",
             "created_at": iso(d.created_at)}
            for d in dead
        ],
    }
