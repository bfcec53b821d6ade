"""Scheduling with a fake clock: zones, quiet hours across midnight, catch-up after downtime."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from bot.delivery import enqueue
from bot.model import Digest, DigestEntry, Subscription
from bot.scheduler import (
    Scheduler,
    in_quiet_hours,
    needs_catch_up,
    next_fire,
    previous_fire,
    quiet_end,
)
from bot.store import subscriptions as subs
from tests.delivery_helpers import FakeAdapter, add_sub, make_app

SH = ZoneInfo("Asia/Shanghai")


def _sub(times, tz="Asia/Shanghai", **kw) -> Subscription:
    return Subscription(adapter="telegram", chat_id="1", times=times, timezone=tz, id=1, **kw)


def test_next_fire_in_the_subscribers_zone():
    s = _sub(["08:00", "20:00"])
    t = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai exactly
    assert next_fire(s, t) == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)  # 20:00 Shanghai
    assert next_fire(s, t - timedelta(seconds=1)) == t
    ny = _sub(["07:30"], tz="America/New_York")
    assert next_fire(ny, datetime(2025, 7, 1, tzinfo=UTC)) == datetime(2025, 7, 1, 11, 30, tzinfo=UTC)  # EDT
    assert next_fire(ny, datetime(2025, 1, 1, tzinfo=UTC)) == datetime(2025, 1, 1, 12, 30, tzinfo=UTC)  # EST


def test_london_keeps_wall_time_across_the_dst_change():
    s = _sub(["08:00"], tz="Europe/London")
    before = next_fire(s, datetime(2025, 3, 29, 9, 0, tzinfo=UTC))  # the morning after is BST
    assert before == datetime(2025, 3, 30, 7, 0, tzinfo=UTC)
    assert before.astimezone(ZoneInfo("Europe/London")).hour == 8
    prev = previous_fire(s, datetime(2025, 3, 29, 9, 0, tzinfo=UTC))
    assert prev == datetime(2025, 3, 29, 8, 0, tzinfo=UTC)


def test_quiet_hours_crossing_midnight():
    q = "23:00-07:00"
    at = lambda h, m=0: datetime(2025, 5, 1, h, m, tzinfo=SH)  # noqa: E731
    assert in_quiet_hours(q, at(23, 30)) and in_quiet_hours(q, at(0)) and in_quiet_hours(q, at(6, 59))
    assert not in_quiet_hours(q, at(7)) and not in_quiet_hours(q, at(12))
    assert not in_quiet_hours(q, at(22, 59))
    assert quiet_end(q, at(23, 30)) == datetime(2025, 5, 2, 7, 0, tzinfo=SH)
    assert quiet_end(q, at(1)) == datetime(2025, 5, 1, 7, 0, tzinfo=SH)
    assert quiet_end(q, at(12)) == at(12)
    assert not in_quiet_hours("12:00-13:00", at(11, 59)) and in_quiet_hours("12:00-13:00", at(12, 30))
    assert not in_quiet_hours("nonsense", at(1)) and not in_quiet_hours(None, at(1))


hhmm = st.tuples(st.integers(0, 23), st.integers(0, 59)).map(lambda t: f"{t[0]:02d}:{t[1]:02d}")


@given(hhmm, hhmm, st.integers(0, 24 * 60 - 1))
def test_quiet_hours_match_a_minute_by_minute_model(start, end, minute):
    q = f"{start}-{end}"
    local = datetime(2025, 6, 10, tzinfo=SH) + timedelta(minutes=minute)
    s = int(start[:2]) * 60 + int(start[3:])
    e = int(end[:2]) * 60 + int(end[3:])
    quiet_minutes = set() if s == e else (
        set(range(s, e)) if s < e else set(range(s, 24 * 60)) | set(range(0, e)))
    assert in_quiet_hours(q, local) == (minute in quiet_minutes)
    out = quiet_end(q, local)
    assert local <= out < local + timedelta(hours=24)
    assert not in_quiet_hours(q, out)


def test_catch_up_once_after_downtime_within_the_horizon():
    day1 = datetime(2025, 5, 1, 0, 0, tzinfo=UTC)  # 08:00 Shanghai
    s = _sub(["08:00"], last_digest_at=day1)
    h = timedelta(hours=6)
    assert not needs_catch_up(s, day1 + timedelta(hours=20), h)  # nothing missed yet
    down_until = day1 + timedelta(days=2, hours=1)  # two 08:00s missed, the last 1 h ago
    assert needs_catch_up(s, down_until, h)
    s.last_digest_at = down_until  # the catch-up ran
    assert not needs_catch_up(s, down_until + timedelta(minutes=1), h)
    s.last_digest_at = day1
    assert not needs_catch_up(s, day1 + timedelta(days=2, hours=7), h)  # too stale: wait for the next time
    assert not needs_catch_up(_sub(["08:00"]), down_until, h)  # never had one: nothing to catch up


class WindowComposer:
    """Selects 'stories' by ingest time inside the window and skips ones already delivered,
    as bot.digest.compose does; records deliveries like record_delivered."""

    def __init__(self, items: list[tuple[int, datetime]]):
        self.items = items
        self.delivered: dict[int, list[int]] = {}

    async def compose(self, app, sub, *, now, window_start):
        got = self.delivered.get(sub.id, [])
        picked = [i for i, at in self.items if window_start <= at <= now and i not in got]
        entries = [DigestEntry(story_id=i, headline=f"story {i}", summary="", outlets=["x"], outlet_count=1,
                               time=now, url=None) for i in picked]
        return Digest(locale="en", timezone=sub.timezone, generated_at=now, entries=entries,
                      subscription_id=sub.id)

    async def record(self, conn, sub_id, digest):
        self.delivered.setdefault(sub_id, []).extend(e.story_id for e in digest.entries)


async def test_no_gap_no_repeat_across_restarts_and_quiet_hours(store):
    fake = FakeAdapter()
    app = await make_app(store, fake)
    t0 = datetime(2025, 5, 1, 0, 0, tzinfo=UTC)  # 08:00 Shanghai
    sid = await add_sub(store, "telegram", "42", times=["08:00", "20:00"], quiet_hours="23:00-07:00",
                        last_digest_at=t0)
    # Stories gain articles every 37 minutes for three days, some just around digest times.
    items = [(i, t0 + timedelta(minutes=37 * i)) for i in range(1, 3 * 24 * 60 // 37)]
    comp = WindowComposer(items)

    async def run(sub_id, now):
        return await enqueue.enqueue_digest(app, sub_id, now=now, composer=comp.compose, recorder=comp.record)

    clock = t0
    # Process 1 runs its jobs for a day, then dies.
    sched = Scheduler(app, run_digest=run)
    for _ in range(2):
        sub = await subs.get_by_id(store, sid)
        clock = next_fire(sub, clock)
        await sched.digest_job(sid, now=clock)
    # Down for a day and a half; process 2 starts and catches up once.
    clock += timedelta(days=1, hours=2)
    sched2 = Scheduler(app, run_digest=run)
    assert await sched2.catch_up(now=clock) == [sid]
    assert await sched2.catch_up(now=clock + timedelta(seconds=5)) == []  # not a burst
    # A time inside quiet hours (set quiet 19:00-21:00 so 20:00 falls in it) is deferred, not lost.
    await subs.update_settings(store, sid, quiet_hours="19:00-21:00")
    sub = await subs.get_by_id(store, sid)
    nxt = next_fire(sub, clock)
    while nxt.astimezone(SH).hour != 20:
        await sched2.digest_job(sid, now=nxt)
        nxt = next_fire(sub, nxt)
    assert await sched2.digest_job(sid, now=nxt) == 0  # deferred
    (job,) = [j for j in sched2.aps.get_jobs() if j.id.startswith(f"deferred:{sid}:")]
    assert job.trigger.run_date == datetime.combine(nxt.astimezone(SH).date(),
                                                    datetime.min.time().replace(hour=21), tzinfo=SH)
    end = job.trigger.run_date.astimezone(UTC)
    await sched2.digest_job(sid, now=end, deferred=True)
    delivered = comp.delivered[sid]
    assert len(delivered) == len(set(delivered)), "a story was delivered twice"
    expected = [i for i, at in items if t0 < at <= end]
    assert sorted(delivered) == expected, "a story was lost"


async def test_jobs_follow_subscription_changes(store):
    fake = FakeAdapter()
    app = await make_app(store, fake)
    app.settings.sources = []
    sid = await add_sub(store, "telegram", "5", times=["08:00"], tz="Asia/Shanghai")
    sched = Scheduler(app, run_digest=lambda s, n: asyncio.sleep(0))
    await sched.start(catch_up=False)
    try:
        jobs = sched.digest_jobs(sid)
        assert [j.id for j in jobs] == [f"digest:{sid}:08:00"]
        fake_now = datetime(2025, 5, 1, 1, 0, tzinfo=UTC)
        assert jobs[0].trigger.get_next_fire_time(None, fake_now) == datetime(2025, 5, 2, 8, 0, tzinfo=SH)
        # A command changes the schedule: the hook re-plans at once.
        sub = await subs.update_settings(store, sid, times="07:15,21:00", timezone="Europe/London")
        await sched.subscription_changed(sub)
        jobs = sorted(j.id for j in sched.digest_jobs(sid))
        assert jobs == [f"digest:{sid}:07:15", f"digest:{sid}:21:00"]
        (j,) = [j for j in sched.digest_jobs(sid) if j.id.endswith("07:15")]
        assert j.trigger.get_next_fire_time(None, fake_now).utcoffset() == timedelta(hours=1)  # BST
        # Retired elsewhere (another process): the periodic resync drops the jobs.
        await subs.retire(store, sid, "blocked")
        await sched.resync()
        assert sched.digest_jobs(sid) == []
        await sched.subscription_changed(sid)  # an id alone works too
    finally:
        sched.shutdown()


async def test_a_due_job_actually_runs_through_apscheduler(store):
    fake = FakeAdapter()
    app = await make_app(store, fake)
    app.settings.sources = []
    sid = await add_sub(store, "telegram", "9", times=["08:00"])
    ran = asyncio.Event()
    seen = []

    async def run(sub_id, now):
        seen.append(sub_id)
        ran.set()

    sched = Scheduler(app, run_digest=run)
    await sched.start(catch_up=False)
    try:
        (job,) = sched.digest_jobs(sid)
        job.modify(next_run_time=datetime.now(UTC))
        sched.aps.wakeup()
        await asyncio.wait_for(ran.wait(), 5)
        assert seen == [sid]
        assert job.misfire_grace_time == sched.misfire_grace and job.coalesce
    finally:
        sched.shutdown()
