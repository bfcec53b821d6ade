"""Rows for digest tests: sources, articles with story_id set, stories, subscriptions.

Inserted straight into the tables so composition is tested independently of clustering.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from bot.model import Subscription
from bot.store.db import Store
from bot.store.tables import articles, sources, stories, subscriptions

NOW = datetime(2025, 2, 14, 0, 0, tzinfo=UTC)
_seq = itertools.count(1)


@dataclass
class Art:
    title: str
    outlet: str = "qq"
    body: str = ""
    summary: str = ""
    url: str | None = None
    lang: str = "zh-CN"
    categories: list[str] = field(default_factory=list)
    published_at: datetime = NOW - timedelta(hours=3)
    ingested_at: datetime = NOW - timedelta(hours=1)
    duplicate_of: int | None = None


async def source_id(conn: Any, name: str = "local") -> int:
    row = (await conn.execute(select(sources.c.id).where(sources.c.name == name))).first()
    if row:
        return int(row[0])
    res = await conn.execute(insert(sources).values(name=name, type="folder"))
    return int(res.inserted_primary_key[0])


async def add_story(
    store: Store, title: str, arts: list[Art], *, headline: int | None = None
) -> tuple[int, list[int]]:
    """A story row and its articles; returns (story id, article ids)."""
    async with store.begin() as conn:
        sid_src = await source_id(conn)
        first = min(a.published_at for a in arts)
        last = max(a.published_at for a in arts)
        res = await conn.execute(
            insert(stories).values(
                title=title,
                size=len(arts),
                outlet_count=len({a.outlet for a in arts}),
                first_seen=first,
                last_seen=last,
                updated_at=NOW,
            )
        )
        story_id = int(res.inserted_primary_key[0])
        ids = []
        for a in arts:
            n = next(_seq)
            res = await conn.execute(
                insert(articles).values(
                    source_id=sid_src,
                    external_id=f"ext-{n}",
                    outlet=a.outlet,
                    path=f"{n}.md",
                    url=a.url,
                    title=a.title,
                    summary=a.summary,
                    body=a.body,
                    lang=a.lang,
                    tags=[],
                    categories=a.categories,
                    links=[],
                    content_hash=f"h{n}",
                    published_at=a.published_at,
                    ingested_at=a.ingested_at,
                    updated_at=a.ingested_at,
                    story_id=story_id,
                    duplicate_of=a.duplicate_of,
                )
            )
            ids.append(int(res.inserted_primary_key[0]))
        if headline is not None:
            await conn.execute(
                stories.update().where(stories.c.id == story_id).values(headline_article_id=ids[headline])
            )
    return story_id, ids


async def add_articles(store: Store, story_id: int, arts: list[Art]) -> None:
    async with store.begin() as conn:
        sid_src = await source_id(conn)
        for a in arts:
            n = next(_seq)
            await conn.execute(
                insert(articles).values(
                    source_id=sid_src,
                    external_id=f"ext-{n}",
                    outlet=a.outlet,
                    url=a.url,
                    title=a.title,
                    summary=a.summary,
                    body=a.body,
                    lang=a.lang,
                    tags=[],
                    categories=a.categories,
                    links=[],
                    content_hash=f"h{n}",
                    published_at=a.published_at,
                    ingested_at=a.ingested_at,
                    updated_at=a.ingested_at,
                    story_id=story_id,
                )
            )


async def add_subscription(store: Store, **kw: Any) -> Subscription:
    sub = Subscription(
        adapter=kw.pop("adapter", "console"), chat_id=kw.pop("chat_id", f"c{next(_seq)}"), **kw
    )
    async with store.begin() as conn:
        res = await conn.execute(
            insert(subscriptions).values(
                adapter=sub.adapter,
                chat_id=sub.chat_id,
                chat_type=sub.chat_type,
                locale=sub.locale,
                timezone=sub.timezone,
                times=sub.times,
                max_stories=sub.max_stories,
                filters=sub.filters.as_dict(),
                active=True,
                created_at=NOW,
                updated_at=NOW,
                last_digest_at=sub.last_digest_at,
            )
        )
        sub.id = int(res.inserted_primary_key[0])
    return sub
