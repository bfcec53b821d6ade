"""Story assignment as ingest sees it: the engine's decisions, persisted in ingest's transaction.

``StoryService.load`` once per ingest pass restores the recent state (articles within the
window, their stories and duplicate groups, the rolling document frequencies) into an
in-memory ``Engine``; ``add`` runs a stored batch through it and writes ``story_id``,
``duplicate_of`` and ``minhash`` on the articles, the affected ``stories`` rows and the
``term_df`` increments. ``recluster`` wipes stories and rebuilds them through the very
same path, one batch after another in ingest order, so both give the same result.
"""

from __future__ import annotations

import gc
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.model import Article, Story
from bot.store.tables import articles, sources, stories, term_df
from bot.stories import features as F
from bot.stories.engine import Doc, Engine, Params

if TYPE_CHECKING:  # annotations only: the app sits above this layer
    from bot.app import App

log = logging.getLogger(__name__)

DOCS_TERM = "#docs"  # term_df row holding the number of documents counted (no word contains '#')
RECLUSTER_BATCH = 500  # ingest's batch size, so a rebuild replays the same batches
_CHUNK = 500


def params_from_settings(settings: Any) -> Params:
    cfg = getattr(settings, "stories", None)
    p = Params()
    if cfg is not None:
        p.window_hours = float(cfg.window_hours)
        p.dup_window_hours = max(p.dup_window_hours, p.window_hours)
        if cfg.similarity:
            p.similarity = float(cfg.similarity)
        if cfg.duplicate_threshold:
            p.dup_containment = float(cfg.duplicate_threshold)
    return p


def _collect_less_often() -> None:
    """The story window keeps hundreds of thousands of long-lived objects (pages, terms, caches),
    and the cyclic collector's default first threshold (700 allocations) walks into them over and
    over: about 11 % of an ingest's main-process CPU in ``benchmarks/stories.py``. Collect young
    objects every 10,000 allocations instead; nothing here relies on prompt collection."""
    if gc.get_threshold()[0] < _GC_YOUNG:
        gc.set_threshold(_GC_YOUNG, *gc.get_threshold()[1:])


_GC_YOUNG = 10_000


def _doc(a: Article | Any) -> Doc:
    assert a.id is not None  # stored articles only
    return Doc(id=int(a.id), title=a.title or "", body=a.body or "", published_at=a.published_at,
               outlet=a.outlet or "", lang=a.lang or "", features=getattr(a, "features", None),
               url=a.url or "")


