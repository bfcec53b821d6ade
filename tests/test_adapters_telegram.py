"""The Telegram adapter through the real python-telegram-bot against the loopback fake."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot import commands
from bot.ingest import run_ingest
from bot.model import Reply, SendError
from bot.store import subscriptions as subs
from tests.fakes.telegram import FakeTelegram
from tests.test_adapters_support import folder_source, open_app, write_articles

TOKEN = "123456:TEST-token"


def _config(fake: FakeTelegram, extra: str = "") -> str:
    return (f'  telegram: {{token: "${{TG_TOKEN}}", base_url: "{fake.base_url}", poll_timeout: 1{extra}}}')


@pytest.fixture
async def fake_tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        fake.set_limits(enabled=False)
        yield fake


async def _app(db_url: str, tmp_path: Path, fake: FakeTelegram, *, commands_cfg: str = "", extra: str = "",
               start: bool = True) -> tuple[Any, Any]:
    write_articles(tmp_path / "articles")
    cmds = "commands: {search_page_size: 1" + commands_cfg + "}\n"
    app = await open_app(db_url, _config(fake, extra), folder_source(tmp_path / "articles") + cmds)
    await run_ingest(app)
    adapter = app.adapter("telegram")
    if start:
        await adapter.start(lambda inc: commands.handle(app, inc))
    return app, adapter


@pytest.fixture
async def tg(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             fake_tg: FakeTelegram) -> AsyncIterator[tuple[FakeTelegram, Any, Any]]:
    monkeypatch.setenv("TG_TOKEN", TOKEN)
    app, adapter = await _app(db_url, tmp_path, fake_tg)
    try:
        yield fake_tg, app, adapter
    finally:
        await app.close()


async def say(fake: FakeTelegram, text: str, n: int, chat_id: int = 42, **kw: Any) -> str:
    """The user sends ``text``; wait until the chat has ``n`` bot messages; return the last one's text."""
    user = kw.pop("user_id", chat_id if chat_id > 0 else 1001)
    fake.user_message(text, user_id=user, chat_id=None if chat_id > 0 else chat_id, **kw)
    assert await fake.await_messages(n, chat_id=chat_id), fake.texts()
    return fake.messages(chat_id=chat_id)[-1].visible_text


async def test_scripted_conversation(tg: tuple[FakeTelegram, Any, Any]) -> None:
    fake, app, _ = tg
    t = await say(fake, "/start", 1, language_code="en")
    assert t == ("Hello! I fold different outlets' reports of one event into one story and send you a news "
                 "digest on your schedule.\nSend /subscribe to subscribe (keywords optional, e.g. /subscribe "
                 "Apple Alibaba); /help lists every command.")
    t = await say(fake, "/subscribe", 2, language_code="en")
    assert t == ("Subscribed! Digests every day at 08:00 (Asia/Shanghai). "
                 "Change times, zone and language with /settings.")
    t = await say(fake, "/search 苹果", 3, language_code="en")
    first = fake.messages(chat_id=42)[-1]
    assert t.splitlines()[0] == "Results for “苹果” (1–1 of 2):"
    assert "苹果发布新款平板电脑" in t and "苹果与阿里巴巴在华合作" not in t
    assert first.reply_markup == {"inline_keyboard": [[{"text": "More »", "callback_data": "search:1:苹果"}]]}
    fake.callback("search:1:苹果", user_id=42)
    assert await fake.await_until(lambda: len(fake.edits(chat_id=42)) == 1)
    page2 = fake.current(42, first.message_id)
    assert page2 is not None and page2.visible_text.splitlines()[0] == "Results for “苹果” (2–2 of 2):"
    assert "苹果与阿里巴巴在华合作推出人工智能功能" in page2.visible_text
    assert not page2.reply_markup  # the last page has no "more"
    assert len(fake.callback_answers()) == 1
    t = await say(fake, "/settings tz Europe/London", 4, language_code="en")
    assert t.splitlines() == [
        "Saved.", "Settings:", "Digest times: 08:00", "Time zone: Europe/London", "Language: English",
        "Stories per digest: up to 10", "Filters: none",
        "Change: /settings time 08:00,20:00 · /settings tz Europe/London · /settings lang zh-CN · "
        "/settings max 5"]
    sub = await subs.get(app.store, "telegram", "42")
    assert sub is not None and sub.active and sub.timezone == "Europe/London" and sub.locale == "en"
    # The settings buttons change the subscription and edit the message in place.
    fake.callback("settings:time 08:00,20:00", user_id=42)
    assert await fake.await_until(lambda: len(fake.edits(chat_id=42)) == 2)
    assert "Digest times: 08:00, 20:00" in fake.edits(chat_id=42)[-1].visible_text
    sub = await subs.get(app.store, "telegram", "42")
    assert sub is not None and sub.times == ["08:00", "20:00"]
    t = await say(fake, "/unsubscribe", 5, language_code="en")
    assert t.startswith("Unsubscribed")
    assert fake.rejected() == []


