"""The store reads a digest needs, and the record of what each subscription was shown."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.digest.select import Art, StoryRows
from bot.model import Digest
from bot.store.tables import articles, deliveries, stories, subscriptions
from bot.text.summary import boilerplate_keys

_CHUNK = 500  # ids per IN (...) so neither backend meets its parameter limit
# Page furniture is learnt from the head of an outlet's latest pages in other stories.
_BOILERPLATE_PAGES = 12
_BOILERPLATE_CHARS = 4000


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]


async def window_story_ids(conn: AsyncConnection, start: datetime, end: datetime) -> list[int]:
    q = (select(articles.c.story_id).distinct()
         .where(articles.c.story_id.is_not(None), articles.c.ingested_at > start,
                articles.c.ingested_at <= end))
    return [r[0] for r in (await conn.execute(q)).all()]


async def load_stories(conn: AsyncConnection, ids: list[int], end: datetime) -> dict[int, StoryRows]:
    out: dict[int, StoryRows] = {}
    for chunk in _chunks(ids):
        q = (select(stories.c.id, stories.c.title, stories.c.headline_article_id)
             .where(stories.c.id.in_(chunk)))
        for r in (await conn.execute(q)).all():
            out[r.id] = StoryRows(id=r.id, title=r.title or "", headline_article_id=r.headline_article_id)
        aq = (select(articles.c.id, articles.c.story_id, articles.c.outlet, articles.c.url, articles.c.title,
                     articles.c.summary, articles.c.lang, articles.c.categories, articles.c.tags,
                     articles.c.published_at, articles.c.ingested_at, articles.c.duplicate_of,
                     func.length(articles.c.body).label("body_len"))
              .where(articles.c.story_id.in_(chunk), articles.c.ingested_at <= end)
              .order_by(articles.c.id))
        for r in (await conn.execute(aq)).all():
            st = out.get(r.story_id)
            if st is None:
                continue
            st.arts.append(Art(id=r.id, story_id=r.story_id, outlet=r.outlet or "", url=r.url,
                                title=r.title or "", summary=r.summary or "", lang=r.lang or "",
                                categories=_str_list(r.categories), tags=_str_list(r.tags),
                                published_at=r.published_at, ingested_at=r.ingested_at,
                                duplicate_of=r.duplicate_of, body_len=r.body_len or 0))
    return out


async def outlet_stats(conn: AsyncConnection, ids: list[int],
                        end: datetime) -> dict[int, list[tuple[str, int, datetime]]]:
    """Per story: (outlet, articles, latest report) for articles ingested by ``end``."""
    out: dict[int, list[tuple[str, int, datetime]]] = {}
    for chunk in _chunks(ids):
        q = (select(articles.c.story_id, articles.c.outlet, func.count().label("n"),
                    func.max(articles.c.published_at).label("latest"))
             .where(articles.c.story_id.in_(chunk), articles.c.ingested_at <= end)
             .group_by(articles.c.story_id, articles.c.outlet))
        for r in (await conn.execute(q)).all():
            out.setdefault(r.story_id, []).append((r.outlet or "", int(r.n), r.latest))
    return out


def _str_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if v is not None]
    return [str(value)] if value else []


async def delivered_sizes(conn: AsyncConnection, subscription_id: int,
                     ids: list[int]) -> dict[int, tuple[int, bool]]:
    """Story id -> (size when last in a digest's window, whether it was shown)."""
    out: dict[int, tuple[int, bool]] = {}
    for chunk in _chunks(ids):
        q = select(deliveries.c.story_id, deliveries.c.size, deliveries.c.shown).where(
            deliveries.c.subscription_id == subscription_id, deliveries.c.story_id.in_(chunk))
        out.update({r.story_id: (r.size, bool(r.shown)) for r in (await conn.execute(q)).all()})
    return out


async def outlet_boilerplate(conn: AsyncConnection, outlet: str, story_ids: set[int]) -> frozenset[str]:
    """What recurs at the top of the outlet's latest pages in other stories (navigation, notices)."""
    q = (select(func.substr(articles.c.body, 1, _BOILERPLATE_CHARS))
         .where(articles.c.outlet == outlet,
                or_(articles.c.story_id.is_(None), articles.c.story_id.not_in(list(story_ids))))
         .order_by(articles.c.id.desc()).limit(_BOILERPLATE_PAGES))
    return boilerplate_keys([r[0] or "" for r in (await conn.execute(q)).all()])


async def bodies(conn: AsyncConnection, ids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for chunk in _chunks(ids):
        q = select(articles.c.id, articles.c.body).where(articles.c.id.in_(chunk))
        out.update({r.id: r.body or "" for r in (await conn.execute(q)).all()})
    return out


async def record_delivered(conn: AsyncConnection, subscription_id: int, digest: Digest, *,
                           advance_window: bool = True) -> None:
    """Remember the digest's stories as delivered (with their size, for later update mentions),
    and the stories it cut as passed over (so an overlapping next window does not offer them
    again unless they grow); with ``advance_window``, start the next window at its end."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    at = digest.generated_at
    for e in digest.entries:
        size = (await conn.execute(select(func.count()).select_from(articles).where(
            articles.c.story_id == e.story_id, articles.c.ingested_at <= at))).scalar_one()
        stmt = insert(deliveries).values(subscription_id=subscription_id, story_id=e.story_id, size=int(size),
                                         delivered_at=at, shown=True)
        await conn.execute(stmt.on_conflict_do_update(
            index_elements=["subscription_id", "story_id"],
            set_={"size": stmt.excluded.size, "delivered_at": stmt.excluded.delivered_at, "shown": True}))
    for story_id, size in digest.passed_over.items():
        stmt = insert(deliveries).values(subscription_id=subscription_id, story_id=story_id, size=int(size),
                                         delivered_at=at, shown=False)
        # Never turns a story that was shown into one that was not.
        await conn.execute(stmt.on_conflict_do_update(
            index_elements=["subscription_id", "story_id"],
            set_={"size": stmt.excluded.size, "delivered_at": stmt.excluded.delivered_at},
            where=deliveries.c.shown.is_(False)))
    if advance_window:
        await conn.execute(subscriptions.update()
                           .where(subscriptions.c.id == subscription_id)
                           .values(last_digest_at=at, updated_at=datetime.now(UTC)))
