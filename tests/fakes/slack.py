"""A loopback fake of the Slack Web API (``AsyncWebClient(token, base_url=fake.base_url)``), a fake
Socket Mode websocket, a ``response_url`` sink, and signed-request builders for Bolt's HTTP mode.

See tests/fakes/README.md for the full API. In short::

    async with FakeSlack() as fake:
        client = AsyncWebClient(fake.bot_token, base_url=fake.base_url)
        fake.fail_channel("C9", "is_archived")
        fake.inject("ratelimited", times=2, retry_after=1)
        fake.messages("C1")                                   # accepted chat.postMessage, in order
        req = fake.slash_command("/digest", "search 苹果")     # signed request for Bolt HTTP mode
        status, body = await req.send_async("http://127.0.0.1:3000/slack/events", fake.signing_secret)
        await fake.socket_send("slash_commands", fake.slash_command_payload("/digest", "help"))
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx
from aiohttp import WSMsgType, web

from bot.adapters.slack.limits import (
    MAX_ACTION_ID,
    MAX_BLOCKS,
    MAX_BUTTON_VALUE,
    MAX_HEADER,
    MAX_SECTION,
    MAX_TEXT,
)
from tests.fakes.common import FakeServer, TokenBucket, json_field, read_params, retry_after_seconds

log = logging.getLogger(__name__)

CHANNEL_FAILURES = frozenset(
    {"channel_not_found", "not_in_channel", "is_archived", "account_inactive", "restricted_action"}
)
FAULT_KINDS = frozenset(
    {"ratelimited", "server_error", "service_unavailable", "fatal_error", "slow", "drop", *CHANNEL_FAILURES}
)


class SlackError(Exception):
    def __init__(
        self,
        error: str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}
        self.extra = extra or {}


@dataclass
class SlackLimits:
    """Per-channel posting limit: a token bucket of ``per_channel_rate`` messages per second with
    bursts of ``per_channel_burst`` (Slack: "1 per second per channel, short bursts allowed")."""

    enabled: bool = True
    per_channel_rate: float = 1.0
    per_channel_burst: float = 3.0


@dataclass(frozen=True)
class SlackMessage:
    channel: str
    ts: str
    text: str | None
    blocks: list[dict[str, Any]] | None
    method: str  # chat.postMessage | chat.postEphemeral | chat.update
    user: str | None  # for ephemerals
    thread_ts: str | None
    time: float
    mono: float
    params: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class SlackRejected:
    method: str
    channel: str | None
    status: int
    error: str
    detail: list[str]
    time: float
    params: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class SlackFault:
    kind: str
    method: str | None = "chat.postMessage"
    channel: str | None = None
    times: int | None = 1
    until: float | None = None
    retry_after: int = 1
    delay: float = 1.0
    hits: int = 0

    def matches(self, method: str, channel: str | None, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method.lower() != method.lower():
            return False
        return self.channel is None or self.channel == channel


@dataclass(frozen=True)
class SignedRequest:
    """A request as Slack would POST it to a Bolt HTTP endpoint; signed when sent."""

    body: bytes
    content_type: str

    def headers(
        self, signing_secret: str, *, timestamp: int | None = None, bad_signature: bool = False
    ) -> dict[str, str]:
        ts = int(time.time()) if timestamp is None else timestamp
        signature = slack_signature(signing_secret, ts, self.body)
        if bad_signature:
            signature = "v0=" + "0" * 64
        return {
            "Content-Type": self.content_type,
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": signature,
        }

    async def send_async(
        self,
        url: str,
        signing_secret: str,
        *,
        timestamp: int | None = None,
        bad_signature: bool = False,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> tuple[int, str]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            r = await client.post(
                url,
                content=self.body,
                headers=self.headers(signing_secret, timestamp=timestamp, bad_signature=bad_signature),
            )
        return r.status_code, r.text

    def send(
        self,
        url: str,
        signing_secret: str,
        *,
        timestamp: int | None = None,
        bad_signature: bool = False,
        timeout: float = 10.0,
    ) -> tuple[int, str]:
        with httpx.Client(timeout=timeout) as client:
            r = client.post(
                url,
                content=self.body,
                headers=self.headers(signing_secret, timestamp=timestamp, bad_signature=bad_signature),
            )
        return r.status_code, r.text


def slack_signature(signing_secret: str, timestamp: int, body: bytes) -> str:
    """``X-Slack-Signature`` v0: HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