async def test_set_my_commands_in_zh_and_en(tg: tuple[FakeTelegram, Any, Any]) -> None:
    fake, _, _ = tg
    zh = fake.commands(language_code="zh")
    en = fake.commands(language_code="en")
    assert [c["command"] for c in zh] == list(commands.COMMAND_NAMES) == [c["command"] for c in en]
    assert {c["command"]: c["description"] for c in en}["search"] == "search the news archive"
    assert {c["command"]: c["description"] for c in zh}["search"] == "搜索新闻存档"


async def test_language_defaults_from_language_code(tg: tuple[FakeTelegram, Any, Any]) -> None:
    fake, app, _ = tg
    t = await say(fake, "/subscribe 苹果 阿里", 1, chat_id=77, language_code="zh-hans")
    assert t == ("订阅成功！每天 08:00（Asia/Shanghai）推送摘要。用 /settings 修改时间、时区和语言。\n"
                 "只推送包含这些关键词的新闻：苹果, 阿里")
    sub = await subs.get(app.store, "telegram", "77")
    assert sub is not None and sub.locale == "zh-CN" and sub.filters.include == ["苹果", "阿里"]
    # Once subscribed, the subscription's language wins over the client's.
    t = await say(fake, "/settings lang en", 2, chat_id=77, language_code="zh-hans")
    assert t.startswith("Saved.\nSettings:")
    t = await say(fake, "/help", 3, chat_id=77, language_code="zh-hans")
    assert t.startswith("Commands:\n/start — welcome and how to subscribe")


async def test_group_only_admins_change_settings(tg: tuple[FakeTelegram, Any, Any]) -> None:
    fake, app, _ = tg
    group = -100123
    fake.set_chat(group, "supergroup", "Team")
    fake.set_admins(group, [7], creator=1)
    t = await say(fake, "/subscribe", 1, chat_id=group, user_id=8)
    assert t == "Only group admins can change this group's subscription and settings."
    assert await subs.get(app.store, "telegram", str(group)) is None
    t = await say(fake, "/subscribe@digest_test_bot", 2, chat_id=group, user_id=7)
    assert t.startswith("Subscribed!")
    t = await say(fake, "/settings tz UTC", 3, chat_id=group, user_id=8)
    assert t.startswith("Only group admins")
    t = await say(fake, "/settings", 4, chat_id=group, user_id=8)  # anyone may look
    assert t.startswith("Settings:")
    t = await say(fake, "/search 降雨", 5, chat_id=group, user_id=8)
    assert "北方多地迎来降雨" in t
    t = await say(fake, "/settings tz UTC", 6, chat_id=group, user_id=1)  # the creator
    assert t.startswith("Saved.")
    sub = await subs.get(app.store, "telegram", str(group))
    assert sub is not None and sub.chat_type == "supergroup" and sub.timezone == "UTC"
    quoted = fake.messages(chat_id=group)[-1].params.get("reply_parameters")
    assert quoted and "message_id" in str(quoted)  # group answers quote the command
    members = [p for m, p in fake.requests("getChatMember")]
    assert {int(p["user_id"]) for p in members} == {1, 7, 8}
    # A command addressed to another bot is not ours to answer.
    fake.user_message("/help@other_bot", user_id=8, chat_id=group)
    t = await say(fake, "/help", 7, chat_id=group, user_id=8)
    assert t.startswith("Commands:")


async def test_channel_posts_subscribe(tg: tuple[FakeTelegram, Any, Any]) -> None:
    fake, app, _ = tg
    fake.channel_post("/subscribe", chat_id=-1009)
    assert await fake.await_messages(1, chat_id=-1009)
    sub = await subs.get(app.store, "telegram", "-1009")
    assert sub is not None and sub.active and sub.chat_type == "channel"


