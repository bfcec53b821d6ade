"""Which stories a digest shows and in what order: pure, tested without a database.

Filters (languages, categories, outlets, keywords), the choice of each story's headline
article, its outlets in display order, and the ranking that runs on per-outlet aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from bot.i18n import language_key
from bot.i18n.format import outlet_name
from bot.model import Filters
from bot.text.summary import is_real_summary
from bot.text.tokenize import is_cjk, words


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


@dataclass(slots=True)
class Art:
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
class StoryRows:
    id: int
    title: str
    headline_article_id: int | None
    arts: list[Art] = field(default_factory=list)


def passes(story: StoryRows, arts: list[Art], flt: Filters, locale: str) -> bool:
    if not arts:
        return False
    if flt.langs:
        wanted = {language_key(x) for x in flt.langs}
        if not any(language_key(a.lang) in wanted for a in arts):
            return False
    if flt.categories:
        wanted = {c.strip().casefold() for c in flt.categories}
        if not any(c.strip().casefold() in wanted for a in arts for c in (*a.categories, *a.tags)):
            return False
    if flt.outlets:
        wanted = {o.strip().casefold() for o in flt.outlets}
        if not any(outlet_keys(a.outlet, locale) & wanted for a in arts):
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
def outlet_keys(outlet: str, locale: str) -> frozenset[str]:
    """The names a filter may use for an outlet: raw and localised, case-folded."""
    return frozenset({outlet.strip().casefold(), outlet_name(locale, outlet).casefold()})


def best_article(story: StoryRows, arts: list[Art]) -> Art:
    originals = [a for a in arts if a.duplicate_of is None] or arts
    for a in originals:
        if a.id == story.headline_article_id:
            return a
    # Prefer a linkable, substantial article with a usable summary; the earliest report breaks ties.
    return max(originals, key=lambda a: (a.url is not None, a.body_len >= 200,
                                         is_real_summary(a.summary, a.title), -a.published_at.timestamp(),
                                         -a.id))


def outlet_names(arts: list[Art], locale: str) -> list[str]:
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


def rank(ids: list[int], stats: dict[int, list[tuple[str, int, datetime]]],
         delivered: dict[int, tuple[int, bool]], *, locale: str, excluded_outlets: set[str],
         updates: bool, update_growth: int) -> tuple[list[tuple[int, bool]], dict[int, int]]:
    """Stories in digest order from per-outlet aggregates, and those passed over (id -> size).

    ``stats``: per story (outlet, articles, latest report); ``delivered``: per story (size when
    last in a window, whether it was shown). Left out: stories delivered before (unless
    ``updates`` and they grew by ``update_growth``), stories cut before that did not grow, and
    stories every outlet of which is excluded. Order: new before updates, then more outlets,
    more articles, the latest report, the story id."""
    ranked: list[tuple[tuple[Any, ...], int, bool]] = []
    passed: dict[int, int] = {}
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
            elif not (updates and size - seen >= update_growth):
                continue
            else:
                is_update = True
        kept = [r for r in rows if not (outlet_keys(r[0], locale) & excluded_outlets)]
        if not kept:
            continue
        n_outlets = len({o.strip().casefold() for o, _, _ in kept if o.strip()})
        latest = max(ts for _, _, ts in kept)
        ranked.append(((is_update, -n_outlets, -sum(n for _, n, _ in kept), -latest.timestamp(), sid),
                       sid, is_update))
        if not is_update:
            passed[sid] = size
    ranked.sort()
    return [(sid, is_update) for _, sid, is_update in ranked], passed
