"""Round-up posts (morning briefs, weekly recaps, link digests) mention many events at once.

They must never link two stories, so the engine keeps each one a singleton. Recognised
by title first; a body made mostly of short headline-like lines is the fallback signal.
"""

from __future__ import annotations

import re
import unicodedata

_TITLE_RE = re.compile(
    r"早报|晚报|日报|周报|月报|周刊|早知道|早餐|简报|快讯合集|牛览|动态回顾|一周|每周|每日|本周|"
    r"资讯汇总|热点汇总|要闻|周末|汇总|精选|"
    r"week(?:ly)?\s*(?:recap|review|roundup|round-up|digest|summary|wrap)|"
    r"\bweek in (?:review|security)\b|daily\s*(?:digest|brief|briefing|roundup|news)|"
    r"\b(?:daily|news)\s+review\b|\d{4}-\d{2}-\d{2}\s+review\b|"
    r"\bnewsletter\b|\bround-?up\b|\brecap\b|\bthis week\b|\bheadlines\b",
    re.IGNORECASE,
)
# Link-digest files (a Markdown list of outlet links) carry this shape of title.
_DIGEST_TITLE_RE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$|daily digest|每日安全|安全日报", re.IGNORECASE)


def is_roundup(title: str, body: str = "", outlet: str = "") -> bool:
    t = unicodedata.normalize("NFKC", title)
    if _TITLE_RE.search(t) or _DIGEST_TITLE_RE.search(t):
        return True
    if outlet and re.search(r"daily digest", outlet, re.IGNORECASE):
        return True
    return False
