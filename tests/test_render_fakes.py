"""Rendered payloads sent with the real client libraries to the loopback fakes of the
Telegram Bot API and the Slack Web API, which refuse what the platforms would refuse."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.adapters.slack.render import render_digest as slack_digest
from bot.adapters.slack.render import render_reply as slack_reply
from bot.adapters.telegram.render import render_digest as tg_digest
from bot.adapters.telegram.render import render_reply as tg_reply
from bot.model import Button, Digest, DigestEntry, Reply, ResultItem
from tests.fakes.slack import FakeSlack, SlackLimits
from tests.fakes.telegram import FakeTelegram, TelegramLimits

NASTY = "<b>x</b> & <!channel> <@U1> **md** ![i](http://x/i.png) 😀𠀀 &amp; &#0; </i> <a href=\"x\">"


def _digest(n: int = 25, summary_repeat: int = 12) -> Digest:
    entries = [
        DigestEntry(story_id=i, headline=f"#{i} {NASTY}", summary=("苹果合作。" + NASTY) * summary_repeat,
                    outlets=["亿欧", NASTY], outlet_count=7, time=datetime(2025, 2, 12, tzinfo=UTC),
                    url=f"https://example.com/{i}?a=1&b=<2>")
        for i in range(n)
    ]
    return Digest(locale="zh-CN", timezone="Asia/Shanghai", generated_at=datetime(2025, 2, 14, tzinfo=UTC),
                  entries=entries, heading="📰 新闻摘要 · 2025年2月14日 周五 08:00")


def _tg_kwargs(payload: dict) -> dict:
    from telegram import InlineKeyboardMarkup, LinkPreviewOptions

    kw = dict(payload)
    if "reply_markup" in kw:
        kw["reply_markup"] = InlineKeyboardMarkup.de_json(kw["reply_markup"], None)
    kw["link_preview_options"] = LinkPreviewOptions(**kw["link_preview_options"])
    return kw


async def test_telegram_fake_accepts_every_part() -> None:
    import telegram

    async with FakeTelegram(strict_html=True, limits=TelegramLimits(enabled=False)) as fake:
        bot = telegram.Bot("123456:TEST-token", base_url=fake.base_url)
        async with bot:
            parts = tg_digest(_digest())
            plains = tg_digest(_digest(), plain=True)
            assert len(parts) > 1
            for p in parts + plains:
                await bot.send_message(chat_id=42, **_tg_kwargs(p))
            item = ResultItem(NASTY, "https://e.com/?q=<1>", NASTY, NASTY)
            button = Button("下一页", "more", "苹果:" + "x" * 80)  # over 64 bytes: cut, not refused
            for p in tg_reply(Reply(text=NASTY, items=[item], buttons=[button])):
                await bot.send_message(chat_id=42, **_tg_kwargs(p))
        msgs = fake.messages(chat_id=42)
        assert len(msgs) == 2 * len(parts) + 1 and not fake.rejected()
        visible = "\n".join(m.visible_text for m in msgs[: len(parts)])
        for i in range(25):
            assert visible.count(f"#{i} <b>x</b>") == 1  # every headline once, shown as written
        assert f"1/{len(parts)}" in msgs[0].visible_text
        assert visible.count("苹果合作。") == 25 * 12  # no summary shortened: each entry fits a part


async def test_slack_fake_accepts_every_message() -> None:
    from slack_sdk.web.async_client import AsyncWebClient

    async with FakeSlack(limits=SlackLimits(enabled=False)) as fake:
        client = AsyncWebClient(fake.bot_token, base_url=fake.base_url)
        messages = slack_digest(_digest(60, 2))
        assert len(messages) > 1
        for m in messages:
            await client.chat_postMessage(channel="C1", unfurl_links=False, **m)
        for m in slack_reply(Reply(text=NASTY, items=[ResultItem(NASTY, None, NASTY, NASTY)] * 30,
                                   buttons=[Button("更多", "more", "2"), Button("更多", "more", "3")])):
            await client.chat_postMessage(channel="C1", **m)
        assert not fake.rejected()
        sent = fake.messages("C1")
        assert len(sent) >= len(messages) + 1
        blob = "".join(str(m.blocks) + (m.text or "") for m in sent)
        assert "<!channel>" not in blob and "<@U1>" not in blob
