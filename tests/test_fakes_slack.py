"""The Slack fake, driven by the real slack_sdk and slack_bolt."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import FakeSlack, SlackLimits, slack_signature, validate_blocks

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(fake.bot_token, base_url=fake.base_url)


async def error_of(call: object) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await call  # type: ignore[misc]
    return info.value


async def test_post_message_is_accepted_and_recorded(fake: FakeSlack, client: AsyncWebClient) -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "今日摘要"}},
        section("*苹果* 发布"),
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "more",
                    "value": "2",
                    "text": {"type": "plain_text", "text": "更多"},
                }
            ],
        },
    ]
    first = await client.chat_postMessage(channel="C1", text="今日摘要", blocks=blocks)
    second = await client.chat_postMessage(channel="C1", text="plain")
    assert first["ok"] and first["channel"] == "C1" and float(second["ts"]) > float(first["ts"])
    got = fake.messages("C1")
    assert [m.text for m in got] == ["今日摘要", "plain"]
    assert got[0].blocks == blocks and got[1].blocks is None and got[0].ts == first["ts"]
    assert fake.stats["accepted"] == 2 and fake.messages("C2") == []


async def test_tokens_are_checked(fake: FakeSlack) -> None:
    assert (await AsyncWebClient(fake.bot_token, base_url=fake.base_url).auth_test())["user_id"] == "U0BOT"
    bad = await error_of(
        AsyncWebClient("xoxb-wrong", base_url=fake.base_url).chat_postMessage(channel="C1", text="x")
    )
    assert bad.response["error"] == "invalid_auth"
    none = await error_of(AsyncWebClient(base_url=fake.base_url).auth_test())
    assert none.response["error"] == "not_authed"
    app_token = await error_of(
        AsyncWebClient(fake.bot_token, base_url=fake.base_url).apps_connections_open(app_token=fake.bot_token)
    )
    assert app_token.response["error"] == "not_allowed_token_type"
    assert fake.messages() == []


async def test_text_or_blocks_required(fake: FakeSlack, client: AsyncWebClient) -> None:
    err = await error_of(client.chat_postMessage(channel="C1", text="  "))
    assert err.response["error"] == "no_text"
    err = await error_of(client.chat_postMessage(channel="C1", text="x" * 40001))
    assert err.response["error"] == "msg_too_long"


@pytest.mark.parametrize(
    ("blocks", "reason"),
    [
        ([{"type": "divider"}] * 51, "no more than 50 items allowed [json-pointer:/blocks]"),
        ([section("x" * 3001)], "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"),
        (
            [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            "must be less than 151 characters [json-pointer:/blocks/0/text/text]",
        ),
        (
            [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}],
            "must be plain_text [json-pointer:/blocks/0/text/type]",
        ),
        (
            [{"type": "sektion", "text": {"type": "mrkdwn", "text": "x"}}],
            "unsupported type: sektion [json-pointer:/blocks/0/type]",
        ),
        ([{"type": "section"}], "must provide either text or fields [json-pointer:/blocks/0]"),
        ([{"type": "divider", "text": "x"}], "invalid additional property: text [json-pointer:/blocks/0]"),
        (
            [{"type": "actions", "elements": []}],
            "must provide between 1 and 25 items [json-pointer:/blocks/0/elements]",
        ),
        (
            [section("a") | {"block_id": "b"}, section("b") | {"block_id": "b"}],
            "duplicate block_id [json-pointer:/blocks/1/block_id]",
        ),
    ],
)
async def test_invalid_blocks(fake: FakeSlack, client: AsyncWebClient, blocks: list, reason: str) -> None:
    err = await error_of(client.chat_postMessage(channel="C1", text="fallback", blocks=blocks))
    assert err.response["error"] == "invalid_blocks"
    assert reason in err.response["errors"]
    assert f"[ERROR] {reason}" in err.response["response_metadata"]["messages"]
    assert fake.rejected("C1")[0].error == "invalid_blocks" and fake.messages() == []


async def test_limits_at_the_edge_are_accepted(fake: FakeSlack, client: AsyncWebClient) -> None:
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}, section("苹" * 3000)]
    blocks += [{"type": "divider"}] * 48
    assert validate_blocks(blocks) == []
    await client.chat_postMessage(channel="C1", text="edge", blocks=blocks)
    assert len(fake.messages("C1")[0].blocks or []) == 50


@pytest.mark.parametrize("kind", ["channel_not_found", "not_in_channel", "is_archived"])
async def test_channel_failures(fake: FakeSlack, client: AsyncWebClient, kind: str) -> None:
    fake.fail_channel("C9", kind)
    err = await error_of(client.chat_postMessage(channel="C9", text="x"))
    assert err.response["error"] == kind and err.response.status_code == 200
    await client.chat_postMessage(channel="C8", text="others work")
    fake.clear_channel("C9")
    await client.chat_postMessage(channel="C9", text="after clearing")
    assert fake.texts() == ["others work", "after clearing"]


async def test_rate_limit_answers_429_with_retry_after(fake: FakeSlack, client: AsyncWebClient) -> None:
    for i in range(3):  # the burst allowance
        await client.chat_postMessage(channel="C1", text=f"m{i}")
    err = await error_of(client.chat_postMessage(channel="C1", text="too fast"))
    assert err.response.status_code == 429 and err.response["error"] == "ratelimited"
    assert err.response.headers["Retry-After"] == "1"  # what slack_sdk's retry handler reads
    await client.chat_postMessage(channel="C2", text="another channel")
    assert fake.count_429("channel") == 1 and fake.texts("C1") == ["m0", "m1", "m2"]


async def test_slack_sdk_obeys_retry_after(fake: FakeSlack) -> None:
    fake.inject("ratelimited", retry_after=1)
    client = AsyncWebClient(
        fake.bot_token,
        base_url=fake.base_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    started = time.monotonic()
    await client.chat_postMessage(channel="C1", text="after waiting")
    assert time.monotonic() - started >= 0.9  # slept as Retry-After said
    assert fake.texts() == ["after waiting"] and fake.count_429("forced") == 1


async def test_limits_can_be_changed_and_turned_off() -> None:
    async with FakeSlack(limits=SlackLimits(per_channel_burst=1.0)) as fake:
        client = AsyncWebClient(fake.bot_token, base_url=fake.base_url)
        await client.chat_postMessage(channel="C1", text="1")
        assert (await error_of(client.chat_postMessage(channel="C1", text="2"))).response.status_code == 429
        fake.set_limits(enabled=False)
        for i in range(10):
            await client.chat_postMessage(channel="C1", text=f"n{i}")
        assert len(fake.messages("C1")) == 11


async def test_server_faults(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.inject("server_error")
    err = await error_of(client.chat_postMessage(channel="C1", text="x"))
    assert err.response.status_code == 500 and err.response["error"] == "internal_error"
    fake.inject("fatal_error", channel="C2")
    assert (await error_of(client.chat_postMessage(channel="C2", text="x"))).response[
        "error"
    ] == "fatal_error"
    await client.chat_postMessage(channel="C1", text="through")
    assert fake.texts() == ["through"] and fake.stats["5xx"] == 1


async def test_update_ephemeral_and_lookups(fake: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C1", text="page 1", blocks=[section("page 1")])
    await client.chat_update(channel="C1", ts=posted["ts"], text="page 2", blocks=[section("page 2")])
    assert fake.current("C1", posted["ts"]).text == "page 2" and fake.texts("C1") == ["page 1"]
    err = await error_of(client.chat_update(channel="C1", ts="1.2", text="x"))
    assert err.response["error"] == "message_not_found"
    await client.chat_postEphemeral(channel="C1", user="U7", text="only you")
    assert [m.text for m in fake.ephemerals("C1", user="U7")] == ["only you"]
    fake.set_user("U7", tz="Asia/Shanghai", locale="zh-CN")
    user = (await client.users_info(user="U7", include_locale=True))["user"]
    assert (user["tz"], user["locale"]) == ("Asia/Shanghai", "zh-CN")
    fake.set_channel("C1", name="news", is_private=True)
    info = (await client.conversations_info(channel="C1"))["channel"]
    assert info["name"] == "news" and info["is_private"]


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/slack/events"


def bolt_app(fake: FakeSlack) -> AsyncApp:
    app = AsyncApp(
        signing_secret=fake.signing_secret, client=AsyncWebClient(fake.bot_token, base_url=fake.base_url)
    )

    @app.command("/digest")
    async def digest(ack, respond, command) -> None:  # type: ignore[no-untyped-def]
        await ack()
        await respond(text=f"results for {command['text']}", response_type="ephemeral")

    @app.event("app_mention")
    async def mention(event, say) -> None:  # type: ignore[no-untyped-def]
        await say(f"mentioned: {event['text']}")

    @app.action("more")
    async def more(ack, action, respond) -> None:  # type: ignore[no-untyped-def]
        await ack()
        await respond(text=f"page {action['value']}", replace_original=True)

    return app


async def test_bolt_http_mode_with_signed_requests(fake: FakeSlack) -> None:
    runner, url = await _serve(bolt_app(fake).web_app(path="/slack/events"))
    try:
        secret = fake.signing_secret
        status, _ = await fake.slash_command(
            "/digest", "search 苹果", response_url=fake.response_url("r1")
        ).send_async(url, secret)
        assert status == 200
        assert await fake.await_until(lambda: bool(fake.responses("r1")))
        assert fake.responses("r1")[0]["text"] == "results for search 苹果"
        status, _ = await fake.app_mention("search 苹果", channel_id="C5").send_async(url, secret)
        assert status == 200 and await fake.await_messages(1)
        assert fake.texts("C5") == ["mentioned: <@U0BOT> search 苹果"]
        status, _ = await fake.block_action("more", "2", response_url=fake.response_url("r2")).send_async(
            url, secret
        )
        assert status == 200 and await fake.await_until(lambda: bool(fake.responses("r2")))
        assert fake.responses("r2")[0]["text"] == "page 2"
        status, body = await fake.url_verification("abc").send_async(url, secret)
        assert status == 200 and "abc" in body
        bad, _ = await fake.slash_command("/digest", "x").send_async(url, secret, bad_signature=True)
        stale, _ = await fake.slash_command("/digest", "x").send_async(
            url, secret, timestamp=int(time.time()) - 600
        )
        wrong, _ = await fake.slash_command("/digest", "x").send_async(url, "another-secret")
        assert (bad, stale, wrong) == (401, 401, 401)
        await asyncio.sleep(0.05)
        assert len(fake.responses()) == 2  # the refused requests ran nothing
    finally:
        await runner.cleanup()


def test_signature_matches_slacks_documented_example() -> None:
    # The example from Slack's "Verifying requests" guide.
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGl"
        b"gcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    assert slack_signature("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, body) == (
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


async def test_bolt_socket_mode(fake: FakeSlack) -> None:
    handler = AsyncSocketModeHandler(
        bolt_app(fake), fake.app_token, web_client=AsyncWebClient(base_url=fake.base_url)
    )
    await handler.connect_async()
    try:
        assert await fake.await_socket()
        key = "s1"
        ack = await fake.socket_send(
            "slash_commands",
            fake.slash_command_payload("/digest", "help", response_url=fake.response_url(key)),
        )
        assert ack is not None and "envelope_id" in ack
        assert await fake.await_until(lambda: bool(fake.responses(key)))
        assert fake.responses(key)[0]["text"] == "results for help"
        await fake.socket_send("events_api", fake.app_mention_payload("search 苹果", channel_id="C3"))
        assert await fake.await_messages(1, channel="C3")
        await fake.socket_send(
            "interactive", fake.block_action_payload("more", "3", response_url=fake.response_url("s2"))
        )
        assert await fake.await_until(lambda: bool(fake.responses("s2")))
        assert len(fake.acks()) == 3
    finally:
        await handler.close_async()


def test_thread_mode_with_the_blocking_client() -> None:
    with FakeSlack.in_thread(limits=SlackLimits(enabled=False)) as fake:
        client = WebClient(fake.bot_token, base_url=fake.base_url)
        for i in range(5):
            client.chat_postMessage(channel="C1", text=f"{i}")
        assert fake.wait_messages(5)
        assert fake.texts("C1") == [str(i) for i in range(5)]
        status, _ = fake.url_verification().send(fake.origin + "/nowhere", fake.signing_secret)
        assert status == 404
    assert fake._runner is None


async def test_socket_mode_client_reconnects_when_told_to(fake: FakeSlack) -> None:
    handler = AsyncSocketModeHandler(
        bolt_app(fake), fake.app_token, web_client=AsyncWebClient(base_url=fake.base_url)
    )
    await handler.connect_async()
    try:
        assert await fake.await_socket()
        await fake.socket_disconnect()
        assert await fake.await_until(lambda: fake.socket_connects == 2 and fake.socket_connected)
        key = fake.response_url()
        await fake.socket_send(
            "slash_commands", fake.slash_command_payload("/digest", "again", response_url=key)
        )
        assert await fake.await_until(lambda: bool(fake.responses()))
        assert fake.responses()[0]["text"] == "results for again"
    finally:
        await handler.close_async()


async def test_response_url_checks_what_is_posted(fake: FakeSlack) -> None:
    from slack_sdk.webhook.async_client import AsyncWebhookClient

    hook = AsyncWebhookClient(fake.response_url("k"))
    assert (await hook.send(text="x", blocks=[{"type": "divider"}] * 51)).status_code == 400
    assert (await hook.send(text=" ")).status_code == 400
    for i in range(5):
        assert (await hook.send(text=f"r{i}", response_type="ephemeral")).status_code == 200
    assert (await hook.send(text="sixth")).status_code == 404  # used_url
    assert [b["text"] for b in fake.responses("k")] == [f"r{i}" for i in range(5)]
    assert [r.error for r in fake.rejected(method="response_url")] == [
        "invalid_blocks",
        "no_text",
        "used_url",
    ]
