"""Folder articles from bytes: decoding, front matter, dates, the article itself.

Pure (no file system, no clock of its own), so it runs in worker processes and is tested
on strings; ``folder.py`` reads the files and hands their bytes here.
"""


from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from bot.i18n import language_tag
from bot.model import Article, content_hash
from bot.sources import front_matter
from bot.sources.base import future_date, hostname
from bot.text.clean import clean_markdown, closing_link, detect_lang, strip_closing_link
from bot.text.safe import brief
from bot.text.urls import canonical_url

OUTLET_MAX = 200
SUMMARY_FALLBACK_CHARS = 120

_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_WS_RE = re.compile(r"\s+")
_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d",
    "%Y.%m.%d %H:%M:%S", "%Y.%m.%d", "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日 %H:%M", "%Y年%m月%d日",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y",
)
_DATE_KEYS = ("date", "published", "pubDate", "publishDate", "published_at", "publishdate")


class Reject(Exception):
    """This file cannot become an article; the message says why."""


def decode(data: bytes) -> tuple[str, str | None]:
    """Bytes -> text and a note saying which encoding was used when it was not plain UTF-8.

    UTF-8 first (a byte order mark removed); then UTF-8 with the bad bytes replaced (U+FFFD)
    when nearly all of it is UTF-8 (one bad byte must not turn a whole file into mojibake);
    then GB18030 (GBK's superset, what Chinese crawlers write); only then charset-normalizer's
    guess. When that fails for the file as a whole, the front matter and the body are decoded
    each on its own, so a UTF-8 title over a GBK body keeps its title.
    """
    bom = data.startswith(b"\xef\xbb\xbf")
    raw = data[3:] if bom else data
    try:
        return raw.decode("utf-8"), "UTF-8 byte order mark removed" if bom else None
    except UnicodeDecodeError:
        pass
    try:
        whole: tuple[str, str] | None = _decode_part(raw)
    except Reject:
        whole = None
    cut = _front_matter_end(raw) if whole is None or not whole[1].startswith("UTF-8") else None
    if cut is not None:
        try:
            head, tail = _decode_part(raw[:cut]), _decode_part(raw[cut:])
        except Reject:
            pass
        else:
            if whole is None or head[1] != tail[1]:
                return head[0] + tail[0], f"front matter decoded as {head[1]}, body as {tail[1]}"
    if whole is None:
        raise Reject("cannot decode the file as UTF-8, GB18030 or any known text encoding")
    return whole[0], f"decoded as {whole[1]}"


# UTF-8 with replacement characters: at least 99 % of the non-ASCII sequences are valid UTF-8,
# or only a handful of bytes are bad and most of the rest is valid.
_UTF8_SHARE, _UTF8_HANDFUL, _UTF8_HANDFUL_SHARE = 0.99, 4, 0.8
_FM_LINE_B = re.compile(rb"^-{3,}[ \t]*\r?$", re.M)
# What news is written in besides UTF-8 and GB18030; charset-normalizer picks among these only
# (left to itself it found cp1125, a DOS code page, in a UTF-8 file with one bad byte).
_OTHER_ENCODINGS = ("big5", "shift_jis", "euc_jp", "euc_kr", "cp1252", "cp1250", "cp1251", "koi8_r",
                    "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "cp874", "iso8859_15")


def _decode_part(data: bytes) -> tuple[str, str]:
    """One part's text and a label for the encoding used (``UTF-8``, ``GB18030 (not UTF-8)``…)."""
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", "replace")
    bad = text.count("\ufffd") - data.count("\ufffd".encode())  # the ones decoding put there
    valid = len(text) - len(text.encode("ascii", "ignore")) - bad  # non-ASCII characters read
    share = valid / (valid + bad)
    if share >= _UTF8_SHARE or (bad <= _UTF8_HANDFUL and share >= _UTF8_HANDFUL_SHARE):
        what = "an invalid byte sequence" if bad == 1 else f"{bad} invalid byte sequences"
        return text, f"UTF-8 with {what} replaced (U+FFFD)"
    try:
        return data.decode("gb18030"), "GB18030 (not UTF-8)"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=list(_OTHER_ENCODINGS)).best()
    if best is None:
        raise Reject("cannot decode the file as UTF-8, GB18030 or any known text encoding")
    return str(best), f"{best.encoding} (not UTF-8 or GB18030)"


