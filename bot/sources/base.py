"""What every source kind returns, and the rules all of them share."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from bot.model import Article, FileState, SourceState

__all__ = ["FileState", "Rejection", "Source", "SourceResult", "SourceState", "future_date", "hostname"]

# A date this far ahead of the pass is the source's mistake; it would pin the article to the top.
FUTURE_SLACK = timedelta(days=1)


def future_date(published: datetime, now: datetime) -> str | None:
    """The one rule for dates ahead of time (feeds and folders): a warning, or None if it is fine.

    The caller replaces such a date with its own stand-in (the fetch time, the file's time).
    """
    if published > now + FUTURE_SLACK:
        return f"date {published.isoformat()} is in the future"
    return None


def hostname(url: str | None) -> str:
    """The host of ``url`` without ``www.``: the outlet's name when nothing else gives one."""
    try:
        host = urlsplit(url or "").hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


@dataclass(slots=True)
class Rejection:
    """An input that could not become an article: the file or URL, and why."""

    where: str
    reason: str
    retry: bool = False  # e.g. a file seen mid-write: try again next pass, remember nothing

    def as_dict(self) -> dict[str, Any]:
        return {"where": self.where, "reason": self.reason}


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
