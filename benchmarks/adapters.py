"""Command handling benchmark: how fast the bot answers chat commands.

    .venv/bin/python benchmarks/adapters.py [--n 300] [--commands 200]

Writes --n generated articles (three of our own templates, varied) into a temporary
folder, ingests them, then measures:

1. ``bot.commands.handle`` alone (no platform): p50 / p95 / max latency and commands/s
   for a fixed mix of /search, /settings, /filter and /help;
2. Telegram end to end: a user message injected into the loopback Bot API fake, fetched by
   python-telegram-bot's long polling, handled, rendered and sent back (until the fake has
   recorded the reply) — sequential round trips, then a burst of --commands from distinct
   users at once;
3. Slack Socket Mode: a slash command envelope to Bolt over the fake's WebSocket until the
   ack with the rendered answer comes back.

Rate limits (the fakes' and the per-user one) are off: this measures the bot, not the limits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot import commands
from bot.app import App
from bot.config import load_settings
from bot.ingest import run_ingest
from bot.model import Incoming
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram
from tests.test_adapters_support import ARTICLES

MIX = [("search", "苹果"), ("search", "降雨 气温"), ("settings", ""), ("filter", "+苹果 -广告"),
       ("help", ""), ("search", "阿里巴巴 合作"), ("settings", "max 5")]


def _write(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    items = list(ARTICLES.values())
    for i in range(n):
        title, date, outlet, body = items[i % len(items)]
        (folder / f"a{i:05d}.md").write_text(
            f'---\ntitle: "{title}（{i}）"\ndate: "{date}"\ncategories:\n  - "{outlet}{i % 7}"\n---\n\n'
            f"{body} 编号{i}。\n", encoding="utf-8")


def _stats(name: str, samples: list[float]) -> None:
    s = sorted(samples)
    p = lambda q: s[min(len(s) - 1, int(q * len(s)))] * 1000  # noqa: E731
    print(f"{name:<38} n={len(s):>4}  p50 {p(0.5):7.1f} ms  p95 {p(0.95):7.1f} ms  "
          f"max {s[-1] * 1000:7.1f} ms")


async def main(n: int, count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _write(Path(tmp) / "articles", n)
        os.environ.update(BENCH_TG="123456:bench", BENCH_SLACK_BOT="xoxb-test-token",
                          BENCH_SLACK_APP="xapp-1-test-token")
        async with FakeTelegram() as tg, FakeSlack() as slack:
            tg.set_limits(enabled=False)
            slack.set_limits(enabled=False)
            settings = load_settings(text=f"""
database: {{url: "sqlite:///{tmp}/bench.db"}}
sources: [{{name: local, type: folder, path: "{tmp}/articles"}}]
commands: {{per_user_per_minute: 1000000}}
adapters:
  telegram: {{token: "${{BENCH_TG}}", base_url: "{tg.base_url}", poll_timeout: 5}}
  slack: {{bot_token: "${{BENCH_SLACK_BOT}}", app_token: "${{BENCH_SLACK_APP}}",
          base_url: "{slack.base_url}"}}
""")
            app = await App.open(settings)
            try:
                t0 = time.perf_counter()
                await run_ingest(app)
                print(f"ingested {n} articles in {time.perf_counter() - t0:.1f} s")
                await commands.handle(app, Incoming("console", "c0", "u0", "subscribe"))

                # 1. the handlers alone
                samples = []
                t0 = time.perf_counter()
                for i in range(count):
                    cmd, args = MIX[i % len(MIX)]
                    s = time.perf_counter()
                    await commands.handle(app, Incoming("console", "c0", "u0", cmd, args))
                    samples.append(time.perf_counter() - s)
                wall = time.perf_counter() - t0
                _stats("commands.handle (mix)", samples)
                print(f"{'':<38} {count / wall:.0f} commands/s, one at a time")

                # 2. Telegram through python-telegram-bot and the fake
                handler = lambda inc: commands.handle(app, inc)  # noqa: E731
                await app.adapter("telegram").start(handler)
                samples = []
                for i in range(min(count, 100)):
                    cmd, args = MIX[i % len(MIX)]
                    before = len(tg.messages(chat_id=42))
                    s = time.perf_counter()
                    tg.user_message(f"/{cmd} {args}".strip(), user_id=42)
                    assert await tg.await_messages(before + 1, chat_id=42, timeout=30)
                    samples.append(time.perf_counter() - s)
                _stats("telegram round trip (sequential)", samples)
                before = len(tg.messages())
                s = time.perf_counter()
                for i in range(count):
                    tg.user_message("/search 苹果", user_id=10_000 + i)
                assert await tg.await_messages(before + count, timeout=120)
                wall = time.perf_counter() - s
                print(f"{'telegram burst: ' + str(count) + ' users at once':<38} {wall:.2f} s, "
                      f"{count / wall:.0f} replies/s")

                # 3. Slack Socket Mode through Bolt and the fake
                await app.adapter("slack").start(handler)
                assert await slack.await_socket()
                samples = []
                for i in range(min(count, 100)):
                    cmd, args = MIX[i % len(MIX)]
                    s = time.perf_counter()
                    ack = await slack.socket_send("slash_commands", slack.slash_command_payload(
                        "/digest", f"{cmd} {args}".strip()), wait_ack=30)
                    assert ack and ack.get("payload")
                    samples.append(time.perf_counter() - s)
                _stats("slack slash command to ack (socket)", samples)
            finally:
                await app.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="articles to ingest")
    ap.add_argument("--commands", type=int, default=200, help="commands per measurement")
    a = ap.parse_args()
    asyncio.run(main(a.n, a.commands))
