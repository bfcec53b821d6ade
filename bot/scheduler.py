"""APScheduler jobs: ingest per source, digests per subscription in its own time zone.

The store, not the scheduler, remembers what was sent: a digest covers everything since
the subscription's ``last_digest_at``, so a job that runs late, twice, or after a restart
never loses or repeats a story. The job store is in memory; after downtime ``catch_up``
looks at ``last_digest_at`` and the schedule and queues ONE digest per subscription that
missed a time recently (a burst of stale digests helps nobody).

Quiet hours ("23:00-07:00", may cross midnight) defer a digest to the end of the quiet
period; the deferred digest still covers the whole window.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.delivery.enqueue import enqueue_digest
from bot.ingest import run_ingest
from bot.model import Subscription
from bot.store import subscriptions as subs

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

# How late a job may still run when the loop was busy or the machine slept.
MISFIRE_GRACE = 3600
RESYNC_SECONDS = 300.0

DigestRunner = Callable[[int, datetime], Awaitable[Any]]


# -- pure schedule arithmetic (tested with a fake clock) -----------------------------------------

def parse_quiet(value: str | None) -> tuple[time, time] | None:
    """'23:00-07:00' -> (23:00, 07:00); None / '' / malformed -> None."""
    if not value:
        return None
    try:
        a, b = (p.strip() for p in value.replace("–", "-").split("-", 1))
        start, end = time.fromisoformat(a), time.fromisoformat(b)
    except ValueError:
        log.warning("ignoring malformed quiet hours %r (use HH:MM-HH:MM)", value)
        return None
    return None if start == end else (start, end)


def in_quiet_hours(quiet: str | None, local: datetime) -> bool:
    q = parse_quiet(quiet)
    if q is None:
        return False
    start, end = q
    t = local.time().replace(tzinfo=None)
    if start < end:
        return start <= t < end
    return t >= start or t < end  # crosses midnight


def quiet_end(quiet: str | None, local: datetime) -> datetime:
    """The first moment after ``local`` (aware, in the subscriber's zone) outside quiet hours."""
    q = parse_quiet(quiet)
    if q is None or not in_quiet_hours(quiet, local):
        return local
    end = q[1]
    candidate = datetime.combine(local.date(), end, tzinfo=local.tzinfo)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=local.tzinfo)
    # Through ZoneInfo arithmetic the wall time is kept across DST changes.
    return candidate


def _cron(hhmm: str, tz: str) -> CronTrigger:
    h, m = hhmm.split(":")
    return CronTrigger(hour=int(h), minute=int(m), timezone=ZoneInfo(tz))


def next_fire(sub: Subscription, after: datetime) -> datetime | None:
    """The next scheduled digest time strictly after ``after`` (aware)."""
    best: datetime | None = None
    for t in sub.times:
        nxt = _cron(t, sub.timezone).get_next_fire_time(None, after + timedelta(microseconds=1))
        if nxt is not None and (best is None or nxt < best):
            best = nxt
    return best


def previous_fire(sub: Subscription, now: datetime) -> datetime | None:
    """The latest scheduled digest time at or before ``now``."""
    tz = ZoneInfo(sub.timezone)
    local = now.astimezone(tz)
    best: datetime | None = None
    for days in range(0, 3):
        day = local.date() - timedelta(days=days)
        for t in sub.times:
            h, m = (int(x) for x in t.split(":"))
            cand = datetime(day.year, day.month, day.day, h, m, tzinfo=tz)
            if cand <= local and (best is None or cand > best):
                best = cand
        if best is not None:
            break
    return best.astimezone(UTC) if best is not None else None


def needs_catch_up(sub: Subscription, now: datetime, horizon: timedelta) -> bool:
    """Did ``sub`` miss a scheduled digest within ``horizon`` before ``now``?"""
    if not sub.active or sub.last_digest_at is None or not sub.times:
        return False
    last_due = previous_fire(sub, now)
    if last_due is None:
        return False
    return sub.last_digest_at < last_due and now - last_due <= horizon


# -- the scheduler --------------------------------------------------------------------------------

def _signature(sub: Subscription) -> tuple[Any, ...]:
    return (sub.active, tuple(sub.times), sub.timezone, sub.quiet_hours)