class StoryService:
    """Incremental duplicates + stories. ``load`` once per pass, ``add`` per batch."""

    def __init__(self, params: Params, engine: Engine):
        self.params = params
        self.engine = engine
        self.loaded_from: datetime | None = None  # state holds every article published since
        # What the last ``add`` decided, to see whether its transaction was rolled back after it.
        self._last: dict[int, int] = {}
        self._stale = False  # memory may be ahead of the store: reload before the next batch

    def invalidate(self) -> None:
        """The caller rolled back a transaction that ran ``add``: reload before the next batch."""
        self._stale = True

    @classmethod
    async def load(cls, store: Any, settings: Any) -> StoryService:
        params = params_from_settings(settings)
        _collect_less_often()
        svc = cls(params, Engine(params))
        async with store.connect() as conn:
            await svc._load(conn)
        return svc

    # ------------------------------------------------------------------ state

    @property
    def _reach(self) -> timedelta:
        """How far back an article can find its duplicates and stories."""
        return timedelta(hours=max(self.params.window_hours, self.params.dup_window_hours))

    async def _load(self, conn: AsyncConnection) -> None:
        self.engine = Engine(self.params)
        df: dict[str, int] = {}
        n_docs = 0
        for term, n in (await conn.execute(select(term_df.c.term, term_df.c.df))).all():
            if term == DOCS_TERM:
                n_docs = int(n)
            else:
                df[term] = int(n)
        self.engine.df, self.engine.n_docs = Counter(df), n_docs
        latest = (await conn.execute(
            select(func.max(articles.c.published_at)).where(articles.c.story_id.is_not(None)))).scalar()
        if latest is None:
            self.loaded_from = None
            return
        if latest.tzinfo is None:
            latest = latest.replace(tzinfo=UTC)
        self.loaded_from = latest - self._reach
        await self._restore(conn, self.loaded_from, None, exclude=set())

    async def _restore(self, conn: AsyncConnection, since: datetime, until: datetime | None,
                       exclude: set[int]) -> int:
        """Feed assigned articles published in [since, until) back into the engine, in ingest order."""
        q = (select(articles.c.id, articles.c.title, articles.c.body, articles.c.published_at,
                    articles.c.outlet, articles.c.lang, articles.c.url, articles.c.story_id,
                    articles.c.duplicate_of, articles.c.minhash)
             .where(articles.c.published_at >= since, articles.c.story_id.is_not(None))
             .order_by(articles.c.id))
        if until is not None:
            q = q.where(articles.c.published_at < until)
        n = 0
        for r in (await conn.execute(q)).all():
            if r.id in exclude or r.id in self.engine.items:
                continue
            self.engine.restore(_doc(r), int(r.story_id), r.duplicate_of, F.unpack_signature(r.minhash))
            n += 1
        log.debug("stories: restored %d articles published since %s", n, since)
        return n

    async def _check_committed(self, conn: AsyncConnection) -> None:
        """Memory must follow the store: when the last batch's decisions are not what the store
        holds (its savepoint or transaction was rolled back), reload the recent state."""
        if not self._stale and self._last:
            ids = sorted(self._last)
            held: dict[int, int | None] = {}
            for i in range(0, len(ids), _CHUNK):
                res = await conn.execute(select(articles.c.id, articles.c.story_id)
                                         .where(articles.c.id.in_(ids[i:i + _CHUNK])))
                held.update({int(a): s for a, s in res.all()})
            eng = self.engine
            self._stale = any(held.get(a) != (eng.items[a].story if a in eng.items else held.get(a))
                              or held.get(a) is None for a in ids)
        if self._stale:
            log.info("stories: an earlier batch was rolled back; reloading the recent state")
            await self._load(conn)
        self._stale = False
        self._last = {}

    # -------------------------------------------------------------------- add

    async def add(self, conn: AsyncConnection, batch: list[Article]) -> None:
        """Assign ``story_id`` / ``duplicate_of`` to stored articles (ids set) and persist them."""
        arts = [a for a in batch if a.id is not None]
        if not arts:
            return
        await self._check_committed(conn)
        ids = {int(a.id) for a in arts}  # type: ignore[arg-type]
        earliest = min(a.published_at for a in arts)
        try:
            if self.loaded_from is None or earliest - self._reach < self.loaded_from:
                # Older news than the state covers (a backfill): load its neighbourhood first.
                since = earliest - self._reach
                await self._restore(conn, since, self.loaded_from, exclude=ids)
                self.loaded_from = since if self.loaded_from is None else min(self.loaded_from, since)
            await self._add(conn, arts, earliest)
        except BaseException:
            # Memory is now ahead of whatever the caller's rollback leaves: reload next time.
            self._stale = True
            raise

    async def _add(self, conn: AsyncConnection, arts: list[Article], earliest: datetime) -> None:
        old_story = {a.id: a.story_id for a in arts}
        eng = self.engine
        assignments = eng.add_batch([_doc(a) for a in arts])

        # New stories get their ids from the store.
        now = datetime.now(UTC)
        provisional = sorted({x.story for x in assignments if x.story < 0} | {
            s for pair in eng.merges for s in pair if s < 0}, reverse=True)
        fresh = [sid for sid in provisional if sid in eng.stories]  # not created and merged away here
        if fresh:
            rows = []
            for sid in fresh:
                first = min(eng.items[a].ts for a in eng.stories[sid].members if a in eng.items)
                ts = datetime.fromtimestamp(first, UTC)
                rows.append({"title": "", "size": 0, "outlet_count": 0, "first_seen": ts, "last_seen": ts,
                             "updated_at": now})
            # One statement for the batch's new stories (a round trip each was most of the cost).
            res = await conn.execute(
                stories.insert().returning(stories.c.id, sort_by_parameter_order=True), rows)
            for sid, (new_id,) in zip(fresh, res.all(), strict=True):
                eng.rename_story(sid, int(new_id))
        touched: set[int] = {eng.items[a.id].story for a in arts}  # type: ignore[index]
        touched.update(s for s in old_story.values() if s is not None)

        # Merged stories: move whatever is stored under the absorbed id, then drop it.
        for gone, keep in eng.merges:
            if gone < 0:
                continue  # never stored
            await conn.execute(update(articles).where(articles.c.story_id == gone).values(story_id=keep))
            await conn.execute(delete(stories).where(stories.c.id == gone))
            touched.discard(gone)
            touched.add(keep)
        touched.update(keep for _, keep in eng.merges if keep > 0)
        eng.merges.clear()
        rows = []
        for x in assignments:
            it = eng.items[x.id]
            rows.append({"_id": x.id, "story_id": it.story, "duplicate_of": x.duplicate_of,
                         "minhash": F.pack_signature(x.signature)})
        await conn.execute(update(articles).where(articles.c.id == bindparam("_id")).values(
            story_id=bindparam("story_id"), duplicate_of=bindparam("duplicate_of"),
            minhash=bindparam("minhash")), rows)
        for a in arts:
            it = eng.items[a.id]  # type: ignore[index]
            a.story_id = it.story
            a.duplicate_of = None if it.root == it.id else it.root

        await self._refresh_stories(conn, touched, now)
        await self._flush_df(conn)
        self._last = {int(a.id or 0): eng.items[int(a.id or 0)].story for a in arts}
        # Memory stays bounded: what no future window reaches is dropped.
        newest = max(it.ts for it in eng.items.values()) if eng.items else None
        if newest is not None:
            # Not past what this batch reached back to: an out-of-order backfill sends old news
            # batch after batch, and evicting it each time would mean restoring it each time.
            # A day beyond the reach covers the spread of publication times inside one batch.
            horizon = min(datetime.fromtimestamp(newest, UTC) - self._reach - timedelta(days=1),
                          earliest - self._reach)
            if eng.evict_before(horizon.timestamp()) and (self.loaded_from is None or
                                                          self.loaded_from < horizon):
                self.loaded_from = horizon

    async def _refresh_stories(self, conn: AsyncConnection, touched: Iterable[int], now: datetime) -> None:
        """Size, outlets, first/last seen and headline of each touched story, from its stored articles."""
        ids = sorted(s for s in touched if s is not None and s > 0)
        if not ids:
            return
        stats: dict[int, Any] = {}
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i:i + _CHUNK]
            res = await conn.execute(
                select(articles.c.story_id, func.count(), func.count(func.distinct(articles.c.outlet)),
                       func.min(articles.c.published_at), func.max(articles.c.published_at),
                       func.min(articles.c.id))
                .where(articles.c.story_id.in_(chunk)).group_by(articles.c.story_id))
            for r in res.all():
                stats[int(r[0])] = r
        empty = [s for s in ids if s not in stats]
        if empty:
            await conn.execute(delete(stories).where(stories.c.id.in_(empty)))
        need_title: dict[int, int] = {}
        rows = []
        for sid, r in stats.items():
            head = self.engine.headline(sid) or int(r[5])
            need_title[sid] = head
            first, last = r[3], r[4]
            rows.append({"_id": sid, "size": int(r[1]), "outlet_count": int(r[2]),
                         "first_seen": first if first.tzinfo else first.replace(tzinfo=UTC),
                         "last_seen": last if last.tzinfo else last.replace(tzinfo=UTC),
                         "headline_article_id": head, "updated_at": now})
        titles: dict[int, str] = {}
        missing = [a for a in need_title.values() if a not in self.engine.items]
        for i in range(0, len(missing), _CHUNK):
            res = await conn.execute(select(articles.c.id, articles.c.title)
                                     .where(articles.c.id.in_(missing[i:i + _CHUNK])))
            titles.update({int(a): t for a, t in res.all()})
        for row in rows:
            head = row["headline_article_id"]
            it = self.engine.items.get(head)
            row["title"] = it.title if it is not None else titles.get(head, "")
        if rows:
            await conn.execute(update(stories).where(stories.c.id == bindparam("_id")).values(
                title=bindparam("title"), size=bindparam("size"), outlet_count=bindparam("outlet_count"),
                first_seen=bindparam("first_seen"), last_seen=bindparam("last_seen"),
                headline_article_id=bindparam("headline_article_id"), updated_at=bindparam("updated_at")),
                rows)

    async def _flush_df(self, conn: AsyncConnection) -> None:
        delta: Counter[str] = self.engine.df_delta
        if self.engine.docs_delta:
            delta[DOCS_TERM] += self.engine.docs_delta
        if not delta:
            return
        merged: Counter[str] = Counter()
        for t, n in delta.items():
            merged[t[:200]] += n  # the column's width; two long terms may meet there
        # One statement per batch, not one row per term: a batch touches ~10,000 terms.
        if conn.dialect.name == "postgresql":
            terms_sorted = sorted(merged)
            await conn.execute(text(
                "INSERT INTO term_df (term, df) SELECT * FROM unnest(CAST(:terms AS text[]), "
                "CAST(:dfs AS integer[])) ON CONFLICT (term) DO UPDATE SET df = term_df.df + excluded.df"),
                {"terms": terms_sorted, "dfs": [merged[t] for t in terms_sorted]})
        else:
            await conn.execute(text(
                "INSERT INTO term_df (term, df) SELECT key, value FROM json_each(:js) WHERE true "
                "ON CONFLICT (term) DO UPDATE SET df = term_df.df + excluded.df"),
                {"js": json.dumps(merged, ensure_ascii=False)})
        self.engine.df_delta = Counter()
        self.engine.docs_delta = 0


