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
import stat
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.model import Article
from bot.sources.base import FileState, Rejection, SourceResult, SourceState
from bot.sources.folder_parse import Reject, build_article, decode, looks_binary, read_front_matter
from bot.sources.precompute import precompute
from bot.sources.tree import LEAVES, is_inside, list_files
from bot.text.safe import describe_error

if TYPE_CHECKING:
    from bot.config import FolderSourceConfig, Settings

log = logging.getLogger(__name__)

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _open_no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | _O_NOFOLLOW | _O_NONBLOCK)

# Passes that read at least this many files use a process pool (start-up costs ~0.3 s).
POOL_THRESHOLD = 2000


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
    precompute: bool = False  # also derive story features and index tokens (bot.sources.precompute)
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
    if looks_binary(data):
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
