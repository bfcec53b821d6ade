"""Time zones, dates and outlet names as a reader sees them, in one place for digests,
search replies and every renderer."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.i18n import normalise_locale, strings, t

log = logging.getLogger(__name__)


ZONE_HINT = "use an IANA name such as Asia/Shanghai"


def known_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows (never a file path)."""
    if not name or name.startswith("/") or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def zone(name: str | None, fallback: str = "UTC") -> tzinfo:
    """``name`` as a zone; an unknown one (logged) falls back to ``fallback``, then UTC."""
    for candidate in (name, fallback):
        if candidate:
            if known_zone(candidate):
                return ZoneInfo(candidate)
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


def format_day(dt: datetime, tz: tzinfo) -> str:
    """The calendar day of ``dt`` in ``tz``, ISO style: '2025-02-12'."""
    return dt.astimezone(tz).strftime("%Y-%m-%d")


def heading(locale: str, dt: datetime, tz: tzinfo) -> str:
    return t(locale, "digest.heading", date=format_date(locale, dt, tz))
