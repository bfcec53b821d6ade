"""One ingest pass: every enabled source -> validated articles -> store, stories, search.

Each batch of articles is written in one transaction together with its story
assignments, search index entries and the folder's seen-file records, so a crash
never leaves an article half-done, and a file is only marked as read once its
article is stored. A failing batch is retried one article at a time (a SAVEPOINT
each), so one bad article never loses the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.model import Article
from bot.sources.base import Rejection, SourceResult, SourceState
from bot.store import articles as article_store
from bot.store import sources as source_store

if TYPE_CHECKING:
    from bot.app import App
    from bot.config import FeedSourceConfig, FolderSourceConfig, Settings

log = logging.getLogger(__name__)

BATCH_SIZE = 500
PROGRESS_MIN_FILES = 200  # smaller passes finish before a bar would help
MAX_CONCURRENT_SOURCES = 4


@dataclass
class SourceReport:
    name: str
    type: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    warnings: list[Rejection] = field(default_factory=list)
    error: str | None = None
    not_modified: bool = False
    seconds: float = 0.0

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    def counts(self) -> str:
        return f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged, {self.rejected} rejected"

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type, "new": self.new, "updated": self.updated, "unchanged": self.unchanged,
            "rejected": self.rejected, "rejections": [r.as_dict() for r in self.rejections],
            "warnings": [w.as_dict() for w in self.warnings], "error": self.error,
            "not_modified": self.not_modified, "seconds": round(self.seconds, 3),
        }


@dataclass
class IngestReport:
    sources: dict[str, SourceReport] = field(default_factory=dict)
    seconds: float = 0.0

    def _sum(self, attr: str) -> int:
        return sum(getattr(s, attr) for s in self.sources.values())

    @property
    def new(self) -> int:
        return self._sum("new")

    @property
    def updated(self) -> int:
        return self._sum("updated")

    @property
    def unchanged(self) -> int:
        return self._sum("unchanged")

    @property
    def rejected(self) -> int:
        return self._sum("rejected")

    @property
    def rejections(self) -> list[Rejection]:
        return [r for s in self.sources.values() for r in s.rejections]

    @property
    def warnings(self) -> list[Rejection]:
        return [w for s in self.sources.values() for w in s.warnings]

    def as_dict(self) -> dict[str, Any]:
        return {
            "new": self.new, "updated": self.updated, "unchanged": self.unchanged, "rejected": self.rejected,
            "rejections": [r.as_dict() for r in self.rejections],
            "warnings": [w.as_dict() for w in self.warnings],
            "sources": {name: s.as_dict() for name, s in self.sources.items()},
            "seconds": round(self.seconds, 3),
        }

    def render_text(self) -> str:
        total = SourceReport("", "")
        total.new, total.updated, total.unchanged = self.new, self.updated, self.unchanged
        total.rejections = self.rejections
        lines = [f"ingest: {total.counts()} in {self.seconds:.1f} s"]
        for s in self.sources.values():
            extra = " (not modified)" if s.not_modified else ""
            extra += f"; error: {s.error}" if s.error else ""
            lines.append(f"  {s.name} ({s.type}): {s.counts()}{extra}")
        if self.rejections:
            lines.append("rejected:")
            lines.extend(f"  {r.where}: {r.reason}" for r in self.rejections)
        if self.warnings:
            lines.append("warnings:")
            lines.extend(f"  {w.where}: {w.reason}" for w in self.warnings)
        if not self.sources:
            lines.append("  no sources are configured (sources: in the config)")
        return "\n".join(lines)


def make_source(config: FolderSourceConfig | FeedSourceConfig, settings: Settings) -> Any:
    """The source object for a config entry; feed support is imported only when a feed is configured."""
    if config.type == "folder":
        from bot.sources.folder import FolderSource

        return FolderSource(config, settings)
    from bot.sources.feed import FeedSource  # lazy: folder-only setups never need it

    return FeedSource(config, settings, client=None)


def _location(config: Any, settings: Settings) -> str:
    if config.type == "folder":
        return str(settings.resolve_path(config.path))
    return str(config.url)


class _Pass:
    """State shared by the sources of one pass."""

    def __init__(self, app: App, *, hooks: bool, batch_size: int, progress: Any):
        self.app = app
        self.store = app.store
        self.settings = app.settings
        self.hooks = hooks
        self.batch_size = batch_size
        self.progress = progress
        self.stories: Any = None
        # One writer at a time: SQLite allows no more, and the story engine's memory follows one order.
        self.write_lock = asyncio.Lock()

    async def load_hooks(self) -> None:
        if self.hooks:
            from bot.stories.service import StoryService

            self.stories = await StoryService.load(self.store, self.settings)

    async def run_source(self, config: Any) -> SourceReport:
        started = time.perf_counter()
        rep = SourceReport(config.name, config.type)
        try:
            await self._run_source(config, rep)
        except Exception as exc:  # one broken source must not stop the others
            log.exception("source %s failed", config.name)
            rep.error = rep.error or f"{type(exc).__name__}: {exc}"
        if rep.error and not any(r.where == _location(config, self.settings) for r in rep.rejections):
            rep.rejections.append(Rejection(_location(config, self.settings), rep.error))
        rep.seconds = time.perf_counter() - started
        log.info("ingest %s: %s", config.name, rep.counts())
        return rep

    async def _run_source(self, config: Any, rep: SourceReport) -> None:
        is_folder = config.type == "folder"
        location = _location(config, self.settings)
        async with self.write_lock, self.store.begin() as conn:
            source_id = await source_store.ensure_source(conn, config.name, config.type)
        async with self.store.connect() as conn:
            state = await source_store.load_state(conn, source_id, with_files=is_folder)
        try:
            source = make_source(config, self.settings)
        except ImportError as exc:
            rep.error = f"{config.type} sources are not available: {exc}"
            return
        if self.hooks and hasattr(source, "precompute"):
            source.precompute = True
        final: SourceResult | None = None
        live: set[str] | None = None
        # Rejections a folder pass already reported: said again, but logged quietly.
        known_errors = {os.path.join(location, rel): fs.error for rel, fs in state.files.items() if fs.error}
        async with contextlib.aclosing(self._parts(source, state, config)) as parts:
            async for part in parts:
                if is_folder and part.state.files and live is None:
                    live = set(part.state.files)
                self._collect(rep, part, known_errors)
                if part.articles or part.file_states:
                    await self._write(source_id, part, rep, live, base=location if is_folder else None)
                final = part
        fetched_at = datetime.now(UTC)
        async with self.write_lock, self.store.begin() as conn:
            new_state = final.state if final is not None else SourceState()
            if is_folder and final is not None and final.error is None:
                gone = set(state.files) - set(new_state.files)
                if gone:
                    await source_store.forget_files(conn, source_id, gone)
            await source_store.record_fetch(
                conn, source_id, fetched_at=fetched_at, etag=new_state.etag,
                last_modified=new_state.last_modified, error=rep.error,
                next_due_at=fetched_at + timedelta(seconds=config.interval),
            )

    async def _parts(self, source: Any, state: SourceState, config: Any) -> AsyncIterator[SourceResult]:
        """A source's result in batches: streamed when the source can, else cut from one fetch."""
        if hasattr(source, "batches"):
            async with contextlib.aclosing(source.batches(state, self.batch_size,
                                                          progress=self._progress_cb(config.name))) as it:
                async for part in it:
                    yield part
            return
        result: SourceResult = await source.fetch(state)
        arts = result.articles
        if len(arts) <= self.batch_size:
            yield result
            return
        for i in range(0, len(arts), self.batch_size):
            last = i + self.batch_size >= len(arts)
            part = SourceResult(articles=arts[i:i + self.batch_size])
            if i == 0:
                part.rejections, part.warnings = result.rejections, result.warnings
                part.unchanged = result.unchanged
                part.not_modified, part.error = result.not_modified, result.error
            if last:
                part.state, part.file_states = result.state, result.file_states
            yield part

    def _progress_cb(self, name: str) -> Callable[[int, int], None] | None:
        if self.progress is None:
            return None
        task: list[Any] = []

        def cb(done: int, total: int) -> None:
            if total < PROGRESS_MIN_FILES:
                return
            if not task:
                task.append(self.progress.add_task(f"ingest {name}", total=total))
            self.progress.update(task[0], completed=done)

        return cb

    def _collect(self, rep: SourceReport, part: SourceResult, known_errors: dict[str, str | None]) -> None:
        rep.unchanged += part.unchanged
        rep.not_modified = rep.not_modified or part.not_modified
        if part.error:
            rep.error = part.error
        for r in part.rejections:
            level = logging.DEBUG if known_errors.get(r.where) == r.reason else logging.WARNING
            log.log(level, "rejected %s: %s", r.where, r.reason)
        for w in part.warnings:
            log.info("warning %s: %s", w.where, w.reason)
        rep.rejections.extend(part.rejections)
        rep.warnings.extend(part.warnings)

    async def _write(self, source_id: int, part: SourceResult, rep: SourceReport,
                     live: set[str] | None, *, base: str | None) -> None:
        file_states = dict(part.file_states)
        valid: list[Article] = []
        for a in part.articles:
            try:
                article_store.validate(a)
            except article_store.InvalidArticle as exc:
                self._reject(rep, a, f"cannot store: {exc}", file_states, base=base)
                continue
            valid.append(a)
        now = datetime.now(UTC)
        async with self.write_lock, self.store.begin() as conn:
            statuses: list[str | None]
            try:
                async with conn.begin_nested():
                    statuses = list(await self._store_batch(conn, source_id, valid, now, live))
            except Exception:
                log.warning("a batch of %d articles failed; storing them one at a time", len(valid),
                            exc_info=True)
                statuses = []
                for a in valid:
                    try:
                        async with conn.begin_nested():
                            statuses.extend(await self._store_batch(conn, source_id, [a], now, live))
                    except Exception as exc:
                        log.warning("storing %s failed", a.path or a.url or a.external_id, exc_info=True)
                        statuses.append(None)
                        self._reject(rep, a, f"cannot store: {type(exc).__name__}: {exc}", file_states,
                                     base=base, permanent=False)
            ids: dict[str, int] = {}
            for a, status in zip(valid, statuses, strict=True):
                if status is None:
                    continue
                setattr(rep, status, getattr(rep, status) + 1)
                if a.path and a.id is not None:
                    ids[a.path] = a.id
            await source_store.save_file_states(conn, source_id, file_states, ids)

    async def _store_batch(self, conn: Any, source_id: int, batch: list[Article], now: datetime,
                           live: set[str] | None) -> list[str]:
        if not batch:
            return []
        statuses = await article_store.upsert_articles(conn, source_id, batch, now=now, live_paths=live)
        changed = [a for a, s in zip(batch, statuses, strict=True) if s != article_store.UNCHANGED]
        if self.hooks and changed:
            # Inside this transaction: an article is stored with its story and index entry or not at all.
            from bot.search import index_articles

            await self.stories.add(conn, changed)
            await index_articles(conn, changed)
        return statuses

    def _reject(self, rep: SourceReport, a: Article, reason: str, file_states: dict[str, Any], *,
                base: str | None, permanent: bool = True) -> None:
        where = (os.path.join(base, a.path) if base and a.path else None) or a.url or a.external_id
        if a.path and a.path in file_states:
            if permanent:
                file_states[a.path].error = reason
            else:
                del file_states[a.path]  # not remembered: retried next pass
        log.warning("rejected %s: %s", where, reason)
        rep.rejections.append(Rejection(where, reason, retry=not permanent))


