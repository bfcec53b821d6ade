"""Display width (a CJK or emoji character takes two terminal columns) and UTF-16 length."""

from __future__ import annotations

import unicodedata
from functools import lru_cache


@lru_cache(maxsize=4096)
def char_width(ch: str) -> int:
    """Columns one code point takes: 2 for wide/fullwidth, 0 for combining and format marks."""
    if ch in "\u200b\u200c\u200d\ufe0e\ufe0f":
        return 0
    cat = unicodedata.category(ch)
    if cat in ("Mn", "Me", "Cf") or (cat == "Cc" and ch not in "\t\n"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    return sum(char_width(c) for c in text)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram's limits are counted in."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def cut_width(text: str, width: int) -> str:
    """The longest prefix of ``text`` whose display width is at most ``width``."""
    total = 0
    for i, c in enumerate(text):
        total += char_width(c)
        if total > width:
            return text[:i]
    return text


def cut_utf16(text: str, units: int) -> str:
    """The longest prefix of ``text`` within ``units`` UTF-16 code units (never half a pair)."""
    total = 0
    for i, c in enumerate(text):
        total += 2 if ord(c) > 0xFFFF else 1
        if total > units:
            return text[:i]
    return text