async def test_bad_input_gets_usage_replies(tg: tuple[FakeTelegram, Any, Any]) -> None:
    fake, _, _ = tg
    assert await say(fake, "/frobnicate now", 1) == "Unknown command “frobnicate”. Send /help for the list."
    assert await say(fake, "/settings tz Mars/Olympus", 2) == \
        "This chat is not subscribed. Send /subscribe to subscribe."
    await say(fake, "/subscribe", 3)
    assert await say(fake, "/settings tz Mars/Olympus", 4) == \
        "Unknown time zone “Mars/Olympus”. Use an IANA name such as Europe/London or Asia/Shanghai."
    assert await say(fake, "/settings time 25:00", 5) == \
        "Not a time of day: “25:00”. Use HH:MM, e.g. 08:00,20:00 (at most 6 a day)."
    assert await say(fake, "/settings max 99", 6) == \
        "Stories per digest must be a number from 1 to 50 (got “99”)."
    assert (await say(fake, "/settings colour blue", 7)).startswith("Usage: /settings time 08:00,20:00")
    assert await say(fake, "/search", 8) == "Usage: /search QUERY, e.g. /search Apple"
    assert await say(fake, "/filter +", 9) == "Usage: /filter +Apple -ads source:Reuters, or /filter clear"
    assert await say(fake, "/设置", 10, language_code="zh-hans") == \
        "Unknown command “设置”. Send /help for the list."  # a subscribed chat keeps its language


async def test_filter_command(tg: tuple[FakeTelegram, Any, Any]) -> None:
    fake, app, _ = tg
    await say(fake, "/subscribe", 1)
    t = await say(fake, "/filter +苹果 -广告 source:财经快报 -source:天气周刊", 2)
    assert t == "Filters updated: include 苹果; exclude 广告; only 财经快报; not 天气周刊"
    sub = await subs.get(app.store, "telegram", "42")
    assert sub is not None
    assert sub.filters.as_dict() == {"include": ["苹果"], "exclude": ["广告"], "outlets": ["财经快报"],
                                     "exclude_outlets": ["天气周刊"], "categories": [], "langs": []}
    assert await say(fake, "/filter clear", 3) == "Filters updated: none"


async def test_rate_limit_reply(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                fake_tg: FakeTelegram) -> None:
    monkeypatch.setenv("TG_TOKEN", TOKEN)
    app, _ = await _app(db_url, tmp_path, fake_tg, commands_cfg=", per_user_per_minute: 3")
    try:
        for i in range(3):
            assert (await say(fake_tg, "/help", i + 1)).startswith("Commands:")
        t = await say(fake_tg, "/help", 4)
        assert t.startswith("That's a lot of commands. Please try again in ")
        fake_tg.user_message("/help", user_id=42)  # refused again, silently
        t = await say(fake_tg, "/help", 1, chat_id=43)  # another user is not affected
        assert t.startswith("Commands:")
        assert len(fake_tg.messages(chat_id=42)) == 4
    finally:
        await app.close()


async def test_failing_handler_answers_and_keeps_serving(tg: tuple[FakeTelegram, Any, Any],
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    fake, _, _ = tg

    async def broken(*a: Any, **kw: Any) -> Any:
        raise RuntimeError("index exploded")

    monkeypatch.setattr("bot.commands.search.search", broken)
    assert await say(fake, "/search 苹果", 1) == "Something went wrong. Please try again later."
    assert await say(fake, "/search 苹果", 1, chat_id=50, language_code="zh") == "出了点问题，请稍后再试。"
    assert "index exploded" in caplog.text
    assert (await say(fake, "/help", 2)).startswith("Commands:")


async def test_bad_markup_is_classified(tg: tuple[FakeTelegram, Any, Any]) -> None:
    _, _, adapter = tg
    with pytest.raises(SendError) as e:
        await adapter.send("42", {"text": "<x>", "parse_mode": "HTML"})
    assert e.value.kind == "markup"


@pytest.mark.parametrize(("kind", "expected"), [
    ("blocked", "blocked"), ("kicked", "kicked"), ("deactivated", "deactivated"), ("not_found", "not_found"),
])
async def test_send_errors_are_classified(tg: tuple[FakeTelegram, Any, Any], kind: str,
                                          expected: str) -> None:
    fake, _, adapter = tg
    fake.fail_chat(42, kind)
    with pytest.raises(SendError) as e:
        await adapter.send("42", adapter.render(Reply("hello"))[0])
    assert e.value.kind == expected


async def test_send_transient_flood_and_migration(tg: tuple[FakeTelegram, Any, Any]) -> None:
    fake, _, adapter = tg
    payload = adapter.render(Reply("hello"))[0]
    fake.inject("flood", retry_after=7)
    with pytest.raises(SendError) as e:
        await adapter.send("42", payload)
    assert e.value.kind == "retry_after" and e.value.retry_after == 7
    fake.inject("bad_gateway")
    with pytest.raises(SendError) as e:
        await adapter.send("42", payload)
    assert e.value.kind == "transient"
    fake.fail_chat(-5, "migrated", migrate_to=-1005)
    with pytest.raises(SendError) as e:
        await adapter.send("-5", payload)
    assert e.value.kind == "migrated" and e.value.new_chat_id == "-1005"
    with pytest.raises(SendError) as e:
        await adapter.send("42", {"text": ""})
    assert e.value.kind == "fatal"
    assert await adapter.send("42", payload) is not None


async def test_send_works_without_start(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        fake_tg: FakeTelegram) -> None:
    monkeypatch.setenv("TG_TOKEN", TOKEN)
    app, adapter = await _app(db_url, tmp_path, fake_tg, start=False)
    try:
        mid = await adapter.send("42", adapter.render(Reply("<b>&</b>"))[0])
        assert mid == str(fake_tg.messages(chat_id=42)[0].message_id)
        assert fake_tg.messages(chat_id=42)[0].visible_text == "<b>&</b>"
    finally:
        await app.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_webhook_mode_checks_the_secret(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              fake_tg: FakeTelegram) -> None:
    monkeypatch.setenv("TG_TOKEN", TOKEN)
    monkeypatch.setenv("TG_SECRET", "s3cret-token_1")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    app, _ = await _app(db_url, tmp_path, fake_tg, extra=f', mode: webhook, webhook_url: "{url}", '
                        f'webhook_listen: 127.0.0.1, webhook_port: {port}, webhook_secret: "${{TG_SECRET}}"')
    try:
        assert fake_tg.webhook()["url"] == url
        t = await say(fake_tg, "/start", 1, language_code="en")
        assert t.startswith("Hello!")
        update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "/help",
                                              "chat": {"id": 42, "type": "private"}}}
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                async with http.post(url, json=update, headers=headers) as resp:
                    assert resp.status == 403
        assert len(fake_tg.messages(chat_id=42)) == 1
    finally:
        await app.close()