async def run_ingest(app: App, *, progress: bool = False, only: list[str] | None = None, hooks: bool = True,
                     batch_size: int = BATCH_SIZE) -> IngestReport:
    """One pass over every enabled source (or those named in ``only``).

    ``hooks=False`` skips story assignment and search indexing (benchmarks of ingest alone).
    """
    started = time.perf_counter()
    settings = app.settings
    configs = [s for s in settings.sources if s.enabled]
    if only is not None:
        names = {s.name for s in settings.sources}
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ValueError(f"unknown source {', '.join(unknown)} (configured: {', '.join(sorted(names))})")
        configs = [s for s in settings.sources if s.name in only]
    report = IngestReport()
    bar = _progress_bar() if progress else None
    ctx = _Pass(app, hooks=hooks, batch_size=batch_size, progress=bar)
    sem = asyncio.Semaphore(MAX_CONCURRENT_SOURCES)

    async def one(config: Any) -> SourceReport:
        async with sem:
            return await ctx.run_source(config)

    # Passes of one process run one at a time (the scheduler starts one per due source): the story
    # engine loads its state at the start of a pass and must see every earlier pass's writes.
    lock = getattr(app, "_ingest_lock", None)
    if lock is None:
        lock = asyncio.Lock()
        app._ingest_lock = lock  # type: ignore[attr-defined]
    async with lock:
        if configs:
            await ctx.load_hooks()
        with bar if bar is not None else contextlib.nullcontext():
            reports = await asyncio.gather(*(one(c) for c in configs))
    metrics = getattr(app, "metrics", None)
    for c, r in zip(configs, reports, strict=True):
        report.sources[c.name] = r
        if metrics is not None:
            metrics.articles_ingested.labels(c.name, "new").inc(r.new)
            metrics.articles_ingested.labels(c.name, "updated").inc(r.updated)
            metrics.rejected.labels(c.name).inc(len(r.rejections))
    report.seconds = time.perf_counter() - started
    return report


def _progress_bar() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=True)
