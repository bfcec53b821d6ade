"""The small HTTP listener the webhook and HTTP modes of the built-in adapters share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web


async def listen(path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]], host: str,
                 port: int) -> web.AppRunner:
    """Serve POST ``path`` on ``host:port`` (0: any free port) until the runner is cleaned up."""
    from aiohttp import web  # only the webhook / HTTP modes need it

    webapp = web.Application(client_max_size=1_000_000)
    webapp.router.add_post(path, handler)
    runner = web.AppRunner(webapp, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def listening_port(runner: web.AppRunner | None) -> int | None:
    """The port ``runner`` actually listens on (useful with port 0)."""
    if runner is None:
        return None
    for addr in runner.addresses:
        return int(addr[1])
    return None
