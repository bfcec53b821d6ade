"""Ingest + duplicates + stories end to end on generated articles, and what it costs.

    .venv/bin/python benchmarks/stories.py [--articles 20000] [--days 30] [--order date|shuffled]

Writes N generated Markdown articles (Chinese and English, events reported by several
outlets, 10% reposts, every page framed by its outlet's navigation) to a temporary folder,
runs one ``run_ingest`` pass into a temporary SQLite store and prints articles per second
and peak memory, then the same for ``recluster``. Nothing is written to the repository.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_SYL = "ba be bi bo bu da de di do du ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no".split()
_HAN = "安全漏洞攻击厂商补丁服务器用户数据泄露研究人员发现报告恶意软件勒索团伙警方逮捕政府监管芯片手机电池"


def _word(rng: random.Random, zh: bool) -> str:
    if zh:
        return "".join(rng.choice(_HAN) for _ in range(rng.choice((2, 2, 3))))
    return "".join(rng.choice(_SYL) for _ in range(rng.choice((2, 3, 3, 4))))


def generate(folder: Path, n: int, days: int, seed: int = 7, order: str = "date") -> None:
    """``order="date"``: files named in publication order, as a crawler writes them;
    ``"shuffled"``: in no order (a backfill of an unsorted archive: every batch spans all days)."""
    rng = random.Random(seed)
    pages: list[tuple[str, str]] = []
    vocab = {zh: [_word(rng, zh) for _ in range(6000)] for zh in (True, False)}
    outlets = [f"outlet{i:03d}" for i in range(120)]
    nav = {o: "\n".join(f"{o} menu {k}" for k in range(15)) for o in outlets}
    start = datetime(2025, 1, 1, tzinfo=UTC)
    written = 0
    bodies: list[tuple[str, str]] = []
    while written < n:
        zh = rng.random() < 0.5
        when = start + timedelta(seconds=rng.uniform(0, days * 86400))
        names = [f"Name{rng.randrange(100000)}" for _ in range(3)]  # the event's own Latin names
        topic = rng.sample(vocab[zh], 40)
        for _ in range(rng.choice((1, 1, 2, 3, 5))):
            if written >= n:
                break
            outlet = rng.choice(outlets)
            if bodies and rng.random() < 0.1:
                title, body = rng.choice(bodies)  # a repost
                body = body[: int(len(body) * 0.9)]
            else:
                sep = "" if zh else " "
                title = sep.join(rng.sample(topic, 5)) + " " + names[0]
                paras = []
                for _ in range(6):
                    words = [rng.choice(topic) if rng.random() < 0.4 else rng.choice(vocab[zh])
                             for _ in range(45)]
                    paras.append(sep.join(words) + " " + " ".join(names))
                body = "\n\n".join(paras)
                bodies.append((title, body))
                if len(bodies) > 2000:
                    bodies.pop(0)
            date = (when + timedelta(hours=rng.uniform(0, 30))).strftime("%Y-%m-%d %H:%M:%S")
            text = (f"---\ntitle: {json.dumps(title, ensure_ascii=False)}\ndate: \"{date}\"\n"
                    f"categories:\n  - \"{outlet}\"\n---\n\n{nav[outlet]}\n\n{body}\n\n"
                    f"[{outlet}](https://{outlet}.example.com/a/{written})\n")
            pages.append((date, text))
            written += 1
    if order == "date":
        pages.sort(key=lambda p: p[0])
    for i, (_, text) in enumerate(pages):
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(exist_ok=True)
        (sub / f"{i:06d}.md").write_text(text, encoding="utf-8")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


async def run(n: int, days: int, skip_recluster: bool = False, order: str = "date") -> None:
    from bot.app import App
    from bot.config import load_settings
    from bot.ingest import run_ingest
    from bot.stories.service import recluster

    with tempfile.TemporaryDirectory(prefix="digestbot-bench-") as tmp:
        folder = Path(tmp) / "articles"
        folder.mkdir()
        t0 = time.perf_counter()
        generate(folder, n, days, order=order)
        print(f"generated {n} articles over {days} days ({order} order) in {time.perf_counter() - t0:.1f} s")
        cfg = {"database": {"url": f"sqlite:///{Path(tmp) / 'bench.db'}"},
               "sources": [{"name": "bench", "type": "folder", "path": str(folder)}],
               "adapters": {"console": {}}}
        app = await App.open(load_settings(text=json.dumps(cfg)))
        try:
            base = _peak_mb()
            t0, c0, m0 = time.perf_counter(), time.process_time(), time.thread_time()
            report = await run_ingest(app)
            dt = time.perf_counter() - t0
            new = sum(r.new for r in report.sources.values())
            print(f"ingest + duplicates + stories + search: {new} articles in {dt:.1f} s = "
                  f"{new / dt:.0f} articles/s; peak RSS {_peak_mb():.0f} MB (before: {base:.0f} MB)")
            # CPU per article, less sensitive than wall time to whatever else shares the cores.
            cpu, loop = time.process_time() - c0, time.thread_time() - m0
            per = 1e3 / max(1, new)
            print(f"  main-process CPU per article: {cpu * per:.2f} ms "
                  f"(event loop thread {loop * per:.2f} ms, "
                  f"database thread {(cpu - loop) * per:.2f} ms; parse workers not counted)")
            if skip_recluster:
                return
            t0 = time.perf_counter()
            res = await recluster(app)
            dt = time.perf_counter() - t0
            print(f"recluster: {res['articles']} articles in {dt:.1f} s = {res['articles'] / dt:.0f} "
                  f"articles/s; {res['stories']} stories, {res['duplicates']} duplicates; "
                  f"peak RSS {_peak_mb():.0f} MB")
        finally:
            await app.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--no-recluster", action="store_true", help="stop after the ingest pass")
    ap.add_argument("--order", choices=("date", "shuffled"), default="date",
                    help="files in publication order (a crawler's folder) or in none (a backfill)")
    args = ap.parse_args()
    asyncio.run(run(args.articles, args.days, args.no_recluster, args.order))


if __name__ == "__main__":
    main()
