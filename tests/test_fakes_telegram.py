"""The Telegram fake, driven by the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import telegram
from aiohttp import web
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import Application, CallbackQueryHandler, CommandHandler
from telegram.request import HTTPXRequest

from tests.fakes.telegram import FakeTelegram, TelegramLimits

TOKEN = "123456:TEST-token"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(TOKEN, base_url=fake.base_url) as b:
        yield b


async def test_send_message_accepted_and_recorded(fake: FakeTelegram, bot: telegram.Bot) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("more", callback_data="more:2"),
                                    InlineKeyboardButton("site", url="https://example.com/a")]])
    msg = await bot.send_message(42, "<b>苹果</b> &amp; pears", parse_mode="HTML", reply_markup=markup,
                                 link_preview_options=telegram.LinkPreviewOptions(is_disabled=True))
    second = await bot.send_message(42, "plain")
    assert msg.text == "苹果 & pears" and msg.chat.type == "private"
    assert (msg.message_id, second.message_id) == (1, 2)
    got = fake.messages(42)
    assert [m.text for m in got] == ["<b>苹果</b> &amp; pears", "plain"]
    assert got[0].parse_mode == "HTML" and got[1].parse_mode is None
    assert got[0].reply_markup == {"inline_keyboard": [[{"text": "more", "callback_data": "more:2"},
                                                        {"text": "site", "url": "https://example.com/a"}]]}
    assert got[0].visible_text == "苹果 & pears"
    assert got[0].params["link_preview_options"]  # recorded as sent
    assert fake.stats["accepted"] == 2 and fake.messages(43) == []


async def test_json_bodies_are_accepted_too(fake: FakeTelegram) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{fake.base_url}{TOKEN}/sendMessage",
                              json={"chat_id": "7", "text": "hi", "reply_markup": {"inline_keyboard": []}})
        q = await client.get(f"{fake.base_url}{TOKEN}/getMe")
    assert r.json()["ok"] and r.json()["result"]["chat"]["id"] == 7
    assert q.json()["result"]["username"] == "digest_test_bot"
    assert fake.messages(7)[0].reply_markup == {"inline_keyboard": []}


async def test_length_is_counted_in_utf16_after_entity_parsing(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.set_limits(enabled=False)
    emoji = "😀" * 2048  # 4096 UTF-16 code units, 2048 code points
    await bot.send_message(1, emoji)
    await bot.send_message(1, f"<b>{'a' * 4000}</b><i>{'b' * 96}</i>", parse_mode="HTML")
    await bot.send_message(1, "&lt;" * 4096, parse_mode="HTML")  # 4096 visible "<"
    with pytest.raises(BadRequest, match="too long"):
        await bot.send_message(1, emoji + "a")
    with pytest.raises(BadRequest, match="too long"):
        await bot.send_message(1, "é" * 4097)
    assert len(fake.messages(1)) == 3
    assert [r.description for r in fake.rejected(1)] == ["Bad Request: message is too long"] * 2


@pytest.mark.parametrize(("html", "description"), [
    ("<x>a</x>", 'Unsupported start tag "x" at byte offset 0'),
    ("苹果 < 香蕉", 'Unsupported start tag "" at byte offset 7'),
    ("<b>open", "Can't find end tag corresponding to start tag \"b\""),
    ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
    ("x</b>", "Unexpected end tag at byte offset 1"),
    ('<span class="x">s</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
    ("<a href='https://e.com'", "Unclosed start tag at byte offset 0"),
])
async def test_bad_html_is_rejected_with_telegrams_error(
    fake: FakeTelegram, bot: telegram.Bot, html: str, description: str
) -> None:
    with pytest.raises(BadRequest, match="parse entities"):
        await bot.send_message(5, html, parse_mode="HTML")
    assert fake.rejected(5)[0].description == f"Bad Request: can't parse entities: {description}"
    assert fake.rejected(5)[0].status == 400 and fake.messages() == []


async def test_empty_text_and_bad_buttons(fake: FakeTelegram, bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match="text is empty"):
        await bot.send_message(5, "  \n ")
    with pytest.raises(BadRequest, match="text is empty"):
        await bot.send_message(5, "<b> </b>", parse_mode="HTML")
    long_data = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 65)]])
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(5, "x", reply_markup=long_data)
    ok_data = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 32)]])  # 64 bytes
    await bot.send_message(5, "x", reply_markup=ok_data)
    assert len(fake.messages(5)) == 1


async def test_private_chat_limit_is_a_token_bucket(fake: FakeTelegram, bot: telegram.Bot) -> None:
    for i in range(3):  # the burst allowance
        await bot.send_message(9, f"m{i}")
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(9, "too fast")
    assert info.value.retry_after == 1
    rejected = fake.rejected(9)[0]
    assert rejected.status == 429 and rejected.parameters == {"retry_after": 1}
    assert rejected.description == "Too Many Requests: retry after 1"
    await bot.send_message(10, "another chat is not limited by chat 9")
    assert fake.count_429("chat") == 1 and fake.count_429() == 1


async def test_group_limit_is_per_minute(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.set_limits(group_per_window=3)
    for i in range(3):
        await bot.send_message(-100777, f"g{i}")
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(-100777, "g3")
    assert 55 <= info.value.retry_after <= 60
    assert fake.count_429("group") == 1


async def test_bot_wide_limit_is_a_sliding_second(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.set_limits(bot_per_second=5)
    for chat in range(1, 6):
        await bot.send_message(chat, "x")
    with pytest.raises(RetryAfter):
        await bot.send_message(6, "x")
    assert fake.count_429("bot") == 1
    await asyncio.sleep(1.05)
    await bot.send_message(6, "x")
    assert len(fake.messages()) == 6


async def test_limits_can_be_turned_off(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.set_limits(enabled=False)
    for i in range(40):
        await bot.send_message(3, f"{i}")
    assert fake.texts(3) == [str(i) for i in range(40)] and fake.count_429() == 0


@pytest.mark.parametrize(("kind", "exc", "text"), [
    ("blocked", Forbidden, "Forbidden: bot was blocked by the user"),
    ("kicked", Forbidden, "Forbidden: bot was kicked from the group chat"),
    ("deactivated", Forbidden, "Forbidden: user is deactivated"),
    ("not_found", BadRequest, "Bad Request: chat not found"),
])
async def test_chat_failures(fake: FakeTelegram, bot: telegram.Bot, kind: str, exc: type, text: str) -> None:
    fake.fail_chat(77, kind)
    with pytest.raises(exc):
        await bot.send_message(77, "hello")
    assert fake.rejected(77)[0].description == text
    await bot.send_message(78, "others still work")
    fake.clear_chat(77)
    await bot.send_message(77, "after clearing")
    assert fake.texts() == ["others still work", "after clearing"]


async def test_migrated_group_raises_chat_migrated(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.fail_chat(-4001, "migrated", migrate_to=-1004001)
    with pytest.raises(ChatMigrated) as info:
        await bot.send_message(-4001, "hi")
    assert info.value.new_chat_id == -1004001
    sent = await bot.send_message(-1004001, "hi again")
    assert sent.chat.type == "supergroup" and fake.texts(-1004001) == ["hi again"]


async def test_scheduled_faults(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.inject("bad_gateway", times=2)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(1, "x")
    await bot.send_message(1, "through")
    fake.inject("flood", chat_id=2, retry_after=7)
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(2, "x")
    assert info.value.retry_after == 7
    fake.inject("server_error", method="getMe")
    with pytest.raises(NetworkError):
        await bot.get_me()
    assert fake.stats["5xx"] == 3 and fake.count_429("forced") == 1
    assert fake.texts() == ["through"]


async def test_flood_storm_lasts_its_duration(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.flood_storm(0.3, retry_after=1)
    for _ in range(3):
        with pytest.raises(RetryAfter):
            await bot.send_message(1, "x")
    await asyncio.sleep(0.35)
    await bot.send_message(1, "after the storm")
    assert fake.count_429("forced") == 3 and fake.texts() == ["after the storm"]


async def test_slow_answers_time_out_but_are_accepted(fake: FakeTelegram) -> None:
    request = HTTPXRequest(read_timeout=0.1)
    async with telegram.Bot(TOKEN, base_url=fake.base_url, request=request) as bot:
        fake.inject("slow", delay=0.4)
        with pytest.raises(telegram.error.TimedOut):
            await bot.send_message(1, "late")
        assert await fake.await_messages(1, timeout=2)  # the server did send it
        fake.inject("drop", delay=0.05)
        with pytest.raises(NetworkError):
            await bot.send_message(1, "lost")
    assert fake.texts() == ["late"] and fake.stats["dropped"] == 1


async def test_wrong_token_is_unauthorized() -> None:
    async with FakeTelegram(token=TOKEN) as fake:
        async with telegram.Bot(TOKEN, base_url=fake.base_url) as good:
            assert (await good.get_me()).id == 123456
        with pytest.raises(InvalidToken):
            async with telegram.Bot("999:other", base_url=fake.base_url) as bad:
                await bad.get_me()


async def test_edit_and_callback_answers(fake: FakeTelegram, bot: telegram.Bot) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("more", callback_data="more:2")]])
    msg = await bot.send_message(42, "page 1", reply_markup=markup)
    update_id = fake.callback("more:2", user_id=42)
    updates = await bot.get_updates(timeout=0)
    assert updates[0].update_id == update_id
    query = updates[0].callback_query
    assert query.data == "more:2" and query.message.message_id == msg.message_id
    await bot.answer_callback_query(query.id)
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query.id)
    await bot.edit_message_text("page 2", chat_id=42, message_id=msg.message_id)
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_text("page 2", chat_id=42, message_id=msg.message_id)
    with pytest.raises(BadRequest, match="not found"):
        await bot.edit_message_text("x", chat_id=42, message_id=99)
    assert fake.current(42, msg.message_id).text == "page 2"
    assert [e.text for e in fake.edits(42)] == ["page 2"] and fake.texts(42) == ["page 1"]
    assert fake.callback_answers()[0]["callback_query_id"] == query.id


async def test_get_updates_long_polls_and_confirms(fake: FakeTelegram, bot: telegram.Bot) -> None:
    async def later() -> None:
        await asyncio.sleep(0.2)
        fake.user_message("/search 苹果", user_id=5, language_code="zh-hans")

    started = time.monotonic()
    task = asyncio.create_task(later())
    updates = await bot.get_updates(timeout=5)
    await task
    assert 0.15 < time.monotonic() - started < 2
    message = updates[0].message
    assert message.text == "/search 苹果" and message.from_user.language_code == "zh-hans"
    assert message.entities[0].type == "bot_command" and message.entities[0].length == 7
    assert await bot.get_updates(offset=updates[0].update_id, timeout=0)  # not yet confirmed
    assert await bot.get_updates(offset=updates[0].update_id + 1, timeout=0) == ()
    assert fake.pending_updates() == []


async def test_negative_offset_keeps_the_last_updates(fake: FakeTelegram, bot: telegram.Bot) -> None:
    for i in range(5):
        fake.user_message(f"/m {i}", user_id=1)
    updates = await bot.get_updates(offset=-2, timeout=0)
    assert [u.message.text for u in updates] == ["/m 3", "/m 4"]


async def test_allowed_updates_filter(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.user_message("/start", user_id=1)
    fake.channel_post("/digest", chat_id=-100555)
    updates = await bot.get_updates(timeout=0, allowed_updates=["channel_post"])
    assert [u.channel_post.chat.type for u in updates] == ["channel"]


async def test_a_second_poller_terminates_the_first(fake: FakeTelegram, bot: telegram.Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    assert await fake.await_idle_poll()
    async with telegram.Bot(TOKEN, base_url=fake.base_url) as other:  # a second bot instance
        assert await other.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates"):
        await first


async def test_commands_admins_and_chat_info(fake: FakeTelegram, bot: telegram.Bot) -> None:
    await bot.set_my_commands([("start", "开始"), ("search", "搜索")], language_code="zh")
    await bot.set_my_commands([("start", "Start")])
    assert [c.command for c in await bot.get_my_commands(language_code="zh")] == ["start", "search"]
    assert fake.commands("zh")[1] == {"command": "search", "description": "搜索"}
    assert fake.commands()[0]["description"] == "Start"
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([("Bad-Name", "x")])
    await bot.delete_my_commands(language_code="zh")
    assert await bot.get_my_commands(language_code="zh") == ()
    fake.set_chat(-100123, "supergroup", "Team")
    fake.set_admins(-100123, [7], creator=1)
    assert (await bot.get_chat_member(-100123, 7)).status == "administrator"
    assert (await bot.get_chat_member(-100123, 1)).status == "creator"
    assert (await bot.get_chat_member(-100123, 8)).status == "member"
    admins = await bot.get_chat_administrators(-100123)
    assert sorted(a.user.id for a in admins) == [1, 7]
    assert (await bot.get_chat(-100123)).title == "Team"


async def test_webhook_mode_pushes_updates_with_the_secret(fake: FakeTelegram, bot: telegram.Bot) -> None:
    got: list[tuple[str | None, dict]] = []

    async def receive(request: web.Request) -> web.Response:
        got.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        assert (await bot.get_webhook_info()).url.endswith("/hook")
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        for i in range(5):
            fake.user_message(f"/help {i}", user_id=3)
        assert await fake.await_until(lambda: len(got) == 5)
        assert {secret for secret, _ in got} == {"s3cret"}
        assert [u["message"]["text"] for _, u in got] == [f"/help {i}" for i in range(5)]  # in order
        assert await fake.await_until(lambda: fake.pending_updates() == [])
        await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
    finally:
        await runner.cleanup()


async def test_python_telegram_bot_application_polls_and_replies(fake: FakeTelegram) -> None:
    """The whole PTB Application (initialize/start/polling) against the fake."""
    app = Application.builder().token(TOKEN).base_url(fake.base_url).build()

    async def start(update: telegram.Update, context: object) -> None:
        await update.effective_chat.send_message(f"welcome {update.effective_user.language_code}")

    async def more(update: telegram.Update, context: object) -> None:
        await update.callback_query.answer()
        await update.callback_query.edit_message_text("page 2")

    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(more))
    await app.initialize()
    await app.start()
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        fake.user_message("/start", user_id=11, language_code="zh-hans")
        assert await fake.await_messages(1)
        fake.callback("more:2", user_id=11)
        assert await fake.await_until(lambda: bool(fake.edits(11)))
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert fake.texts(11) == ["welcome zh-hans"]
    assert fake.current(11, fake.messages(11)[0].message_id).text == "page 2"
    assert len(fake.callback_answers()) == 1


def test_thread_mode_serves_blocking_clients() -> None:
    with FakeTelegram.in_thread(limits=TelegramLimits(enabled=False)) as fake:
        url = f"{fake.base_url}{TOKEN}/sendMessage"

        def send(chat: int) -> None:
            with httpx.Client() as client:
                for i in range(5):
                    client.post(url, data={"chat_id": str(chat), "text": f"{chat}-{i}"})

        threads = [threading.Thread(target=send, args=(c,)) for c in (1, 2, 3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert fake.wait_messages(15, timeout=5)
        for chat in (1, 2, 3):  # order per chat kept
            assert fake.texts(chat) == [f"{chat}-{i}" for i in range(5)]
        fake.user_message("/start", user_id=4)
        with httpx.Client() as client:
            got = client.post(f"{fake.base_url}{TOKEN}/getUpdates", data={"timeout": "1"}).json()
        assert got["result"][0]["message"]["text"] == "/start"
    assert fake.port and fake._runner is None  # stopped when the block ended


def test_a_killed_client_leaves_the_fake_counting() -> None:
    """What crash tests rely on: a send in flight when the client is SIGKILLed still lands, and the
    fake keeps serving the next process."""
    script = (
        "import sys, httpx\n"
        "httpx.post(sys.argv[1], data={'chat_id': '5', 'text': 'in flight'}, timeout=30)\n"
    )
    with FakeTelegram.in_thread() as fake:
        fake.inject("slow", delay=0.5)
        url = f"{fake.base_url}{TOKEN}/sendMessage"
        proc = subprocess.Popen([sys.executable, "-c", script, url])
        try:
            assert fake.wait_until(lambda: fake.stats.get("slow", 0) == 1, timeout=10)
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert fake.wait_messages(1, timeout=3)
        with httpx.Client() as client:
            assert client.post(url, data={"chat_id": "5", "text": "after"}).json()["ok"]
        assert fake.texts(5) == ["in flight", "after"]
