"""Broadcast benchmark: one digest to many Telegram chats through the fake Bot API.

    .venv/bin/python benchmarks/broadcast.py [--chats 3000] [--limit 30] [--db sqlite|URL]

The fake (tests/fakes/telegram.py) runs in its own thread with Telegram's limits on
(30 msg/s per bot in any 1 s, 1 msg/s per private chat with bursts of 3). The digest is
rendered once by the real Telegram renderer and queued for every chat through the outbox,
then the delivery worker drains it with the real adapter (python-telegram-bot). Prints
the achieved rate as a share of the bot limit and the 429s the fake answered. The store is
a temporary SQLite file unless --db gives a PostgreSQL URL; nothing is written to the repo.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import App
from bot.config import load_settings
from bot.delivery import queue as outbox
from bot.delivery.worker import DeliveryWorker
from bot.model import Digest, DigestEntry
from bot.store import subscriptions as subs
from tests.fakes.telegram import FakeTelegram, TelegramLimits

TOKEN = "123456:BENCH-token"


def _digest() -> Digest:
    now = datetime(2025, 2, 12, 8, 0, tzinfo=UTC)
    entries = [DigestEntry(story_id=i, headline=f"Story {i}: an event reported by several outlets",
                           summary="Two sentences of summary. They say what happened.",
                           outlets=["iyiou", "QQ News", "Sina"], outlet_count=3, time=now,
                           url=f"https://example.com/{i}") for i in range(8)]
    return Digest(locale="en", timezone="UTC", generated_at=now, entries=entries, heading="Digest")


async def run(chats: int, limit: int, db: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, FakeTelegram.in_thread(
            limits=TelegramLimits(bot_per_second=limit)) as fake:
        url = db if db != "sqlite" else f"sqlite:///{tmp}/bench.db"
        os.environ["BENCH_TG_TOKEN"] = TOKEN
        settings = load_settings(text=f"""
database: {{url: "{url}"}}
sources: []
adapters:
  telegram: {{token: "${{BENCH_TG_TOKEN}}", base_url: "{fake.base_url}", register_commands: false,
              rate_limits: {{per_bot_per_second: {limit}}}}}
""")
        app = await App.open(settings)
        try:
            adapter = app.adapter("telegram")
            payloads = adapter.render(_digest())
            plains = adapter.render(_digest(), plain=True)
            t0 = time.perf_counter()
            async with app.store.begin() as conn:
                for i in range(chats):
                    chat = str(100_000 + i)
                    sub = await subs.upsert(conn, subs.defaults(settings, "telegram", chat))
                    await outbox.enqueue(conn, adapter="telegram", chat_id=chat, subscription_id=sub.id,
                                         payloads=payloads, plain_payloads=plains)
            queued = time.perf_counter() - t0
            worker = DeliveryWorker(app, ["telegram"])
            t1 = time.perf_counter()
            await worker.run(until_drained=True)
            wall = time.perf_counter() - t1
        finally:
            await app.close()
        msgs = fake.messages()
        span = msgs[-1].mono - msgs[0].mono if len(msgs) > 1 else float("nan")
        rate = (len(msgs) - 1) / span if len(msgs) > 1 else 0.0
        return {"chats": chats, "messages": len(msgs), "expected": chats * len(payloads),
                "queue_seconds": queued, "wall_seconds": wall, "rate": rate,
                "wall_rate": len(msgs) / wall, "share": rate / limit, "wall_share": len(msgs) / wall / limit,
                "http_429": fake.count_429(), "dead": worker.counts["dead"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chats", type=int, default=3000)
    ap.add_argument("--limit", type=int, default=30, help="the bot-wide limit, msg/s (both sides)")
    ap.add_argument("--db", default="sqlite", help="sqlite (a temporary file) or a PostgreSQL URL")
    a = ap.parse_args()
    r = asyncio.run(run(a.chats, a.limit, a.db))
    print(f"broadcast: {r['chats']} chats, {r['messages']} messages accepted (expected {r['expected']}), "
          f"queued in {r['queue_seconds']:.1f} s")
    print(f"  send rate {r['rate']:.2f} msg/s = {r['share']:.1%} of {a.limit} msg/s "
          f"(first to last accepted message)")
    print(f"  wall      {r['wall_seconds']:.1f} s = {r['wall_rate']:.2f} msg/s = {r['wall_share']:.1%} "
          f"(worker start to drained, including adapter start-up)")
    print(f"  429s from the fake: {r['http_429']}   dead letters: {r['dead']}")


if __name__ == "__main__":
    main()
