"""Index maintenance (inside ingest's transaction) and ranked, story-collapsed search."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.model import Article
from bot.search.backends import IndexDoc, Stream, backend_for
from bot.search.query import ParsedQuery, QueryError, parse_query
from bot.search.results import SearchHit, SearchResults, make_snippet
from bot.search.tokens import stream
from bot.store import tables as T

log = logging.getLogger(__name__)

MAX_INDEXED_BODY_CHARS = 30_000  # bounds work per article; crawler dumps past this are noise
MAX_LIMIT = 100


def _body_text(summary: str, body: str) -> str:
    # A summary that is just the body's opening (often with "...") would count its words twice.
    head = summary.strip().rstrip(".…").strip()
    if head and head[:40] not in body[:400]:
        body = summary + "\n" + body
    return body[:MAX_INDEXED_BODY_CHARS]


def index_fields(title: str, summary: str, body: str, outlet: str) -> tuple[Stream, Stream, Stream]:
    """Title, body and outlet token streams (a pure function of the text)."""
    return stream(title or ""), stream(_body_text(summary or "", body or "")), stream(outlet or "")


def make_doc(article_id: int, title: str, summary: str, body: str, outlet: str,
             fields: tuple[Stream, Stream, Stream] | None = None) -> IndexDoc:
    t, b, o = fields or index_fields(title, summary, body, outlet)
    return IndexDoc(article_id=article_id, title=t, body=b, outlet=o)


async def index_articles(conn: AsyncConnection, articles: list[Article]) -> None:
    """Keep the index in step with ingest, inside the caller's transaction (re-index = replace)."""
    docs: list[IndexDoc] = []
    for a in articles:
        if a.id is None:
            log.error("search: article %s/%s has no id yet; not indexed", a.source, a.external_id)
            continue
        try:
            docs.append(make_doc(a.id, a.title, a.summary, a.body, a.outlet, a.index_fields))
        except Exception:  # one bad text must not stop the batch
            log.exception("search: could not index article %s (%s)", a.id, a.path or a.url or a.external_id)
    if docs:
        await backend_for(conn.dialect.name).write(conn, docs)


async def remove_articles(conn: AsyncConnection, ids: list[int]) -> None:
    await backend_for(conn.dialect.name).delete(conn, ids)


async def rebuild_index(store: Any, *, batch: int = 2000) -> int:
    """Re-index every stored article (after a tokenizer change); returns the count."""
    n = 0
    last = 0
    cols = [T.articles.c.id, T.articles.c.title, T.articles.c.summary, T.articles.c.body, T.articles.c.outlet]
    while True:
        async with store.begin() as conn:
            rows = (
                await conn.execute(
                    select(*cols).where(T.articles.c.id > last).order_by(T.articles.c.id).limit(batch)
                )
            ).all()
            if not rows:
                return n
            docs = [make_doc(r.id, r.title, r.summary, r.body, r.outlet) for r in rows]
            await backend_for(conn.dialect.name).write(conn, docs)
        n += len(rows)
        last = rows[-1].id


# Relevance is computed for at most this many matches (the newest); see bot.search.backends.
WINDOW = 2000


async def search(
    store: Any, query: str, *, limit: int = 10, offset: int = 0, max_chars: int = 200
) -> SearchResults:
    """Ranked results, one per story. Raises QueryError (a ValueError) only for an empty query."""
    pq = parse_query(query, max_chars=max_chars)
    limit = max(1, min(int(limit), MAX_LIMIT))
    offset = max(0, int(offset))
    res = SearchResults(query=pq.text, offset=offset, limit=limit, truncated=pq.truncated)
    if not pq.runnable:
        return res
    async with store.connect() as conn:
        try:
            await _run(conn, pq, res)
        except DBAPIError as exc:
            # Queries are built from quoted tokens, so this is a bug, not the user's fault: say so in
            # the log and answer "no results" rather than fail the chat command.
            if not _is_query_syntax_error(exc):
                raise
            log.error("search: the database rejected the query built for %r: %s", pq.text, exc.orig)
            return SearchResults(query=pq.text, offset=offset, limit=limit, truncated=pq.truncated)
    return res


def _is_query_syntax_error(exc: DBAPIError) -> bool:
    msg = str(exc.orig).lower()
    return "fts5" in msg or "tsquery" in msg or "tsvector" in msg


async def _run(conn: AsyncConnection, pq: ParsedQuery, res: SearchResults) -> None:
    backend = backend_for(conn.dialect.name)
    sql, params = backend.ranked(pq, time.time())
    params.update(limit=res.limit, offset=res.offset, window=WINDOW)
    rows = (await conn.execute(text(sql), params)).all()
    if not rows and res.offset:
        # Past the last page: still say how many there are.
        params.update(limit=1, offset=0)
        first = (await conn.execute(text(sql), params)).all()
        groups, hits = (int(first[0].groups), int(first[0].hits)) if first else (0, 0)
    elif rows:
        groups, hits = int(rows[0].groups), int(rows[0].hits)
    else:
        return
    res.total = groups
    if hits >= WINDOW:
        # More matches than were ranked: estimate the stories among all of them.
        count_sql, count_params = backend.count(pq)
        matches = int((await conn.execute(text(count_sql), count_params)).scalar() or 0)
        if matches > hits:
            res.total = max(groups, round(groups * matches / hits))
            res.total_exact = False
            res.pageable = groups
    if not rows:
        return
    ids = [int(r.id) for r in rows]
    a = T.articles.c
    arts = {
        r.id: r
        for r in await conn.execute(
            select(a.id, a.title, a.url, a.outlet, a.published_at, a.summary, a.body, a.story_id).where(
                a.id.in_(ids)
            )
        )
    }
    story_ids = [arts[i].story_id for i in ids if i in arts and arts[i].story_id is not None]
    outlets: dict[int, list[tuple[str, int]]] = {}
    if story_ids:
        q = (
            select(a.story_id, a.outlet, text("COUNT(*) AS n"))
            .where(a.story_id.in_(story_ids))
            .group_by(a.story_id, a.outlet)
        )
        for r in await conn.execute(q):
            outlets.setdefault(r.story_id, []).append((r.outlet or "", int(r.n)))
    for row in rows:
        art = arts.get(int(row.id))
        if art is None:  # deleted between the two reads
            continue
        if art.story_id is not None and art.story_id in outlets:
            ranked = sorted(outlets[art.story_id], key=lambda x: (-x[1], x[0]))
            names = [o for o, _ in ranked if o]
        else:
            names = [art.outlet] if art.outlet else []
        res.items.append(
            SearchHit(
                story_id=art.story_id,
                article_id=art.id,
                title=art.title,
                url=art.url,
                outlet=art.outlet or "",
                outlets=names,
                outlet_count=len(names),
                published_at=art.published_at,
                snippet=make_snippet(art.body or art.summary or "", pq.words),
                score=float(row.score),
            )
        )


__all__ = ["QueryError", "SearchHit", "SearchResults", "index_articles", "rebuild_index", "search"]
