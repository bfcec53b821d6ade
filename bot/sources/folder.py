"""The ``folder`` source: a tree of Markdown files with YAML front matter (Hugo style).

Each pass lists the tree, skips files whose mtime and size match what the store
remembers, reads the rest (sha256 confirms a real change) and turns each into an
``Article`` or a ``Rejection``. Parsing is pure and runs off the event loop, in a
process pool for large passes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import stat
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import yaml

from bot.model import Article
from bot.sources import front_matter
from bot.sources.base import FileState, Rejection, SourceResult, SourceState, future_date
from bot.sources.tree import LEAVES, is_inside, list_files
from bot.text.clean import clean_markdown, closing_link, detect_lang, nfkc, strip_closing_link
from bot.text.safe import brief, describe_error
from bot.text.urls import canonical_url

if TYPE_CHECKING:
    from bot.config import FolderSourceConfig, Settings

log = logging.getLogger(__name__)

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _open_no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | _O_NOFOLLOW | _O_NONBLOCK)


# Passes that read at least this many files use a process pool (start-up costs ~0.3 s).
POOL_THRESHOLD = 2000
OUTLET_MAX = 200
LANG_MAX = 16
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


@dataclass(slots=True, frozen=True)
class ParseParams:
    """Everything a worker needs to parse files of one source (picklable)."""

    root: str
    source: str
    timezone: str
    max_file_bytes: int
    settle_seconds: float
    outlet: str | None
    now: float
    precompute: bool = False  # also derive story features and index tokens (bot.derive)
    real_root: str = ""  # the folder's real path (default: resolved from ``root``)


@dataclass(slots=True)
class Parsed:
    """The outcome for one file."""

    rel: str
    article: Article | None = None
    reason: str | None = None  # rejected
    retry: bool = False  # rejected for now: try again next pass, remember nothing
    warnings: list[str] = field(default_factory=list)
    state: FileState | None = None  # what to remember (None: nothing)
    unchanged: bool = False  # same bytes as last time (only the mtime moved)


# ---------------------------------------------------------------- parsing (pure)


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


def _looks_binary(data: bytes) -> bool:
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
            dt = _parse_date_text(value.strip())
            if dt is None:
                return None
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
    if not langs:
        return ""
    code = langs[0].replace("_", "-")
    low = code.lower()
    if low.startswith("zh"):
        return "zh-CN"
    if low.startswith("en"):
        return "en"
    return code[:LANG_MAX]


def _hostname(url: str | None) -> str:
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url or "").hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def content_hash(title: str, body: str) -> str:
    """sha256 of the normalised title and body: the same text hashes the same however it is spaced."""
    norm = " ".join(nfkc(title).split()) + "\n" + " ".join(nfkc(body).split())
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()


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
              or _hostname(url) or source)
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


def parse_file(params: ParseParams, rel: str, known: FileState | None) -> Parsed:
    """Read and parse one file. Never raises for bad input: the outcome says what happened."""
    full = os.path.join(params.root, rel)
    try:
        st = os.stat(full)
    except FileNotFoundError:
        return Parsed(rel, reason="file vanished during the pass", retry=True)
    except OSError as exc:
        return Parsed(rel, reason=f"cannot read: {exc.strerror or exc}", retry=True)
    fresh = params.now - st.st_mtime < params.settle_seconds
    outcome = _parse_stat(params, rel, full, st, known)
    if outcome.reason is not None and fresh and not outcome.retry:
        # Probably still being written: do not remember it broken.
        outcome.reason += f" (changed in the last {params.settle_seconds:g} s; will retry next pass)"
        outcome.retry = True
        outcome.state = None
    return outcome


def _parse_stat(params: ParseParams, rel: str, full: str, st: os.stat_result,
                known: FileState | None) -> Parsed:
    def reject(reason: str, sha: str = "") -> Parsed:
        return Parsed(rel, reason=reason, state=FileState(st.st_mtime_ns, st.st_size, sha, error=reason))

    if st.st_size > params.max_file_bytes:
        return reject(f"file is {st.st_size} bytes, over max_file_bytes ({params.max_file_bytes})")
    # The listing checked the real path; a link swapped in since must not lead out either.
    real = os.path.realpath(full)
    if not is_inside(real, params.real_root or os.path.realpath(params.root)):
        return Parsed(rel, reason=f"{LEAVES} (to {real})", retry=True)
    try:
        # No following a last-moment symlink, no blocking on a FIFO put in the file's place.
        with open(real, "rb", opener=_open_no_follow) as fh:
            opened = os.fstat(fh.fileno())
            if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
                return Parsed(rel, reason="file changed while it was read; will retry next pass", retry=True)
            data = fh.read(params.max_file_bytes + 1)
            after = os.fstat(fh.fileno())
    except OSError as exc:
        return Parsed(rel, reason=f"cannot read: {exc.strerror or exc}", retry=True)
    if len(data) != st.st_size or after.st_size != st.st_size or after.st_mtime_ns != st.st_mtime_ns:
        return Parsed(rel, reason="file changed while it was read; will retry next pass", retry=True)
    sha = hashlib.sha256(data).hexdigest()
    state = FileState(st.st_mtime_ns, st.st_size, sha)
    if known is not None and not known.error and known.sha256 == sha:
        return Parsed(rel, unchanged=True, state=state)
    if not data.strip():
        return reject("empty file", sha)
    if _looks_binary(data):
        return reject("binary file (not text)", sha)
    warnings: list[str] = []
    try:
        text, note = decode(data)
        if note:
            warnings.append(note)
        meta, markdown, notes = read_front_matter(text)
        warnings.extend(notes)
        article, more = build_article(meta, markdown, rel=rel, source=params.source,
                                      tz=ZoneInfo(params.timezone), mtime=st.st_mtime,
                                      outlet_override=params.outlet, now=params.now)
    except Reject as exc:
        return reject(str(exc), sha)
    except Exception as exc:  # a parser bug must not stop the pass; the file is reported
        log.exception("unexpected error parsing %s", full)
        return reject(f"could not parse: {describe_error(exc)}", sha)
    article.warnings = warnings + more
    if params.precompute:
        from bot.derive import precompute

        precompute(article)
    return Parsed(rel, article=article, warnings=article.warnings, state=state)


def parse_chunk(params: ParseParams, jobs: list[tuple[str, FileState | None]]) -> list[Parsed]:
    return [parse_file(params, rel, known) for rel, known in jobs]


# ---------------------------------------------------------------- parse workers

_PR_SET_PDEATHSIG = 1
WATCHDOG_SECONDS = 0.5


def worker_init(parent_pid: int) -> None:
    """A parse worker's first act: die with the process that started it.

    A killed ``ingest`` (SIGKILL included) must not leave workers behind. On Linux the kernel
    sends SIGKILL when the parent goes (PR_SET_PDEATHSIG); everywhere a watchdog thread exits
    the worker once its parent changes (it was re-parented: the parent is gone).
    """
    import signal
    import threading

    # Ctrl-C reaches the whole process group: the parent decides what happens, not the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


# ---------------------------------------------------------------- the source


class FolderSource:
    """One configured folder. ``fetch`` does a whole pass; ``batches`` streams it."""

    kind = "folder"

    def __init__(self, config: FolderSourceConfig, settings: Settings, client: Any = None, *,
                 pool_threshold: int | None = None):
        self.config = config
        self.name = config.name
        self.root = settings.resolve_path(config.path)
        self.timezone = settings.source_timezone(config)
        self.pool_threshold = POOL_THRESHOLD if pool_threshold is None else pool_threshold
        # Set by ingest when stories and search follow: parse workers then derive their inputs too.
        self.precompute = False

    @property
    def location(self) -> str:
        return str(self.root)

    def _where(self, rel: str) -> str:
        return str(self.root / rel)

    async def fetch(self, state: SourceState) -> SourceResult:
        out = SourceResult()
        async for part in self.batches(state):
            out.articles.extend(part.articles)
            out.rejections.extend(part.rejections)
            out.warnings.extend(part.warnings)
            out.unchanged += part.unchanged
            out.file_states.update(part.file_states)
            out.error = out.error or part.error
            out.state = part.state
        return out

    def _scan(self, state: SourceState
              ) -> tuple[dict[str, os.stat_result], list[tuple[str, FileState | None]], dict[str, str], str]:
        """The matching regular files inside the folder by real path (path -> stat), those that
        need reading, what was left out for a reason (symlinks out or in loops), the real root."""
        listing = list_files(str(self.root), self.config.pattern)
        todo: list[tuple[str, FileState | None]] = []
        for rel, st in listing.files.items():
            known = state.files.get(rel)
            # A rejected file is read again each pass: the settings (max_file_bytes) may have changed.
            if (known is None or known.error or known.mtime_ns != st.st_mtime_ns
                    or known.size != st.st_size):
                todo.append((rel, known))
        return listing.files, todo, listing.refused, listing.real_root

    async def batches(self, state: SourceState, batch_size: int = 500,
                      progress: Callable[[int, int], None] | None = None) -> AsyncIterator[SourceResult]:
        """Partial results of one pass, ``batch_size`` files read per part.

        The first part counts the files skipped by stat (``unchanged``), every part has the
        ``file_states`` to remember once its articles are stored, and the last part the
        complete ``state.files`` (every file present), from which vanished files are forgotten.
        """
        if not self.root.is_dir():
            what = "does not exist" if not self.root.exists() else "is not a folder"
            yield SourceResult(error=f"folder {self.root} {what}", state=state)
            return
        try:
            present, todo, refused, real_root = await asyncio.to_thread(self._scan, state)
        except OSError as exc:
            yield SourceResult(error=f"cannot list {self.root}: {exc}", state=state)
            return
        # Every file present -> what is remembered of it (a retried file keeps its old state; a new
        # one has a placeholder until it is read). The keys tell ingest which files still exist.
        files: dict[str, FileState] = {}
        first = SourceResult(state=SourceState(files=files))
        for rel, reason in refused.items():
            # Remembered with its reason (so later passes report it quietly), never read.
            files[rel] = first.file_states[rel] = FileState(0, 0, "", error=reason)
            first.rejections.append(Rejection(self._where(rel), reason))
        for rel, st in present.items():
            known = state.files.get(rel)
            files[rel] = known or FileState(st.st_mtime_ns, st.st_size, "")
            if (known is not None and not known.error and known.mtime_ns == st.st_mtime_ns
                    and known.size == st.st_size):
                first.unchanged += 1
        params = ParseParams(
            root=str(self.root), source=self.name, timezone=self.timezone,
            max_file_bytes=self.config.max_file_bytes, settle_seconds=self.config.settle_seconds,
            outlet=self.config.outlet, now=time.time(), precompute=self.precompute,
            real_root=real_root,
        )
        chunks = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
        if not chunks:
            yield first
            return
        yield first
        loop = asyncio.get_running_loop()
        pool = [self._executor(len(todo))]  # [ProcessPoolExecutor | None]; None: the thread pool

        def drop_pool(exc: BaseException) -> None:
            if pool[0] is not None:
                log.warning("folder %s: parse workers unavailable (%s); parsing in this process",
                            self.name, exc)
                pool[0].shutdown(wait=False, cancel_futures=True)
                pool[0] = None

        def submit(chunk: list[tuple[str, FileState | None]]) -> asyncio.Future[list[Parsed]]:
            if pool[0] is not None:
                try:
                    return loop.run_in_executor(pool[0], parse_chunk, params, chunk)
                except Exception as exc:  # e.g. a main module that cannot be re-imported by workers
                    drop_pool(exc)
            return loop.run_in_executor(None, parse_chunk, params, chunk)

        done = 0
        try:
            # Parse ahead so the workers stay busy while the store writes the previous batch.
            ahead = 3 if pool[0] is not None else 2
            pending: deque[tuple[list[tuple[str, FileState | None]], asyncio.Future[list[Parsed]]]] = deque()
            it = iter(chunks)
            for chunk in it:
                pending.append((chunk, submit(chunk)))
                if len(pending) >= ahead:
                    break
            while pending:
                chunk, fut = pending.popleft()
                try:
                    parsed = await fut
                except (BrokenProcessPool, OSError, RuntimeError) as exc:
                    drop_pool(exc)
                    parsed = await loop.run_in_executor(None, parse_chunk, params, chunk)
                nxt = next(it, None)
                if nxt is not None:
                    pending.append((nxt, submit(nxt)))
                part = self._assemble(parsed, files)
                done += len(parsed)
                if progress is not None:
                    progress(done, len(todo))
                if not pending:
                    part.state = SourceState(files=files)
                yield part
        finally:
            if pool[0] is not None:
                pool[0].shutdown(wait=True, cancel_futures=True)

    def _executor(self, n: int) -> Executor | None:
        if n < self.pool_threshold or (os.cpu_count() or 1) < 2:
            return None  # the default thread pool: no start-up cost
        import multiprocessing

        # spawn: no fork of a process that runs threads (the store's driver thread), and the
        # workers are this process's own children, so they can watch it and die with it.
        ctx = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(max_workers=os.cpu_count(), mp_context=ctx,
                                   initializer=worker_init, initargs=(os.getpid(),))

    def _assemble(self, parsed: list[Parsed], files: dict[str, FileState]) -> SourceResult:
        part = SourceResult()
        for p in parsed:
            if p.state is not None:
                part.file_states[p.rel] = p.state
                files[p.rel] = p.state
            if p.article is not None:
                part.articles.append(p.article)
                if p.warnings:
                    where = self._where(p.rel)
                    part.warnings.extend(Rejection(where, w) for w in p.warnings)
            elif p.unchanged and p.reason is None:
                part.unchanged += 1
            elif p.reason is not None:
                where = self._where(p.rel)
                part.rejections.append(Rejection(where, p.reason, retry=p.retry))
                part.warnings.extend(Rejection(where, w) for w in p.warnings)
        return part
