"""Telegram adapter: I/O through python-telegram-bot 22 (rendering lives in render.py).

The ``Application`` is driven by hand (initialize / start / updater.start_polling) so it
shares the event loop of ``digestbot run`` with the other adapters instead of owning it.
Webhook mode runs a small aiohttp endpoint on the same loop that checks Telegram's
secret-token header and feeds the updates into the same application.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, model_validator

from bot.adapters.base import (
    AdapterBase,
    AdapterConfig,
    AdapterContext,
    BotRemoved,
    ChatMigrated,
    CommandHandler,
)
from bot.adapters.http import listen, listening_port
from bot.adapters.telegram import render as r
from bot.commands import descriptions, needs_admin
from bot.delivery.ratelimit import RateLimits
from bot.i18n import t
from bot.model import Incoming, Reply, SendError

if TYPE_CHECKING:
    from aiohttp import web
    from telegram import Update
    from telegram.ext import Application, ContextTypes, ExtBot


log = logging.getLogger(__name__)

# Unicode \w: "/设置" is not a Telegram command, but its sender meant one and gets a usage reply.
_COMMAND_RE = re.compile(r"^/(\w{1,64})(?:@([A-Za-z0-9_]+))?(?:\s+(.*))?$", re.S)
_CHAT_ID_RE = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$")
ADMIN_STATUSES = ("creator", "administrator")
# Telegram's menu languages: "zh" covers every Chinese client, "en" English ones.
MENU_LANGUAGES = {"zh": "zh-CN", "en": "en"}
ALLOWED_UPDATES = ["message", "channel_post", "callback_query", "my_chat_member"]
REPLY_MAX_WAIT = 5.0  # seconds of retry_after an interactive reply waits out (more: it is dropped)


class TelegramConfig(AdapterConfig):
    # ~30 msg/s per bot, 1 msg/s per chat, 20 msg/min per group (Telegram's bot FAQ).
    rate_limits: RateLimits | None = Field(default_factory=RateLimits)
    token: SecretStr
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    mode: Literal["polling", "webhook"] = "polling"
    # Webhook mode: Telegram posts to webhook_url; we listen on webhook_listen:webhook_port/webhook_path.
    webhook_url: str | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8443, ge=0, le=65535)
    webhook_path: str = "/telegram"
    webhook_secret: SecretStr | None = None
    poll_timeout: float = Field(default=10.0, ge=0, le=50)  # long-poll seconds
    poll_interval: float = Field(default=0.0, ge=0)
    drop_pending_updates: bool = False
    register_commands: bool = True
    request_timeout: float = Field(default=20.0, gt=0)
    connection_pool_size: int = Field(default=16, ge=1)

    @model_validator(mode="after")
    def _webhook(self) -> TelegramConfig:
        if self.mode == "webhook":
            if not self.webhook_url:
                raise ValueError("webhook mode needs webhook_url (the public https URL Telegram posts to)")
            if self.webhook_secret is None or not self.webhook_secret.get_secret_value():
                raise ValueError("webhook mode needs webhook_secret (checked on every request)")
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", self.webhook_secret.get_secret_value()):
                raise ValueError("webhook_secret may only use A-Z, a-z, 0-9, _ and - (1-256 characters)")
        return self


def classify(exc: Exception) -> SendError:
    """Map python-telegram-bot's exceptions to delivery's SendError kinds."""
    from telegram import error as tg

    msg = str(exc)
    low = msg.lower()
    if isinstance(exc, tg.RetryAfter):
        ra = exc.retry_after
        secs = ra.total_seconds() if isinstance(ra, timedelta) else float(ra)
        return SendError("retry_after", msg, retry_after=secs)
    if isinstance(exc, tg.ChatMigrated):
        return SendError("migrated", msg, new_chat_id=str(exc.new_chat_id))
    if isinstance(exc, tg.Forbidden):
        if "blocked" in low:
            return SendError("blocked", msg)
        if "deactivated" in low:
            return SendError("deactivated", msg)
        # kicked from a group, not a member of a channel, can't initiate a conversation
        return SendError("kicked", msg)
    if isinstance(exc, tg.BadRequest):  # before NetworkError: BadRequest is one
        if "chat not found" in low or "peer_id_invalid" in low or "user not found" in low:
            return SendError("not_found", msg)
        if "can't parse entities" in low or "can't find end" in low or "unsupported start tag" in low:
            return SendError("markup", msg)
        if "upgraded to a supergroup" in low:
            return SendError("migrated", msg)
        return SendError("fatal", msg)
    if isinstance(exc, tg.TimedOut | tg.NetworkError):
        return SendError("transient", msg)
    if isinstance(exc, tg.InvalidToken):
        return SendError("fatal", msg)
    if isinstance(exc, tg.TelegramError) and "invalid server response" in low:
        return SendError("transient", msg)
    if isinstance(exc, OSError | asyncio.TimeoutError):
        return SendError("transient", msg)
    return SendError("fatal", msg)


class TelegramAdapter(AdapterBase[TelegramConfig]):
    config_model = TelegramConfig
    renderer = staticmethod(r.render)

    def __init__(self, name: str, config: TelegramConfig, context: AdapterContext):
        super().__init__(name, config, context)
        self._bot: ExtBot[Any] | None = None
        self._bot_ready = False
        self._application: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._web_runner: web.AppRunner | None = None
        self._reply_locks: dict[str, asyncio.Lock] = {}
        self.username: str = ""

    # -- identity helpers used by the subscription store -----------------------------------------

    @staticmethod
    def normalise_chat_id(chat_id: str) -> tuple[str, str]:
        """'-1001234' -> ('-1001234', 'supergroup'); '@news' -> ('@news', 'channel')."""
        cid = chat_id.strip()
        if not _CHAT_ID_RE.match(cid):
            raise ValueError(
                f"not a Telegram chat id: {chat_id!r} (a number such as -1001234567890, or @channel)")
        if cid.startswith("@"):
            return cid, "channel"
        if cid.startswith("-100"):
            return cid, "supergroup"
        return cid, "group" if cid.startswith("-") else "private"

    # -- lifecycle --------------------------------------------------------------------------------

    def _make_bot(self) -> ExtBot[Any]:
        from telegram.ext import ExtBot
        from telegram.request import HTTPXRequest

        c = self.config
        t = c.request_timeout
        request = HTTPXRequest(connection_pool_size=c.connection_pool_size, read_timeout=t, write_timeout=t,
                               connect_timeout=t, pool_timeout=t)
        # getUpdates has its own connection: a long poll must not hold one a send needs.
        updates = HTTPXRequest(connection_pool_size=1, read_timeout=t, connect_timeout=t, pool_timeout=t)
        return ExtBot(c.token.get_secret_value(), base_url=c.base_url, base_file_url=c.base_file_url,
                      request=request, get_updates_request=updates)

    async def _ensure_bot(self) -> ExtBot[Any]:
        if self._bot is None:
            self._bot = self._make_bot()
        if not self._bot_ready:
            await self._bot.initialize()
            self._bot_ready = True
            self.username = self._bot.username or ""
        return self._bot

    async def start(self, on_command: CommandHandler) -> None:
        from telegram.ext import (
            ApplicationBuilder,
            CallbackQueryHandler,
            ChatMemberHandler,
            MessageHandler,
            filters,
        )

        self._on_command = on_command
        bot = self._bot or self._make_bot()
        self._bot = bot
        builder = ApplicationBuilder().bot(bot).concurrent_updates(8)
        if self.config.mode == "webhook":
            builder = builder.updater(None)  # our aiohttp endpoint feeds update_queue itself
        application = builder.build()
        fresh = filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST  # edits are not re-run
        commands = filters.Regex(r"^/\w") & fresh
        application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, self._on_migrate))
        application.add_handler(MessageHandler(commands, self._on_message))
        application.add_handler(CallbackQueryHandler(self._on_callback))
        application.add_handler(ChatMemberHandler(self._on_my_member, ChatMemberHandler.MY_CHAT_MEMBER))
        application.add_error_handler(self._on_error)
        await application.initialize()  # getMe
        self._bot_ready = True
        self.username = bot.username or ""
        self._application = application
        if self.config.register_commands:
            await self.register_commands()
        await application.start()
        if self.config.mode == "polling":
            assert application.updater is not None
            await application.updater.start_polling(
                poll_interval=self.config.poll_interval,
                timeout=int(self.config.poll_timeout),
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=self.config.drop_pending_updates,
                error_callback=self._on_poll_error,
            )
        else:
            await self._start_webhook()
        log.info("telegram adapter %s started as @%s (%s)", self.name, self.username, self.config.mode)

    async def stop(self) -> None:
        application, self._application = self._application, None
        if self._web_runner is not None:
            await self._web_runner.cleanup()
            self._web_runner = None
        if application is not None:
            try:
                if application.updater is not None and application.updater.running:
                    await application.updater.stop()
                if application.running:
                    await application.stop()
                await application.shutdown()
            finally:
                self._bot_ready = False
        elif self._bot is not None and self._bot_ready:
            await self._bot.shutdown()
            self._bot_ready = False

    async def register_commands(self) -> None:
        """The command menu, once per client language (and a default for the others)."""
        from telegram import BotCommand

        bot = await self._ensure_bot()
        default = self.context.default_locale
        plans: list[tuple[str | None, str]] = [(lang, loc) for lang, loc in MENU_LANGUAGES.items()]
        plans.append((None, default))
        for lang, loc in plans:
            cmds = [BotCommand(c, d[:256]) for c, d in descriptions(loc)]
            try:
                await bot.set_my_commands(cmds, language_code=lang)
            except Exception as exc:  # a menu is a nicety; the bot works without one
                log.warning("setMyCommands (%s) failed: %s", lang or "default", exc)

    # -- webhook ----------------------------------------------------------------------------------

    async def _start_webhook(self) -> None:
        c = self.config
        self._web_runner = await listen(c.webhook_path, self._webhook_request, c.webhook_listen,
                                        c.webhook_port)
        bot = await self._ensure_bot()
        assert c.webhook_url and c.webhook_secret
        await bot.set_webhook(c.webhook_url, secret_token=c.webhook_secret.get_secret_value(),
                              allowed_updates=ALLOWED_UPDATES,
                              drop_pending_updates=c.drop_pending_updates)

    @property
    def webhook_port(self) -> int | None:
        """The port actually listened on (useful with webhook_port: 0)."""
        return listening_port(self._web_runner)

    async def _webhook_request(self, request: web.Request) -> web.Response:
        from aiohttp import web
        from telegram import Update

        assert self.config.webhook_secret is not None
        got = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(got.encode(), self.config.webhook_secret.get_secret_value().encode()):
            log.warning("telegram webhook: request with a wrong secret token from %s", request.remote)
            return web.Response(status=403, text="forbidden")
        try:
            data = json.loads(await request.text())
            update = Update.de_json(data, await self._ensure_bot())
        except Exception as exc:
            log.warning("telegram webhook: unreadable update: %s", exc)
            return web.Response(status=400, text="bad update")
        if self._application is not None and update is not None:
            await self._application.update_queue.put(update)
        return web.Response(text="ok")

    # -- incoming ---------------------------------------------------------------------------------

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg = update.effective_message
        chat = update.effective_chat
        if msg is None or chat is None or not msg.text:
            return
        m = _COMMAND_RE.match(msg.text.strip())
        if not m:
            return
        command, target, args = m.group(1), m.group(2), (m.group(3) or "").strip()
        if target and self.username and target.lower() != self.username.lower():
            return  # "/help@other_bot" in a group is someone else's
        user = update.effective_user
        chat_type = chat.type
        is_admin = True
        if needs_admin(command, args, chat_type, callback=False):
            anonymous_admin = msg.sender_chat is not None and msg.sender_chat.id == chat.id
            is_admin = anonymous_admin or (user is not None and await self._is_admin(chat.id, user.id))
        incoming = Incoming(
            adapter=self.name,
            chat_id=str(chat.id),
            user_id=str(user.id if user else chat.id),
            command=command.lower(),
            args=args,
            chat_type=chat_type,
            language_code=user.language_code if user else None,
            is_admin=is_admin,
            message_id=str(msg.message_id),
        )
        # In groups the answer quotes the command, so several people's commands stay readable.
        in_group = chat_type in ("group", "supergroup")
        await self._answer(incoming, reply_to=msg.message_id if in_group else None)

    async def _on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        q = update.callback_query
        if q is None:
            return
        try:
            await q.answer()
        except Exception as exc:  # an expired query must not stop the action itself
            log.debug("answerCallbackQuery failed: %s", exc)
        msg = q.message
        if msg is None or not q.data:
            return
        chat = msg.chat
        action, _, value = q.data.partition(":")
        is_admin = True
        if needs_admin(action, value, chat.type, callback=True):
            is_admin = await self._is_admin(chat.id, q.from_user.id)
        incoming = Incoming(
            adapter=self.name,
            chat_id=str(chat.id),
            user_id=str(q.from_user.id),
            command=action,
            args=value,
            chat_type=chat.type,
            language_code=q.from_user.language_code,
            is_admin=is_admin,
            message_id=str(msg.message_id),
            callback=True,
        )
        await self._answer(incoming)

    async def _on_migrate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg = update.effective_message
        if msg is None or not msg.migrate_to_chat_id:
            return
        await self.context.report(ChatMigrated(self.name, str(msg.chat.id), str(msg.migrate_to_chat_id)))

    async def _on_my_member(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.my_chat_member
        if change is None:
            return
        status = change.new_chat_member.status
        if status in ("kicked", "left"):
            reason = "kicked" if status == "kicked" else "left the chat"
            await self.context.report(BotRemoved(self.name, str(change.chat.id), reason))

    async def _is_admin(self, chat_id: int, user_id: int) -> bool:
        try:
            member = await (await self._ensure_bot()).get_chat_member(chat_id, user_id)
        except Exception as exc:  # unknown means no: settings stay as they are
            log.warning("getChatMember %s/%s failed: %s", chat_id, user_id, exc)
            return False
        return member.status in ADMIN_STATUSES

    async def _answer(self, incoming: Incoming, *, reply_to: int | None = None) -> None:
        assert self._on_command is not None
        try:
            reply = await self._on_command(incoming)
        except Exception:  # commands.handle answers errors itself; this is the last guard
            log.exception("command handler failed for %s", incoming.command)
            reply = Reply(t(incoming.language_code or self.context.default_locale, "commands.error"))
        await self.deliver_reply(incoming.chat_id, reply, reply_to=reply_to)

    async def deliver_reply(self, chat_id: str, reply: Reply, *, reply_to: int | None = None) -> None:
        """Send (or edit in place) an interactive reply; failures are logged, never raised.

        Replies to one chat go one at a time, so a burst of commands meets Telegram's per-chat
        limit in order; a short ``retry_after`` is waited out (a long one drops the reply)."""
        if not reply.text and not reply.items and reply.digest is None:
            return
        payloads = self.render(reply)
        plain = self.render(reply, plain=True)
        if reply_to is not None and not reply.edit_message_id:
            quote = {"message_id": reply_to, "allow_sending_without_reply": True}
            for part in (payloads[:1] + plain[:1]):
                part["reply_parameters"] = quote
        lock = self._reply_locks.setdefault(chat_id, asyncio.Lock())
        async with lock:
            for i, payload in enumerate(payloads):
                edit = reply.edit_message_id if i == 0 else None
                fallback = plain[i] if i < len(plain) else None
                if not await self._send_reply_part(chat_id, payload, fallback, edit):
                    break
        if len(self._reply_locks) > 1000 and not lock.locked():  # bounded: forget idle chats
            self._reply_locks.pop(chat_id, None)

    async def _send_reply_part(self, chat_id: str, payload: dict[str, Any], fallback: dict[str, Any] | None,
                               edit: str | None) -> bool:
        waited = 0.0
        while True:
            try:
                try:
                    if edit:
                        await self.edit(chat_id, edit, payload)
                    else:
                        await self.send(chat_id, payload)
                    return True
                except SendError as exc:
                    if exc.kind != "markup" or fallback is None:
                        raise
                    log.warning("telegram rejected markup (%s); sending plain text", exc)
                    payload, fallback = fallback, None
                    continue
            except SendError as exc:
                delay = exc.retry_after or 1.0
                short = delay <= REPLY_MAX_WAIT and waited + delay <= 3 * REPLY_MAX_WAIT
                if exc.kind == "retry_after" and short:
                    waited += delay
                    await asyncio.sleep(delay)
                    continue
                log.warning("reply to telegram chat %s not sent: %s %s", chat_id, exc.kind, exc)
                return False

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram update failed", exc_info=context.error)

    def _on_poll_error(self, exc: Exception) -> None:
        log.warning("telegram getUpdates failed: %s", exc)

    # -- outgoing ---------------------------------------------------------------------------------

    @staticmethod
    def _chat(chat_id: str) -> int | str:
        return int(chat_id) if re.fullmatch(r"-?\d+", chat_id) else chat_id

    @staticmethod
    def _kwargs(payload: dict[str, Any]) -> dict[str, Any]:
        from telegram import InlineKeyboardMarkup, LinkPreviewOptions, ReplyParameters

        kw = dict(payload)
        if isinstance(kw.get("reply_markup"), dict):
            kw["reply_markup"] = InlineKeyboardMarkup.de_json(kw["reply_markup"], None)
        if isinstance(kw.get("link_preview_options"), dict):
            kw["link_preview_options"] = LinkPreviewOptions(**kw["link_preview_options"])
        if isinstance(kw.get("reply_parameters"), dict):
            kw["reply_parameters"] = ReplyParameters(**kw["reply_parameters"])
        return kw

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        try:
            bot = await self._ensure_bot()
            msg = await bot.send_message(chat_id=self._chat(str(chat_id)), **self._kwargs(payload))
        except SendError:
            raise
        except Exception as exc:
            raise classify(exc) from exc
        return str(msg.message_id)

    async def edit(self, chat_id: str, message_id: str, payload: dict[str, Any]) -> str | None:
        """Replace an earlier message (search paging, settings buttons)."""
        from telegram.error import BadRequest

        kw = self._kwargs(payload)
        kw.pop("disable_notification", None)
        try:
            bot = await self._ensure_bot()
            await bot.edit_message_text(chat_id=self._chat(str(chat_id)), message_id=int(message_id), **kw)
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return message_id  # pressing the same button twice is not an error
            raise classify(exc) from exc
        except Exception as exc:
            raise classify(exc) from exc
        return message_id
