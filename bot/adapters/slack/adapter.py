"""Slack adapter: I/O through slack-bolt's AsyncApp (rendering lives in render.py).

Socket Mode (app token) by default; HTTP mode serves Bolt at ``/slack/events`` on
``port`` from an aiohttp server started on the running loop, with Bolt checking every
request's signature (bad or stale: 401). Neither path lets Bolt own the process.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from bot.adapters.base import AdapterBase, AdapterConfig, AdapterContext, CommandHandler
from bot.adapters.http import listen, listening_port
from bot.adapters.slack import render as r
from bot.delivery.ratelimit import RateLimits
from bot.i18n import t
from bot.model import Incoming, Reply, SendError

if TYPE_CHECKING:
    from aiohttp import web
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient


log = logging.getLogger(__name__)

_CHAT_ID_RE = re.compile(r"^[CDGU][A-Z0-9]{2,30}$")
_MENTION_RE = re.compile(r"^\s*(<@[A-Z0-9]+(\|[^>]*)?>\s*)+")
# Slack's "ack within 3 s": answer in the ack when the command is quick, else follow up.
ACK_BUDGET = 2.5
# error codes -> SendError kinds (https://api.slack.com/methods/chat.postMessage#errors)
ERROR_KINDS = {
    "ratelimited": "retry_after",
    "rate_limited": "retry_after",
    "channel_not_found": "not_found",
    "user_not_found": "not_found",
    "is_archived": "kicked",
    "not_in_channel": "kicked",
    "restricted_action": "kicked",
    "account_inactive": "deactivated",
    "user_disabled": "deactivated",
    "invalid_blocks": "markup",
    "invalid_blocks_format": "markup",
    "invalid_attachments": "markup",
    "internal_error": "transient",
    "fatal_error": "transient",
    "service_unavailable": "transient",
    "request_timeout": "transient",
}


class SlackConfig(AdapterConfig):
    # chat.postMessage: about 1 message per second per channel, short bursts allowed.
    rate_limits: RateLimits | None = Field(default_factory=lambda: RateLimits(
        per_bot_per_second=20.0, per_chat_per_second=1.0, per_group_per_minute=60.0))
    bot_token: SecretStr
    app_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    mode: Literal["socket", "http"] = "socket"
    host: str = "0.0.0.0"
    port: int = Field(default=3000, ge=0, le=65535)
    path: str = "/slack/events"
    base_url: str = "https://slack.com/api/"
    command: str = "/digest"
    search_command: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    # A new subscriber's language from their Slack locale (users.info; needs the users:read scope).
    user_locale: bool = True

    @field_validator("command", "search_command")
    @classmethod
    def _slash(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"/[a-z0-9_\-]{1,31}", v):
            raise ValueError(f"a slash command looks like /digest (got {v!r})")
        return v

    @field_validator("base_url")
    @classmethod
    def _base(cls, v: str) -> str:
        return v if v.endswith("/") else v + "/"

    @model_validator(mode="after")
    def _mode(self) -> SlackConfig:
        if self.mode == "socket" and (self.app_token is None or not self.app_token.get_secret_value()):
            raise ValueError("socket mode needs app_token (an xapp-… token with connections:write)")
        secret = self.signing_secret.get_secret_value() if self.signing_secret else ""
        if self.mode == "http" and not secret:
            raise ValueError("http mode needs signing_secret (to verify Slack's request signatures)")
        return self


def classify(exc: Exception) -> SendError:
    """Map slack_sdk's exceptions to delivery's SendError kinds."""
    from slack_sdk.errors import SlackApiError

    if isinstance(exc, SlackApiError):
        resp = exc.response
        status = getattr(resp, "status_code", 200) or 200
        try:
            code = str(resp.get("error") or "")
        except Exception:
            code = ""
        headers = {k.lower(): v for k, v in (getattr(resp, "headers", None) or {}).items()}
        msg = f"{code or 'error'} (HTTP {status})"
        if status == 429 or code in ("ratelimited", "rate_limited"):
            raw = headers.get("retry-after")
            if isinstance(raw, list):
                raw = raw[0] if raw else None
            try:
                secs = float(raw) if raw is not None else 1.0
            except ValueError:
                secs = 1.0
            return SendError("retry_after", msg, retry_after=secs)
        if status >= 500:
            return SendError("transient", msg)
        return SendError(ERROR_KINDS.get(code, "fatal"), msg)
    try:
        import aiohttp

        if isinstance(exc, aiohttp.ClientError):
            return SendError("transient", str(exc) or type(exc).__name__)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(exc, OSError | asyncio.TimeoutError):
        return SendError("transient", str(exc) or type(exc).__name__)
    return SendError("fatal", str(exc) or type(exc).__name__)


def chat_type_of(channel_id: str, channel_name: str | None = None) -> str:
    if channel_id.startswith("D") or channel_name == "directmessage":
        return "private"
    if channel_id.startswith("G") or channel_name == "privategroup":
        return "group"
    return "channel"


class SlackAdapter(AdapterBase[SlackConfig]):
    config_model = SlackConfig
    renderer = staticmethod(r.render)

    def __init__(self, name: str, config: SlackConfig, context: AdapterContext):
        super().__init__(name, config, context)
        self._client: AsyncWebClient | None = None
        self._bolt: AsyncApp | None = None
        self._socket: Any = None
        self._runner: web.AppRunner | None = None
        self._locales: dict[str, tuple[str | None, float]] = {}

    @staticmethod
    def normalise_chat_id(chat_id: str) -> tuple[str, str]:
        cid = chat_id.strip()
        if not _CHAT_ID_RE.match(cid):
            raise ValueError(f"not a Slack channel id: {chat_id!r} (e.g. C0123ABCD, or a user id U…)")
        return cid, "private" if cid[0] in "DU" else chat_type_of(cid)

    @property
    def client(self) -> AsyncWebClient:
        if self._client is None:
            from slack_sdk.web.async_client import AsyncWebClient

            self._client = AsyncWebClient(token=self.config.bot_token.get_secret_value(),
                                          base_url=self.config.base_url, timeout=int(self.config.timeout))
        return self._client

    # -- lifecycle --------------------------------------------------------------------------------

    def build_bolt(self) -> AsyncApp:
        """The Bolt app with every listener; exposed for tests."""
        from slack_bolt.async_app import AsyncApp

        c = self.config
        secret = c.signing_secret.get_secret_value() if c.signing_secret else None
        bolt = AsyncApp(
            client=self.client,
            signing_secret=secret,
            # Socket Mode frames are authenticated by the app token, not signatures.
            request_verification_enabled=c.mode == "http",
            logger=logging.getLogger("slack_bolt.digestbot"),
        )
        bolt.command(c.command)(self._on_slash)
        if c.search_command:
            bolt.command(c.search_command)(self._on_search_slash)
        # render.py makes repeated action ids unique as "settings#2"; the action is the part before '#'.
        bolt.action(re.compile(r"^[a-z_]+(#\d+)?$"))(self._on_action)
        bolt.event("app_mention")(self._on_mention)
        bolt.event("message")(self._ignore)  # DMs and channel chatter: nothing to do, no warnings
        bolt.error(self._on_error)
        return bolt

    async def start(self, on_command: CommandHandler) -> None:
        self._on_command = on_command
        self._bolt = self.build_bolt()
        if self.config.mode == "socket":
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            assert self.config.app_token is not None
            self._socket = AsyncSocketModeHandler(self._bolt, self.config.app_token.get_secret_value())
            await self._socket.connect_async()
        else:
            await self._start_http()
        log.info("slack adapter %s started (%s mode)", self.name, self.config.mode)

    async def _start_http(self) -> None:
        from aiohttp import web
        from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

        bolt = self._bolt
        assert bolt is not None

        async def events(request: web.Request) -> web.Response:
            # Bolt reads the timestamp with int() and answers a malformed one with a 500; a request
            # that cannot be verified is unauthorised.
            stamp = request.headers.get("X-Slack-Request-Timestamp")
            if stamp is not None and not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
                return web.Response(status=401, text="invalid request")
            return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

        self._runner = await listen(self.config.path, events, self.config.host, self.config.port)

    @property
    def http_port(self) -> int | None:
        """The port HTTP mode listens on (useful with port: 0)."""
        return listening_port(self._runner)

    async def stop(self) -> None:
        if self._socket is not None:
            try:
                await self._socket.close_async()
            finally:
                self._socket = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._client is not None:
            session = getattr(self._client, "session", None)
            if session is not None and not session.closed:
                await session.close()
            self._client = None
        self._bolt = None

    # -- incoming ---------------------------------------------------------------------------------

    def _incoming(self, channel_id: str, user_id: str, text: str, *, channel_name: str | None = None,
                  extra: dict[str, Any] | None = None) -> Incoming:
        sub, _, rest = text.strip().partition(" ")
        return Incoming(
            adapter=self.name,
            chat_id=channel_id,
            user_id=user_id,
            command=(sub or "help").lower(),
            args=rest.strip(),
            chat_type=chat_type_of(channel_id, channel_name),
            language_code=None,
            # Slack decides who may use the app in a channel; there is no per-chat admin to ask.
            is_admin=True,
            extra={"command_prefix": f"{self.config.command} ", **(extra or {})},
        )

    async def _user_locale(self, user_id: str) -> str | None:
        """The user's Slack locale ('zh-CN', 'en-US'), cached for an hour; None when unknown."""
        if not self.config.user_locale or not user_id:
            return None
        now = time.monotonic()
        hit = self._locales.get(user_id)
        if hit is not None and hit[1] > now:
            return hit[0]
        locale: str | None = None
        try:
            resp = await asyncio.wait_for(self.client.users_info(user=user_id, include_locale=True), 1.5)
            locale = (resp.get("user") or {}).get("locale") or None
        except Exception as exc:  # no users:read scope, or slow: fall back to the configured default
            log.debug("slack users.info %s failed: %s", user_id, exc)
        if len(self._locales) > 10_000:
            self._locales.clear()
        self._locales[user_id] = (locale, now + 3600)
        return locale

    async def _run(self, incoming: Incoming) -> Reply:
        assert self._on_command is not None
        try:
            if incoming.language_code is None:
                incoming.language_code = await self._user_locale(incoming.user_id)
            return await self._on_command(incoming)
        except Exception:  # commands.handle answers errors itself; this is the last guard
            log.exception("command handler failed for %s", incoming.command)
            return Reply(t(self.context.default_locale, "commands.error"), ephemeral=True)

    def _response(self, reply: Reply) -> dict[str, Any]:
        payload = dict(self.render(reply)[0])
        payload["response_type"] = "ephemeral" if reply.ephemeral else "in_channel"
        return payload

    async def _answer_slash(self, ack: Any, respond: Any, incoming: Incoming) -> None:
        task = asyncio.ensure_future(self._run(incoming))
        done, _ = await asyncio.wait({task}, timeout=ACK_BUDGET)
        if done:
            reply = task.result()
            if not reply.text and not reply.items and reply.digest is None:
                await ack()
                return
            await ack(**self._response(reply))
            for extra in self.render(reply)[1:]:  # a long digest: further parts follow up
                await respond(**extra, response_type="ephemeral" if reply.ephemeral else "in_channel")
            return
        await ack()  # slow (e.g. a big digest): acknowledge now, answer via response_url
        reply = await task
        for payload in self.render(reply):
            await respond(**payload, response_type="ephemeral" if reply.ephemeral else "in_channel")

    async def _on_slash(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        incoming = self._incoming(body.get("channel_id", ""), body.get("user_id", ""), body.get("text") or "",
                                  channel_name=body.get("channel_name"),
                                  extra={"response_url": body.get("response_url")})
        await self._answer_slash(ack, respond, incoming)

    async def _on_search_slash(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        incoming = self._incoming(body.get("channel_id", ""), body.get("user_id", ""),
                                  "search " + (body.get("text") or ""), channel_name=body.get("channel_name"),
                                  extra={"response_url": body.get("response_url")})
        await self._answer_slash(ack, respond, incoming)

    async def _on_action(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        actions = body.get("actions") or []
        if not actions:
            return
        act = actions[0]
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id") or ""
        ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
        incoming = Incoming(
            adapter=self.name, chat_id=channel, user_id=(body.get("user") or {}).get("id", ""),
            command=str(act.get("action_id") or "").partition("#")[0], args=str(act.get("value") or ""),
            chat_type=chat_type_of(channel), is_admin=True, message_id=ts, callback=True,
            extra={"command_prefix": f"{self.config.command} ", "response_url": body.get("response_url")},
        )
        reply = await self._run(incoming)
        if not reply.text and not reply.items:
            return
        payload = self.render(reply)[0]
        try:
            if body.get("response_url"):
                # Ephemeral messages can only be replaced through their response_url.
                await respond(**payload, replace_original=True,
                              response_type="ephemeral" if reply.ephemeral else "in_channel")
            elif channel and ts:
                await self.edit(channel, ts, payload)
        except Exception as exc:
            log.warning("slack: updating message %s in %s failed: %s", ts, channel, exc)

    async def _on_mention(self, event: dict[str, Any]) -> None:
        text = _MENTION_RE.sub("", event.get("text") or "")
        channel, user = event.get("channel", ""), event.get("user", "")
        incoming = self._incoming(channel, user, text)
        reply = await self._run(incoming)
        if not reply.text and not reply.items and reply.digest is None:
            return
        thread = event.get("thread_ts") or event.get("ts")
        for payload in self.render(reply):
            try:
                if reply.ephemeral and user:
                    await self.client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread,
                                                         **payload)
                else:
                    await self.client.chat_postMessage(channel=channel, thread_ts=thread, unfurl_links=False,
                                                       unfurl_media=False, **payload)
            except Exception as exc:
                log.warning("slack: reply to mention in %s failed: %s", channel, classify(exc))
                return

    async def _ignore(self) -> None:
        return None

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> None:
        log.error("slack request failed: %s", error, exc_info=error)

    # -- outgoing ---------------------------------------------------------------------------------

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        try:
            resp = await self.client.chat_postMessage(channel=chat_id, unfurl_links=False, unfurl_media=False,
                                                      **payload)
        except Exception as exc:
            raise classify(exc) from exc
        return str(resp.get("ts") or "") or None

    async def edit(self, chat_id: str, message_id: str, payload: dict[str, Any]) -> str | None:
        try:
            await self.client.chat_update(channel=chat_id, ts=message_id, **payload)
        except Exception as exc:
            raise classify(exc) from exc
        return message_id
