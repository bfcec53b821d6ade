"""The delivery worker: claims outbox rows and sends them within the platforms' limits.

One dispatcher claims the oldest pending message of as many chats as it has room for;
each claimed row is sent by its own task, and a per-chat lock keeps a chat's messages in
order inside this process (the claim rule keeps them in order across processes). Every
outcome is written back before the next message of that chat can be claimed, so after a
crash at most the one message in flight per chat is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from bot.delivery import queue as outbox
from bot.delivery.queue import Row, utcnow
from bot.delivery.ratelimit import Limits, Permit
from bot.model import RETIRE_KINDS, SendError, SendErrorKind
from bot.store import subscriptions as subs
from bot.store.tables import outbox as t_out

if TYPE_CHECKING:
    from bot.adapters.base import Adapter
    from bot.app import App

log = logging.getLogger(__name__)

# How long a claim holds before another process may take the row over.
CLAIM_TTL = 30.0
# Renew a claim that has less than this left before sending under it.
RENEW_BELOW = 10.0


def limits_for(app: App) -> Limits:
    """Each adapter's limits, from its own config model."""
    return Limits(app.rate_limits())


async def start_send_only(adapter: Adapter) -> None:
    """Prepare an adapter for sending only: no polling, no listening.

    ``start()`` would also receive updates (a Telegram poller would compete with a running
    ``digestbot run``), so it is never called here; adapters send without it and may offer
    ``start_send_only()`` when they need set-up first."""
    fn = getattr(adapter, "start_send_only", None)
    if callable(fn):
        await fn()