# -- Block Kit validation -----------------------------------------------------------------------
class _Blocks:
    """Checks the shapes Slack checks; collects ``<message> [json-pointer:/blocks/…]`` errors."""

    KEYS: ClassVar[dict[str, set[str]]] = {
        "section": {"type", "block_id", "text", "fields", "accessory", "expand"},
        "header": {"type", "block_id", "text"},
        "divider": {"type", "block_id"},
        "context": {"type", "block_id", "elements"},
        "actions": {"type", "block_id", "elements"},
        "image": {"type", "block_id", "image_url", "slack_file", "alt_text", "title"},
        "rich_text": {"type", "block_id", "elements"},
        "markdown": {"type", "block_id", "text"},
    }

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._block_ids: set[str] = set()

    def err(self, message: str, pointer: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    def text_obj(self, obj: Any, at: str, *, limit: int, plain_only: bool = False) -> None:
        if not isinstance(obj, dict):
            self.err("must be an object", at)
            return
        kind = obj.get("type")
        if kind not in ("plain_text", "mrkdwn") or (plain_only and kind != "plain_text"):
            self.err(
                "must be plain_text" if plain_only else "must be one of plain_text or mrkdwn", f"{at}/type"
            )
            return
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            self.err("must be more than 0 characters", f"{at}/text")
        elif len(text) > limit:
            self.err(f"must be less than {limit + 1} characters", f"{at}/text")
        if kind == "mrkdwn" and "emoji" in obj:
            self.err("invalid additional property: emoji", at)

    def element(self, el: Any, at: str) -> None:
        if not isinstance(el, dict) or not isinstance(el.get("type"), str):
            self.err("must provide an object with a type", at)
            return
        if el["type"] == "button":
            self.text_obj(el.get("text"), f"{at}/text", limit=75, plain_only=True)
            for key, limit in (("action_id", MAX_ACTION_ID), ("value", MAX_BUTTON_VALUE), ("url", 3000)):
                value = el.get(key)
                if value is not None and (not isinstance(value, str) or not value or len(value) > limit):
                    self.err(f"must be between 1 and {limit} characters", f"{at}/{key}")
            if "style" in el and el["style"] not in ("primary", "danger"):
                self.err("must be one of primary or danger", f"{at}/style")

    def block(self, block: Any, i: int) -> None:
        at = f"/blocks/{i}"
        if not isinstance(block, dict):
            self.err("must be an object", at)
            return
        kind = block.get("type")
        if kind not in self.KEYS:
            self.err(f"unsupported type: {kind}", f"{at}/type")
            return
        for key in block.keys() - self.KEYS[kind]:
            self.err(f"invalid additional property: {key}", at)
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not 1 <= len(block_id) <= 255:
                self.err("must be between 1 and 255 characters", f"{at}/block_id")
            elif block_id in self._block_ids:
                self.err("duplicate block_id", f"{at}/block_id")
            else:
                self._block_ids.add(block_id)
        if kind == "section":
            if "text" not in block and "fields" not in block:
                self.err("must provide either text or fields", at)
            if "text" in block:
                self.text_obj(block["text"], f"{at}/text", limit=MAX_SECTION)
            if "fields" in block:
                fields = block["fields"]
                if not isinstance(fields, list) or not 1 <= len(fields) <= 10:
                    self.err("must provide between 1 and 10 items", f"{at}/fields")
                else:
                    for j, f in enumerate(fields):
                        self.text_obj(f, f"{at}/fields/{j}", limit=2000)
            if "accessory" in block:
                self.element(block["accessory"], f"{at}/accessory")
        elif kind == "header":
            self.text_obj(block.get("text"), f"{at}/text", limit=MAX_HEADER, plain_only=True)
        elif kind in ("context", "actions"):
            limit = 10 if kind == "context" else 25
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= limit:
                self.err(f"must provide between 1 and {limit} items", f"{at}/elements")
                return
            for j, el in enumerate(elements):
                if kind == "context":
                    if isinstance(el, dict) and el.get("type") == "image":
                        if (not el.get("image_url") and not el.get("slack_file")) or not el.get("alt_text"):
                            self.err("must provide image_url and alt_text", f"{at}/elements/{j}")
                    else:
                        self.text_obj(el, f"{at}/elements/{j}", limit=MAX_SECTION)
                else:
                    self.element(el, f"{at}/elements/{j}")
        elif kind == "image":
            if not block.get("image_url") and not block.get("slack_file"):
                self.err("must provide image_url", at)
            alt = block.get("alt_text")
            if not isinstance(alt, str) or not 1 <= len(alt) <= 2000:
                self.err("must be between 1 and 2000 characters", f"{at}/alt_text")
        elif kind == "markdown":
            text = block.get("text")
            if not isinstance(text, str) or not text or len(text) > 12000:
                self.err("must be between 1 and 12000 characters", f"{at}/text")


def validate_blocks(blocks: Any) -> list[str]:
    """Slack's complaints about ``blocks`` (empty list = valid)."""
    if not isinstance(blocks, list):
        return ["must be an array [json-pointer:/blocks]"]
    if len(blocks) > MAX_BLOCKS:
        return [f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"]
    checker = _Blocks()
    for i, block in enumerate(blocks):
        checker.block(block, i)
    return checker.errors


class FakeSlack(FakeServer):
    """The fake Web API + Socket Mode + response_url sink. Public methods are thread-safe."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-1-test-token",
        signing_secret: str = "test-signing-secret",
        limits: SlackLimits | None = None,
        team_id: str = "T0TEST",
        bot_user_id: str = "U0BOT",
    ) -> None:
        super().__init__()
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.limits = limits or SlackLimits()
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = "B0BOT"
        self.app_id = "A0APP"
        self.clock = time.monotonic
        self.response_url_uses = 5
        self._reset_state()

    def _reset_state(self) -> None:
        self._messages: list[SlackMessage] = []
        self._ephemerals: list[SlackMessage] = []
        self._updates: list[SlackMessage] = []
        self._current: dict[tuple[str, str], SlackMessage] = {}
        self._rejected: list[SlackRejected] = []
        self._requests: list[tuple[str, dict[str, Any]]] = []
        self._counters: Counter[str] = Counter()
        self._channel_failures: dict[str, str] = {}
        self._faults: list[SlackFault] = []
        self._channels: dict[str, dict[str, Any]] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._limiters: dict[str, TokenBucket] = {}
        self._ts = itertools.count(1)
        self._responses: dict[str, list[dict[str, Any]]] = {}
        self._response_uses: dict[str, int] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ack_log: list[dict[str, Any]] = []
        self._socket_connects = 0

    # ------------------------------------------------------------------ addresses
    @property
    def base_url(self) -> str:
        """slack_sdk's ``base_url``: the method name is appended to it."""
        return f"{self.origin}/api/"

    def response_url(self, key: str | None = None) -> str:
        """A fresh ``response_url``; what is POSTed to it is kept under ``key``."""
        key = key or uuid.uuid4().hex[:12]
        with self._lock:
            self._responses.setdefault(key, [])
        return f"{self.origin}/response/{key}"

    def _setup(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_post("/response/{key}", self._handle_response_url)
        app.router.add_get("/socket", self._handle_socket)

    async def _on_stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        for fut in self._acks.values():
            if not fut.done():
                fut.cancel()

    # ------------------------------------------------------------------ knobs
    def set_limits(self, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                if not hasattr(self.limits, key):
                    raise AttributeError(f"SlackLimits has no {key!r}")
                setattr(self.limits, key, value)
            self._limiters.clear()

    def set_channel(
        self,
        channel: str,
        *,
        name: str | None = None,
        is_im: bool = False,
        is_private: bool = False,
        is_member: bool = True,
    ) -> None:
        with self._lock:
            self._channels[channel] = {
                "name": name or channel.lower(),
                "is_im": is_im,
                "is_private": is_private,
                "is_member": is_member,
            }

    def set_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        tz: str = "America/Los_Angeles",
        locale: str = "en-US",
        is_admin: bool = False,
    ) -> None:
        with self._lock:
            self._users[user_id] = {
                "name": name or user_id.lower(),
                "tz": tz,
                "locale": locale,
                "is_admin": is_admin,
            }

    def fail_channel(self, channel: str, kind: str) -> None:
        """Every call naming ``channel`` fails with ``{"ok": false, "error": kind}`` until cleared."""
        if kind not in CHANNEL_FAILURES:
            raise ValueError(f"unknown channel failure {kind!r}; one of {sorted(CHANNEL_FAILURES)}")
        with self._lock:
            self._channel_failures[channel] = kind

    def clear_channel(self, channel: str) -> None:
        with self._lock:
            self._channel_failures.pop(channel, None)

    def inject(
        self,
        kind: str,
        *,
        method: str | None = "chat.postMessage",
        channel: str | None = None,
        times: int | None = 1,
        duration: float | None = None,
        retry_after: int = 1,
        delay: float = 1.0,
    ) -> SlackFault:
        """Faults: ratelimited (HTTP 429 + Retry-After), server_error (HTTP 500), service_unavailable
        (HTTP 503), fatal_error (200, ok=false), slow (answer normally after ``delay``), drop (close
        the connection after ``delay``, nothing accepted), or a CHANNEL_FAILURES kind."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(FAULT_KINDS)}")
        until = self.clock() + duration if duration is not None else None
        if duration is not None and times == 1:
            times = None
        fault = SlackFault(kind, method, channel, times, until, retry_after, delay)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # ------------------------------------------------------------------ accessors
    def messages(self, channel: str | None = None) -> list[SlackMessage]:
        """Accepted chat.postMessage calls in order (as posted; updates not applied)."""
        with self._lock:
            return [m for m in self._messages if channel is None or m.channel == channel]

    def texts(self, channel: str | None = None) -> list[str | None]:
        return [m.text for m in self.messages(channel)]

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[SlackMessage]:
        with self._lock:
            return [
                m
                for m in self._ephemerals
                if (channel is None or m.channel == channel) and (user is None or m.user == user)
            ]

    def updates(self, channel: str | None = None) -> list[SlackMessage]:
        with self._lock:
            return [m for m in self._updates if channel is None or m.channel == channel]

    def current(self, channel: str, ts: str) -> SlackMessage | None:
        with self._lock:
            return self._current.get((channel, ts))

    def rejected(self, channel: str | None = None, method: str | None = None) -> list[SlackRejected]:
        with self._lock:
            return [
                r
                for r in self._rejected
                if (channel is None or r.channel == channel)
                and (method is None or r.method.lower() == method.lower())
            ]

    def requests(self, method: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return [r for r in self._requests if method is None or r[0].lower() == method.lower()]

    def responses(self, key: str | None = None) -> list[dict[str, Any]]:
        """Bodies POSTed to response URLs (all, in order, or those of one key)."""
        with self._lock:
            if key is not None:
                return list(self._responses.get(key, []))
            return [b for bodies in self._responses.values() for b in bodies]

    def acks(self) -> list[dict[str, Any]]:
        """Socket Mode acknowledgements received, in order."""
        with self._lock:
            return list(self._ack_log)

    @property
    def socket_connected(self) -> bool:
        with self._lock:
            return any(not ws.closed for ws in self._sockets)

    @property
    def stats(self) -> dict[str, int]:
        """accepted, ephemeral, updated, rejected, 429, 429_channel, 429_forced, 5xx, <method>, …"""
        with self._lock:
            return dict(self._counters)

    def count_429(self, kind: str | None = None) -> int:
        with self._lock:
            return self._counters["429" if kind is None else f"429_{kind}"]

    def wait_messages(self, n: int, timeout: float = 5.0, channel: str | None = None) -> bool:
        return self.wait_until(lambda: len(self.messages(channel)) >= n, timeout)

    async def await_messages(
        self,
        n: int,
        timeout: float = 5.0,  # noqa: ASYNC109
        channel: str | None = None,
    ) -> bool:
        return await self.await_until(lambda: len(self.messages(channel)) >= n, timeout)

    def reset(self) -> None:
        with self._lock:
            self._reset_state()

    # ------------------------------------------------------------------ payload builders
    def slash_command_payload(
        self,
        command: str = "/digest",
        text: str = "",
        *,
        user_id: str = "U100",
        channel_id: str = "C100",
        response_url: str | None = None,
        user_name: str = "alice",
        channel_name: str = "general",
    ) -> dict[str, str]:
        """The form fields Slack sends for a slash command (response_url on this fake)."""
        return {
            "token": "verification-token-unused",
            "team_id": self.team_id,
            "team_domain": "test",
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url or self.response_url(),
            "trigger_id": f"{next(self._ts)}.{uuid.uuid4().hex[:8]}",
        }

    def event_payload(self, event: dict[str, Any]) -> dict[str, Any]:
        """An Events API ``event_callback`` envelope around ``event``."""
        event = {"event_ts": f"{time.time():.6f}", **event}
        return {
            "token": "verification-token-unused",
            "team_id": self.team_id,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
        }

    def app_mention_payload(
        self, text: str, *, user_id: str = "U100", channel_id: str = "C100"
    ) -> dict[str, Any]:
        ts = f"{time.time():.6f}"
        return self.event_payload(
            {
                "type": "app_mention",
                "user": user_id,
                "channel": channel_id,
                "text": f"<@{self.bot_user_id}> {text}",
                "ts": ts,
            }
        )

    def block_action_payload(
        self,
        action_id: str,
        value: str = "",
        *,
        user_id: str = "U100",
        channel_id: str = "C100",
        message_ts: str | None = None,
        response_url: str | None = None,
        block_id: str = "b1",
        ephemeral: bool = False,
    ) -> dict[str, Any]:
        """A ``block_actions`` payload for a button press."""
        ts = message_ts or f"{time.time():.6f}"
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel_id,
            "is_ephemeral": ephemeral,
        }
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user_id, "username": "alice", "name": "alice", "team_id": self.team_id},
            "api_app_id": self.app_id,
            "token": "verification-token-unused",
            "container": container,
            "trigger_id": f"{next(self._ts)}.{uuid.uuid4().hex[:8]}",
            "team": {"id": self.team_id, "domain": "test"},
            "channel": {"id": channel_id, "name": "general"},
            "response_url": response_url or self.response_url(),
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block_id,
                    "value": value,
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                    "text": {"type": "plain_text", "text": "more"},
                }
            ],
        }
        if not ephemeral:
            with self._lock:
                msg = self._current.get((channel_id, ts))
            if msg is not None:
                payload["message"] = {
                    "type": "message",
                    "ts": ts,
                    "text": msg.text or "",
                    "blocks": msg.blocks or [],
                    "user": self.bot_user_id,
                }
        return payload

    # HTTP-mode requests for Bolt (sign and send with .send_async(url, secret) / .send(...)).
    def slash_command(self, command: str = "/digest", text: str = "", **kwargs: Any) -> SignedRequest:
        body = urlencode(self.slash_command_payload(command, text, **kwargs)).encode()
        return SignedRequest(body, "application/x-www-form-urlencoded")

    def event(self, event: dict[str, Any]) -> SignedRequest:
        return SignedRequest(json.dumps(self.event_payload(event)).encode(), "application/json")

    def app_mention(self, text: str, **kwargs: Any) -> SignedRequest:
        return SignedRequest(
            json.dumps(self.app_mention_payload(text, **kwargs)).encode(), "application/json"
        )

    def block_action(self, action_id: str, value: str = "", **kwargs: Any) -> SignedRequest:
        payload = json.dumps(self.block_action_payload(action_id, value, **kwargs))
        return SignedRequest(urlencode({"payload": payload}).encode(), "application/x-www-form-urlencoded")

    def url_verification(self, challenge: str = "challenge-xyz") -> SignedRequest:
        body = {"token": "verification-token-unused", "challenge": challenge, "type": "url_verification"}
        return SignedRequest(json.dumps(body).encode(), "application/json")

    # ------------------------------------------------------------------ Socket Mode
    async def _handle_socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        with self._lock:
            self._sockets.append(ws)
            self._socket_connects += 1
            self._counters["socket_connects"] += 1
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 3600},
                "connection_info": {"app_id": self.app_id},
            }
        )
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                envelope_id = data.get("envelope_id") if isinstance(data, dict) else None
                if not envelope_id:
                    continue
                with self._lock:
                    self._ack_log.append(data)
                    fut = self._acks.pop(envelope_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
        finally:
            with self._lock:
                if ws in self._sockets:
                    self._sockets.remove(ws)
        return ws

    async def _socket_send_here(
        self, envelope: dict[str, Any], wait_ack: float | None
    ) -> dict[str, Any] | None:
        with self._lock:
            live = [ws for ws in self._sockets if not ws.closed]
        if not live:
            raise RuntimeError("no Socket Mode client is connected")
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._acks[envelope["envelope_id"]] = fut
        await live[-1].send_json(envelope)
        if wait_ack is None:
            return None
        return await asyncio.wait_for(fut, wait_ack)

    async def socket_send(
        self,
        type: str,
        payload: dict[str, Any],
        *,
        wait_ack: float | None = 5.0,
        accepts_response_payload: bool | None = None,
    ) -> dict[str, Any] | None:
        """Send an envelope (``slash_commands`` | ``events_api`` | ``interactive``) to the connected
        Socket Mode client and return its ack (``{"envelope_id", "payload"?}``). Works from any loop."""
        if accepts_response_payload is None:
            accepts_response_payload = type != "events_api"
        envelope = {
            "envelope_id": str(uuid.uuid4()),
            "type": type,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if type == "events_api":
            envelope["retry_attempt"] = 0
            envelope["retry_reason"] = ""
        loop = self._loop
        assert loop is not None, "the fake is not running"
        if asyncio.get_running_loop() is loop:
            return await self._socket_send_here(envelope, wait_ack)
        fut = asyncio.run_coroutine_threadsafe(self._socket_send_here(envelope, wait_ack), loop)
        return await asyncio.wrap_future(fut)

    def socket_send_sync(
        self,
        type: str,
        payload: dict[str, Any],
        *,
        wait_ack: float | None = 5.0,
        accepts_response_payload: bool | None = None,
    ) -> dict[str, Any] | None:
        """Blocking variant of ``socket_send`` for thread mode."""
        loop = self._loop
        assert loop is not None, "the fake is not running"
        return asyncio.run_coroutine_threadsafe(
            self.socket_send(
                type, payload, wait_ack=wait_ack, accepts_response_payload=accepts_response_payload
            ),
            loop,
        ).result((wait_ack or 5.0) + 5)

    async def _disconnect_here(self, reason: str) -> None:
        with self._lock:
            live = [ws for ws in self._sockets if not ws.closed]
        for ws in live:
            await ws.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}})

    async def socket_disconnect(self, reason: str = "refresh_requested") -> None:
        """Tell connected clients to reconnect (``{"type": "disconnect", "reason": …}``), as Slack
        does every few hours; a well-behaved client calls apps.connections.open again."""
        loop = self._loop
        assert loop is not None, "the fake is not running"
        if asyncio.get_running_loop() is loop:
            await self._disconnect_here(reason)
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._disconnect_here(reason), loop))

    @property
    def socket_connects(self) -> int:
        """How many Socket Mode connections were opened so far."""
        with self._lock:
            return self._socket_connects

    def wait_socket(self, timeout: float = 5.0) -> bool:
        return self.wait_until(lambda: any(not ws.closed for ws in self._sockets), timeout)

    async def await_socket(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
        return await self.await_until(lambda: any(not ws.closed for ws in self._sockets), timeout)

    # ------------------------------------------------------------------ HTTP
    async def _handle_response_url(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        error = None
        if not isinstance(body, dict):
            error = "invalid_payload"
        elif body.get("blocks") is not None and validate_blocks(body["blocks"]):
            error = "invalid_blocks"
        elif not (str(body.get("text") or "").strip() or body.get("blocks") or body.get("delete_original")):
            error = "no_text"
        with self._lock:
            uses = self._response_uses.get(key, 0)
            if error is None and uses >= self.response_url_uses:
                error = "used_url"  # Slack honours a response_url five times
            if error is not None:
                self._rejected.append(
                    SlackRejected(
                        "response_url",
                        key,
                        404 if error == "used_url" else 400,
                        error,
                        [],
                        time.time(),
                        {"body": body},
                    )
                )
                self._counters["rejected"] += 1
                return web.Response(status=404 if error == "used_url" else 400, text=error)
            self._response_uses[key] = uses + 1
            self._responses.setdefault(key, []).append(body)
            self._counters["responses"] += 1
        return web.Response(text="ok")

    def _answer(
        self, body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.json_response(body, status=status, headers=headers)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            params = await read_params(request)
        except (ValueError, UnicodeDecodeError):
            return self._answer({"ok": False, "error": "invalid_json"})
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else str(params.pop("token", "") or "")
        handler = self._methods().get(method.lower())
        channel = params.get("channel")
        channel = str(channel) if channel is not None else None
        with self._lock:
            self._requests.append((method, params))
            self._counters[method] += 1
        try:
            if handler is None:
                raise SlackError("unknown_method", status=404)
            self._check_token(method, token)
            await self._apply_faults(method, channel)
            result = await handler(params)
        except SlackError as err:
            self._record_reject(method, channel, err, params)
            body: dict[str, Any] = {"ok": False, "error": err.error, **err.extra}
            return self._answer(body, err.status, err.headers)
        except _Drop:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=504)
        except (ValueError, TypeError, KeyError) as exc:
            err = SlackError(
                "invalid_arguments", extra={"response_metadata": {"messages": [f"[ERROR] {exc}"]}}
            )
            self._record_reject(method, channel, err, params)
            return self._answer({"ok": False, "error": err.error, **err.extra})
        return self._answer({"ok": True, **result})

    def _check_token(self, method: str, token: str) -> None:
        if not token:
            raise SlackError("not_authed")
        if method.lower() == "apps.connections.open":
            if token == self.bot_token:
                raise SlackError("not_allowed_token_type")
            if token != self.app_token:
                raise SlackError("invalid_auth")
            return
        if token != self.bot_token:
            raise SlackError("not_allowed_token_type" if token == self.app_token else "invalid_auth")

    def _record_reject(self, method: str, channel: str | None, err: SlackError, params: dict) -> None:
        detail = list(err.extra.get("errors", []))
        with self._lock:
            self._rejected.append(
                SlackRejected(method, channel, err.status, err.error, detail, time.time(), params)
            )
            self._counters["rejected"] += 1
            if err.status == 429:
                self._counters["429"] += 1
            elif err.status >= 500:
                self._counters["5xx"] += 1

    async def _apply_faults(self, method: str, channel: str | None) -> None:
        now = self.clock()
        with self._lock:
            failure = self._channel_failures.get(channel) if channel is not None else None
            fault = next((f for f in self._faults if f.matches(method, channel, now)), None)
            if fault is not None:
                fault.hits += 1
        if fault is not None:
            kind = fault.kind
            if kind == "ratelimited":
                with self._lock:
                    self._counters["429_forced"] += 1
                raise SlackError("ratelimited", status=429, headers={"Retry-After": str(fault.retry_after)})
            if kind == "server_error":
                raise SlackError("internal_error", status=500)
            if kind == "service_unavailable":
                raise SlackError("service_unavailable", status=503)
            if kind == "fatal_error":
                raise SlackError("fatal_error")
            if kind == "slow":
                with self._lock:
                    self._counters["slow"] += 1
                await asyncio.sleep(fault.delay)
            elif kind == "drop":
                with self._lock:
                    self._counters["dropped"] += 1
                await asyncio.sleep(fault.delay)
                raise _Drop
            else:
                raise SlackError(kind)
        if failure is not None:
            raise SlackError(failure)

    def _methods(self) -> dict[str, Any]:
        return {
            "auth.test": self._auth_test,
            "api.test": self._api_test,
            "chat.postmessage": self._post_message,
            "chat.postephemeral": self._post_ephemeral,
            "chat.update": self._chat_update,
            "conversations.info": self._conversations_info,
            "users.info": self._users_info,
            "apps.connections.open": self._connections_open,
        }

    # ------------------------------------------------------------------ methods
    async def _api_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"args": params}

    async def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://test.slack.com/",
            "team": "Test",
            "user": "digestbot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    async def _connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"ws://127.0.0.1:{self.port}/socket?ticket={uuid.uuid4().hex}&app_id={self.app_id}"}

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _content(self, params: dict[str, Any], *, required: bool = True) -> tuple[str | None, list | None]:
        text = params.get("text")
        text = None if text is None else str(text)
        try:
            blocks = json_field(params, "blocks")
        except ValueError:
            raise SlackError("invalid_blocks_format") from None
        if blocks in ("", None):
            blocks = None
        if blocks is not None:
            if not isinstance(blocks, list):
                raise SlackError("invalid_blocks_format")
            errors = validate_blocks(blocks)
            if errors:
                raise SlackError(
                    "invalid_blocks",
                    extra={
                        "errors": errors,
                        "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]},
                    },
                )
        if required and not (text and text.strip()) and not blocks and not params.get("attachments"):
            raise SlackError("no_text")
        if text is not None and len(text) > MAX_TEXT:
            raise SlackError("msg_too_long")
        return text, blocks

    def _channel(self, params: dict[str, Any]) -> str:
        channel = params.get("channel")
        if not channel:
            raise SlackError("channel_not_found")
        return str(channel)

    def _check_rate(self, channel: str) -> None:
        if not self.limits.enabled:
            return
        now = self.clock()
        with self._lock:
            bucket = self._limiters.get(channel)
            if bucket is None:
                bucket = self._limiters[channel] = TokenBucket(
                    self.limits.per_channel_rate, self.limits.per_channel_burst
                )
            wait = bucket.check(now)
            if wait <= 0:
                bucket.hit(now)
                return
            self._counters["429_channel"] += 1
        raise SlackError("ratelimited", status=429, headers={"Retry-After": str(retry_after_seconds(wait))})

    def _message_obj(self, msg: SlackMessage) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "ts": msg.ts,
            "text": msg.text or "",
            "team": self.team_id,
        }
        if msg.blocks is not None:
            obj["blocks"] = msg.blocks
        if msg.thread_ts:
            obj["thread_ts"] = msg.thread_ts
        return obj

    async def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        text, blocks = self._content(params)
        self._check_rate(channel)
        thread_ts = params.get("thread_ts")
        with self._lock:
            msg = SlackMessage(
                channel,
                self._next_ts(),
                text,
                blocks,
                "chat.postMessage",
                None,
                str(thread_ts) if thread_ts else None,
                time.time(),
                time.monotonic(),
                dict(params),
            )
            self._messages.append(msg)
            self._current[(channel, msg.ts)] = msg
            self._counters["accepted"] += 1
        return {"channel": channel, "ts": msg.ts, "message": self._message_obj(msg)}

    async def _post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        user = params.get("user")
        if not user:
            raise SlackError("user_not_in_channel")
        text, blocks = self._content(params)
        with self._lock:
            msg = SlackMessage(
                channel,
                self._next_ts(),
                text,
                blocks,
                "chat.postEphemeral",
                str(user),
                None,
                time.time(),
                time.monotonic(),
                dict(params),
            )
            self._ephemerals.append(msg)
            self._counters["ephemeral"] += 1
        return {"message_ts": msg.ts}

    async def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        ts = str(params.get("ts") or "")
        with self._lock:
            old = self._current.get((channel, ts))
        if old is None:
            raise SlackError("message_not_found")
        text, blocks = self._content(params, required=False)
        if text is None and blocks is None:
            raise SlackError("no_text")
        with self._lock:
            msg = SlackMessage(
                channel,
                ts,
                text if text is not None else old.text,
                blocks if blocks is not None else old.blocks,
                "chat.update",
                None,
                old.thread_ts,
                time.time(),
                time.monotonic(),
                dict(params),
            )
            self._updates.append(msg)
            self._current[(channel, ts)] = msg
            self._counters["updated"] += 1
        return {"channel": channel, "ts": ts, "text": msg.text or "", "message": self._message_obj(msg)}

    async def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        with self._lock:
            info = dict(self._channels.get(channel) or {})
        is_im = info.get("is_im", channel.startswith("D"))
        return {
            "channel": {
                "id": channel,
                "name": info.get("name", channel.lower()),
                "is_channel": not is_im,
                "is_group": False,
                "is_im": is_im,
                "is_private": info.get("is_private", channel.startswith("G")),
                "is_archived": False,
                "is_member": info.get("is_member", True),
                "created": 1700000000,
            }
        }

    async def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = str(params.get("user") or "")
        if not user_id:
            raise SlackError("user_not_found")
        with self._lock:
            info = self._users.get(user_id)
        if info is None and not user_id.startswith(("U", "W")):
            raise SlackError("user_not_found")
        info = info or {
            "name": user_id.lower(),
            "tz": "America/Los_Angeles",
            "locale": "en-US",
            "is_admin": False,
        }
        user: dict[str, Any] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": info["name"],
            "real_name": info["name"].title(),
            "tz": info["tz"],
            "tz_offset": 0,
            "is_admin": info["is_admin"],
            "is_bot": False,
            "deleted": False,
            "profile": {"display_name": info["name"], "real_name": info["name"].title()},
        }
        if str(params.get("include_locale", "")).lower() in ("true", "1"):
            user["locale"] = info["locale"]
        return {"user": user}


class _Drop(Exception):
    """Internal: close the connection without answering."""
