"""Article rows: batch upsert for ingest, and the reads other stages share."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.model import Article, content_hash
from bot.store.tables import articles, sources

NEW, UPDATED, UNCHANGED = "new", "updated", "unchanged"
OUTLET_MAX, LANG_MAX = 200, 16

# Columns an edit can change; a row whose values all match the article is unchanged.
_COMPARED = ("external_id", "outlet", "path", "url", "title", "summary", "lang", "tags", "categories",
             "links", "content_hash", "published_at")
_TEXT_FIELDS = ("external_id", "outlet", "path", "url", "title", "summary", "body", "lang")
_CHUNK = 500  # IN (...) lists stay well under both backends' parameter limits


class InvalidArticle(ValueError):
    """An article that cannot be stored as it is."""


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _clean_text(s: str) -> str:
    # PostgreSQL refuses NUL characters and lone surrogates in text; SQLite would keep them and
    # break the other backend's dumps, so both get the same text.
    if not s.isascii() and _SURROGATE_RE.search(s):
        s = s.encode("utf-8", "replace").decode("utf-8")
    return s.replace("\x00", "") if "\x00" in s else s


def validate(article: Article) -> None:
    """Make an article storable or raise InvalidArticle (before anything is written)."""
    for name in _TEXT_FIELDS:
        v = getattr(article, name)
        if v is not None:
            if not isinstance(v, str):
                raise InvalidArticle(f"{name} is not text")
            setattr(article, name, _clean_text(v))
    if not article.external_id:
        raise InvalidArticle("no identity (guid, URL, path or content hash)")
    if not article.title.strip():
        raise InvalidArticle("no title")
    if not isinstance(article.published_at, datetime) or article.published_at.tzinfo is None:
        raise InvalidArticle("published_at must be an aware datetime")
    article.published_at = article.published_at.astimezone(UTC)
    article.outlet = article.outlet[:OUTLET_MAX]
    article.lang = article.lang[:LANG_MAX]
    for name in ("tags", "categories", "links"):
        setattr(article, name, [_clean_text(str(x)) for x in getattr(article, name) or []])
    if not article.content_hash:
        article.content_hash = content_hash(article.title, article.body)


def _values(a: Article) -> dict[str, Any]:
    return {
        "external_id": a.external_id, "outlet": a.outlet, "path": a.path, "url": a.url, "title": a.title,
        "summary": a.summary, "body": a.body, "lang": a.lang, "tags": list(a.tags),
        "categories": list(a.categories), "links": list(a.links), "content_hash": a.content_hash,
        "published_at": a.published_at,
    }


_ROW_COLS = (articles.c.id, articles.c.story_id, articles.c.duplicate_of,
             *(articles.c[name] for name in _COMPARED))


async def _prefetch(conn: AsyncConnection, source_id: int, column: Any, keys: Iterable[str]
                    ) -> dict[str, dict[str, Any]]:
    keys = list(keys)
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(keys), _CHUNK):
        res = await conn.execute(select(*_ROW_COLS).where(articles.c.source_id == source_id,
                                                          column.in_(keys[i:i + _CHUNK])))
        for r in res:
            row = dict(r._mapping)
            out[row[column.name]] = row
    return out


async def upsert_articles(conn: AsyncConnection, source_id: int, batch: Sequence[Article], *,
                          now: datetime | None = None, live_paths: set[str] | frozenset[str] | None = None
                          ) -> list[str]:
    """Insert or update ``batch`` (already validated) in the caller's transaction.

    Returns ``new`` / ``updated`` / ``unchanged`` per article and sets ``id`` (and the
    stored ``story_id`` / ``duplicate_of``) on each. An article is found by its
    ``external_id``; failing that, by its file path (an edit that changed the URL keeps
    its id). ``live_paths`` (a folder's files now) keeps two files that claim one URL
    apart: the second is keyed by its own path.
    """
    now = now or datetime.now(UTC)
    by_ext = await _prefetch(conn, source_id, articles.c.external_id,
                             {a.external_id for a in batch} | {a.path for a in batch if a.path})
    paths = [a.path for a in batch if a.path]
    by_path = await _prefetch(conn, source_id, articles.c.path, paths) if paths else {}

    statuses: list[str] = []
    inserts: list[tuple[dict[str, Any], list[Article]]] = []  # row values, articles sharing it
    pending: dict[str, tuple[dict[str, Any], list[Article]]] = {}
    updates: dict[int, dict[str, Any]] = {}
    for a in batch:
        row = by_ext.get(a.external_id) or pending.get(a.external_id, (None,))[0]
        other = row.get("path") if row else None
        if (row is not None and live_paths is not None and a.path and other and other != a.path
                and other in live_paths and a.external_id != a.path):
            a.warnings.append(f"{other} has the same identity ({a.external_id}); kept apart, keyed by path")
            a.external_id = a.path
            row = by_ext.get(a.external_id) or pending.get(a.external_id, (None,))[0]
        if row is None and a.path and a.path in by_path:
            row = by_path[a.path]  # this file's earlier article, under an older identity
        values = _values(a)
        if row is None:
            entry = ({**values, "source_id": source_id, "ingested_at": now, "updated_at": now}, [a])
            inserts.append(entry)
            pending[a.external_id] = entry
            statuses.append(NEW)
            continue
        if "id" not in row or row.get("id") is None:  # a pending insert: the later copy wins
            row.update(values)
            pending[a.external_id][1].append(a)
            statuses.append(UNCHANGED)
            continue
        a.id, a.story_id, a.duplicate_of = row["id"], row["story_id"], row["duplicate_of"]
        if all(row[k] == values[k] for k in _COMPARED):
            statuses.append(UNCHANGED)
            continue
        row.update(values)
        by_ext[a.external_id] = row
        updates[row["id"]] = {**values, "_id": row["id"], "updated_at": now}
        statuses.append(UPDATED)

    if inserts:
        # One executemany, then the ids by key: INSERT … RETURNING in parameter order would make
        # SQLAlchemy send the rows one at a time on SQLite.
        await conn.execute(insert(articles), [values for values, _ in inserts])
        keys = [values["external_id"] for values, _ in inserts]
        new_ids: dict[str, int] = {}
        for i in range(0, len(keys), _CHUNK):
            res = await conn.execute(select(articles.c.id, articles.c.external_id).where(
                articles.c.source_id == source_id, articles.c.external_id.in_(keys[i:i + _CHUNK])))
            new_ids.update({ext: int(i_) for i_, ext in res})
        for values, arts in inserts:
            for a in arts:
                a.id = new_ids[values["external_id"]]
    if updates:
        stmt = update(articles).where(articles.c.id == bindparam("_id"))
        await conn.execute(stmt, list(updates.values()))
    return statuses


# ---------------------------------------------------------------- reads


def _select() -> Select[Any]:
    return select(articles, sources.c.name.label("source_name")).join(
        sources, sources.c.id == articles.c.source_id
    )


def row_to_article(r: Any) -> Article:
    m = r._mapping
    return Article(
        id=int(m["id"]), source=m["source_name"], external_id=m["external_id"], title=m["title"],
        body=m["body"], published_at=m["published_at"], outlet=m["outlet"], url=m["url"], path=m["path"],
        summary=m["summary"], lang=m["lang"], tags=list(m["tags"] or []),
        categories=list(m["categories"] or []), links=list(m["links"] or []), content_hash=m["content_hash"],
        story_id=m["story_id"], duplicate_of=m["duplicate_of"],
    )


async def list_articles(store: Any) -> list[Article]:
    """Every stored article, oldest first (published_at, then id)."""
    async with store.connect() as conn:
        res = await conn.execute(_select().order_by(articles.c.published_at, articles.c.id))
        return [row_to_article(r) for r in res]


async def get_articles(conn: AsyncConnection, ids: Iterable[int]) -> list[Article]:
    """Articles by id, in the order of ``ids`` (missing ids are left out)."""
    ids = list(dict.fromkeys(int(i) for i in ids))
    found: dict[int, Article] = {}
    for i in range(0, len(ids), _CHUNK):
        res = await conn.execute(_select().where(articles.c.id.in_(ids[i:i + _CHUNK])))
        for r in res:
            a = row_to_article(r)
            found[a.id] = a  # type: ignore[index]
    return [found[i] for i in ids if i in found]


async def articles_since(conn: AsyncConnection, since: datetime, until: datetime | None = None, *,
                         by: str = "ingested_at") -> list[Article]:
    """Articles in ``[since, until)`` by ``by`` (``ingested_at``: digest windows; ``published_at``:
    a story window), oldest first."""
    col = articles.c[by]
    q = _select().where(col >= since)
    if until is not None:
        q = q.where(col < until)
    res = await conn.execute(q.order_by(col, articles.c.id))
    return [row_to_article(r) for r in res]


async def count_articles(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(articles))).scalar_one())