# ------------------------------------------------------------------ reads


def _row_article(m: Any) -> Article:
    return Article(
        id=int(m["id"]), source=m["source_name"], external_id=m["external_id"], title=m["title"],
        body="", published_at=m["published_at"], outlet=m["outlet"], url=m["url"], path=m["path"],
        lang=m["lang"], story_id=m["story_id"], duplicate_of=m["duplicate_of"],
    )


async def list_stories(store: Any, since: datetime | None = None) -> list[Story]:
    """Stories, largest first (then most recent), with their outlets and articles."""
    q = select(stories)
    if since is not None:
        q = q.where(stories.c.last_seen >= since)
    async with store.connect() as conn:
        rows = (await conn.execute(q)).mappings().all()
        by_story: dict[int, list[Article]] = defaultdict(list)
        ids = [int(r["id"]) for r in rows]
        cols = [articles.c.id, articles.c.external_id, articles.c.title, articles.c.published_at,
                articles.c.outlet, articles.c.url, articles.c.path, articles.c.lang, articles.c.story_id,
                articles.c.duplicate_of, sources.c.name.label("source_name")]
        for i in range(0, len(ids), _CHUNK):
            res = await conn.execute(
                select(*cols).join(sources, sources.c.id == articles.c.source_id)
                .where(articles.c.story_id.in_(ids[i:i + _CHUNK]))
                .order_by(articles.c.published_at, articles.c.id))
            for m in res.mappings():
                by_story[int(m["story_id"])].append(_row_article(m))
    out: list[Story] = []
    for r in rows:
        arts = by_story.get(int(r["id"]), [])
        counts = Counter(a.outlet for a in arts)
        first_at: dict[str, datetime] = {}
        for a in arts:
            first_at.setdefault(a.outlet, a.published_at)
        outlets = sorted(counts, key=lambda o: (-counts[o], first_at[o], o))
        out.append(Story(id=int(r["id"]), title=r["title"], size=len(arts) or int(r["size"]), sources=outlets,
                         first_seen=r["first_seen"], last_seen=r["last_seen"], articles=arts,
                         headline_article_id=r["headline_article_id"]))
    out.sort(key=lambda s: (-s.size, -len(s.sources), -s.last_seen.timestamp(), s.id))
    return out