class DeliveryWorker:
    def __init__(self, app: App, adapters: Iterable[str], *, limits: Limits | None = None,
                 capacity: int | None = None, claim_ttl: float = CLAIM_TTL, poll_interval: float = 1.0,
                 rng: random.Random | None = None):
        self.app = app
        self.adapters = list(adapters)
        self.limits = limits or limits_for(app)
        if capacity is None:
            # Enough sends queued to keep the fastest bot limit busy for ~2 s, no more: claims
            # are leases, and a long queue behind the rate limiter would only age them.
            configured = app.rate_limits()
            fastest = max([float(configured[a].per_bot_per_second) for a in self.adapters if a in configured]
                          or [16.0])
            capacity = max(8, int(fastest * 2))
        self.capacity = capacity
        self.claim_ttl = claim_ttl
        self.poll_interval = poll_interval
        self.rng = rng or random.Random()
        self.holder = app.instance_id
        self.counts: Counter[str] = Counter()
        self._tasks: dict[asyncio.Task[None], Row] = {}
        self._sending: set[asyncio.Task[None]] = set()
        # Per chat: a lock and how many tasks use it (dropped when none do).
        self._chat_locks: dict[tuple[str, str], list[Any]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._recent_429: dict[str, deque[tuple[float, str]]] = {}

    # -- control ----------------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Nothing claimed or being sent by this worker right now."""
        return not self._tasks

    def wake(self) -> None:
        self._wake.set()

    def stop_soon(self) -> None:
        """Stop claiming; ``run`` returns once what is in flight is done."""
        self._stopping = True
        self._wake.set()

    async def run(self, *, until_drained: bool = False, give_up_after: float | None = None) -> None:
        """Dispatch until ``stop_soon`` (or, with ``until_drained``, until nothing is pending)."""
        deadline = None if give_up_after is None else time.monotonic() + give_up_after
        await outbox.release_orphans(self.app.store, me=self.holder)
        try:
            while not self._stopping:
                if deadline is not None and time.monotonic() > deadline:
                    log.warning("delivery stopped after %.0f s with messages still pending", give_up_after)
                    break
                self._wake.clear()
                claimed = await self._claim()
                if until_drained and not claimed and not self._tasks:
                    if await outbox.pending_count(self.app.store, self.adapters) == 0:
                        break
                await self._idle(claimed, until_drained)
        finally:
            await self._finish()

    async def _idle(self, claimed: int, until_drained: bool) -> None:
        wait = self.poll_interval
        if claimed and len(self._tasks) < self.capacity:
            wait = 0.0  # there may be more to claim right away
        elif until_drained and not self._tasks:
            due = await outbox.next_due(self.app.store, self.adapters)
            if due is not None:
                wait = min(max(0.01, (due - utcnow()).total_seconds()), self.poll_interval)
        if wait <= 0:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), wait)

    async def _claim(self) -> int:
        room = self.capacity - len(self._tasks)
        if room <= 0 or not self.adapters:
            return 0
        if self._tasks and room < max(1, self.capacity // 4):
            # Plenty still queued behind the rate limiter: claim in batches, not per send.
            return 0
        try:
            rows = await outbox.claim(self.app.store, holder=self.holder, adapters=self.adapters, limit=room,
                                      ttl=self.claim_ttl)
        except Exception:  # a database hiccup: try again on the next round
            log.exception("claiming outbox rows failed")
            await asyncio.sleep(self.poll_interval)
            return 0
        for row in rows:
            task = asyncio.create_task(self._deliver(row), name=f"deliver-{row.id}")
            self._tasks[task] = row
            task.add_done_callback(self._done)
        return len(rows)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        self._sending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", exc_info=task.exception())
        self._wake.set()

    async def _finish(self, grace: float = 30.0) -> None:
        """Let sends in flight complete; cancel what only waits for its turn; free claims."""
        waiting = [t for t in self._tasks if t not in self._sending]
        for t in waiting:
            t.cancel()
        pending = list(self._tasks)
        if pending:
            _done, still = await asyncio.wait(pending, timeout=grace)
            for t in still:
                t.cancel()
            if still:
                await asyncio.wait(still, timeout=5)
        try:
            await outbox.release(self.app.store, self.holder)
        except Exception:
            log.exception("releasing outbox claims failed (they expire on their own)")

    # -- one message ------------------------------------------------------------------------------

    async def _deliver(self, row: Row) -> None:
        key = (row.adapter, row.chat_id)
        entry = self._chat_locks.setdefault(key, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                if not await self._keep_claim(row, RENEW_BELOW):
                    return
                permit = await self.limits.acquire(row.adapter, row.chat_id, row.chat_type)
                try:
                    # Renewing here would put a database write between the slot and the send;
                    # only a long wait (a bot-wide pause) makes it necessary.
                    if self._stopping or not await self._keep_claim(row, 2.0):
                        return
                    task = asyncio.current_task()
                    if task is not None:
                        self._sending.add(task)
                    await self._send(row, permit)
                finally:
                    permit.done()
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                self._chat_locks.pop(key, None)

    async def _keep_claim(self, row: Row, below: float) -> bool:
        left = (row.claimed_until - utcnow()).total_seconds() if row.claimed_until else 0.0
        if left >= below:
            return True
        if await outbox.renew(self.app.store, row, holder=self.holder, ttl=self.claim_ttl):
            return True
        log.info("outbox #%d was taken over by another process; not sending it", row.id)
        return False

    async def _send(self, row: Row, permit: Permit) -> None:
        try:
            adapter = self.app.adapter(row.adapter)
            try:
                message_id = await adapter.send(row.chat_id, row.payload)
            finally:
                permit.done()  # the request is over: the platform has counted it, or never will
        except SendError as exc:
            self._metric("send_failures", row.adapter, exc.kind)
            await self._failed(row, exc)
            return
        except Exception as exc:  # unclassified: treat as a network fault and retry
            log.warning("send of outbox #%d to %s:%s raised %s: %s", row.id, row.adapter, row.chat_id,
                        type(exc).__name__, exc)
            self._metric("send_failures", row.adapter, "transient")
            await self._failed(row, SendError(SendErrorKind.TRANSIENT, f"{type(exc).__name__}: {exc}"))
            return
        await outbox.mark_sent(self.app.store, row.id, message_id)
        self.counts["sent"] += 1
        self._metric("messages_sent", row.adapter)

    def _metric(self, name: str, *labels: str) -> None:
        counter = getattr(self.app.metrics, name, None)
        if counter is not None:
            with contextlib.suppress(Exception):
                counter.labels(*labels).inc()

    # -- failures ---------------------------------------------------------------------------------

    async def _failed(self, row: Row, exc: SendError) -> None:
        kind = exc.kind
        reason = f"{kind}: {exc}"
        store = self.app.store
        now = utcnow()
        if kind == SendErrorKind.RETRY_AFTER:
            seconds = max(0.5, float(exc.retry_after or 1.0))
            self.counts["retry_after"] += 1
            self._metric("rate_limited", row.adapter)
            self.limits.pause_chat(row.adapter, row.chat_id, row.chat_type, seconds)
            if self._global_flood(row, seconds):
                log.warning("%s asks the whole bot to wait %.1f s", row.adapter, seconds)
                self.limits.pause_bot(row.adapter, seconds)
            # The platform asked us to wait; that is not a failed attempt.
            await outbox.reschedule(store, row.id, at=now + timedelta(seconds=seconds), error=reason,
                                    count_attempt=False)
            return
        if kind == SendErrorKind.TRANSIENT:
            self.counts["transient"] += 1
            attempts = row.attempts + 1
            if attempts >= self.app.settings.delivery.max_attempts:
                await self._dead(row, f"gave up after {attempts} attempts: {reason}")
                return
            delay = self.backoff(attempts)
            log.info("outbox #%d to %s:%s failed (%s); retry %d in %.1f s", row.id, row.adapter, row.chat_id,
                     exc, attempts, delay)
            await outbox.reschedule(store, row.id, at=now + timedelta(seconds=delay), error=reason)
            return
        if kind == SendErrorKind.MARKUP:
            # Our renderer produced something the platform refuses: a bug worth an error log.
            log.error("%s rejected the markup of outbox #%d (%s); resending as plain text", row.adapter,
                      row.id, exc)
            if row.plain_payload is None or row.payload == row.plain_payload:
                await self._dead(row, reason)
                return
            await outbox.reschedule(store, row.id, at=now, error=reason,
                                    values={"payload": row.plain_payload, "plain_payload": None})
            return
        if kind == SendErrorKind.MIGRATED and exc.new_chat_id:
            await self._migrated(row, str(exc.new_chat_id), reason)
            return
        if kind in RETIRE_KINDS:
            await self._retire(row, kind, reason)
            return
        await self._dead(row, reason)

    def backoff(self, attempts: int) -> float:
        """Exponential backoff with jitter: base·2^(n-1), capped, then half of it randomised."""
        d = self.app.settings.delivery
        delay = min(d.backoff_max, d.backoff_base * (2 ** (attempts - 1)))
        return delay / 2 + self.rng.uniform(0, delay / 2)

    def _global_flood(self, row: Row, seconds: float) -> bool:
        """429s for two different chats within a second: the limit hit is the bot's."""
        now = time.monotonic()
        recent = self._recent_429.setdefault(row.adapter, deque(maxlen=16))
        recent.append((now, row.chat_id))
        chats = {c for t, c in recent if t > now - 1.0}
        return len(chats) >= 2

    async def _dead(self, row: Row, reason: str) -> None:
        log.error("outbox #%d to %s:%s is a dead letter: %s", row.id, row.adapter, row.chat_id, reason)
        async with self.app.store.begin() as conn:
            await outbox.mark_dead(conn, [row.id], reason)
        self.counts["dead"] += 1

    async def _retire(self, row: Row, kind: str, reason: str) -> None:
        async with self.app.store.begin() as conn:
            rest: list[int] = list((await conn.execute(select(t_out.c.id).where(
                t_out.c.adapter == row.adapter, t_out.c.chat_id == row.chat_id,
                t_out.c.status == outbox.PENDING, t_out.c.id != row.id))).scalars().all())
            await outbox.mark_dead(conn, [row.id], reason)
            await outbox.mark_dead(conn, rest, f"not sent: subscription retired ({kind})",
                                   count_attempt=False)
            n = await subs.deactivate_many(conn, row.adapter, [row.chat_id], reason=kind)
        self.counts["dead"] += 1 + len(rest)
        self.counts["retired"] += n
        log.warning("%s:%s retired (%s); %d queued messages dropped", row.adapter, row.chat_id, reason,
                    len(rest))

    async def _migrated(self, row: Row, new_chat_id: str, reason: str) -> None:
        async with self.app.store.begin() as conn:
            await subs.move_chat(conn, row.adapter, row.chat_id, new_chat_id)
            await conn.execute(update(t_out).where(
                t_out.c.adapter == row.adapter, t_out.c.chat_id == row.chat_id,
                t_out.c.status == outbox.PENDING,
            ).values(chat_id=new_chat_id, chat_type="supergroup", claimed_by=None, claimed_until=None,
                     next_attempt_at=utcnow(), last_error=reason[:2000]))
        self.counts["migrated"] += 1
        log.info("%s:%s moved to %s; its queued messages follow", row.adapter, row.chat_id, new_chat_id)
