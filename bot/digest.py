"""Digest selection and composition: a subscription's new stories -> a neutral ``Digest``.

The window is by ingest time: stories that gained articles after the subscription's
last digest (or, the first time, within ``digest.lookback_hours``). Stories already
delivered to the subscription are left out, unless updates are on and the story grew
by ``update_growth`` articles since. Ranking: outlets, then size, then recency; it runs
on per-outlet aggregates, and full rows are read only for the stories that make the cut.
Summaries skip the outlet's page furniture: lines that recur on its other recent pages.

The small formatters at the top (outlet lists, dates) are shared by every renderer.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.i18n import normalise_locale, strings, t
from bot.model import Digest, DigestEntry, Filters, Subscription
from bot.store.tables import articles, deliveries, stories, subscriptions
from bot.text.summary import boilerplate_keys, cjk_punctuation, is_real_summary, summarize
from bot.text.tokenize import is_cjk, words

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

_CHUNK = 500  # ids per IN (...) so neither backend meets its parameter limit
# Page furniture is learnt from the head of an outlet's latest pages in other stories.
_BOILERPLATE_PAGES = 12
_BOILERPLATE_CHARS = 4000
_WS_RE = re.compile(r"\s+")


# ---------------------------------------------------------------- shared formatters


def zone(name: str | None, fallback: str = "UTC") -> tzinfo:
    for candidate in (name, fallback):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                log.warning("unknown time zone %r; using %s", candidate, fallback)
    return UTC


def outlet_name(locale: str, outlet: str) -> str:
    """The outlet as readers know it in ``locale`` ("qq" -> 腾讯新闻 / QQ News)."""
    loc = normalise_locale(locale)
    key = f"digest.outlet.{outlet.strip().lower()}"
    return strings(loc).get(key) or strings("en").get(key) or outlet.strip()


def outlets_label(locale: str, outlets: list[str], count: int) -> str:
    """'亿欧、腾讯新闻等 6 家媒体' / 'iyiou, QQ News and 4 more'; all names up to three."""
    names = [o for o in outlets if o.strip()]
    count = max(count, len(names))
    if not names:
        return t(locale, "digest.outlets.none")
    if count <= 3 and len(names) == count:
        key = ("digest.outlets.one", "digest.outlets.two", "digest.outlets.three")[count - 1]
        return t(locale, key, a=names[0], b=names[1] if count > 1 else "", c=names[2] if count > 2 else "")
    shown = names[:2]
    return t(locale, "digest.outlets.more", names=t(locale, "digest.outlets.sep").join(shown),
             count=count, rest=count - len(shown))


def _parts(locale: str, dt: datetime, tz: tzinfo) -> dict[str, Any]:
    local = dt.astimezone(tz)
    weekdays = t(locale, "digest.weekdays").split(",")
    months = t(locale, "digest.months").split(",")
    return {"year": local.year, "month": months[local.month - 1], "day": local.day,
            "weekday": weekdays[local.weekday()], "time": local.strftime("%H:%M")}


def format_date(locale: str, dt: datetime, tz: tzinfo) -> str:
    """Date, weekday and time in ``tz``: '2025年2月12日 周三 08:00' / 'Wed 12 Feb 2025, 08:00'."""
    return t(locale, "digest.date", **_parts(locale, dt, tz))


def format_time(locale: str, dt: datetime, tz: tzinfo) -> str:
    """Short time of a report in ``tz``: '2月12日 10:33' / '12 Feb, 10:33'."""
    return t(locale, "digest.time", **_parts(locale, dt, tz))


def heading(locale: str, dt: datetime, tz: tzinfo) -> str:
    return t(locale, "digest.heading", date=format_date(locale, dt, tz))


def entry_meta(digest: Digest, entry: DigestEntry) -> str:
    """The context line of an entry: outlets and time."""
    tz = zone(digest.timezone)
    outlets = outlets_label(digest.locale, entry.outlets, entry.outlet_count)
    return t(digest.locale, "digest.meta", outlets=outlets, time=format_time(digest.locale, entry.time, tz))


def part_label(locale: str, n: int, total: int) -> str:
    return t(locale, "digest.part", n=n, total=total) if total > 1 else ""


# ---------------------------------------------------------------- keyword filters


def keyword_matches(keyword: str, text: str, text_words: set[str] | None = None) -> bool:
    """Chinese-aware: a keyword matches when its segmented words all occur in the text's words
    in order (so 'AI' does not match 'said'), and, for CJK keywords, also as a substring (so 苹果
    matches 苹果公司 whichever way jieba cut it)."""
    kw = keyword.strip()
    if not kw:
        return False
    folded = text.casefold()
    if is_cjk(kw) and kw.casefold() in folded:
        return True
    kw_words = words(kw)
    if not kw_words:
        return kw.casefold() in folded
    tw = words(text)
    if len(kw_words) == 1:
        return kw_words[0] in (text_words if text_words is not None else set(tw))
    n = len(kw_words)
    return any(tw[i : i + n] == kw_words for i in range(len(tw) - n + 1))


def _lang_key(lang: str) -> str:
    return lang.replace("_", "-").split("-")[0].strip().lower()


@dataclass(slots=True)
class _Art:
    id: int
    story_id: int
    outlet: str
    url: str | None
    title: str
    summary: str
    lang: str
    categories: list[str]
    tags: list[str]
    published_at: datetime
    ingested_at: datetime
    duplicate_of: int | None
    body_len: int


@dataclass(slots=True)
class _Story:
    id: int
    title: str
    headline_article_id: int | None
    arts: list[_Art] = field(default_factory=list)


def _passes(story: _Story, arts: list[_Art], flt: Filters, locale: str) -> bool:
    if not arts:
        return False
    if flt.langs:
        wanted = {_lang_key(x) for x in flt.langs}
        if not any(_lang_key(a.lang) in wanted for a in arts):
            return False
    if flt.categories:
        wanted = {c.strip().casefold() for c in flt.categories}
        if not any(c.strip().casefold() in wanted for a in arts for c in (*a.categories, *a.tags)):
            return False
    if flt.outlets:
        wanted = {o.strip().casefold() for o in flt.outlets}
        if not any(_outlet_keys(a.outlet, locale) & wanted for a in arts):
            return False
    if flt.include or flt.exclude:
        text = "\n".join([story.title, *(f"{a.title}\n{a.summary}" for a in arts)])
        tw = set(words(text))
        if flt.include and not any(keyword_matches(k, text, tw) for k in flt.include):
            return False
        if any(keyword_matches(k, text, tw) for k in flt.exclude):
            return False
    return True


@lru_cache(maxsize=8192)
def _outlet_keys(outlet: str, locale: str) -> frozenset[str]:
    """The names a filter may use for an outlet: raw and localised, case-folded."""
    return frozenset({outlet.strip().casefold(), outlet_name(locale, outlet).casefold()})


def _best(story: _Story, arts: list[_Art]) -> _Art:
    originals = [a for a in arts if a.duplicate_of is None] or arts
    for a in originals:
        if a.id == story.headline_article_id:
            return a
    # Prefer a linkable, substantial article with a usable summary; the earliest report breaks ties.
    return max(originals, key=lambda a: (a.url is not None, a.body_len >= 200,
                                         is_real_summary(a.summary, a.title), -a.published_at.timestamp(),
                                         -a.id))


def _outlets(arts: list[_Art], locale: str) -> list[str]:
    """Distinct outlets (display names), most articles first, then the earliest to report."""
    stats: dict[str, tuple[int, datetime]] = {}
    for a in arts:
        name = outlet_name(locale, a.outlet) if a.outlet.strip() else ""
        if not name:
            continue
        n, first = stats.get(name, (0, a.published_at))
        stats[name] = (n + 1, min(first, a.published_at))
    # Stable: equal outlets keep the order their articles were stored in.
    return [k for k, _ in sorted(stats.items(), key=lambda kv: (-kv[1][0], kv[1][1]))]


def clean_title(title: str) -> str:
    return cjk_punctuation(_WS_RE.sub(" ", title).strip())


# ---------------------------------------------------------------- store reads


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]


async def _window_story_ids(conn: AsyncConnection, start: datetime, end: datetime) -> list[int]:
    q = (select(articles.c.story_id).distinct()
         .where(articles.c.story_id.is_not(None), articles.c.ingested_at > start,
                articles.c.ingested_at <= end))
    return [r[0] for r in (await conn.execute(q)).all()]


async def _load_stories(conn: AsyncConnection, ids: list[int], end: datetime) -> dict[int, _Story]:
    out: dict[int, _Story] = {}
    for chunk in _chunks(ids):
        q = (select(stories.c.id, stories.c.title, stories.c.headline_article_id)
             .where(stories.c.id.in_(chunk)))
        for r in (await conn.execute(q)).all():
            out[r.id] = _Story(id=r.id, title=r.title or "", headline_article_id=r.headline_article_id)
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
            st.arts.append(_Art(id=r.id, story_id=r.story_id, outlet=r.outlet or "", url=r.url,
                                title=r.title or "", summary=r.summary or "", lang=r.lang or "",
                                categories=_str_list(r.categories), tags=_str_list(r.tags),
                                published_at=r.published_at, ingested_at=r.ingested_at,
                                duplicate_of=r.duplicate_of, body_len=r.body_len or 0))
    return out


async def _outlet_stats(conn: AsyncConnection, ids: list[int],
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


async def _delivered(conn: AsyncConnection, subscription_id: int,
                     ids: list[int]) -> dict[int, tuple[int, bool]]:
    """Story id -> (size when last in a digest's window, whether it was shown)."""
    out: dict[int, tuple[int, bool]] = {}
    for chunk in _chunks(ids):
        q = select(deliveries.c.story_id, deliveries.c.size, deliveries.c.shown).where(
            deliveries.c.subscription_id == subscription_id, deliveries.c.story_id.in_(chunk))
        out.update({r.story_id: (r.size, bool(r.shown)) for r in (await conn.execute(q)).all()})
    return out


async def _outlet_boilerplate(conn: AsyncConnection, outlet: str, story_ids: set[int]) -> frozenset[str]:
    """What recurs at the top of the outlet's latest pages in other stories (navigation, notices)."""
    q = (select(func.substr(articles.c.body, 1, _BOILERPLATE_CHARS))
         .where(articles.c.outlet == outlet,
                or_(articles.c.story_id.is_(None), articles.c.story_id.not_in(list(story_ids))))
         .order_by(articles.c.id.desc()).limit(_BOILERPLATE_PAGES))
    return boilerplate_keys([r[0] or "" for r in (await conn.execute(q)).all()])


async def _bodies(conn: AsyncConnection, ids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for chunk in _chunks(ids):
        q = select(articles.c.id, articles.c.body).where(articles.c.id.in_(chunk))
        out.update({r.id: r.body or "" for r in (await conn.execute(q)).all()})
    return out


# ---------------------------------------------------------------- composition


async def compose(app: App, subscription: Subscription, *, now: datetime | None = None,
                  window_start: datetime | None = None) -> Digest:
    """The digest ``subscription`` would get now. Reads the store; writes nothing."""
    cfg = app.settings.digest
    now = (now or datetime.now(UTC)).astimezone(UTC)
    start = window_start or subscription.last_digest_at or now - timedelta(hours=cfg.lookback_hours)
    locale = normalise_locale(subscription.locale)
    tz = zone(subscription.timezone, app.settings.timezone)
    limit = subscription.max_stories or cfg.max_stories
    flt = subscription.filters
    excluded_outlets = {o.strip().casefold() for o in flt.exclude_outlets}

    picked: list[tuple[_Story, list[_Art], bool, int]] = []
    async with app.store.connect() as conn:
        ids = await _window_story_ids(conn, start, now)
        stats = await _outlet_stats(conn, ids, now)
        delivered = await _delivered(conn, subscription.id, ids) if subscription.id is not None else {}
        passed: dict[int, int] = {}
        # Rank on cheap per-outlet aggregates first; full rows are read only for the stories
        # that come up in rank order, until the digest is full.
        ranked: list[tuple[tuple[Any, ...], int, bool]] = []
        for sid in ids:
            rows = stats.get(sid)
            if not rows:
                continue
            is_update = False
            size = sum(n for _, n, _ in rows)
            if sid in delivered:
                seen, shown = delivered[sid]
                if not shown:
                    if size <= seen:  # cut from an earlier digest and nothing new since
                        continue
                elif not (cfg.updates and size - seen >= cfg.update_growth):
                    continue
                else:
                    is_update = True
            kept = [r for r in rows if not (_outlet_keys(r[0], locale) & excluded_outlets)]
            if not kept:
                continue
            n_outlets = len({o.strip().casefold() for o, _, _ in kept if o.strip()})
            latest = max(ts for _, _, ts in kept)
            ranked.append(((is_update, -n_outlets, -sum(n for _, n, _ in kept), -latest.timestamp(), sid),
                           sid, is_update))
            if not is_update:
                passed[sid] = size
        ranked.sort()
        batch = max(2 * limit, 20)
        for i in range(0, len(ranked), batch):
            if len(picked) >= limit:
                break
            chunk = ranked[i : i + batch]
            loaded = await _load_stories(conn, [sid for _, sid, _ in chunk], now)
            for _, sid, is_update in chunk:
                story = loaded.get(sid)
                if story is None or len(picked) >= limit:
                    continue
                try:
                    arts = [a for a in story.arts if not (_outlet_keys(a.outlet, locale) & excluded_outlets)]
                    if not _passes(story, arts, flt, locale):
                        continue
                    n_outlets = len({a.outlet.strip().casefold() for a in arts if a.outlet.strip()})
                    picked.append((story, arts, is_update, n_outlets))
                except Exception:  # one bad story must not cost the subscriber the digest
                    log.exception("digest: story %s skipped", sid)
        for story, _, _, _ in picked:
            passed.pop(story.id, None)
        best = {story.id: _best(story, arts) for story, arts, _, _ in picked}
        bodies = await _bodies(conn, [a.id for a in best.values()])
        furniture: dict[str, frozenset[str]] = {}
        for o in {b.outlet for b in best.values() if b.outlet.strip()}:
            own = {b.story_id for b in best.values() if b.outlet == o}
            furniture[o] = await _outlet_boilerplate(conn, o, own)

    entries: list[DigestEntry] = []
    for story, arts, is_update, n_outlets in picked:
        b = best[story.id]
        try:
            headline = clean_title(story.title or b.title) or t(locale, "digest.untitled")
            summary = summarize(b.title, b.summary, bodies.get(b.id, ""), cfg.summary_width,
                                furniture.get(b.outlet, frozenset()))
            names = _outlets(arts, locale)
            entries.append(DigestEntry(story_id=story.id, headline=headline, summary=summary, outlets=names,
                                       outlet_count=max(n_outlets, len(names)),
                                       time=max(a.published_at for a in arts), url=b.url,
                                       is_update=is_update))
        except Exception:
            log.exception("digest: story %s could not be summarised", story.id)
    for e in entries:
        passed.pop(e.story_id, None)
    return Digest(locale=locale, timezone=getattr(tz, "key", str(tz)), generated_at=now, entries=entries,
                  heading=heading(locale, now, tz), subscription_id=subscription.id, passed_over=passed)


async def record_delivered(conn: AsyncConnection, subscription_id: int, digest: Digest, *,
                           advance_window: bool = True) -> None:
    """Remember the digest's stories as delivered (with their size, for later update mentions),
    and the stories it cut as passed over (so an overlapping next window does not offer them
    again unless they grow); with ``advance_window``, start the next window at its end."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
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


# ---------------------------------------------------------------- preview


def render(fmt: str, digest: Digest) -> list[dict[str, Any]]:
    """Payloads for ``fmt`` (telegram | slack | text) exactly as they would be sent."""
    if fmt == "telegram":
        from bot.adapters.telegram.render import render_digest as tg

        return tg(digest)
    if fmt == "slack":
        from bot.adapters.slack.render import render_digest as sl

        return sl(digest)
    if fmt == "text":
        from bot.adapters.console.render import render_digest as txt

        return txt(digest)
    raise ValueError(f"unknown digest format {fmt!r} (telegram, slack or text)")


def default_subscription(app: App, locale: str | None = None) -> Subscription:
    cfg = app.settings.digest
    return Subscription(adapter="preview", chat_id="preview", locale=normalise_locale(locale or cfg.locale),
                        timezone=app.settings.timezone, times=list(cfg.times), max_stories=cfg.max_stories)


async def preview(app: App, *, fmt: str = "text", locale: str | None = None,
                  now: datetime | None = None) -> list[dict[str, Any]]:
    """The digest a new default subscription would get now, rendered for ``fmt``. Ingests nothing."""
    digest = await compose(app, default_subscription(app, locale), now=now)
    return render(fmt, digest)
