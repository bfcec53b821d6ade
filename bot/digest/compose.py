"""Composition: a subscription's new stories -> a neutral ``Digest``.

The window is by ingest time: stories that gained articles after the subscription's
last digest (or, the first time, within ``digest.lookback_hours``). Stories already
delivered to the subscription are left out, unless updates are on and the story grew
by ``update_growth`` articles since. Ranking (``select.rank``) runs on per-outlet
aggregates, and full rows are read only for the stories that make the cut. Summaries
skip the outlet's page furniture: lines that recur on its other recent pages.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bot.digest import queries
from bot.digest.format import clean_title
from bot.digest.select import Art, StoryRows, best_article, outlet_keys, outlet_names, passes, rank
from bot.i18n import normalise_locale, t
from bot.i18n.format import heading, zone
from bot.model import Digest, DigestEntry, Subscription
from bot.text.summary import summarize

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)


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

    picked: list[tuple[StoryRows, list[Art], bool, int]] = []
    async with app.store.connect() as conn:
        ids = await queries.window_story_ids(conn, start, now)
        stats = await queries.outlet_stats(conn, ids, now)
        delivered = (await queries.delivered_sizes(conn, subscription.id, ids)
                     if subscription.id is not None else {})
        # Rank on cheap per-outlet aggregates first; full rows are read only for the stories
        # that come up in rank order, until the digest is full.
        ranked, passed = rank(ids, stats, delivered, locale=locale, excluded_outlets=excluded_outlets,
                              updates=cfg.updates, update_growth=cfg.update_growth)
        batch = max(2 * limit, 20)
        for i in range(0, len(ranked), batch):
            if len(picked) >= limit:
                break
            chunk = ranked[i : i + batch]
            loaded = await queries.load_stories(conn, [sid for sid, _ in chunk], now)
            for sid, is_update in chunk:
                story = loaded.get(sid)
                if story is None or len(picked) >= limit:
                    continue
                try:
                    arts = [a for a in story.arts if not (outlet_keys(a.outlet, locale) & excluded_outlets)]
                    if not passes(story, arts, flt, locale):
                        continue
                    n_outlets = len({a.outlet.strip().casefold() for a in arts if a.outlet.strip()})
                    picked.append((story, arts, is_update, n_outlets))
                except Exception:  # one bad story must not cost the subscriber the digest
                    log.exception("digest: story %s skipped", sid)
        for story, _, _, _ in picked:
            passed.pop(story.id, None)
        best = {story.id: best_article(story, arts) for story, arts, _, _ in picked}
        bodies = await queries.bodies(conn, [a.id for a in best.values()])
        furniture: dict[str, frozenset[str]] = {}
        for o in {b.outlet for b in best.values() if b.outlet.strip()}:
            own = {b.story_id for b in best.values() if b.outlet == o}
            furniture[o] = await queries.outlet_boilerplate(conn, o, own)

    entries: list[DigestEntry] = []
    for story, arts, is_update, n_outlets in picked:
        b = best[story.id]
        try:
            headline = clean_title(story.title or b.title) or t(locale, "digest.untitled")
            summary = summarize(b.title, b.summary, bodies.get(b.id, ""), cfg.summary_width,
                                furniture.get(b.outlet, frozenset()))
            names = outlet_names(arts, locale)
            entries.append(DigestEntry(story_id=story.id, headline=headline, summary=summary, outlets=names,
                                       outlet_count=max(n_outlets, len(names)),
                                       time=max(a.published_at for a in arts), url=b.url,
                                       is_update=is_update))
        except Exception:
            log.exception("digest: story %s could not be summarised", story.id)
    for e in entries:
        passed.pop(e.story_id, None)
    return Digest(locale=locale, timezone=str(getattr(tz, "key", tz)), generated_at=now, entries=entries,
                  heading=heading(locale, now, tz), subscription_id=subscription.id, passed_over=passed)


def default_subscription(app: App, locale: str | None = None) -> Subscription:
    """What a new subscription gets from the configuration (``digest --preview``)."""
    cfg = app.settings.digest
    return Subscription(adapter="preview", chat_id="preview", locale=normalise_locale(locale or cfg.locale),
                        timezone=app.settings.timezone, times=list(cfg.times), max_stories=cfg.max_stories)
