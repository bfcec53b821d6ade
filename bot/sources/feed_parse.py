"""Feed bytes -> a neutral FeedDoc: RSS 0.9x/1.0/2.0 and Atom via feedparser, JSON Feed by hand.

No I/O here. A document that is not a feed raises FeedError with a reason a user can act
on; a bad entry becomes a FeedEntry with ``problem`` set, so the rest still count.
"""

from __future__ import annotations

import calendar
import html.entities
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any

import feedparser

_XML_ERRORS = ("SAXParseException", "SAXException", "ExpatError")
_DECL_RE = re.compile(rb"""^(\s*<\?xml[^>]*?encoding\s*=\s*["'])(gb2312|gbk|gb_2312-80|x-gbk)(["'])""", re.I)
_CHARSET_RE = re.compile(r"charset\s*=\s*\"?(gb2312|gbk|x-gbk)\"?", re.I)
_ENTITY_RE = re.compile(rb"&([A-Za-z][A-Za-z0-9]{1,31});")
_XML_ENTITIES = frozenset({b"amp", b"lt", b"gt", b"quot", b"apos"})


class FeedError(Exception):
    """The whole document is unusable; ``str(exc)`` says why."""


@dataclass(slots=True)
class FeedEntry:
    index: int
    guid: str | None = None
    link: str | None = None
    title: str = ""
    title_html: bool = False
    summary: str = ""
    summary_html: bool = True
    content: str = ""
    content_html: bool = True
    published: str | None = None  # the raw date string, so a naive date can take the source zone
    published_utc: datetime | None = None  # the parser's own reading (UTC), a fallback
    lang: str | None = None
    tags: list[str] = field(default_factory=list)
    problem: str | None = None  # set: this entry is rejected with this reason


@dataclass(slots=True)
class FeedDoc:
    kind: str  # feedparser's version ("rss20", "atom10", "rss10", …) or "json1" / "json1.1"
    title: str = ""
    link: str | None = None
    lang: str | None = None
    entries: list[FeedEntry] = field(default_factory=list)


def parse_feed(body: bytes, content_type: str = "", url: str = "") -> FeedDoc:
    head = body.lstrip()[:1]
    if "json" in content_type.lower() or head == b"{":
        return parse_json_feed(body)
    return parse_xml_feed(body, content_type, url)


# --- XML (feedparser) -------------------------------------------------------------------------


