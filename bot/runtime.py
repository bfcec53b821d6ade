"""``digestbot run``: adapters, scheduler, delivery worker, in one asyncio process.

Start-up order matters for the quick start: the delivery worker runs first (so a digest
queued at start goes out at once), then an ingest pass, then the console subscription's
digest, then the scheduler. SIGTERM / SIGINT stop claiming new messages, let the sends in
flight finish, release what was claimed and exit 0 (Procfile platforms send SIGTERM).

``DIGESTBOT_EXIT_AFTER_START=1`` makes the process exit once the start-up work (ingest and
the console digest, and whatever the outbox held) is delivered: for tests and for a
one-shot "show me the digest" run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Any

from bot.app import App
from bot.commands import handle
from bot.config import Settings
from bot.delivery import queue as outbox
from bot.delivery.enqueue import enqueue_digest
from bot.delivery.worker import DeliveryWorker
from bot.health import HealthServer
from bot.ingest import run_ingest
from bot.model import Incoming, Reply, Subscription
from bot.scheduler import Scheduler
from bot.store import subscriptions as subs
from bot.store.leases import LEADER, LeaseKeeper, lease_ttl

log = logging.getLogger(__name__)

EXIT_AFTER_START = "DIGESTBOT_EXIT_AFTER_START"


async def ensure_console_subscription(app: App) -> Subscription | None:
    """The terminal gets a subscription of its own the first time the bot runs."""
    cfg = app.settings.adapter_configs.get("console")
    if cfg is None:
        return None
    chat_id = str(getattr(cfg, "chat_id", "terminal") or "terminal")
    existing = await subs.get(app.store, "console", chat_id)
    if existing is not None:
        return existing if existing.active else None
    sub = subs.defaults(app.settings, "console", chat_id, locale=getattr(cfg, "locale", None))
    created = await subs.upsert(app.store, sub)
    log.info("created the console subscription console:%s", chat_id)
    return created


async def _ingest(app: App) -> None:
    try:
        report = await run_ingest(app)
        d = report.as_dict()
        log.info("ingest: %s new, %s updated, %s unchanged, %s rejected", d.get("new"), d.get("updated"),
                 d.get("unchanged"), d.get("rejected"))
    except Exception:  # the service still delivers and answers commands without it
        log.exception("the start-up ingest pass failed")


def _command_handler(app: App) -> Any:
    async def on_command(incoming: Incoming) -> Reply:
        return await handle(app, incoming)

    return on_command


def _polls(app: App, name: str) -> bool:
    """Adapters that pull updates (Telegram long polling) may run in one process only."""
    return getattr(app.settings.adapter_configs.get(name), "mode", None) == "polling"


class Service:
    """The pieces of one ``digestbot run`` process and their order of start and stop.

    Several processes may share one PostgreSQL. One of them holds the *leader* lease and
    runs the scheduler, the delivery worker and the polling adapters: one sender per bot
    keeps the platform's bot-wide limit across processes (one process already fills it),
    and Telegram allows one poller per token. The others serve webhook / HTTP-mode
    adapters and stand by; when the leader dies its lease expires and one of them takes
    over within ``leases.TTL + leases.RETRY`` seconds. On SQLite the one process leads.
    """

    def __init__(self, app: App):
        self.app = app
        self.worker = self._new_worker()
        self.scheduler = Scheduler(app)
        self.started_adapters: list[str] = []
        self.polling: list[str] = []
        self._worker_task: asyncio.Task[None] | None = None
        self._catch_up: asyncio.Task[Any] | None = None
        self.lease: LeaseKeeper | None = None
        self.health: HealthServer | None = None
        self.stop_event = asyncio.Event()
        self._handler = _command_handler(app)

    def _new_worker(self) -> DeliveryWorker:
        return DeliveryWorker(self.app, [])

    def _wake(self) -> None:
        self.worker.wake()

    def _changed(self, sub: Subscription | int | None = None) -> Any:
        return self.scheduler.subscription_changed(sub)

    @property
    def leading(self) -> bool:
        return bool(self.lease is not None and self.lease.held)

    async def _start_adapter(self, name: str) -> None:
        try:
            await self.app.adapter(name).start(self._handler)
            self.started_adapters.append(name)
        except Exception:  # one platform down must not keep the others from working
            log.exception("adapter %s failed to start; its messages stay queued", name)

    async def start(self) -> None:
        app = self.app
        if app.settings.server.port:
            self.health = HealthServer(app, leases=lambda: {LEADER: self.leading})
            await self.health.start(app.settings.server.host, app.settings.server.port)
        app.delivery_wake = self._wake
        app.on_subscription_changed = self._changed
        for name in app.adapter_names:
            if _polls(app, name):
                self.polling.append(name)
            else:
                await self._start_adapter(name)
        self.lease = LeaseKeeper(app.store, LEADER, app.instance_id, on_acquired=self._lead,
                                 on_lost=self._follow, ttl=lease_ttl())
        self.lease.start()
        await self.lease.first_try.wait()
        if not self.leading:
            log.info("another process leads (scheduler, delivery, polling); this one stands by")
        await _ingest(app)
        console = await ensure_console_subscription(app)
        if console is not None and console.id is not None and "console" in self.started_adapters:
            try:
                await enqueue_digest(app, console.id, send_empty=True)
            except Exception:
                log.exception("the console digest failed")

    async def _lead(self) -> None:
        for name in self.polling:
            if name not in self.started_adapters:
                await self._start_adapter(name)
        self.worker = self._new_worker()
        self.worker.adapters = list(self.started_adapters)
        self._worker_task = asyncio.create_task(self.worker.run(), name="delivery")
        await self.scheduler.start(ingest=True, catch_up=False)
        # Catching up may compose many digests; the lease must keep being renewed meanwhile.
        self._catch_up = asyncio.create_task(self.scheduler.catch_up(), name="catch-up")

    async def _follow(self) -> None:
        """Lost the lease (or stopping): hand everything back."""
        if self._catch_up is not None:
            self._catch_up.cancel()
            self._catch_up = None
        self.scheduler.shutdown()
        self.scheduler = Scheduler(self.app)  # an AsyncIOScheduler cannot be started twice
        self.worker.stop_soon()
        if self._worker_task is not None:
            with contextlib.suppress(Exception):
                await self._worker_task
        if self.health is not None:
            await self.health.stop()
            self._worker_task = None
        for name in self.polling:
            if name in self.started_adapters:
                self.started_adapters.remove(name)
                try:
                    await self.app.adapter(name).stop()
                except Exception:
                    log.exception("stopping adapter %s failed", name)

    async def wait_until_idle(self) -> None:
        """Until the outbox holds nothing this process can send."""
        while not self.stop_event.is_set():
            if self.worker.idle and await outbox.pending_count(self.app.store, self.started_adapters) == 0:
                return
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self.lease is not None:
            await self.lease.stop()  # runs _follow when we led
        self.scheduler.shutdown()
        self.worker.stop_soon()
        if self._worker_task is not None:
            with contextlib.suppress(Exception):
                await self._worker_task
        # App.close stops the adapters (and closes the store).


async def run_service(settings: Settings) -> int:
    app = await App.open(settings)
    loop = asyncio.get_running_loop()
    service = Service(app)
    stop = service.stop_event
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread / not POSIX
            pass
    try:
        starting = asyncio.create_task(service.start())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()
            if os.environ.get(EXIT_AFTER_START) == "1":
                idle = asyncio.create_task(service.wait_until_idle())
                await asyncio.wait({idle, stopper}, return_when=asyncio.FIRST_COMPLETED)
                idle.cancel()
            else:
                log.info("digestbot is running (%s); Ctrl-C or SIGTERM stops it",
                         ", ".join(service.started_adapters) or "no adapters")
                await stopper
        else:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
        stopper.cancel()
        log.info("stopping: finishing the sends in flight")
        await service.stop()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await app.close()
    log.info("stopped")
    return 0