def _front_matter_end(data: bytes) -> int | None:
    """Where the front matter's closing '---' line ends, found in the bytes (ASCII '-' and newline
    bytes never occur inside a GBK or GB18030 character), or None."""
    start = len(data) - len(data.lstrip(b" \t\r\n"))
    first = _FM_LINE_B.match(data, start)
    if first is None:
        return None
    second = _FM_LINE_B.search(data, first.end())
    return second.end() if second is not None else None


# Control bytes that text files do not contain (tab, newlines, form feed and ESC are fine).
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 11, 12, 13, 27))
_KEEP_BYTES = bytes(b for b in range(256) if b not in _CONTROL_BYTES)


def looks_binary(data: bytes) -> bool:
    head = data[:8192]
    if b"\x00" in head:
        return True
    controls = len(head.translate(None, _KEEP_BYTES))  # C speed: delete the ordinary bytes, count the rest
    return controls > max(8, len(head) // 100)


_FM_BOUNDARY = re.compile(r"^-{3,}[ \t]*$", re.M)


# The front matter crawlers write is flat: `key: "text"`, `key: true`, `key:` + `  - "item"` lines.
# That subset is read here directly (YAML's constructors cost ~100 µs a file); anything else, or
# anything YAML might read differently, goes to the YAML parser.
_SIMPLE_KEY_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):(?: +(.*))?")
_SIMPLE_STR_RE = re.compile(r'"([^"\\]*)"|\'([^\']*)\'')
_SIMPLE_INT_RE = re.compile(r"-?(?:0|[1-9][0-9]*)")
# Not printable in YAML, or a YAML line break (NEL, LS, PS) that YAML folds inside quotes.
_NOT_PRINTABLE_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
_NO = object()
# Plain words YAML 1.1 reads as booleans or null, even as keys.
_YAML_WORDS = frozenset({"yes", "no", "true", "false", "on", "off", "null"})


def _simple_scalar(raw: str) -> Any:
    m = _SIMPLE_STR_RE.fullmatch(raw)
    if m:
        return m.group(1) if m.group(1) is not None else m.group(2)
    if raw in ("true", "false"):
        return raw == "true"
    if raw in ("null", "~"):
        return None
    if raw == "[]":
        return []
    if _SIMPLE_INT_RE.fullmatch(raw):
        return int(raw)
    return _NO


def simple_yaml(fm: str) -> dict[str, Any] | None:
    """The flat subset of YAML front matter, exactly as YAML reads it; None: use YAML."""
    if "\r" in fm or "\t" in fm or _NOT_PRINTABLE_RE.search(fm):
        return None
    out: dict[str, Any] = {}
    items: list[Any] | None = None
    open_keys: list[str] = []  # `key:` lines; without items YAML reads them as null
    for line in fm.split("\n"):
        if not line.strip():
            continue
        if line[0] == " ":
            s = line.lstrip(" ")
            if items is None or not s.startswith("- "):
                return None
            value = _simple_scalar(s[2:].strip(" "))
            if value is _NO:
                return None
            items.append(value)
            continue
        m = _SIMPLE_KEY_RE.fullmatch(line)
        if not m or m.group(1) in out or m.group(1).lower() in _YAML_WORDS:
            return None
        key, raw = m.group(1), (m.group(2) or "").rstrip(" ")
        if not raw:
            items = out[key] = []
            open_keys.append(key)
            continue
        items = None
        value = _simple_scalar(raw)
        if value is _NO:
            return None
        out[key] = value
    for key in open_keys:
        if not out[key]:
            out[key] = None
    return out


