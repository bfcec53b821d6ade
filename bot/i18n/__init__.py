"""Localised strings. Each area keeps its own ``<area>.<locale>.json`` beside this file."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
_DIR = Path(__file__).parent


def normalise_locale(code: str | None) -> str:
    """'zh', 'zh-hans', 'zh_CN' -> zh-CN; 'en-US' -> en; anything else -> the default."""
    if not code:
        return DEFAULT_LOCALE
    c = code.replace("_", "-").lower()
    if c.startswith("zh"):
        return "zh-CN"
    if c.startswith("en"):
        return "en"
    return DEFAULT_LOCALE


# Longest language tag an article keeps (a crawler's free text must not grow the column).
LANG_MAX = 16


def language_tag(code: str | None) -> str:
    """An article's declared language in the codes the bot speaks: zh-CN and en for Chinese and
    English in any spelling, any other tag as given, lower-cased ('zh_Hans' -> zh-CN, 'ja' -> ja)."""
    if not code:
        return ""
    tag = code.strip().replace("_", "-").lower()
    if tag.startswith("zh"):
        return "zh-CN"
    if tag.startswith("en"):
        return "en"
    return tag[:LANG_MAX]


def language_key(code: str) -> str:
    """The primary language of a tag, for matching a filter ('zh-CN' and 'zh' are both zh)."""
    return code.replace("_", "-").split("-")[0].strip().lower()


@cache
def strings(locale: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in sorted(_DIR.glob(f"*.{locale}.json")):
        out.update(json.loads(f.read_text(encoding="utf-8")))
    return out


def t(locale: str, key: str, **kwargs: object) -> str:
    """The string ``key`` in ``locale`` (falling back to English, then the key), formatted."""
    loc = normalise_locale(locale)
    s = strings(loc).get(key) or strings("en").get(key) or key
    return s.format(**kwargs) if kwargs else s