class Scheduler:
    """Owns one AsyncIOScheduler; ``start`` inside the running loop, ``shutdown`` to stop."""

    def __init__(self, app: App, *, run_digest: DigestRunner | None = None,
                 run_ingest: Callable[[list[str]], Awaitable[Any]] | None = None,
                 misfire_grace: int = MISFIRE_GRACE, resync_seconds: float = RESYNC_SECONDS):
        self.app = app
        self._run_digest = run_digest
        self._run_ingest = run_ingest
        self.misfire_grace = misfire_grace
        self.resync_seconds = resync_seconds
        self.aps = AsyncIOScheduler(timezone=UTC, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": misfire_grace})
        self._planned: dict[int, tuple[Any, ...]] = {}

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, *, catch_up: bool = True, ingest: bool = True, now: datetime | None = None) -> None:
        if ingest:
            self._add_ingest_jobs()
        self.aps.add_job(self.resync, IntervalTrigger(seconds=self.resync_seconds), id="resync",
                         replace_existing=True)
        await self.resync()
        self.aps.start()
        if catch_up:
            await self.catch_up(now=now)

    def shutdown(self) -> None:
        if self.aps.running:
            self.aps.shutdown(wait=False)

    def _add_ingest_jobs(self) -> None:
        for src in self.app.settings.sources:
            if not src.enabled:
                continue
            self.aps.add_job(self._ingest, IntervalTrigger(seconds=src.interval), args=[src.name],
                             id=f"ingest:{src.name}", replace_existing=True,
                             misfire_grace_time=max(1, int(src.interval)))

    async def _ingest(self, name: str) -> None:
        try:
            if self._run_ingest is not None:
                await self._run_ingest([name])
                return
            await run_ingest(self.app, only=[name])
        except Exception:  # the next interval tries again
            log.exception("ingest of source %s failed", name)

    # -- subscriptions ---------------------------------------------------------------------------

    async def resync(self) -> None:
        """Re-read the subscriptions and update the jobs whose schedule changed (covers
        subscriptions changed by another process, e.g. ``digestbot subscriptions add``)."""
        try:
            current = await subs.list_subscriptions(self.app.store)
        except Exception:
            log.exception("reading subscriptions for the scheduler failed")
            return
        configured = set(self.app.settings.adapter_configs)
        seen: set[int] = set()
        for sub in current:
            if sub.id is None or sub.adapter not in configured:
                continue
            seen.add(sub.id)
            if self._planned.get(sub.id) != _signature(sub):
                self.plan(sub)
        for sub_id in list(self._planned):
            if sub_id not in seen:
                self.unplan(sub_id)

    def plan(self, sub: Subscription) -> None:
        """(Re)create the digest jobs of one subscription."""
        assert sub.id is not None
        self.unplan(sub.id)
        self._planned[sub.id] = _signature(sub)
        if not sub.active:
            return
        for t in sub.times:
            try:
                trigger = _cron(t, sub.timezone)
            except (ValueError, KeyError):
                log.warning("subscription %s: bad time %r or zone %r; not scheduled", sub.id, t, sub.timezone)
                continue
            self.aps.add_job(self.digest_job, trigger, args=[sub.id], id=f"digest:{sub.id}:{t}",
                             replace_existing=True)

    def unplan(self, sub_id: int) -> None:
        self._planned.pop(sub_id, None)
        for job in self.aps.get_jobs():
            if job.id.startswith((f"digest:{sub_id}:", f"deferred:{sub_id}:")):
                job.remove()

    def digest_jobs(self, sub_id: int) -> list[Any]:
        prefixes = (f"digest:{sub_id}:", f"deferred:{sub_id}:")
        return [j for j in self.aps.get_jobs() if j.id.startswith(prefixes)]

    def subscription_changed(self, sub: Subscription | int | None = None) -> Any:
        """The hook commands call (``app.on_subscription_changed``) after a change."""
        if isinstance(sub, Subscription) and sub.id is not None:
            if sub.adapter in self.app.settings.adapter_configs:
                self.plan(sub)
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            fut.set_result(None)
            return fut
        return asyncio.ensure_future(self.resync())

    # -- running digests ---------------------------------------------------------------------------

    async def digest_job(self, sub_id: int, *, now: datetime | None = None, deferred: bool = False) -> int:
        """A scheduled time came: queue the digest, or defer it past quiet hours."""
        now = now or datetime.now(UTC)
        try:
            sub = await subs.get_by_id(self.app.store, sub_id)
            if sub is None or not sub.active:
                return 0
            local = now.astimezone(ZoneInfo(sub.timezone))
            if not deferred and in_quiet_hours(sub.quiet_hours, local):
                when = quiet_end(sub.quiet_hours, local)
                self.aps.add_job(self.digest_job, DateTrigger(run_date=when), args=[sub_id],
                                 kwargs={"deferred": True}, id=f"deferred:{sub_id}:", replace_existing=True)
                log.info("digest for subscription %s deferred to %s (quiet hours %s)", sub_id,
                         when.isoformat(timespec="minutes"), sub.quiet_hours)
                return 0
            if self._run_digest is not None:
                return int(await self._run_digest(sub_id, now) or 0)
            return await enqueue_digest(self.app, sub_id, now=now)
        except Exception:  # one subscription's failure must not stop the schedule
            log.exception("digest for subscription %s failed", sub_id)
            return 0

    async def catch_up(self, *, now: datetime | None = None) -> list[int]:
        """One digest now for every subscription that missed a time during downtime."""
        now = now or datetime.now(UTC)
        horizon = timedelta(hours=self.app.settings.digest.catch_up_hours)
        configured = set(self.app.settings.adapter_configs)
        done: list[int] = []
        for sub in await subs.list_active(self.app.store):
            if sub.id is None or sub.adapter not in configured:
                continue
            if needs_catch_up(sub, now, horizon):
                log.info("subscription %s missed its digest at %s; sending one catch-up digest", sub.id,
                         previous_fire(sub, now))
                await self.digest_job(sub.id, now=now)
                done.append(sub.id)
        return done