def split_front_matter(text: str) -> tuple[Any, str]:
    """``(metadata, body)``; raises Reject naming the line of a YAML error."""
    meta, body, _ = read_front_matter(text)
    return meta, body


def read_front_matter(text: str) -> tuple[dict[str, Any], str, list[str]]:
    """``(metadata, body, warnings)``; raises Reject naming the line of a YAML error.

    Bounded: the block is capped at ``front_matter.MAX_CHARS`` and YAML aliases are refused,
    so no value can expand. A flat block YAML refuses (an unquoted ': ' in a title) is read
    line by line, with a warning.
    """
    stripped = text.lstrip("\ufeff \t\r\n")
    offset = text[: len(text) - len(stripped)].count("\n")  # blank lines before the opening ---
    if not _FM_BOUNDARY.match(stripped):
        raise Reject("no front matter: the file must start with a '---' line and a YAML block")
    parts = _FM_BOUNDARY.split(stripped, 2)
    if len(parts) < 3:
        raise Reject("front matter is not closed: no second '---' line")
    _, fm, body = parts
    if len(fm) > front_matter.MAX_CHARS:
        raise Reject(f"front matter is {len(fm)} characters, over {front_matter.MAX_CHARS}")
    simple = simple_yaml(fm)
    if simple is not None:
        return simple, body, []
    try:
        meta = front_matter.load_yaml(fm, line_offset=offset)
    except front_matter.Refused as exc:
        raise Reject(str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        flat = front_matter.flat_block(fm)
        if flat is not None:
            why = ("unquoted ':' in a value" if "mapping values are not allowed" in problem
                   else f"not valid YAML: {problem}")
            return flat, body, [f"front matter read line by line: {why}"]
        if mark is not None:
            # ``fm`` starts with the rest of the opening '---' line: its line 0 is file line 1.
            line = mark.line + 1 + offset
            context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
            where = f" ({context} at line {cmark.line + 1 + offset})" if context and cmark else ""
            raise Reject(f"invalid YAML in front matter at line {line}: {problem}{where}") from None
        raise Reject(f"invalid YAML in front matter: {problem}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise Reject(f"invalid YAML in front matter: {brief(str(exc), 200)}") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise Reject(f"front matter is not a mapping of keys (it is a {type(meta).__name__})")
    return meta, body, []


def _text(value: Any, *, strings_only: bool = False) -> str | None:
    """A scalar front-matter value as text: a string, or a number or date written bare (unless
    ``strings_only``); None for anything else (missing, lists, mappings, pairs, sets)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        if strings_only or isinstance(value, bool) or not isinstance(value, int | float | date):
            return None
        value = value.isoformat() if isinstance(value, date) else str(value)
    # Kept as written (no NFKC): titles and outlet names are shown to readers; matching normalises.
    s = _WS_RE.sub(" ", value).strip()
    return s or None


def _text_list(value: Any, *, strings_only: bool = False) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for v in items:
        s = _text(v, strings_only=strings_only)
        if s and s not in out:
            out.append(s)
    return out


def parse_date(value: Any, tz: ZoneInfo) -> datetime | None:
    """A front-matter date -> aware UTC; naive values are read in ``tz``. None when unreadable."""
    try:
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, datetime):
            dt = value
        elif isinstance(value, date):
            dt = datetime(value.year, value.month, value.day)
        elif isinstance(value, int | float):
            # Epoch seconds (or milliseconds) from crawlers that write numbers.
            secs = float(value) / (1000 if value > 1e11 else 1)
            if not 0 < secs < 4e9:
                return None
            return datetime.fromtimestamp(secs, UTC)
        elif isinstance(value, str):
            parsed = _parse_date_text(value.strip())
            if parsed is None:
                return None
            dt = parsed
        else:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=tz)
        out = dt.astimezone(UTC)
        return out if 1970 <= out.year <= 2200 else None
    except (ValueError, OverflowError, OSError):
        return None


def _parse_date_text(s: str) -> datetime | None:
    if not s:
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00") if s.endswith("Z") else s)
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(s, fmt)
        except ValueError:
            continue
    try:
        return parsedate_to_datetime(s)  # RFC 2822, as feeds write it
    except (TypeError, ValueError, IndexError):
        return None


def _norm_lang(value: Any) -> str:
    langs = _text_list(value)
    return language_tag(langs[0]) if langs else ""


def build_article(meta: dict[str, Any], markdown: str, *, rel: str, source: str, tz: ZoneInfo,
                  mtime: float, outlet_override: str | None = None,
                  now: float | None = None) -> tuple[Article, list[str]]:
    """Front matter + Markdown body -> Article and warnings; raises Reject."""
    warnings: list[str] = []
    meta = {k if isinstance(k, str) else brief(k, 100): v for k, v in meta.items()}

    closing = closing_link(markdown)
    body_md = strip_closing_link(markdown) if closing else markdown
    body, links = clean_markdown(body_md)

    raw_title = meta.get("title")
    if isinstance(raw_title, dict | list):
        raise Reject(f"title is not text (it is a {type(raw_title).__name__})")
    title = _text(raw_title)
    if title is None:
        m = _HEADING_RE.search(body_md)
        heading = _text(clean_markdown(m.group(1))[0]) if m else None
        if not heading:
            raise Reject("no title: the front matter has no 'title' and the body has no Markdown heading")
        title = heading
        warnings.append("no title in the front matter; used the first heading")

    published: datetime | None = None
    date_key = next((k for k in _DATE_KEYS if meta.get(k) not in (None, "")), None)
    if date_key is None:
        warnings.append("no date in the front matter; used the file's modification time")
    else:
        published = parse_date(meta[date_key], tz)
        if published is None:
            warnings.append(f"unparseable {date_key} {brief(meta[date_key], 60)}; "
                            "used the file's modification time")
    pass_time = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    if published is not None:
        ahead = future_date(published, pass_time)
        if ahead:
            warnings.append(f"{ahead}; used the file's modification time")
            published = None
    if published is None:
        published = min(datetime.fromtimestamp(mtime, UTC), pass_time)

    url: str | None = None
    for key in ("url", "link", "permalink"):
        candidate = _text(meta.get(key))
        if candidate:
            if canonical_url(candidate):
                url = candidate
                break
            warnings.append(f"{key} {candidate[:80]!r} is not an http(s) URL; ignored")
    if url is None and closing:
        url = closing[1]

    # Only plain strings name an outlet (not a number, a pair from !!omap, a set).
    categories = _text_list(meta.get("categories"), strings_only=True)
    outlet = (outlet_override or _text(meta.get("outlet"), strings_only=True)
              or _text(meta.get("source"), strings_only=True)
              or (categories[0] if categories else None) or (closing[0] if closing else None)
              or hostname(url) or source)
    outlet = outlet.strip()[:OUTLET_MAX]

    summary = _text(meta.get("summary")) or _text(meta.get("description"))
    if summary is None:
        flat = _WS_RE.sub(" ", body).strip()
        summary = flat[:SUMMARY_FALLBACK_CHARS] + ("…" if len(flat) > SUMMARY_FALLBACK_CHARS else "")

    lang = (_norm_lang(meta.get("lang")) or _norm_lang(meta.get("language"))
            or detect_lang(title + "\n" + body))
    digest = content_hash(title, body)
    guid = _text(meta.get("guid")) or _text(meta.get("id"))
    external_id = guid or canonical_url(url) or rel or f"sha256:{digest}"

    article = Article(
        source=source, external_id=external_id, title=title, body=body, published_at=published,
        outlet=outlet, url=url, path=rel, summary=summary, lang=lang, tags=_text_list(meta.get("tags")),
        categories=categories, links=links, content_hash=digest, warnings=list(warnings),
    )
    return article, warnings
