"""End to end: `digestbot ingest --json` with a feed source pointing at a local HTTP server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

pytest.importorskip("bot.ingest")

ROOT = Path(__file__).resolve().parent.parent

FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>TechWire</title><language>en</language>
<item><title>Fabrikam Cloud outage knocks apps offline</title><guid>tw-1</guid>
<link>https://techwire.example.com/2025/03/10/fabrikam</link>
<pubDate>Mon, 10 Mar 2025 21:30:00 +0000</pubDate>
<description><![CDATA[<p>The <b>east-2</b> region was down for six hours.</p>]]></description></item>
<item><title>Northwind Robotics raises $85 million</title>
<link>https://techwire.example.com/2025/03/11/northwind?utm_source=rss</link>
<pubDate>Tue, 11 Mar 2025 21:00:00</pubDate>
<description>Autonomous carts for warehouses.</description></item>
</channel></rss>"""


class State:
    mode = "ok"
    hits: list[dict[str, str]]

    def __init__(self) -> None:
        self.hits = []


@pytest.fixture
async def feed_server() -> AsyncIterator[tuple[str, State]]:
    state = State()

    async def feed(request: web.Request) -> web.StreamResponse:
        state.hits.append(dict(request.headers))
        if state.mode == "down":
            return web.Response(status=500, text="internal error")
        if request.headers.get("If-None-Match") == '"rev-1"':
            return web.Response(status=304)
        return web.Response(body=FEED.encode(), content_type="application/rss+xml",
                            headers={"ETag": '"rev-1"'})

    app = web.Application()
    app.router.add_get("/feed.xml", feed)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/feed.xml", state
    finally:
        await runner.cleanup()


async def digestbot(cfg: Path, *args: str) -> tuple[int, Any, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, "--config", str(cfg), "--json",
        cwd=cfg.parent, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, json.loads(out.decode()) if out.strip() else None, err.decode()


async def test_ingest_feed_twice_then_down(
    tmp_path: Path, db_url: str, feed_server: tuple[str, State]
) -> None:
    url, state = feed_server
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"database: {{url: \"{db_url}\"}}\n"
        "timezone: Asia/Shanghai\n"
        "sources:\n"
        f"  - {{name: wire, type: feed, url: \"{url}\", allow_private_addresses: true, timeout: 10s}}\n"
        "adapters:\n  console: {}\n",
        encoding="utf-8",
    )
    code, first, err = await digestbot(cfg, "ingest")
    assert code == 0, err
    assert first["new"] == 2 and first["rejected"] == 0, first
    assert first["sources"]["wire"]["error"] is None

    code, second, err = await digestbot(cfg, "ingest")
    assert code == 0, err
    assert second["new"] == 0 and second["updated"] == 0, second
    assert second["sources"]["wire"]["not_modified"] is True
    assert state.hits[1].get("If-None-Match") == '"rev-1"'  # the validator was stored and sent
    assert state.hits[0]["User-Agent"].startswith("digestbot/")

    code, listing, err = await digestbot(cfg, "articles")
    assert code == 0, err
    rows = listing if isinstance(listing, list) else listing.get("articles", listing)
    by_title = {r["title"]: r for r in rows}
    outage = by_title["Fabrikam Cloud outage knocks apps offline"]
    assert outage["external_id"] == "tw-1" and outage["outlet"] == "TechWire" and outage["source"] == "wire"
    assert outage["published_at"] == "2025-03-10T21:30:00Z" and outage["lang"] == "en"
    funding = by_title["Northwind Robotics raises $85 million"]
    assert funding["external_id"] == "https://techwire.example.com/2025/03/11/northwind"
    assert funding["published_at"] == "2025-03-11T13:00:00Z"  # naive pubDate read in Asia/Shanghai

    state.mode = "down"
    code, third, err = await digestbot(cfg, "ingest")
    assert code == 0, err  # a feed that is down is reported, not fatal
    assert third["new"] == 0 and third["sources"]["wire"]["error"].startswith("HTTP 500")
    assert any(r["where"] == url and "HTTP 500" in r["reason"] for r in third["rejections"])
