"""Ingest benchmark: N generated articles in a folder, one pass of run_ingest into SQLite.

    .venv/bin/python benchmarks/ingest.py [--n 20000] [--hooks] [--batch 500] [--db URL]

Articles are written in the seeds' format (YAML front matter with title, date,
summary, categories, lang, tags, and a Markdown body whose last line is
``[outlet](url)``), half Chinese and half English, 1.5-4 KB each, in 100 sub-folders,
into a temporary folder that is removed afterwards. By default the story and search
hooks are off (``hooks=False``) so the figure is ingest alone: listing, reading,
decoding, front matter, cleaning, language, hashing, batched upserts and seen-file
records. ``--hooks`` runs them too.

Prints: articles/s for the first pass, seconds for a second (all unchanged) pass,
peak memory of this process and of the parse workers, and the database size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ZH_WORDS = ("苹果 阿里巴巴 合作 人工智能 市场 中国 用户 功能 发布 报道 公司 技术 数据 安全 模型 手机 "
            "监管 审批 消息 股价 投资 平台 服务 隐私 产品 战略 生态 芯片 云计算 开发者").split()
ZH_PUNCT = ("，", "。", "、", "；", "：")
EN_WORDS = ("apple alibaba partnership artificial intelligence market china users feature launch report "
            "company technology data security model phone regulator approval shares investment platform "
            "service privacy product strategy ecosystem chip cloud developer the a of and to in for on with "
            "that is was said will").split()
OUTLETS = ("iyiou", "qq", "sina", "163", "ifeng", "reuters", "bloomberg", "techcrunch", "verge", "wired")


def _zh_para(rng: random.Random, n: int) -> str:
    out = []
    for _ in range(n):
        out.append(rng.choice(ZH_WORDS))
        if rng.random() < 0.15:
            out.append(rng.choice(ZH_PUNCT))
    return "".join(out) + "。"


def _en_para(rng: random.Random, n: int) -> str:
    words = [rng.choice(EN_WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def make_article(i: int, rng: random.Random) -> str:
    zh = i % 2 == 0
    outlet = rng.choice(OUTLETS)
    day = 1 + i % 28
    if zh:
        title = _zh_para(rng, 8).rstrip("。")
        paras = [_zh_para(rng, rng.randint(60, 160)) for _ in range(rng.randint(3, 6))]
        lang = "zh-CN"
    else:
        title = _en_para(rng, 9).rstrip(".")
        paras = [_en_para(rng, rng.randint(40, 110)) for _ in range(rng.randint(3, 6))]
        lang = "en"
    paras.insert(1, f"![](https://img.example.com/{i}.jpg)")
    paras.insert(2, f"**{paras[0][:20]}** and a [link](https://ref.example.com/{i}).")
    summary = paras[0][:60] + "..."
    return (
        "---\n"
        f'title: "{title}"\n'
        f'date: "2025-02-{day:02d} {i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}"\n'
        f'summary: "{summary}"\n'
        f'categories:\n  - "{outlet}"\n'
        f'lang:\n  - "{lang}"\n'
        f'translations:\n  - "{lang}"\n'
        f'tags:\n  - "{outlet}"\n'
        'menu: ""\nthumbnail: ""\nlead: ""\ncomments: false\nauthorbox: false\npager: true\n'
        'toc: false\nmathjax: false\nsidebar: "right"\nwidgets:\n  - "search"\n  - "recent"\n'
        "---\n\n"
        + "\n\n".join(paras)
        + f"\n\n[{outlet}](https://news.example.com/{outlet}/{i:06d}.html)\n"
    )


def generate(folder: Path, n: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    total = 0
    past = time.time() - 3600  # older than the half-written guard
    for i in range(n):
        sub = folder / f"{i % 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        p = sub / f"{i:06d}.md"
        data = make_article(i, rng).encode("utf-8")
        p.write_bytes(data)
        os.utime(p, (past, past))
        total += len(data)
    return total


async def run(args: argparse.Namespace, folder: Path, db_url: str) -> dict[str, float]:
    from bot.app import App
    from bot.config import load_settings
    from bot.ingest import run_ingest

    settings = load_settings(text=f'database: {{url: "{db_url}"}}\n'
                                  f'sources:\n  - {{name: bench, type: folder, path: "{folder}"}}\n')
    app = await App.open(settings)
    try:
        t0, c0 = time.perf_counter(), _cpu()
        first = await run_ingest(app, hooks=args.hooks, batch_size=args.batch)
        t1, c1 = time.perf_counter(), _cpu()
        second = await run_ingest(app, hooks=args.hooks, batch_size=args.batch)
        t2 = time.perf_counter()
    finally:
        await app.close()
    assert first.new == args.n, first.as_dict()["rejections"][:5]
    assert second.new == 0 and second.unchanged == args.n
    return {"first": t1 - t0, "second": t2 - t1, "rejected": first.rejected, "cpu": c1 - c0}


def _descendants_peak_rss(stop: threading.Event, out: dict[int, int]) -> None:
    """Poll /proc for this process's descendants (the parse workers) and keep each one's VmHWM (kB)."""
    me = os.getpid()
    while not stop.wait(0.2):
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as fh:
                        parents[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
        family, grew = {me}, True
        while grew:
            grew = False
            for pid, ppid in parents.items():
                if ppid in family and pid not in family:
                    family.add(pid)
                    grew = True
        for pid in family - {me}:
            try:
                with open(f"/proc/{pid}/status") as fh:
                    for line in fh:
                        if line.startswith("VmHWM:"):
                            out[pid] = max(out.get(pid, 0), int(line.split()[1]))
            except OSError:
                continue


def _cpu() -> float:
    """CPU seconds of this process (all its threads; the parse workers are not included)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--hooks", action="store_true", help="run story assignment and search indexing too")
    ap.add_argument("--db", help="database URL (default: SQLite in the temporary folder)")
    ap.add_argument("--threads", action="store_true", help="parse in this process (no worker pool)")
    args = ap.parse_args()
    if args.threads:
        import bot.sources.folder

        bot.sources.folder.POOL_THRESHOLD = 10**12

    tmp = Path(tempfile.mkdtemp(prefix="digestbot-bench-"))
    try:
        folder = tmp / "articles"
        t = time.perf_counter()
        size = generate(folder, args.n)
        os.sync()  # flush the generated files now, not while the pass is timed
        print(f"generated {args.n} articles ({size / 1e6:.1f} MB, {size / args.n / 1e3:.1f} KB each) "
              f"in {time.perf_counter() - t:.1f} s")
        db_path = tmp / "bench.db"
        db_url = args.db or f"sqlite:///{db_path}"
        stop, peaks = threading.Event(), {}
        watcher = threading.Thread(target=_descendants_peak_rss, args=(stop, peaks), daemon=True)
        watcher.start()
        try:
            res = asyncio.run(run(args, folder, db_url))
        finally:
            stop.set()
            watcher.join()
        rate = args.n / res["first"]
        self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child_peak = max(peaks.values(), default=0) / 1024
        hooks = "on" if args.hooks else "off (ingest alone)"
        load = os.getloadavg()[0]
        parse = "threads" if args.threads else "process pool"
        print(f"hooks: {hooks}; parse: {parse}; batch {args.batch}; cpus {os.cpu_count()}; "
              f"load average {load:.1f}")
        print(f"first pass:  {args.n} new in {res['first']:.2f} s = {rate:,.0f} articles/s "
              f"(main process CPU {res['cpu'] / args.n * 1e6:.0f} µs/article)")
        print(f"second pass: {args.n} unchanged in {res['second']:.2f} s")
        workers = f", {child_peak:.0f} MB (largest of {len(peaks)} helper processes)" if peaks else ""
        print(f"peak RSS: {self_peak:.0f} MB (main process){workers}")
        if db_path.exists():
            print(f"database: {db_path.stat().st_size / 1e6:.1f} MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
