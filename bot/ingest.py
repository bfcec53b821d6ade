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
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.model import Article
from bot.search import index_articles
from bot.sources.base import Rejection, SourceResult, SourceState
from bot.sources.folder import FolderSource
from bot.store import articles as article_store
from bot.store import sources as source_store
from bot.stories.service import StoryService
from bot.text.redact import mask_userinfo
from bot.text.safe import describe_error as describe_exc
from bot.text.safe import printable

if TYPE_CHECKING:
    from bot.app import App
    from bot.config import FeedSourceConfig, FolderSourceConfig, Settings

log = logging.getLogger(__name__)

BATCH_SIZE = 500
PROGRESS_MIN_FILES = 200  # smaller passes finish before a bar would help
MAX_CONCURRENT_SOURCES = 4


class StoreError(Exception):
    """The store failed during a pass (disk full, read-only, locked, connection lost)."""

    def __init__(self, cause: BaseException):
        cause = _first_store_error(cause)
        super().__init__(describe_exc(cause))
        self.cause = cause


def _first_store_error(exc: BaseException) -> BaseException:
    """The store error that started it: SQLite rolls a transaction back on SQLITE_FULL, so the
    error that surfaces is often the failed ROLLBACK TO / RELEASE of a savepoint after it."""
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in chain and len(chain) < 20:
        chain.append(e)
        e = e.__cause__ or e.__context__
    return next((c for c in reversed(chain) if is_store_error(c) and not isinstance(c, StoreError)), exc)


def is_store_error(exc: BaseException) -> bool:
    """A failure of the store itself, as opposed to one of an article's values.

    Constraint and data errors are about the article being written (it is rejected alone);
    any other database error (SQLite: full, I/O, read-only, busy, no such savepoint;
    PostgreSQL: read-only transaction, disk full, connection lost) is about the store.
    """
    from sqlalchemy import exc as sa

    if isinstance(exc, StoreError):
        return True
    if isinstance(exc, sa.IntegrityError | sa.DataError):
        return False
    return isinstance(exc, sa.DBAPIError | sa.PendingRollbackError | sa.ResourceClosedError
                      | sa.TimeoutError | sa.DisconnectionError | ConnectionError)


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
    store_error: str | None = None  # the store failed: the pass stopped, exit 1
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
            "store_error": self.store_error, "not_modified": self.not_modified,
            "seconds": round(self.seconds, 3),
        }


def _total(attr: str) -> Any:
    """A report-wide count: the sum of that count over its sources."""
    return property(lambda self: sum(getattr(s, attr) for s in self.sources.values()))


@dataclass
class IngestReport:
    sources: dict[str, SourceReport] = field(default_factory=dict)
    seconds: float = 0.0
    interrupted: str | None = None  # the signal that stopped the pass early (SIGTERM, SIGINT)

    @property
    def store_errors(self) -> list[str]:
        return [f"{s.name}: {s.store_error}" for s in self.sources.values() if s.store_error]

    new = _total("new")
    updated = _total("updated")
    unchanged = _total("unchanged")
    rejected = _total("rejected")

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
            "store_errors": self.store_errors, "interrupted": self.interrupted,
            "seconds": round(self.seconds, 3),
        }

    def render_text(self) -> str:
        total = SourceReport("", "")
        total.new, total.updated, total.unchanged = self.new, self.updated, self.unchanged
        total.rejections = self.rejections
        lines = [f"ingest: {total.counts()} in {self.seconds:.1f} s"]
        if self.interrupted:
            lines[0] += f" (stopped early by {self.interrupted})"
        for s in self.sources.values():
            extra = " (not modified)" if s.not_modified else ""
            extra += f"; error: {printable(s.error)}" if s.error else ""
            lines.append(f"  {printable(s.name)} ({s.type}): {s.counts()}{extra}")
        # Paths and reasons come from the files: escaped, so a name cannot forge a line.
        if self.rejections:
            lines.append("rejected:")
            lines.extend(f"  {printable(r.where)}: {printable(r.reason)}" for r in self.rejections)
        if self.warnings:
            lines.append("warnings:")
            lines.extend(f"  {printable(w.where)}: {printable(w.reason)}" for w in self.warnings)
        if not self.sources:
            lines.append("  no sources are configured (sources: in the config)")
        return "\n".join(lines)


