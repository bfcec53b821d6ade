"""Round-up posts (morning briefs, weekly recaps, link digests) mention many events at once.

They must never link two stories, so the engine keeps each one a singleton. Recognised
by title first; a body made mostly of short headline-like lines is the fallback signal.
"""

from __future__ import annotations

import re
import unicodedata

_TITLE_RE = re.compile(
    r"早报|晚报|日报|周报|月报|周刊|早知道|早餐|简报|快讯合集|牛览|动态回顾|一周|每周|每日|本周|"
    r"资讯汇总|热点汇总|要闻|周末|汇总|精选|文章目录|文章合集|资源推荐|资料下载|资料合集|汇编|"
    r"\bsettimana\b|\bsintesi\b|wochenrückblick|\bwoche\b|\bsemaine\b|\bsemana\b|"
    r"week(?:ly)?\s*(?:recap|review|roundup|round-up|digest|summary|wrap)|"
    r"\bweek in (?:review|security)\b|daily\s*(?:digest|brief|briefing|roundup|news)|"
    r"\b(?:daily|news)\s+review\b|\d{4}-\d{2}-\d{2}\s+review\b|"
    r"\b(?:morning|evening|weekly|daily|news)\s+(?:brief|briefing|digest|bulletin)\b|"
    r"\bnewsletter\b|\bround-?up\b|\brecap\b|\bthis week\b|\bheadlines\b",
    re.IGNORECASE,
)
# Link-digest files (a Markdown list of outlet links) carry this shape of title; so do the issues of
# a daily series, which carry their full date ("资源推荐 2024-11-19", "Stormcast For Monday …").
_DIGEST_TITLE_RE = re.compile(
    r"^\s*\d{4}-\d{2}-\d{2}\s*$|daily digest|每日安全|安全日报|\b20\d\d-\d\d-\d\d\b"
    r"|20\d\d年\d{1,2}月\d{1,2}日"
    r"|\b(?:mon|tues|wednes|thurs|fri|satur|sun)day,? "
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2}(?:st|nd|rd|th)?\b",
    re.IGNORECASE)
# A span of days or a numbered week in the title is a periodic digest ("CERT-AGID 5-11 ottobre",
# "Oct 5–11", "10月5日-11日", "Week 42"): it lists that span's events.
_MONTH = (r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|gen|mag|giu|lug|ago|set|ott|dic"
          r"|mär|mai|okt|dez|janv|févr|avr|juil|août|déc|ene|abr|dic)[a-zéû]*\.?")
_SPAN_TITLE_RE = re.compile(
    rf"\b\d{{1,2}}\s*[-–—]\s*\d{{1,2}}\s+{_MONTH}(?![\w-])|\b{_MONTH}\s+\d{{1,2}}\s*[-–—]\s*\d{{1,2}}\b"
    r"|\d{1,2}月\d{1,2}日?\s*[-–—~至到]\s*(?:\d{1,2}月)?\d{1,2}日|\bweek\s*\d{1,2}\b|第\s*\d{1,2}\s*周",
    re.IGNORECASE)
# A body that is mostly a list of other articles' headlines: short lines without sentence ends.
_SENTENCE_END_RE = re.compile(r"[。！？.!?]\s*$")


# Two headlines in one title ("A 发布；B 被重罚"), or a list of several quoted documents.
_TWO_HEADLINES_RE = re.compile(r"[^；]{8,}；\s*[^；]{8,}")
_LISTED_TITLES_RE = re.compile(r"《[^》]+》[^《]{0,3}[、,，][^《]{0,3}《")


def is_roundup(title: str, body: str = "", outlet: str = "") -> bool:
    # Format characters (a soft hyphen inside 牛览) would hide a word from the patterns.
    raw = "".join(c for c in title if unicodedata.category(c) != "Cf")
    t = unicodedata.normalize("NFKC", raw)
    if _TITLE_RE.search(t) or _DIGEST_TITLE_RE.search(t) or _SPAN_TITLE_RE.search(t):
        return True
    if _TWO_HEADLINES_RE.search(raw) or _LISTED_TITLES_RE.search(raw):
        return True
    if outlet and re.search(r"daily digest", outlet, re.IGNORECASE):
        return True
    return _headline_list(body)


def _headline_list(body: str) -> bool:
    """Twenty or more lines, most of them short, unpunctuated like headlines, and links or
    list items: a table of contents or a link digest rather than an article."""
    lines = [ln.strip() for ln in body.splitlines() if ln.strip()]
    if len(lines) < 20:
        return False
    listed = sum(1 for ln in lines
                 if 6 <= len(ln) <= 80 and not _SENTENCE_END_RE.search(ln)
                 and (ln[:1] in "-*•·" or ln[:2].rstrip(".、)").isdigit() or "http" in ln))
    return listed >= 0.6 * len(lines)
