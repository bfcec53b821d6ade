"""Digest benchmark: composition against a store, and the three renderers.

    .venv/bin/python benchmarks/digest.py [--stories 5000] [--per-story 4] [--subs 50]

Fills a temporary SQLite store with --stories generated stories of --per-story articles
each (all inside the window), then measures:

1. ``compose`` for one subscription: median and p95 wall time over --subs subscriptions
   (no filters, and with include/exclude keyword filters);
2. rendering a 10-entry digest for Telegram (HTML and plain), Slack and the terminal:
   digests per second;
3. a 200-entry digest with long summaries, split into numbered parts: parts and time.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert

from bot.adapters.console.render import render_digest as txt
from bot.adapters.slack.render import render_digest as slack
from bot.adapters.telegram.render import render_digest as tg
from bot.app import App
from bot.config import load_settings
from bot.digest import compose
from bot.model import Digest, DigestEntry, Filters, Subscription
from bot.store.db import Store
from bot.store.tables import articles, sources, stories

WORDS_ZH = ["苹果", "阿里巴巴", "合作", "人工智能", "电池", "续航", "发布", "云服务", "宕机", "数据库",
            "开源", "芯片"]
WORDS_EN = ["Apple", "cloud", "outage", "battery", "release", "open-source", "chip", "funding", "price",
            "report"]


def _sentence(rng: random.Random, zh: bool) -> str:
    if zh:
        return "".join(rng.choice(WORDS_ZH) for _ in range(rng.randint(8, 20))) + "。"
    return " ".join(rng.choice(WORDS_EN) for _ in range(rng.randint(8, 20))).capitalize() + "."


async def fill(store: Store, n_stories: int, per_story: int, now: datetime) -> None:
    rng = random.Random(7)
    async with store.begin() as conn:
        res = await conn.execute(insert(sources).values(name="bench", type="folder"))
        src = res.inserted_primary_key[0]
        for s in range(n_stories):
            zh = s % 2 == 0
            title = _sentence(rng, zh)[:40]
            t0 = now - timedelta(hours=rng.uniform(0, 20))
            sid = (await conn.execute(insert(stories).values(
                title=title, size=per_story, outlet_count=per_story, first_seen=t0, last_seen=t0,
                updated_at=t0))).inserted_primary_key[0]
            rows = [dict(source_id=src, external_id=f"{s}-{i}", outlet=f"outlet{rng.randint(0, 30)}",
                         url=f"https://example.com/{s}/{i}", title=title, summary="",
                         body="\n\n".join(_sentence(rng, zh) for _ in range(6)), lang="zh-CN" if zh else "en",
                         tags=[], categories=[], links=[], content_hash=f"{s}-{i}", published_at=t0,
                         ingested_at=t0 + timedelta(minutes=i), updated_at=t0, story_id=sid)
                    for i in range(per_story)]
            await conn.execute(insert(articles), rows)


def _digest(n: int, summary_repeat: int) -> Digest:
    now = datetime(2025, 2, 14, tzinfo=UTC)
    rng = random.Random(3)
    entries = [DigestEntry(story_id=i, headline=_sentence(rng, i % 2 == 0)[:60],
                           summary=_sentence(rng, i % 2 == 0) * summary_repeat,
                           outlets=["亿欧", "腾讯新闻", "36氪"], outlet_count=rng.randint(1, 9), time=now,
                           url=f"https://example.com/{i}?a=1&b=2") for i in range(n)]
    return Digest(locale="zh-CN", timezone="Asia/Shanghai", generated_at=now, entries=entries,
                  heading="📰 新闻摘要 · 2025年2月14日 周五 08:00")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stories", type=int, default=5000)
    ap.add_argument("--per-story", type=int, default=4)
    ap.add_argument("--subs", type=int, default=50)
    args = ap.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(f"sqlite:///{tmp}/bench.db")
        t = time.perf_counter()
        await fill(store, args.stories, args.per_story, now)
        print(f"filled {args.stories} stories x {args.per_story} articles in {time.perf_counter() - t:.1f} s")
        app = App(settings=load_settings(text="timezone: Asia/Shanghai"), store=store)
        for label, flt in (("no filters", Filters()),
                           ("include/exclude", Filters(include=["苹果", "cloud"], exclude=["宕机"]))):
            times = []
            for i in range(args.subs):
                sub = Subscription(adapter="bench", chat_id=str(i), filters=flt)
                t = time.perf_counter()
                d = await compose(app, sub, now=now)
                times.append(time.perf_counter() - t)
            times.sort()
            med, p95 = statistics.median(times) * 1000, times[int(len(times) * 0.95) - 1] * 1000
            print(f"compose ({label}, {args.stories} stories in window): median {med:.0f} ms, "
                  f"p95 {p95:.0f} ms, {len(d.entries)} entries")
        await store.close()

    d10 = _digest(10, 1)
    for name, fn in (("telegram", tg), ("telegram plain", lambda d: tg(d, plain=True)), ("slack", slack),
                     ("text", txt)):
        n = 300
        t = time.perf_counter()
        for _ in range(n):
            fn(d10)
        el = time.perf_counter() - t
        print(f"render {name:<15} 10 entries: {n / el:,.0f} digests/s ({el / n * 1000:.2f} ms each)")
    big = _digest(200, 40)
    for name, fn in (("telegram", tg), ("slack", slack)):
        t = time.perf_counter()
        parts = fn(big)
        ms = (time.perf_counter() - t) * 1000
        print(f"split {name:<8} 200 long entries: {len(parts)} parts in {ms:.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
