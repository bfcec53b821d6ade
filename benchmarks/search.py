"""Search benchmark: index N generated articles, then time a fixed mix of queries.

    .venv/bin/python benchmarks/search.py [--n 100000] [--queries 300] [--pg postgresql://…]

Articles are half Chinese, half English, drawn from real word frequencies (the `wordfreq`
package, a dependency of the bot) at news lengths: Chinese bodies 600–2,000 characters,
English bodies 250–900 words; spread over a year, three articles to a story on average, from
40 outlets. Rows go straight into the store (no file parsing) in transactions of --batch
articles, each also indexed with bot.search.index_articles as ingest does. Everything is
written to a temporary folder (or a throwaway PostgreSQL database) and removed afterwards.

Prints: index build rate (articles/s, insert + tokenise + index; and tokenise + index alone),
database size, and p50 / p95 / max latency of bot.search.search over one- to three-word
Chinese and English queries (same seed, same mix every run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.model import Article
from bot.search import index_articles, search
from bot.store import tables as T
from bot.store.db import Store

VOCAB = 30_000
OUTLETS = [f"Outlet {i}" for i in range(20)] + [f"媒体{i}号" for i in range(20)]
ZH_PUNCT = ["，", "，", "，", "。", "、", "；"]


class Vocab:
    """Words of one language with Zipf-like probabilities taken from wordfreq."""

    def __init__(self, lang: str, rng: np.random.Generator):
        import wordfreq

        freqs = wordfreq.get_frequency_dict(lang)
        items = [(w, f) for w, f in freqs.items() if w.isalnum()][:VOCAB]
        self.words = np.array([w for w, _ in items], dtype=object)
        p = np.array([f for _, f in items], dtype=np.float64)
        self.p = p / p.sum()
        self.rng = rng

    def draw(self, n: int) -> list[str]:
        return list(self.words[self.rng.choice(len(self.words), size=n, p=self.p)])


def zh_text(v: Vocab, chars: int) -> str:
    out: list[str] = []
    size = 0
    words = v.draw(max(8, chars // 2))
    for i, w in enumerate(words):
        out.append(w)
        size += len(w)
        if i % 9 == 8:
            out.append(ZH_PUNCT[i % len(ZH_PUNCT)])
        if size >= chars:
            break
    return "".join(out) + "。"


def en_text(v: Vocab, n_words: int) -> str:
    words = v.draw(n_words)
    sentences = [" ".join(words[i : i + 14]).capitalize() + "." for i in range(0, len(words), 14)]
    return " ".join(sentences)


def generate(n: int, seed: int = 7) -> list[Article]:
    rng = np.random.default_rng(seed)
    r = random.Random(seed)
    zh, en = Vocab("zh", rng), Vocab("en", rng)
    now = datetime.now(UTC)
    arts: list[Article] = []
    story = 0
    for i in range(n):
        if i == 0 or r.random() < 0.33:  # about three articles per story
            story += 1
        if i % 2 == 0:
            title = zh_text(zh, r.randint(10, 25)).rstrip("。")
            body = zh_text(zh, r.randint(600, 2000))
            lang = "zh-CN"
        else:
            title = en_text(en, r.randint(7, 14)).rstrip(".").title()
            body = en_text(en, r.randint(250, 900))
            lang = "en"
        arts.append(
            Article(
                source="bench", external_id=str(i + 1), title=title, body=body, lang=lang,
                summary=body[:60] + "...", outlet=r.choice(OUTLETS),
                published_at=now - timedelta(seconds=r.randint(0, 365 * 86400)),
                id=i + 1, story_id=story,
            )
        )
    return arts


def query_mix(count: int, seed: int = 11) -> list[str]:
    """1-3 words, half Chinese, half English, from ranks 200-8000 (words people search for,
    not stop words), plus a few fixed ones. Same list every run."""
    rng = np.random.default_rng(seed)
    r = random.Random(seed)
    zh, en = Vocab("zh", rng), Vocab("en", rng)
    fixed = ["苹果 阿里", "人工智能", "apple", "security update", "微软 补丁 漏洞", "google chrome"]
    out = list(fixed)
    while len(out) < count:
        v = zh if len(out) % 2 == 0 else en
        k = r.choice([1, 1, 2, 2, 3])
        out.append(" ".join(str(v.words[r.randint(200, 8000)]) for _ in range(k)))
    return out[:count]


async def build(store: Store, arts: list[Article], batch: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    index_time = 0.0
    now = datetime.now(UTC)
    async with store.begin() as conn:
        await conn.execute(insert(T.sources).values(id=1, name="bench", type="folder"))
        stories = sorted({a.story_id for a in arts if a.story_id})
        for i in range(0, len(stories), 5000):
            await conn.execute(
                insert(T.stories),
                [dict(id=s, title="", size=0, outlet_count=0, first_seen=now, last_seen=now, updated_at=now)
                 for s in stories[i : i + 5000]],
            )
    for i in range(0, len(arts), batch):
        chunk = arts[i : i + batch]
        async with store.begin() as conn:
            await conn.execute(insert(T.articles), [_row(a, now) for a in chunk])
            t1 = time.perf_counter()
            await index_articles(conn, chunk)
            index_time += time.perf_counter() - t1
        done = i + len(chunk)
        if done % (batch * 10) == 0 or done == len(arts):
            print(f"  indexed {done:,} ({done / (time.perf_counter() - t0):,.0f}/s)", file=sys.stderr)
    return time.perf_counter() - t0, index_time


def _row(a: Article, now: datetime) -> dict[str, Any]:
    return dict(
        id=a.id, source_id=1, external_id=a.external_id, outlet=a.outlet, title=a.title, summary=a.summary,
        body=a.body, lang=a.lang, tags=[], categories=[], links=[], content_hash=a.external_id,
        published_at=a.published_at, ingested_at=now, updated_at=now, story_id=a.story_id,
    )


async def run_queries(store: Store, queries: list[str], rounds: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds per query. CPU time (this process, all threads: the
    SQLite driver runs in one) is what a query costs when the machine is otherwise idle."""
    for q in queries[:20]:  # warm caches
        await search(store, q)
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(rounds):
        for q in queries:
            t0, c0 = time.perf_counter(), time.process_time()
            await search(store, q, limit=10)
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
    return wall, cpu


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def bench(url: str, label: str, arts: list[Article], args: argparse.Namespace,
                size: Callable[[], Awaitable[str]]) -> None:
    store = await Store.open(url)
    try:
        total, index_time = await build(store, arts, args.batch)
        if store.is_sqlite:
            async with store.begin() as conn:  # what an operator runs after a bulk load
                t0 = time.perf_counter()
                await conn.exec_driver_sql("INSERT INTO search_fts(search_fts) VALUES ('optimize')")
                print(f"  optimize: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        else:
            async with store.begin() as conn:
                await conn.exec_driver_sql("ANALYZE")
        queries = query_mix(args.queries)
        times, cpu = await run_queries(store, queries, args.rounds)
        hits = [len((await search(store, q)).items) for q in queries]
        print(f"[{label}] {len(arts):,} articles")
        print(f"  build: {len(arts) / total:,.0f} articles/s end to end (insert + tokenise + index), "
              f"{len(arts) / index_time:,.0f} articles/s tokenise + index ({total:.0f} s)")
        print(f"  size: {await size()}")
        print(f"  queries: {len(times)} ({len(queries)} distinct, 1-3 words, zh + en); "
              f"{sum(1 for h in hits if h)} with results, mean {statistics.mean(hits):.1f} items")
        _print_latency(times, cpu, queries, args.rounds)
    finally:
        await store.close()


def _print_latency(times: list[float], cpu: list[float], queries: list[str], rounds: int) -> None:
    print(f"  latency ms (wall): p50 {pct(times, 50):.1f}  p95 {pct(times, 95):.1f}  max {max(times):.1f}")
    print(f"  latency ms (CPU):  p50 {pct(cpu, 50):.1f}  p95 {pct(cpu, 95):.1f}  max {max(cpu):.1f}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"  load average during the run: {load:.1f} on {os.cpu_count()} CPUs")
    slow = sorted(zip(times, queries * rounds, strict=True), reverse=True)[:6]
    print("  slowest (wall):", ", ".join(f"{q!r} {t:.0f}" for t, q in slow))


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--pg", metavar="URL", help="also run on PostgreSQL (a throwaway database is created)")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--window", type=int, default=0,
                    help="rank at most this many of the newest matches (default: bot.search.engine.WINDOW)")
    ap.add_argument("--sqlite-file", metavar="PATH",
                    help="keep the SQLite database here; if it exists, reuse it and only run the queries")
    args = ap.parse_args()
    args.reuse = bool(args.sqlite_file) and Path(args.sqlite_file).exists()
    return args


def _dir_mb(folder: Path, pattern: str = "*") -> float:
    return sum(f.stat().st_size for f in folder.glob(pattern)) / 1e6


async def main(args: argparse.Namespace) -> None:
    if args.window:
        from bot.search import engine

        engine.WINDOW = args.window
    if args.reuse:
        await queries_only(f"sqlite:///{args.sqlite_file}", args)
        return
    t0 = time.perf_counter()
    arts = generate(args.n)
    print(f"generated {len(arts):,} articles in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if args.sqlite_file:
        url = f"sqlite:///{args.sqlite_file}"
        await bench(url, "SQLite FTS5", arts, args, _file_size(Path(args.sqlite_file)))
    elif not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.db"

            async def size() -> str:
                mb = await asyncio.to_thread(_dir_mb, Path(tmp))
                return f"{mb:,.0f} MB database file (articles + index)"

            await bench(f"sqlite:///{db}", "SQLite FTS5", arts, args, size)
    if args.pg:
        await bench_pg(args.pg, arts, args)


def _file_size(db: Path) -> Callable[[], Awaitable[str]]:
    async def size() -> str:
        mb = await asyncio.to_thread(_dir_mb, db.parent, db.name + "*")
        return f"{mb:,.0f} MB database file (articles + index)"

    return size


async def queries_only(url: str, args: argparse.Namespace) -> None:
    store = await Store.open(url)
    try:
        queries = query_mix(args.queries)
        times, cpu = await run_queries(store, queries, args.rounds)
        _print_latency(times, cpu, queries, args.rounds)
    finally:
        await store.close()


async def bench_pg(admin_url: str, arts: list[Article], args: argparse.Namespace) -> None:
    import asyncpg

    admin = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    name = f"digestbot_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = f"{admin.rsplit('/', 1)[0]}/{name}"

    async def size() -> str:
        c = await asyncpg.connect(url)
        try:
            got = await c.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
            return f"{got} database (articles + index)"
        finally:
            await c.close()

    try:
        await bench(url, "PostgreSQL", arts, args, size)
    finally:
        c = await asyncpg.connect(admin)
        await c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await c.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    asyncio.run(main(parse_args()))
