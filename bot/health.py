"""``/healthz`` (liveness and lease status) and ``/metrics`` (Prometheus) on ``server.port``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import func, select

from bot.delivery.queue import pending_count
from bot.store.tables import articles, outbox, stories

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)


class HealthServer:
    """A tiny aiohttp site on the running loop; ``leases`` reports which leases this process holds."""

    def __init__(self, app: App, leases: Callable[[], dict[str, bool]] | None = None):
        self.app = app
        self.leases = leases or (lambda: {})
        self.started_at = datetime.now(UTC)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        body: dict[str, Any] = {
            "status": "ok",
            "instance": self.app.instance_id,
            "started_at": self.started_at.isoformat(),
            "leases": self.leases(),
        }
        try:
            body["outbox_pending"] = await pending_count(self.app.store)
        except Exception as exc:  # the database being down is exactly what health must show
            body["status"] = "degraded"
            body["error"] = f"store: {exc}"
            return web.Response(status=503, text=json.dumps(body), content_type="application/json")
        return web.Response(text=json.dumps(body), content_type="application/json")

    async def _metrics(self, _request: web.Request) -> web.Response:
        await self._refresh_gauges()
        return web.Response(body=self.app.metrics.render(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def _refresh_gauges(self) -> None:
        m = self.app.metrics
        try:
            async with self.app.store.connect() as conn:
                depth, oldest = (await conn.execute(
                    select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.status == "pending")
                )).one()
                n_stories = (await conn.execute(select(func.count()).select_from(stories))).scalar_one()
                n_dups = (await conn.execute(
                    select(func.count()).where(articles.c.duplicate_of.is_not(None))
                )).scalar_one()
        except Exception:
            log.warning("metrics: store unavailable", exc_info=True)
            return
        m.outbox_depth.set(depth or 0)
        if oldest is not None:
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            m.outbox_oldest_age.set(max(0.0, (datetime.now(UTC) - oldest).total_seconds()))
        else:
            m.outbox_oldest_age.set(0)
        m.stories.set(n_stories or 0)
        m.duplicates.set(n_dups or 0)
        for name, held in self.leases().items():
            m.lease_held.labels(name).set(1 if held else 0)

    async def start(self, host: str, port: int) -> int:
        web_app = web.Application()
        web_app.router.add_get("/healthz", self._healthz)
        web_app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(web_app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        log.info("health and metrics on http://%s:%s/healthz and /metrics", host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
