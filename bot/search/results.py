"""Search results as plain values: JSON for the CLI, text, and neutral list items for chats."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from bot.i18n import t
from bot.i18n.format import format_day, outlet_name, outlets_label
from bot.model import ResultItem, fields_of, iso
from bot.text.summary import cjk_punctuation

SNIPPET_CHARS = 120
_SPACE_RE = re.compile(r"\s+")


@dataclass(slots=True)
class SearchHit:
    """One story (or a lone article when it has no story), shown through its best article."""

    story_id: int | None
    article_id: int
    title: str
    url: str | None
    outlet: str
    outlets: list[str]  # distinct outlets of the story, most articles first
    outlet_count: int
    published_at: datetime
    snippet: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {**fields_of(self, "story_id article_id title url outlet outlets outlet_count"),
                "published_at": iso(self.published_at), "snippet": self.snippet,
                "score": round(self.score, 6)}


@dataclass(slots=True)
class SearchResults:
    query: str
    items: list[SearchHit] = field(default_factory=list)
    total: int = 0  # stories matching, all pages
    total_exact: bool = True  # False: estimated (more matches than the ranking window)
    offset: int = 0
    limit: int = 10
    truncated: bool = False  # the query was cut to max_chars
    pageable: int | None = None  # stories reachable by paging, when fewer than an estimated total

    @property
    def has_more(self) -> bool:
        reachable = self.total if self.pageable is None else self.pageable
        return self.offset + len(self.items) < reachable

    @property
    def next_offset(self) -> int | None:
        return self.offset + len(self.items) if self.has_more else None

    def as_dict(self) -> dict[str, Any]:
        return {**fields_of(self, "query total total_exact offset limit has_more truncated"),
                "items": [h.as_dict() for h in self.items]}

    def render_text(self, locale: str = "en") -> str:
        if not self.items:
            return t(locale, "search.no_results", query=self.query)
        key = "search.header" if self.total_exact else "search.header_about"
        lines = [t(locale, key, query=self.query, total=self.total)]
        for n, h in enumerate(self.items, start=self.offset + 1):
            lines.append(f"{n}. {h.title}")
            lines.append(f"   {outlets_line(h, locale)} · {format_day(h.published_at, UTC)}")
            if h.snippet:
                lines.append(f"   {h.snippet}")
            if h.url:
                lines.append(f"   {h.url}")
        if self.has_more:
            last = self.total if self.pageable is None else self.pageable
            lines.append(t(locale, "search.more", next=self.offset + len(self.items) + 1, total=last))
        return "\n".join(lines)

    def result_items(self, locale: str = "zh-CN", tz: tzinfo = UTC) -> list[ResultItem]:
        """Neutral list items for a command reply (one per story), dated in ``tz``."""
        return [
            ResultItem(
                title=h.title,
                url=h.url,
                detail=f"{outlets_line(h, locale)} · {format_day(h.published_at, tz)}",
                snippet=h.snippet,
            )
            for h in self.items
        ]


def outlets_line(h: SearchHit, locale: str) -> str:
    """The hit's outlets by their display names, the best article's first, labelled as digests
    label them ('腾讯新闻、亿欧等 5 家媒体' / 'QQ News, iyiou and 3 more')."""
    raw = [h.outlet, *[o for o in h.outlets if o != h.outlet]] if h.outlet else list(h.outlets)
    names = list(dict.fromkeys(outlet_name(locale, n) for n in raw if n.strip()))
    if not names:
        return ""
    return outlets_label(locale, names, h.outlet_count)


def make_snippet(body: str, words: list[str], width: int = SNIPPET_CHARS) -> str:
    """A window of the body around the first query word it contains (else its start)."""
    text = _SPACE_RE.sub(" ", body).strip()
    if not text:
        return ""
    low = text.lower()
    found = [p for p in (low.find(w) for w in words if w) if p >= 0]
    start = 0
    if found:
        first = min(found)
        start = max(0, first - width // 4)
        if start:
            # Do not cut a Latin word in half: back to the space before it, else on past it.
            space = text.rfind(" ", max(0, start - 15), start)
            if space >= 0:
                start = space + 1
            while start < first and _is_latin(text[start - 1]) and _is_latin(text[start]):
                start += 1
    piece = text[start : start + width].lstrip()
    if start + width < len(text):
        cut = piece.rfind(" ")
        if cut > width * 2 // 3:
            piece = piece[:cut]
        piece = piece.rstrip() + "…"
    # Chinese punctuation as written (the index holds NFKC text), as digests show it.
    return cjk_punctuation(("…" if start else "") + piece)


def _is_latin(c: str) -> bool:
    return c.isascii() and c.isalnum()
