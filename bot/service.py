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
from typing import TYPE_CHECKING, Any

from bot.config import Settings

if TYPE_CHECKING:
    from bot.app import App
    from bot.model import Subscription

log = logging.getLogger(__name__)

EXIT_AFTER_START = "DIGESTBOT_EXIT_AFTER_START"
SCHEDULER_LEASE = "scheduler"


async def ensure_console_subscription(app: App) -> Subscription | None:
    """The terminal gets a subscription of its own the first time the bot runs."""
    from bot.store import subscriptions as subs

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
        from bot.ingest import run_ingest

        report = await run_ingest(app)
        d = report.as_dict()
        log.info("ingest: %s new, %s updated, %s unchanged, %s rejected", d.get("new"), d.get("updated"),
                 d.get("unchanged"), d.get("rejected"))
    except Exception:  # the service still delivers and answers commands without it
        log.exception("the start-up ingest pass failed")


def _command_handler(app: App) -> Any:
    from bot.commands import handle

    async def on_command(incoming: Any) -> Any:
        return await handle(app, incoming)

    return on_command


class Service:
    """The pieces of one ``digestbot run`` process and their order of start and stop."""

    def __init__(self, app: App):
        from bot.delivery.worker import DeliveryWorker
        from bot.scheduler import Scheduler

        self.app = app
        self.worker = DeliveryWorker(app, app.adapter_names)
        self.scheduler = Scheduler(app)
        self.started_adapters: list[str] = []
        self._worker_task: asyncio.Task[None] | None = None
        self.lease: Any = None
        self.stop_event = asyncio.Event()

    async def start(self) -> None:
        from bot.leases import LeaseKeeper

        app = self.app
        app.delivery_wake = self.worker.wake  # type: ignore[attr-defined]
        app.on_subscription_changed = self.scheduler.subscription_changed  # type: ignore[attr-defined]
        handler = _command_handler(app)
        for name in app.adapter_names:
            try:
                await app.adapter(name).start(handler)
                self.started_adapters.append(name)
            except Exception:  # one platform down must not keep the others from working
                log.exception("adapter %s failed to start; its messages stay queued", name)
        self.worker.adapters = list(self.started_adapters)
        self._worker_task = asyncio.create_task(self.worker.run(), name="delivery")
        await _ingest(app)
        console = await ensure_console_subscription(app)
        if console is not None and console.id is not None and "console" in self.started_adapters:
            from bot.outbox import enqueue_digest

            try:
                await enqueue_digest(app, console.id, send_empty=True)
            except Exception:
                log.exception("the console digest failed")

        async def acquired() -> None:
            await self.scheduler.start(ingest=True, catch_up=True)

        async def lost() -> None:
            self.scheduler.shutdown()
            from bot.scheduler import Scheduler

            self.scheduler = Scheduler(app)  # an AsyncIOScheduler cannot be started twice
            app.on_subscription_changed = self.scheduler.subscription_changed  # type: ignore[attr-defined]

        self.lease = LeaseKeeper(app.store, SCHEDULER_LEASE, app.instance_id, on_acquired=acquired,
                                 on_lost=lost)
        self.lease.start()
        await self.lease.first_try.wait()

    async def wait_until_idle(self) -> None:
        """Until the outbox holds nothing this process can send."""
        from bot import outbox

        while not self.stop_event.is_set():
            if self.worker.idle and await outbox.pending_count(self.app.store, self.started_adapters) == 0:
                return
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self.lease is not None:
            await self.lease.stop()
        self.scheduler.shutdown()
        self.worker.stop_soon()
        if self._worker_task is not None:
            with contextlib.suppress(Exception):
                await self._worker_task
        # App.close stops the adapters (and closes the store).


async def run_service(settings: Settings) -> int:
    from bot.app import App

    app = await App.open(settings)
    loop = asyncio.get_running_loop()
    service = Service(app)
    stop = service.stop_event
    installed: list[int] = []
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