async def test_membership_updates(tg: tuple[FakeTelegram, Any, Any]) -> None:
    fake, app, _ = tg
    fake.set_chat(-5, "group", "Old group")
    fake.set_admins(-5, [7])
    await say(fake, "/subscribe", 1, chat_id=-5, user_id=7)
    # An anonymous admin posts as the group itself.
    fake.push_update({"message": {
        "message_id": 500, "date": 0, "chat": {"id": -5, "type": "group", "title": "Old group"},
        "from": {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"},
        "sender_chat": {"id": -5, "type": "group", "title": "Old group"}, "text": "/settings max 3"}})
    assert await fake.await_messages(2, chat_id=-5)
    assert fake.messages(chat_id=-5)[-1].visible_text.startswith("Saved.")
    # The group became a supergroup: the subscription follows it.
    fake.push_update({"message": {"message_id": 501, "date": 0, "chat": {"id": -5, "type": "group"},
                                  "from": {"id": 7, "is_bot": False, "first_name": "A"},
                                  "migrate_to_chat_id": -1005}})
    moved = await _eventually(lambda: subs.get(app.store, "telegram", "-1005"), lambda s: s is not None)
    assert moved is not None and moved.max_stories == 3 and moved.chat_type == "supergroup"
    # Removed from the chat: the subscription is retired.
    bot = fake.bot_user()
    fake.push_update({"my_chat_member": {
        "chat": {"id": -1005, "type": "supergroup"}, "from": {"id": 7, "is_bot": False, "first_name": "A"},
        "date": 0, "old_chat_member": {"user": bot, "status": "member"},
        "new_chat_member": {"user": bot, "status": "kicked", "until_date": 0}}})
    gone = await _eventually(lambda: subs.get(app.store, "telegram", "-1005"), lambda s: s and not s.active)
    assert gone is not None and not gone.active and gone.retired_reason == "kicked"


async def _eventually(get: Any, ok: Any, within: float = 5.0) -> Any:
    import asyncio
    import time

    deadline = time.monotonic() + within
    value = await get()
    while not ok(value) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        value = await get()
    return value


async def test_replies_obey_retry_after(tg: tuple[FakeTelegram, Any, Any]) -> None:
    fake, _, _ = tg
    fake.set_limits(enabled=True)  # Telegram's: private chats burst 3, then 1 message a second
    for _ in range(5):
        fake.user_message("/help", user_id=42)
    assert await fake.await_messages(5, chat_id=42, timeout=15), fake.texts()
    assert fake.count_429("chat") >= 1  # some replies were refused once, then sent after retry_after
    assert all(m.visible_text.startswith("Commands:") for m in fake.messages(chat_id=42))
