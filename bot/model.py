"""Plain values that move through the pipeline. No I/O, no platform markup.

The types adapters and the core share (``Incoming``, ``Reply``, ``SendError``) live here,
below both, so the core never imports an adapter to speak to one.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


@dataclass(slots=True)
class Article:
    """One article as a source yields it and the store keeps it.

    ``body`` is the cleaned text (Markdown image/link markup removed, NFKC);
    ``links`` keeps the link targets that were removed from it.
    """

    source: str
    external_id: str
    title: str
    body: str
    published_at: datetime  # aware, UTC
    outlet: str = ""
    url: str | None = None
    path: str | None = None  # folder articles: path inside the folder (POSIX)
    summary: str = ""
    lang: str = ""
    tags: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    content_hash: str = ""
    warnings: list[str] = field(default_factory=list)
    # Set by the store and the story engine.
    id: int | None = None
    story_id: int | None = None
    duplicate_of: int | None = None
    # Text-only work for the story engine and the search index, done where the article was
    # parsed (a worker process on large passes); never stored. See ``bot.sources.precompute``.
    features: Any = field(default=None, repr=False, compare=False)
    index_fields: Any = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {**fields_of(self, "id source outlet external_id path url title"),
                "published_at": iso(self.published_at),
                **fields_of(self, "lang story_id duplicate_of")}


@dataclass(slots=True)
class Story:
    id: int
    title: str
    size: int
    sources: list[str]  # distinct outlets, most articles first
    first_seen: datetime
    last_seen: datetime
    articles: list[Article] = field(default_factory=list)
    headline_article_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**fields_of(self, "id title size sources"),
                "first_seen": iso(self.first_seen), "last_seen": iso(self.last_seen),
                "articles": [a.as_dict() for a in self.articles]}


@dataclass(slots=True)
class Filters:
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    outlets: list[str] = field(default_factory=list)
    exclude_outlets: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    langs: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return fields_of(self, "include exclude outlets exclude_outlets categories langs")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Filters:
        data = data or {}
        return cls(**{k: list(data.get(k) or []) for k in cls.__dataclass_fields__})


@dataclass(slots=True)
class Subscription:
    adapter: str
    chat_id: str
    locale: str = "zh-CN"
    timezone: str = "Asia/Shanghai"
    times: list[str] = field(default_factory=lambda: ["08:00"])  # HH:MM in ``timezone``
    max_stories: int = 10
    filters: Filters = field(default_factory=Filters)
    quiet_hours: str | None = None  # "23:00-07:00"; may cross midnight
    active: bool = True
    chat_type: str = "private"  # private | group | supergroup | channel
    id: int | None = None
    last_digest_at: datetime | None = None
    retired_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**fields_of(self, "id adapter chat_id locale timezone"), "schedule": self.times,
                "max_stories": self.max_stories, "filters": self.filters.as_dict(),
                **fields_of(self, "quiet_hours chat_type active"),
                "last_digest_at": iso(self.last_digest_at) if self.last_digest_at else None,
                "retired_reason": self.retired_reason}


@dataclass(slots=True)
class DigestEntry:
    story_id: int
    headline: str
    summary: str
    outlets: list[str]  # distinct, most relevant first
    outlet_count: int
    time: datetime  # latest report, UTC
    url: str | None
    is_update: bool = False


@dataclass(slots=True)
class Digest:
    """A platform-neutral digest; each adapter's render.py turns it into messages."""

    locale: str
    timezone: str
    generated_at: datetime  # UTC
    entries: list[DigestEntry]
    heading: str = ""  # localised, already formatted for the subscriber's zone
    subscription_id: int | None = None
    # Stories that were in the window but did not make the cut (story id -> size): recorded so
    # a later, overlapping window does not offer them again unless they grew.
    passed_over: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class Button:
    """A neutral inline button; adapters map ``action``/``value`` to callback data."""

    label: str
    action: str
    value: str = ""


@dataclass(slots=True)
class ResultItem:
    """One line of a neutral list reply, e.g. a search hit (one per story)."""

    title: str
    url: str | None = None
    detail: str = ""  # e.g. "iyiou, QQ News and 4 more · 2025-02-12"
    snippet: str = ""


@dataclass(slots=True)
class Reply:
    """A platform-neutral answer to a command."""

    text: str
    items: list[ResultItem] = field(default_factory=list)
    buttons: list[Button] = field(default_factory=list)
    ephemeral: bool = False
    # When set, the adapter edits this earlier message instead of sending a new one.
    edit_message_id: str | None = None
    # /digest answers with a whole digest; the adapter renders it as a digest would be sent.
    digest: Digest | None = None


def fields_of(obj: Any, names: str) -> dict[str, Any]:
    """The named attributes of ``obj`` as a dict, in the order named (JSON output keeps it)."""
    return {n: getattr(obj, n) for n in names.split()}


def iso(dt: datetime) -> str:
    """ISO 8601 in UTC with a trailing Z."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_hash(title: str, body: str) -> str:
    """sha256 of the whitespace-normalised title and body: an edit changes it, re-spacing does not.

    The last fallback of an article's identity, so every source and the store share this one rule."""
    norm = " ".join(_nfkc(title).split()) + "\n" + " ".join(_nfkc(body).split())
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()


def _nfkc(text: str) -> str:
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


# ---------------------------------------------------------------- what sources remember


@dataclass(slots=True)
class FileState:
    mtime_ns: int
    size: int
    sha256: str
    error: str | None = None  # a rejected file: its reason, reported again while the file is unchanged


@dataclass(slots=True)
class SourceState:
    """What the store remembers about a source between passes."""

    etag: str | None = None
    last_modified: str | None = None
    files: dict[str, FileState] = field(default_factory=dict)  # folder: POSIX path -> state
    last_fetched_at: datetime | None = None


# ---------------------------------------------------------------- between adapters and the core


@dataclass(slots=True)
class Incoming:
    """A command as it arrived from a chat, stripped of platform specifics."""

    adapter: str
    chat_id: str
    user_id: str
    command: str  # "search", "subscribe", ... (no slash, no bot suffix)
    args: str = ""
    chat_type: str = "private"  # private | group | supergroup | channel
    language_code: str | None = None
    is_admin: bool = True  # whether the user may change this chat's settings
    message_id: str | None = None  # for edits (paging buttons)
    callback: bool = False  # came from an inline button
    extra: dict[str, Any] = field(default_factory=dict)


class SendErrorKind(StrEnum):
    """What delivery does about a failed send."""

    RETRY_AFTER = "retry_after"  # obey ``retry_after`` seconds
    TRANSIENT = "transient"  # retry with backoff
    BLOCKED = "blocked"  # the four below retire the subscription
    KICKED = "kicked"
    DEACTIVATED = "deactivated"
    NOT_FOUND = "not_found"
    MIGRATED = "migrated"  # move the subscription to ``new_chat_id``
    MARKUP = "markup"  # resend as plain text
    FATAL = "fatal"  # dead-letter now


RETIRE_KINDS = frozenset({SendErrorKind.BLOCKED, SendErrorKind.KICKED, SendErrorKind.DEACTIVATED,
                          SendErrorKind.NOT_FOUND})


class SendError(Exception):
    """A send failed; ``kind`` tells delivery what to do about it."""

    def __init__(self, kind: SendErrorKind | str, message: str, *, retry_after: float | None = None,
                 new_chat_id: str | None = None):
        super().__init__(message)
        self.kind = SendErrorKind(kind)
        self.retry_after = retry_after
        self.new_chat_id = new_chat_id
