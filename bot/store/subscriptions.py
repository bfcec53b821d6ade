"""Subscriptions: one row per (adapter, chat). Queries and validated changes.

Every function takes either the ``Store`` (it opens its own transaction) or an
``AsyncConnection`` already inside the caller's transaction (e.g. delivery retiring a
chat while it marks the message dead).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.i18n import LOCALES, normalise_locale
from bot.i18n.format import ZONE_HINT, known_zone
from bot.model import Filters, Subscription
from bot.store.tables import subscriptions as t_subs

if TYPE_CHECKING:
    from bot.app import App
    from bot.config import Settings
    from bot.store.db import Store

log = logging.getLogger(__name__)

_TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
MAX_TIMES = 6  # digests a day; more is noise, and each one is a scheduler job
MAX_STORIES = 50
CHAT_TYPES = ("private", "group", "supergroup", "channel")


class InvalidSetting(ValueError):
    """A setting a user or admin gave is not acceptable; the message says why."""

    def __init__(self, key: str, message: str, value: str = ""):
        super().__init__(message)
        self.key = key
        self.value = value


# -- validation ---------------------------------------------------------------------------------

def validate_tz(value: str) -> str:
    v = (value or "").strip()
    if not known_zone(v):
        raise InvalidSetting("tz", f"unknown time zone {value!r} ({ZONE_HINT})", v)
    return v


def parse_times(value: str | Iterable[str]) -> list[str]:
    """'8:00, 20:00' or ['08:00'] -> ['08:00', '20:00'] (sorted, unique, zero-padded)."""
    parts = re.split(r"[,\s，]+", value) if isinstance(value, str) else list(value)
    out: set[str] = set()
    for p in parts:
        p = p.strip().replace("：", ":")
        if not p:
            continue
        m = _TIME_RE.match(p)
        if not m:
            raise InvalidSetting("time", f"not a time of day: {p!r} (use HH:MM, e.g. 08:00,20:00)", p)
        out.add(f"{int(m.group(1)):02d}:{m.group(2)}")
    if not out:
        raise InvalidSetting("time_none", "give at least one time of day, e.g. 08:00")
    if len(out) > MAX_TIMES:
        raise InvalidSetting("time_count", f"at most {MAX_TIMES} digest times a day (got {len(out)})",
                             str(len(out)))
    return sorted(out)


def validate_locale(value: str) -> str:
    v = (value or "").strip()
    low = v.lower().replace("_", "-")
    if low in ("zh", "zh-cn", "zh-hans", "cn", "中文") or low.startswith("zh-"):
        return "zh-CN"
    if low in ("en", "english") or low.startswith("en-"):
        return "en"
    if v in LOCALES:
        return normalise_locale(v)
    raise InvalidSetting("lang", f"unknown language {value!r} (use zh-CN or en)", v)


def validate_max(value: str | int) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        raise InvalidSetting("max", f"not a number: {value!r}", str(value)) from None
    if not 1 <= n <= MAX_STORIES:
        raise InvalidSetting("max", f"max stories must be between 1 and {MAX_STORIES}", str(n))
    return n


# -- rows -----------------------------------------------------------------------------------------

def _now() -> datetime:
    return datetime.now(UTC)


def _from_row(row: Any) -> Subscription:
    m = row._mapping
    return Subscription(
        id=m["id"],
        adapter=m["adapter"],
        chat_id=m["chat_id"],
        chat_type=m["chat_type"] or "private",
        locale=m["locale"],
        timezone=m["timezone"],
        times=list(m["times"] or []),
        max_stories=m["max_stories"],
        filters=Filters.from_dict(m["filters"]),
        quiet_hours=m["quiet_hours"],
        active=bool(m["active"]),
        retired_reason=m["retired_reason"],
        last_digest_at=m["last_digest_at"],
    )


def _values(sub: Subscription) -> dict[str, Any]:
    return {
        "chat_type": sub.chat_type,
        "locale": sub.locale,
        "timezone": sub.timezone,
        "times": list(sub.times),
        "max_stories": sub.max_stories,
        "filters": sub.filters.as_dict(),
        "quiet_hours": sub.quiet_hours,
        "active": sub.active,
        "retired_reason": sub.retired_reason,
    }


@asynccontextmanager
async def _conn(target: Store | AsyncConnection, *, write: bool) -> AsyncIterator[AsyncConnection]:
    """The caller's connection (inside its transaction), else one of the store's."""
    if isinstance(target, AsyncConnection):
        yield target
        return
    async with target.begin() if write else target.connect() as conn:
        yield conn


# -- queries --------------------------------------------------------------------------------------

async def get(target: Store | AsyncConnection, adapter: str, chat_id: str) -> Subscription | None:
    async with _conn(target, write=False) as conn:
        row = (await conn.execute(
            select(t_subs).where(t_subs.c.adapter == adapter, t_subs.c.chat_id == str(chat_id))
        )).first()
    return _from_row(row) if row else None


async def get_by_id(target: Store | AsyncConnection, sub_id: int) -> Subscription | None:
    async with _conn(target, write=False) as conn:
        row = (await conn.execute(select(t_subs).where(t_subs.c.id == sub_id))).first()
    return _from_row(row) if row else None


async def list_subscriptions(target: Store | AsyncConnection, *, adapter: str | None = None,
                             active_only: bool = False) -> list[Subscription]:
    q = select(t_subs).order_by(t_subs.c.adapter, t_subs.c.id)
    if adapter is not None:
        q = q.where(t_subs.c.adapter == adapter)
    if active_only:
        q = q.where(t_subs.c.active.is_(True))
    async with _conn(target, write=False) as conn:
        rows = (await conn.execute(q)).all()
    return [_from_row(r) for r in rows]


async def list_active(target: Store | AsyncConnection, adapter: str | None = None) -> list[Subscription]:
    """The subscriptions the scheduler plans digests for."""
    return await list_subscriptions(target, adapter=adapter, active_only=True)


# -- changes --------------------------------------------------------------------------------------

async def upsert(target: Store | AsyncConnection, sub: Subscription) -> Subscription:
    """Insert ``sub`` or overwrite the settings of the row for its (adapter, chat_id)."""
    sub.chat_id = str(sub.chat_id)
    now = _now()
    async with _conn(target, write=True) as conn:
        existing = (await conn.execute(
            select(t_subs.c.id).where(t_subs.c.adapter == sub.adapter, t_subs.c.chat_id == sub.chat_id)
        )).first()
        if existing:
            await conn.execute(update(t_subs).where(t_subs.c.id == existing.id)
                               .values(**_values(sub), updated_at=now))
            sub.id = existing.id
        else:
            try:
                # A savepoint: a concurrent insert of the same chat must not poison the caller's tx.
                async with conn.begin_nested():
                    res = await conn.execute(t_subs.insert().values(
                        adapter=sub.adapter, chat_id=sub.chat_id, created_at=now, updated_at=now,
                        **_values(sub)))
                pk = res.inserted_primary_key
                assert pk is not None  # an INSERT of one row always has one
                sub.id = pk[0]
            except IntegrityError:
                row = (await conn.execute(select(t_subs.c.id).where(
                    t_subs.c.adapter == sub.adapter, t_subs.c.chat_id == sub.chat_id))).one()
                await conn.execute(update(t_subs).where(t_subs.c.id == row.id)
                                   .values(**_values(sub), updated_at=now))
                sub.id = row.id
        row = (await conn.execute(select(t_subs).where(t_subs.c.id == sub.id))).one()
    return _from_row(row)


def defaults(settings: Settings, adapter: str, chat_id: str, *, chat_type: str = "private",
             locale: str | None = None) -> Subscription:
    """A new subscription as the configuration says it should start."""
    return Subscription(
        adapter=adapter,
        chat_id=str(chat_id),
        chat_type=chat_type,
        locale=locale or settings.digest.locale,
        timezone=settings.timezone,
        times=list(settings.digest.times),
        max_stories=settings.digest.max_stories,
    )


def _adapter_hooks(app: App, adapter: str) -> Any:
    return app.adapter_class(adapter)


async def add_many(app: App, adapter: str, chat_ids: Iterable[str], *, locale: str | None = None,
                   tz: str | None = None, times: str | list[str] | None = None) -> list[Subscription]:
    """Subscribe chats by id (CLI / admin set-up). Existing rows are re-activated and updated
    with whatever was given; everything else keeps its value or the configured default."""
    loc = validate_locale(locale) if locale else None
    zone = validate_tz(tz) if tz else None
    hours = parse_times(times) if times else None
    factory = _adapter_hooks(app, adapter)
    ids: list[tuple[str, str]] = []
    for raw in chat_ids:
        cid = str(raw).strip()
        if not cid:
            raise InvalidSetting("chat_id", "empty chat id")
        chat_type = "private"
        if factory is not None and hasattr(factory, "normalise_chat_id"):
            cid, chat_type = factory.normalise_chat_id(cid)  # raises ValueError on a bad id
        if cid not in [c for c, _ in ids]:
            ids.append((cid, chat_type))
    out: list[Subscription] = []
    async with app.store.begin() as conn:
        for cid, chat_type in ids:
            sub = await get(conn, adapter, cid) or defaults(app.settings, adapter, cid, chat_type=chat_type)
            sub.active, sub.retired_reason = True, None
            if loc:
                sub.locale = loc
            if zone:
                sub.timezone = zone
            if hours:
                sub.times = hours
            out.append(await upsert(conn, sub))
    for s in out:
        await app.subscription_changed(s)
    return out


async def deactivate_many(target: Store | AsyncConnection, adapter: str, chat_ids: Iterable[str],
                          reason: str) -> int:
    ids = [str(c) for c in chat_ids]
    async with _conn(target, write=True) as conn:
        res = await conn.execute(
            update(t_subs)
            .where(t_subs.c.adapter == adapter, t_subs.c.chat_id.in_(ids), t_subs.c.active.is_(True))
            .values(active=False, retired_reason=reason, updated_at=_now())
        )
    return int(res.rowcount or 0)


async def retire(target: Store | AsyncConnection, sub_id: int, reason: str) -> bool:
    """Stop sending to a subscription (blocked, kicked, chat gone, unsubscribed)."""
    async with _conn(target, write=True) as conn:
        res = await conn.execute(
            update(t_subs).where(t_subs.c.id == sub_id)
            .values(active=False, retired_reason=reason, updated_at=_now())
        )
    if res.rowcount:
        log.info("subscription %s retired: %s", sub_id, reason)
    return bool(res.rowcount)


async def reactivate(target: Store | AsyncConnection, sub_id: int) -> bool:
    async with _conn(target, write=True) as conn:
        res = await conn.execute(
            update(t_subs).where(t_subs.c.id == sub_id)
            .values(active=True, retired_reason=None, updated_at=_now())
        )
    return bool(res.rowcount)


async def update_settings(target: Store | AsyncConnection, sub_id: int, *, locale: str | None = None,
                          timezone: str | None = None, times: str | list[str] | None = None,
                          max_stories: int | str | None = None, quiet_hours: str | None = None,
                          filters: Filters | None = None) -> Subscription:
    """Validate and apply the given changes; raises ``InvalidSetting`` naming the bad one."""
    values: dict[str, Any] = {}
    if locale is not None:
        values["locale"] = validate_locale(locale)
    if timezone is not None:
        values["timezone"] = validate_tz(timezone)
    if times is not None:
        values["times"] = parse_times(times)
    if max_stories is not None:
        values["max_stories"] = validate_max(max_stories)
    if quiet_hours is not None:
        values["quiet_hours"] = quiet_hours or None
    if filters is not None:
        values["filters"] = filters.as_dict()
    async with _conn(target, write=True) as conn:
        if values:
            await conn.execute(
                update(t_subs).where(t_subs.c.id == sub_id).values(**values, updated_at=_now()))
        row = (await conn.execute(select(t_subs).where(t_subs.c.id == sub_id))).first()
    if row is None:
        raise KeyError(f"no subscription {sub_id}")
    return _from_row(row)


async def set_filters(target: Store | AsyncConnection, sub_id: int, filters: Filters) -> Subscription:
    return await update_settings(target, sub_id, filters=filters)


async def move_chat(target: Store | AsyncConnection, adapter: str, old_chat_id: str,
                    new_chat_id: str) -> Subscription | None:
    """A Telegram group became a supergroup: its subscription follows it to the new id.

    If the new id already has a row (e.g. someone subscribed there too), the old row keeps
    nothing worth merging over it and is retired instead."""
    old_chat_id, new_chat_id = str(old_chat_id), str(new_chat_id)
    async with _conn(target, write=True) as conn:
        old = await get(conn, adapter, old_chat_id)
        if old is None:
            return None
        taken = await get(conn, adapter, new_chat_id)
        if taken is not None:
            await conn.execute(update(t_subs).where(t_subs.c.id == old.id).values(
                active=False, retired_reason=f"migrated to {new_chat_id}", updated_at=_now()))
            if not taken.active and old.active:
                await conn.execute(update(t_subs).where(t_subs.c.id == taken.id).values(
                    active=True, retired_reason=None, updated_at=_now()))
            return await get(conn, adapter, new_chat_id)
        await conn.execute(update(t_subs).where(t_subs.c.id == old.id).values(
            chat_id=new_chat_id, chat_type="supergroup" if old.chat_type == "group" else old.chat_type,
            updated_at=_now()))
        moved = await get(conn, adapter, new_chat_id)
    log.info("subscription %s moved %s:%s -> %s", old.id, adapter, old_chat_id, new_chat_id)
    return moved


async def set_last_digest_at(target: Store | AsyncConnection, sub_id: int, at: datetime) -> None:
    async with _conn(target, write=True) as conn:
        await conn.execute(update(t_subs).where(t_subs.c.id == sub_id).values(last_digest_at=at))
