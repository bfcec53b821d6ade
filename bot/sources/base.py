"""What every source kind returns, and the registry of kinds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.model import Article

# A date this far ahead of the pass is the source's mistake; it would pin the article to the top.
FUTURE_SLACK = timedelta(days=1)


def future_date(published: datetime, now: datetime) -> str | None:
    """The one rule for dates ahead of time (feeds and folders): a warning, or None if it is fine.

    The caller replaces such a date with its own stand-in (the fetch time, the file's time).
    """
    if published > now + FUTURE_SLACK:
        return f"date {published.isoformat()} is in the future"
    return None


@dataclass(slots=True)
class Rejection:
    """An input that could not become an article: the file or URL, and why."""

    where: str
    reason: str
    retry: bool = False  # e.g. a file seen mid-write: try again next pass, remember nothing

    def as_dict(self) -> dict[str, Any]:
        return {"where": self.where, "reason": self.reason}


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


@dataclass(slots=True)
class SourceResult:
    articles: list[Article] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    warnings: list[Rejection] = field(default_factory=list)  # kept, but something was off
    unchanged: int = 0  # inputs skipped because nothing changed since the last pass
    not_modified: bool = False  # feed answered 304
    # Updated state to persist with the articles (files seen now, new validators).
    state: SourceState = field(default_factory=SourceState)
    # Folder: files whose article was written (path -> state), stored only once the article is.
    file_states: dict[str, FileState] = field(default_factory=dict)
    error: str | None = None  # the whole source failed this pass (feed down, folder missing)


class Source(Protocol):
    name: str

    async def fetch(self, state: SourceState) -> SourceResult: ...


def source_types() -> dict[str, Any]:
    """Source kinds by config ``type``."""
    from bot.sources.feed import FeedSource
    from bot.sources.folder import FolderSource

    return {"folder": FolderSource, "feed": FeedSource}
