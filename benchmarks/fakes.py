"""How fast the loopback fakes answer, so a delivery benchmark knows the fake is not its limit.

    .venv/bin/python -m benchmarks.fakes [--messages 3000] [--concurrency 50]

Sends ``--messages`` sendMessage calls to distinct chats through the real python-telegram-bot
(limits off, then with Telegram's limits on and a client that keeps to 30 msg/s), and the same
number of chat.postMessage calls through slack_sdk, and prints requests per second.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import telegram
from slack_sdk.web.async_client import AsyncWebClient
from telegram.request import HTTPXRequest

from tests.fakes.slack import FakeSlack, SlackLimits
from tests.fakes.telegram import FakeTelegram, TelegramLimits

TOKEN = "123456:BENCH-token"


async def _gather_limited(n: int, concurrency: int, make: object) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await make(i)  # type: ignore[operator]

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - started


async def telegram_capacity(n: int, concurrency: int) -> float:
    async with FakeTelegram(limits=TelegramLimits(enabled=False)) as fake:
        request = HTTPXRequest(connection_pool_size=concurrency)
        async with telegram.Bot(TOKEN, base_url=fake.base_url, request=request) as bot:
            took = await _gather_limited(n, concurrency, lambda i: bot.send_message(10_000 + i, f"<b>{i}</b>",
                                                                                     parse_mode="HTML"))
        assert len(fake.messages()) == n
    return n / took


async def telegram_paced(n: int) -> tuple[float, int]:
    """A client spacing sends 1/29.5 s apart against the fake with its limits on."""
    async with FakeTelegram() as fake:
        request = HTTPXRequest(connection_pool_size=64)
        async with telegram.Bot(TOKEN, base_url=fake.base_url, request=request) as bot:
            spacing = 1 / 29.5
            started = time.perf_counter()
            tasks = []
            for i in range(n):
                delay = started + i * spacing - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(bot.send_message(20_000 + i, "x")))
            results = await asyncio.gather(*tasks, return_exceptions=True)
            took = time.perf_counter() - started
        ok = sum(1 for r in results if not isinstance(r, BaseException))
        return ok / took, fake.count_429()


async def slack_capacity(n: int, concurrency: int) -> float:
    async with FakeSlack(limits=SlackLimits(enabled=False)) as fake:
        client = AsyncWebClient(fake.bot_token, base_url=fake.base_url)
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*x*"}}]
        took = await _gather_limited(n, concurrency, lambda i: client.chat_postMessage(
            channel=f"C{i}", text="x", blocks=blocks))
        assert len(fake.messages()) == n
    return n / took


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--paced", type=int, default=300, help="messages in the paced 30 msg/s run")
    args = parser.parse_args()
    tg = await telegram_capacity(args.messages, args.concurrency)
    print(f"telegram fake, limits off: {args.messages} sendMessage in parallel ({args.concurrency}): "
          f"{tg:.0f} req/s")
    rate, n429 = await telegram_paced(args.paced)
    print(f"telegram fake, limits on, client paced at 29.5 msg/s: {rate:.1f} msg/s "
          f"({rate / 30:.1%} of 30 msg/s), 429s: {n429}")
    sl = await slack_capacity(args.messages, args.concurrency)
    print(f"slack fake, limits off: {args.messages} chat.postMessage in parallel ({args.concurrency}): "
          f"{sl:.0f} req/s")


if __name__ == "__main__":
    asyncio.run(main())