def make_source(config: FolderSourceConfig | FeedSourceConfig, settings: Settings) -> Any:
    """The source object for a config entry; feed support is imported only when a feed is configured."""
    if config.type == "folder":
        return FolderSource(config, settings)
    from bot.sources.feed import FeedSource  # lazy: folder-only setups never need it

    return FeedSource(config, settings, client=None)


def _location(config: Any, settings: Settings) -> str:
    if config.type == "folder":
        return str(settings.resolve_path(config.path))
    return mask_userinfo(str(config.url))  # a feed's password never reaches a report


class _Pass:
    """State shared by the sources of one pass."""

    def __init__(self, app: App, *, hooks: bool, batch_size: int, progress: Any,
                 stop: asyncio.Event | None = None):
        self.app = app
        self.stop = stop  # set (SIGTERM / SIGINT): finish the batch being written, read no more
        self.store = app.store
        self.settings = app.settings
        self.hooks = hooks
        self.batch_size = batch_size
        self.progress = progress
        self.stories: Any = None
        # One writer at a time: SQLite allows no more, and the story engine's memory follows one order.
        self.write_lock = asyncio.Lock()
        self._stories_ran = False  # set when a savepoint's work reached the story engine
        self._last_error = ""

    async def load_hooks(self) -> None:
        if self.hooks:
            self.stories = await StoryService.load(self.store, self.settings)

    async def run_source(self, config: Any) -> SourceReport:
        started = time.perf_counter()
        rep = SourceReport(config.name, config.type)
        try:
            await self._run_source(config, rep)
        except StoreError as exc:
            log.error("source %s: store error, pass stopped: %s", config.name, exc)
            log.debug("the store error", exc_info=exc.cause)
            rep.store_error = str(exc)
            rep.error = f"store error: {exc}"
        except Exception as exc:  # one broken source must not stop the others
            log.exception("source %s failed", config.name)
            rep.error = rep.error or describe_exc(exc)
            if is_store_error(exc):
                rep.store_error = describe_exc(exc)
        if (rep.error and not rep.store_error
                and not any(r.where == _location(config, self.settings) for r in rep.rejections)):
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
        known_errors: dict[str, str | None] = {os.path.join(location, rel): fs.error
                                               for rel, fs in state.files.items() if fs.error}
        async with contextlib.aclosing(self._parts(source, state, config)) as parts:
            async for part in parts:
                if is_folder and part.state.files and live is None:
                    live = set(part.state.files)
                self._collect(rep, part, known_errors)
                if part.articles or part.file_states:
                    await self._write(source_id, part, rep, live, base=location if is_folder else None)
                final = part
                if self.stop is not None and self.stop.is_set():
                    # What was read and not written is read again next pass; vanished files are
                    # only forgotten after a whole pass.
                    log.warning("source %s: stopped before the end of the pass", config.name)
                    final = None if not is_folder else SourceResult(state=state, error="stopped")
                    break
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

    async def _parts(self, source: Any, state: SourceState,
                     config: Any) -> AsyncGenerator[SourceResult, None]:
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
        """Store one part in one transaction; an article that fails is rejected on its own.

        The batch is tried whole under a SAVEPOINT; if it fails, each article is tried under a
        SAVEPOINT of its own, so only the one at fault is rejected. A store error (disk full,
        read-only, locked, connection lost) is not an article's fault: it stops the source's pass
        (``StoreError``) and nothing of the batch is counted. Counts are taken once committed.
        """
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
        counts: dict[str, int] = {}
        try:
            async with self.write_lock, self.store.begin() as conn:
                statuses = await self._try(conn, source_id, valid, now, live)
                if statuses is None:
                    log.warning("a batch of %d articles failed (%s); storing them one at a time",
                                len(valid), self._last_error)
                    statuses = []
                    for a in valid:
                        one = await self._try(conn, source_id, [a], now, live, report=True)
                        if one is None:
                            self._reject(rep, a, f"cannot store: {self._last_error}", file_states,
                                         base=base, permanent=False)
                            statuses.append(None)
                        else:
                            statuses.extend(one)
                ids: dict[str, int] = {}
                for a, status in zip(valid, statuses, strict=True):
                    if status is None:
                        continue
                    counts[status] = counts.get(status, 0) + 1
                    if a.path and a.id is not None:
                        ids[a.path] = a.id
                await source_store.save_file_states(conn, source_id, file_states, ids)
        except Exception as exc:
            self._forget_stories()  # whatever the engine took in was rolled back with the batch
            if isinstance(exc, StoreError):
                raise
            if is_store_error(exc):
                raise StoreError(exc) from exc
            raise
        for status, n in counts.items():
            setattr(rep, status, getattr(rep, status) + n)

    async def _try(self, conn: Any, source_id: int, batch: list[Article], now: datetime,
                   live: set[str] | None, *, report: bool = False) -> list[str | None] | None:
        """``batch`` stored under a SAVEPOINT: its statuses, or None when it was rolled back.

        A store error is raised (StoreError): retrying article by article cannot help.
        """
        saved = [(a.id, a.story_id, a.duplicate_of, a.external_id, len(a.warnings)) for a in batch]
        self._stories_ran = False
        inner: Exception | None = None
        try:
            async with conn.begin_nested():
                try:
                    return list(await self._store_batch(conn, source_id, batch, now, live))
                except Exception as exc:
                    # Kept: if rolling back to the savepoint fails too (SQLite drops the whole
                    # transaction on SQLITE_FULL), that error comes out without this one.
                    inner = exc
                    raise
        except Exception as exc:
            if inner is not None and is_store_error(inner):
                raise StoreError(inner) from exc
            if is_store_error(exc):
                raise StoreError(exc) from exc
            exc = inner or exc
            # The traceback is for -v; the rejection itself is logged (and reported) with its cause.
            if report:
                a = batch[0]
                log.debug("storing %s failed", a.path or a.url or a.external_id, exc_info=exc)
            else:
                log.debug("the batch failed", exc_info=exc)
            self._last_error = describe_exc(exc)
            # Undo what the failed attempt set on the articles (ids of rows that were rolled back).
            for a, (id_, story, dup, ext, n_warnings) in zip(batch, saved, strict=True):
                a.id, a.story_id, a.duplicate_of, a.external_id = id_, story, dup, ext
                del a.warnings[n_warnings:]
            if self._stories_ran:
                self._forget_stories()
            return None

    def _forget_stories(self) -> None:
        """The story engine's memory may be ahead of the store after a rollback: make it reload."""
        invalidate = getattr(self.stories, "invalidate", None)
        if invalidate is not None:
            invalidate()

    async def _store_batch(self, conn: Any, source_id: int, batch: list[Article], now: datetime,
                           live: set[str] | None) -> list[str]:
        if not batch:
            return []
        statuses = await article_store.upsert_articles(conn, source_id, batch, now=now, live_paths=live)
        changed = [a for a, s in zip(batch, statuses, strict=True) if s != article_store.UNCHANGED]
        if self.hooks and changed:
            # Inside this transaction: an article is stored with its story and index entry or not at all.
            self._stories_ran = True
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
                     batch_size: int = BATCH_SIZE, stop: asyncio.Event | None = None) -> IngestReport:
    """One pass over every enabled source (or those named in ``only``).

    ``hooks=False`` skips story assignment and search indexing (benchmarks of ingest alone).
    ``stop``, once set, ends the pass after the batch being written (never half a batch).
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
    ctx = _Pass(app, hooks=hooks, batch_size=batch_size, progress=bar, stop=stop)
    sem = asyncio.Semaphore(MAX_CONCURRENT_SOURCES)

    async def one(config: Any) -> SourceReport:
        async with sem:
            return await ctx.run_source(config)

    # Passes of one process run one at a time (the scheduler starts one per due source): the story
    # engine loads its state at the start of a pass and must see every earlier pass's writes.
    async with app.ingest_lock:
        if configs:
            await ctx.load_hooks()
        with bar if bar is not None else contextlib.nullcontext():
            reports = await asyncio.gather(*(one(c) for c in configs))
    metrics = app.metrics
    for c, r in zip(configs, reports, strict=True):
        report.sources[c.name] = r
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