# --------------------------------------------------------------- rebuild


async def _article_batches(conn: AsyncConnection, size: int) -> Any:
    """Stored articles in ingest order (id), cut where ingest cut them: a batch is one source's
    articles stored at one moment (at most ``size``), so a rebuild replays the same batches."""
    last = 0
    cols = [articles.c.id, articles.c.title, articles.c.body, articles.c.published_at, articles.c.outlet,
            articles.c.lang, articles.c.url, articles.c.source_id, articles.c.ingested_at]
    pending: list[Article] = []
    key: tuple[Any, Any] | None = None
    while True:
        rows = (await conn.execute(select(*cols).where(articles.c.id > last).order_by(articles.c.id)
                                   .limit(size))).all()
        if not rows:
            break
        last = int(rows[-1].id)
        for r in rows:
            k = (r.source_id, r.ingested_at)
            if pending and (k != key or len(pending) >= size):
                yield pending
                pending = []
            key = k
            pending.append(Article(
                source="", external_id="", id=int(r.id), title=r.title, body=r.body, outlet=r.outlet,
                lang=r.lang, url=r.url, published_at=r.published_at if r.published_at.tzinfo
                else r.published_at.replace(tzinfo=UTC)))
    if pending:
        yield pending


async def rebuild(store: Any, settings: Any, batch_size: int = RECLUSTER_BATCH) -> dict[str, Any]:
    """Drop every story and the document frequencies, then assign all stored articles afresh.

    A batch that fails is retried one article at a time; an article that still cannot be placed
    is left without a story and reported (``skipped``), and the rest go on.
    """
    params = params_from_settings(settings)
    skipped: list[dict[str, Any]] = []
    async with store.begin() as conn:
        await conn.execute(update(articles).values(story_id=None, duplicate_of=None))
        await conn.execute(delete(stories))
        await conn.execute(delete(term_df))
        svc = StoryService(params, Engine(params))
        n = dups = 0
        async for batch in _article_batches(conn, batch_size):
            try:
                async with conn.begin_nested():
                    await svc.add(conn, batch)
                placed = batch
            except Exception:
                log.warning("recluster: a batch of %d articles failed; placing them one at a time",
                            len(batch), exc_info=True)
                placed = []
                for a in batch:
                    try:
                        async with conn.begin_nested():
                            await svc.add(conn, [a])
                        placed.append(a)
                    except Exception as exc:
                        log.warning("recluster: article %s (%s) cannot be placed", a.id, a.title[:80],
                                    exc_info=True)
                        skipped.append({"id": a.id, "title": a.title[:200],
                                        "reason": f"{type(exc).__name__}: {exc}"[:300]})
            n += len(placed)
            dups += sum(1 for a in placed if a.duplicate_of is not None)
        n_stories = (await conn.execute(select(func.count()).select_from(stories))).scalar() or 0
    return {"stories": int(n_stories), "articles": n, "duplicates": dups, "skipped": skipped}


async def recluster(app: App) -> dict[str, int]:
    return await rebuild(app.store, app.settings)
