"""What every renderer of a digest shares: an entry's context line, part labels, headlines.

Pure; adapters import these (they sit below the adapters), so a digest reads the same on
every platform. Zones, dates and outlet names come from ``bot.i18n.format``.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from bot.i18n import t
from bot.i18n.format import format_time, outlets_label, zone
from bot.model import Digest, DigestEntry
from bot.text.summary import cjk_punctuation, shorten

_WS_RE = re.compile(r"\s+")
# Longer links are not shown as links (no platform needs them, some refuse them).
MAX_URL = 2048
_HTTP_RE = re.compile(r"^https?://\S+$", re.I)
# Control characters and lone surrogates: no chat platform or terminal takes them.
_BAD_CHARS_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
# A headline longer than this (display columns) is cut at a word or clause, with an ellipsis:
# a crawler's runaway title must not fill a whole message.
TITLE_MAX = 160


def clean_text(text: str, *, oneline: bool = False) -> str:
    """Article text as every renderer shows it: no control characters, trimmed, and with
    ``oneline`` its runs of white space (newlines too) folded to one space."""
    text = _BAD_CHARS_RE.sub("", text or "")
    return " ".join(text.split()) if oneline else text.strip()


def link_url(url: str | None) -> str | None:
    """``url`` as every renderer may link it: http(s) only, one line, at most ``MAX_URL``, and
    the characters a URL may not carry raw percent-encoded (existing escapes kept). None: no link."""
    if not url:
        return None
    url = clean_text(url, oneline=True)
    if not _HTTP_RE.match(url) or len(url) > MAX_URL:
        return None
    return quote(url, safe="/:?#[]@!$&'()*+,;=%~-._")  # leaves no space, | < > or quote


def entry_meta(digest: Digest, entry: DigestEntry) -> str:
    """The context line of an entry: outlets and time."""
    tz = zone(digest.timezone)
    outlets = outlets_label(digest.locale, entry.outlets, entry.outlet_count)
    return t(digest.locale, "digest.meta", outlets=outlets, time=format_time(digest.locale, entry.time, tz))


def part_label(locale: str, n: int, total: int) -> str:
    return t(locale, "digest.part", n=n, total=total) if total > 1 else ""


def clean_title(title: str) -> str:
    """One line, full-width punctuation restored in Chinese, cut to ``TITLE_MAX`` columns."""
    return shorten(cjk_punctuation(_WS_RE.sub(" ", title).strip()), TITLE_MAX)
