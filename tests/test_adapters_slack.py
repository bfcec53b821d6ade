"""The Slack adapter through the real slack-bolt / slack_sdk against the loopback fake."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot import commands
from bot.ingest import run_ingest
from bot.model import Reply, SendError
from bot.store import subscriptions as subs
from tests.fakes.slack import FakeSlack
from tests.test_adapters_support import folder_source, open_app, write_articles


def _config(fake: FakeSlack, mode: str, extra: str = "") -> str:
    return ('  slack: {bot_token: "${SLACK_BOT}", app_token: "${SLACK_APP}", '
            'signing_secret: "${SLACK_SECRET}", '
            f'mode: {mode}, base_url: "{fake.base_url}", host: 127.0.0.1, port: 0{extra}}}')


@pytest.fixture
async def fake_slack(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        fake.set_limits(enabled=False)
        monkeypatch.setenv("SLACK_BOT", fake.bot_token)
        monkeypatch.setenv("SLACK_APP", fake.app_token)
        monkeypatch.setenv("SLACK_SECRET", fake.signing_secret)
        yield fake


async def _app(db_url: str, tmp_path: Path, fake: FakeSlack, mode: str, extra: str = "",
               commands_cfg: str = "") -> tuple[Any, Any]:
    write_articles(tmp_path / "articles")
    cmds = "commands: {search_page_size: 1" + commands_cfg + "}\n"
    app = await open_app(db_url, _config(fake, mode, extra), folder_source(tmp_path / "articles") + cmds)
    await run_ingest(app)
    adapter = app.adapter("slack")
    await adapter.start(lambda inc: commands.handle(app, inc))
    return app, adapter


@pytest.fixture
async def socket_app(db_url: str, tmp_path: Path, fake_slack: FakeSlack) -> AsyncIterator[tuple[Any, Any]]:
    app, adapter = await _app(db_url, tmp_path, fake_slack, "socket", ', search_command: "/search"')
    assert await fake_slack.await_socket()
    try:
        yield app, adapter
    finally:
        await app.close()


@pytest.fixture
async def http_app(db_url: str, tmp_path: Path, fake_slack: FakeSlack) -> AsyncIterator[tuple[Any, str]]:
    app, adapter = await _app(db_url, tmp_path, fake_slack, "http")
    try:
        yield app, f"http://127.0.0.1:{adapter.http_port}/slack/events"
    finally:
        await app.close()


async def post(fake: FakeSlack, url: str, text: str, command: str = "/digest") -> tuple[int, str]:
    """A signed slash command over HTTP, as Slack sends it."""
    return await fake.slash_command(command, text).send_async(url, fake.signing_secret)


def _section_texts(payload: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in payload.get("blocks", []) if b["type"] == "section"]


async def slash(fake: FakeSlack, text: str, command: str = "/digest", **kw: Any) -> dict[str, Any]:
    ack = await fake.socket_send("slash_commands", fake.slash_command_payload(command, text, **kw))
    assert ack is not None
    return ack["payload"]


async def test_scripted_conversation_socket_mode(fake_slack: FakeSlack, socket_app: tuple[Any, Any]) -> None:
    app, _ = socket_app
    fake_slack.set_user("U100", locale="zh-CN")  # a Chinese Slack client: answers in Chinese
    p = await slash(fake_slack, "")
    assert p["response_type"] == "in_channel"
    assert p["text"].startswith("可用命令：\n/digest start — 欢迎与订阅说明")
    p = await slash(fake_slack, "subscribe")
    assert p["text"] == ("订阅成功！每天 08:00（Asia/Shanghai）推送摘要。"
                         "用 /digest settings 修改时间、时区和语言。")
    p = await slash(fake_slack, "search 苹果")
    assert p["response_type"] == "ephemeral"
    texts = _section_texts(p)
    assert texts[0] == "“苹果”的搜索结果（1–1，共 2 条）："
    assert "苹果发布新款平板电脑" in texts[1]
    buttons = [e for b in p["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], b["value"]) for b in buttons] == [("search", "1:苹果")]
    # Pressing "more" replaces the ephemeral message through its response_url.
    url = fake_slack.response_url("more")
    await fake_slack.socket_send("interactive", fake_slack.block_action_payload(
        "search", "1:苹果", response_url=url, ephemeral=True))
    assert await _until(lambda: fake_slack.responses("more"))
    page2 = fake_slack.responses("more")[0]
    assert page2["replace_original"] is True and page2["response_type"] == "ephemeral"
    assert _section_texts(page2)[0] == "“苹果”的搜索结果（2–2，共 2 条）："
    assert "苹果与阿里巴巴在华合作推出人工智能功能" in _section_texts(page2)[1]
    p = await slash(fake_slack, "settings tz Europe/London")
    assert p["text"].splitlines()[:4] == ["已保存。", "当前设置：", "推送时间：08:00", "时区：Europe/London"]
    sub = await subs.get(app.store, "slack", "C100")
    assert sub is not None and sub.active and sub.timezone == "Europe/London" and sub.chat_type == "channel"
    # The configured /search command and @mentions reach the same handler.
    p = await slash(fake_slack, "降雨", command="/search")
    assert "北方多地迎来降雨" in json.dumps(p, ensure_ascii=False)
    await fake_slack.socket_send("events_api", fake_slack.app_mention_payload("search 降雨"))
    assert await _until(lambda: fake_slack.ephemerals(channel="C100"))
    eph = fake_slack.ephemerals(channel="C100")[0]
    assert eph.user == "U100" and "北方多地迎来降雨" in json.dumps(eph.blocks, ensure_ascii=False)
    p = await slash(fake_slack, "unsubscribe")
    assert p["text"].startswith("已退订")
    assert fake_slack.rejected() == []


async def _until(pred: Any, within: float = 5.0) -> bool:
    import asyncio

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(0.02)
    return bool(pred())


async def test_signed_slash_command_gets_results(fake_slack: FakeSlack, http_app: tuple[Any, str]) -> None:
    _, url = http_app
    status, body = await post(fake_slack, url, "search 苹果")
    assert status == 200
    data = json.loads(body)
    assert data["response_type"] == "ephemeral"
    assert _section_texts(data)[0] == "Results for “苹果” (1–1 of 2):"  # the fake's users are en-US
    assert "苹果发布新款平板电脑" in _section_texts(data)[1]
    [(_, info)] = fake_slack.requests("users.info")
    assert info["user"] == "U100" and str(info["include_locale"]).lower() in ("1", "true")


async def test_bad_or_stale_signature_is_401(fake_slack: FakeSlack, http_app: tuple[Any, str]) -> None:
    app, url = http_app
    req = fake_slack.slash_command("/digest", "subscribe")
    status, _ = await req.send_async(url, fake_slack.signing_secret, bad_signature=True)
    assert status == 401
    status, _ = await req.send_async(url, fake_slack.signing_secret, timestamp=int(time.time()) - 600)
    assert status == 401
    status, _ = await req.send_async(url, "another-secret")
    assert status == 401
    assert await subs.get(app.store, "slack", "C100") is None


async def test_http_mode_block_action_and_unknown_subcommand(fake_slack: FakeSlack,
                                                             http_app: tuple[Any, str]) -> None:
    _, url = http_app
    status, body = await post(fake_slack, url, "frobnicate")
    assert status == 200
    assert json.loads(body)["text"] == "Unknown command “frobnicate”. Send /digest help for the list."
    status, body = await post(fake_slack, url, "subscribe")
    assert status == 200
    status, body = await post(fake_slack, url, "settings")
    view = json.loads(body)
    ids = [e["action_id"] for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert ids[0] == "settings" and len(set(ids)) == len(ids)
    key_url = fake_slack.response_url("lang")
    status, _ = await fake_slack.block_action("settings#2", "lang en", response_url=key_url).send_async(
        url, fake_slack.signing_secret)
    assert status == 200
    assert await _until(lambda: fake_slack.responses("lang"))
    assert "Language: English" in fake_slack.responses("lang")[0]["text"]


async def test_send_errors_are_classified(fake_slack: FakeSlack, http_app: tuple[Any, str]) -> None:
    app, _ = http_app
    adapter = app.adapter("slack")
    payload = adapter.render(Reply("hello"))[0]
    assert (await adapter.send("C1", payload))
    assert fake_slack.messages(channel="C1")[0].text == "hello"
    for kind, expected in [("channel_not_found", "not_found"), ("not_in_channel", "kicked"),
                           ("is_archived", "kicked"), ("account_inactive", "deactivated")]:
        fake_slack.fail_channel("C9", kind)
        with pytest.raises(SendError) as e:
            await adapter.send("C9", payload)
        assert e.value.kind == expected, kind
    fake_slack.inject("ratelimited", retry_after=4)
    with pytest.raises(SendError) as e:
        await adapter.send("C1", payload)
    assert e.value.kind == "retry_after" and e.value.retry_after == 4
    fake_slack.inject("service_unavailable")
    with pytest.raises(SendError) as e:
        await adapter.send("C1", payload)
    assert e.value.kind == "transient"
    with pytest.raises(SendError) as e:
        await adapter.send("C1", {"text": "x", "blocks": [{"type": "nonsense"}]})
    assert e.value.kind == "markup"


@pytest.mark.parametrize("stamp", ["abc", "", "1e9"])
async def test_malformed_timestamp_is_401_not_500(fake_slack: FakeSlack, http_app: tuple[Any, str],
                                                  stamp: str) -> None:
    import httpx

    app, url = http_app
    req = fake_slack.slash_command("/digest", "subscribe")
    headers = req.headers(fake_slack.signing_secret)
    headers["X-Slack-Request-Timestamp"] = stamp
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(url, content=req.body, headers=headers)
    assert r.status_code == 401
    assert await subs.get(app.store, "slack", "C100") is None