def _prepare_xml(body: bytes, content_type: str) -> tuple[bytes, str]:
    """Work around two common real-world faults before the strict XML parser sees them."""
    if body[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in body[:4]:
        return body, content_type  # UTF-16/32: leave alone
    # GB2312/GBK declarations usually mean GB18030 in practice (a superset); decode as that.
    body = _DECL_RE.sub(rb"\1gb18030\3", body, count=1)
    content_type = _CHARSET_RE.sub("charset=gb18030", content_type)

    # HTML named entities (&nbsp; &mdash;) are not XML; as numeric references they are.
    def entity(m: re.Match[bytes]) -> bytes:
        name = m.group(1)
        if name in _XML_ENTITIES:
            return m.group(0)
        cp = html.entities.name2codepoint.get(name.decode("ascii"))
        return b"&#%d;" % cp if cp else m.group(0)

    return _ENTITY_RE.sub(entity, body), content_type


def _looks_like_html(body: bytes, content_type: str) -> bool:
    start = body.lstrip()[:200].lower()
    return "html" in content_type.lower() or start.startswith((b"<!doctype html", b"<html"))


def parse_xml_feed(body: bytes, content_type: str = "", url: str = "") -> FeedDoc:
    start = body.lstrip().removeprefix(b"\xef\xbb\xbf")[:1]
    if not start:
        raise FeedError("empty response")
    if start != b"<" and body[:2] not in (b"\xff\xfe", b"\xfe\xff"):
        raise FeedError(f"not an RSS, Atom or JSON feed (Content-Type: {content_type or '-'})")
    data, ctype = _prepare_xml(body, content_type)
    # No content-location: feedparser would rewrite relative guids into URLs, and a guid is an
    # identity that must not change when the feed moves. Links are resolved by the caller.
    headers: dict[str, str] = {}
    if ctype:
        headers["content-type"] = ctype
    # No sanitising or URI rewriting: both re-parse every HTML fragment (half the parse time),
    # and neither matters here, since entries become plain text and links are resolved by the caller.
    d = feedparser.parse(data, response_headers=headers, sanitize_html=False, resolve_relative_uris=False)
    exc = d.get("bozo_exception")
    if d.get("bozo") and exc is not None and type(exc).__name__ in _XML_ERRORS:
        if _looks_like_html(body, content_type) and not d.get("version"):
            raise FeedError(_html_reason(content_type))
        raise FeedError(f"malformed XML: {_xml_error(exc)}")
    if not d.get("version"):
        if _looks_like_html(body, content_type):
            raise FeedError(_html_reason(content_type))
        if not body.strip():
            raise FeedError("empty response")
        raise FeedError(f"not an RSS, Atom or JSON feed (Content-Type: {content_type or '-'})")
    feed = d.get("feed", {})
    doc = FeedDoc(
        kind=str(d.get("version")),
        title=str(feed.get("title") or ""),
        link=feed.get("link"),
        lang=feed.get("language") or (feed.get("title_detail") or {}).get("language"),
    )
    for i, e in enumerate(d.get("entries", [])):
        doc.entries.append(_xml_entry(i, e))
    return doc


def _html_reason(content_type: str) -> str:
    return f"not a feed: the server returned an HTML page (Content-Type: {content_type or '-'})"


def _xml_error(exc: Exception) -> str:
    line, col = getattr(exc, "getLineNumber", None), getattr(exc, "getColumnNumber", None)
    msg = exc.getMessage() if hasattr(exc, "getMessage") else str(exc)
    if callable(line) and callable(col):
        return f"line {line()}, column {col()}: {msg}"
    return str(msg)


def _is_html(detail: Any) -> bool:
    return "html" in str((detail or {}).get("type") or "text/html")


def _xml_entry(i: int, e: Any) -> FeedEntry:
    out = FeedEntry(index=i, guid=_str(e.get("id")), link=_str(e.get("link")))
    out.title = str(e.get("title") or "")
    out.title_html = "html" in str((e.get("title_detail") or {}).get("type") or "text/plain")
    out.summary = str(e.get("summary") or "")
    out.summary_html = _is_html(e.get("summary_detail"))
    contents = [c for c in (e.get("content") or []) if c.get("value")]
    if contents:
        best = max(contents, key=lambda c: ("html" in str(c.get("type") or ""), len(c["value"])))
        out.content, out.content_html = str(best["value"]), _is_html(best)
        out.lang = best.get("language")
    for detail in ("title_detail", "summary_detail"):
        out.lang = out.lang or (e.get(detail) or {}).get("language")
    for key in ("published", "updated", "created"):
        if e.get(key):
            out.published = str(e[key])
            parsed = e.get(f"{key}_parsed")
            if parsed:
                out.published_utc = struct_to_utc(parsed)
            break
    out.tags = _unique(str(t.get("term") or "").strip() for t in (e.get("tags") or []))
    return out


# --- JSON Feed 1.0 / 1.1 ----------------------------------------------------------------------


def parse_json_feed(body: bytes) -> FeedDoc:
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise FeedError(f"malformed JSON Feed: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise FeedError(f"malformed JSON Feed: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise FeedError("not a JSON Feed: the top level is not an object")
    version = str(data.get("version") or "")
    if not version.startswith("https://jsonfeed.org/version/"):
        raise FeedError("not a JSON Feed: 'version' is missing or not https://jsonfeed.org/version/…")
    items = data.get("items")
    if not isinstance(items, list):
        raise FeedError("malformed JSON Feed: 'items' is not a list")
    doc = FeedDoc(
        kind="json" + version.rsplit("/", 1)[-1],
        title=_str(data.get("title")) or "",
        link=_str(data.get("home_page_url")),
        lang=_str(data.get("language")),
    )
    for i, item in enumerate(items):
        doc.entries.append(_json_entry(i, item))
    return doc


def _json_entry(i: int, item: Any) -> FeedEntry:
    if not isinstance(item, dict):
        return FeedEntry(index=i, problem=f"JSON Feed item {i} is not an object")
    link = _str(item.get("url")) or _str(item.get("external_url"))
    out = FeedEntry(index=i, guid=_str(item.get("id")), link=link)
    out.title = _str(item.get("title")) or ""
    out.summary, out.summary_html = _str(item.get("summary")) or "", False
    if _str(item.get("content_html")):
        out.content, out.content_html = str(item["content_html"]), True
    else:
        out.content, out.content_html = _str(item.get("content_text")) or "", False
    out.published = _str(item.get("date_published")) or _str(item.get("date_modified"))
    out.lang = _str(item.get("language"))
    tags = item.get("tags")
    out.tags = _unique(str(t).strip() for t in tags) if isinstance(tags, list) else []
    return out


# --- dates --------------------------------------------------------------------------------------


def parse_date(raw: str | None, fallback_utc: datetime | None, tz: tzinfo) -> datetime | None:
    """A feed date as aware UTC; a date without a zone is read in ``tz`` (the source's zone)."""
    when: datetime | None = None
    if raw:
        text = raw.strip()
        if text.endswith(" CST") and _is_china_zone(tz):
            # Chinese sites write "CST" for China Standard Time; email.utils reads US Central.
            text = text[:-4] + " +0800"
        try:
            when = parsedate_to_datetime(text)  # RFC 822: RSS
        except (TypeError, ValueError, IndexError):
            when = None
        if when is None:
            try:
                when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                when = None
        if when is not None and when.tzinfo is None:
            # RFC 822 "-0000" also comes back naive: it means "zone unknown", so the source zone fits.
            when = when.replace(tzinfo=tz)
    if when is not None:
        try:
            return when.astimezone(UTC)
        except (OverflowError, ValueError):  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            pass
    return fallback_utc.astimezone(UTC) if fallback_utc is not None else None


def _is_china_zone(tz: tzinfo) -> bool:
    offset = datetime(2025, 1, 1, tzinfo=tz).utcoffset()
    return offset == timedelta(hours=8)


# --- helpers ------------------------------------------------------------------------------------


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list | bool):
        return None
    s = str(value).strip()
    return s or None


def _unique(values: Any) -> list[str]:
    out: list[str] = []
    for v in values:
        if v and v not in out:
            out.append(v)
    return out


def struct_to_utc(value: time.struct_time) -> datetime | None:
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError):  # years feedparser accepted but datetime cannot hold
        return None
