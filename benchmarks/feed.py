"""Feed source throughput: fetch + parse + entries -> articles, from a local HTTP server.

    .venv/bin/python benchmarks/feed.py [--entries 2000] [--rounds 3]

Generates an RSS 2.0, an Atom and a JSON Feed document of N entries each (mixed Chinese
and English HTML bodies, ~1.5 KB an entry), serves them on 127.0.0.1 and runs FeedSource
over each. Prints entries per second and peak memory. Nothing is written to disk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from html import escape
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.config import FeedSourceConfig, Settings
from bot.sources.base import SourceState
from bot.sources.feed import FeedSource

ZH = "青岚汽车今天在合肥发布半固态电池，能量密度达到每公斤三百六十瓦时，计划四季度量产。"
EN = "Fabrikam Cloud restored its east-2 region after a faulty load balancer change. "


def body(i: int) -> str:
    text = (ZH * 8) if i % 2 else (EN * 8)
    return f"<p>{text}</p><p><b>第{i}条</b> <a href='https://n.example.com/{i}'>link</a></p><ul><li>a</li></ul>"


def rss(n: int) -> bytes:
    items = "".join(
        f"<item><title>Entry {i} 标题</title><link>https://n.example.com/a/{i}</link><guid>g-{i}</guid>"
        f"<pubDate>Tue, 11 Mar 2025 10:{i % 60:02d}:00 +0800</pubDate>"
        f"<description>{escape(body(i))}</description></item>"
        for i in range(n)
    )
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>B</title>{items}' \
           f"</channel></rss>".encode()


def atom(n: int) -> bytes:
    entries = "".join(
        f"<entry><title>Entry {i}</title><id>tag:n.example.com,2025:{i}</id>"
        f'<link href="https://n.example.com/a/{i}"/><updated>2025-03-11T10:{i % 60:02d}:00+08:00</updated>'
        f'<content type="html">{escape(body(i))}</content></entry>'
        for i in range(n)
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>B</title>'
            f"<id>urn:b</id><updated>2025-03-11T10:00:00Z</updated>{entries}</feed>").encode()


def jsonfeed(n: int) -> bytes:
    items = [{"id": f"j-{i}", "url": f"https://n.example.com/a/{i}", "title": f"Entry {i}",
              "content_html": body(i), "date_published": "2025-03-11T10:00:00+08:00"} for i in range(n)]
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "B", "items": items}).encode()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    docs = {
        "rss": (rss(args.entries), "application/rss+xml"),
        "atom": (atom(args.entries), "application/atom+xml"),
        "json": (jsonfeed(args.entries), "application/feed+json"),
    }

    app = web.Application()
    for name, (data, ctype) in docs.items():
        app.router.add_get(f"/{name}", lambda r, d=data, c=ctype: web.Response(body=d, content_type=c))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        for name, (data, _) in docs.items():
            cfg = FeedSourceConfig(type="feed", name=name, url=f"{base}/{name}", allow_private_addresses=True,
                                   max_bytes=len(data) + 1, timeout=120)
            src = FeedSource(cfg, Settings())
            best = float("inf")
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                res = await src.fetch(SourceState())
                best = min(best, time.perf_counter() - t0)
                assert res.error is None and len(res.articles) == args.entries, res.error
            print(f"{name:5s} {args.entries} entries, {len(data) / 1e6:.1f} MB: "
                  f"{args.entries / best:,.0f} entries/s (best of {args.rounds}, {best:.2f} s)")
    finally:
        await runner.cleanup()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:.0f} MB (process, including the server and the generated documents)")


if __name__ == "__main__":
    asyncio.run(main())
