"""A loopback fake of the Telegram Bot API for python-telegram-bot (``base_url=fake.base_url``).

See tests/fakes/README.md for the full API. In short::

    async with FakeTelegram() as fake:                 # in the test's loop
        bot = telegram.Bot(TOKEN, base_url=fake.base_url)
    with FakeTelegram.in_thread() as fake:             # in a thread, for subprocess tests
        ...
    fake.user_message("/start", user_id=42)            # inject an update for getUpdates
    fake.fail_chat(42, "blocked")                      # persistent per-chat failure
    fake.inject("bad_gateway", times=2)                # scheduled faults
    fake.messages(chat_id=42)                          # accepted messages, in order
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.common import (
    FakeServer,
    SlidingWindow,
    TokenBucket,
    bool_field,
    int_field,
    json_field,
    read_params,
    retry_after_seconds,
    utf16_len,
)
from tests.fakes.telegram_html import TelegramHTMLError, parse_telegram_html

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "123456:TEST-token"
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")

# Persistent per-chat failures: kind -> (HTTP status, description).
CHAT_FAILURES: dict[str, tuple[int, str]] = {
    "blocked": (403, "Forbidden: bot was blocked by the user"),
    "kicked": (403, "Forbidden: bot was kicked from the group chat"),
    "deactivated": (403, "Forbidden: user is deactivated"),
    "not_found": (400, "Bad Request: chat not found"),
    "migrated": (400, "Bad Request: group chat was upgraded to a supergroup chat"),
}
FAULT_KINDS = frozenset({"bad_gateway", "server_error", "flood", "slow", "drop", *CHAT_FAILURES})
# Methods that post a message and so count against the rate limits.
_BUTTON_ACTIONS = ("url", "callback_data", "switch_inline_query", "switch_inline_query_current_chat",
                   "web_app", "login_url", "pay", "copy_text", "callback_game")


class ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


@dataclass
class TelegramLimits:
    """Rate limits; defaults are Telegram's published ones.

    Private chats (positive ids) use a token bucket: ``private_rate`` per second on average with
    bursts of ``private_burst``. Groups (negative ids) and the whole bot use sliding windows.
    """

    enabled: bool = True
    bot_per_second: int = 30
    bot_window: float = 1.0
    private_rate: float = 1.0
    private_burst: float = 3.0
    group_per_window: int = 20
    group_window: float = 60.0


@dataclass(frozen=True)
class SentMessage:
    message_id: int
    chat_id: int | str
    text: str
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    visible_text: str
    time: float  # wall clock (time.time())
    mono: float  # time.monotonic(), for rate assertions
    method: str = "sendMessage"
    params: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Rejected:
    method: str
    chat_id: int | str | None
    status: int
    description: str
    parameters: dict[str, Any] | None
    time: float
    params: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class Fault:
    kind: str
    method: str | None = "sendMessage"  # None: any method
    chat_id: int | str | None = None  # None: any chat
    times: int | None = 1  # None: until cleared (or ``until``)
    until: float | None = None  # monotonic deadline
    retry_after: int = 3
    delay: float = 1.0  # for slow / drop
    migrate_to: int | None = None
    hits: int = 0

    def matches(self, method: str, chat_id: int | str | None, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method.lower() != method.lower():
            return False
        return self.chat_id is None or _same_chat(self.chat_id, chat_id)


def _same_chat(a: int | str | None, b: int | str | None) -> bool:
    return a is not None and b is not None and str(a) == str(b)


def _norm_chat(value: Any) -> int | str | None:
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text  # @channelusername


# When the request being handled arrived (each aiohttp handler runs in its own task/context).
_ARRIVAL: contextvars.ContextVar[float | None] = contextvars.ContextVar("telegram_fake_arrival", default=None)


class FakeTelegram(FakeServer):
    """The fake Bot API. Every public method is safe to call from any thread."""

    def __init__(
        self,
        *,
        token: str | None = None,
        limits: TelegramLimits | None = None,
        strict_html: bool = False,
        bot_username: str = "digest_test_bot",
    ) -> None:
        super().__init__()
        self.token = token  # None: any well-formed token is accepted
        self.limits = limits or TelegramLimits()
        self.strict_html = strict_html
        self.bot_username = bot_username
        self.clock = time.monotonic
        self._reset_state()

    def _reset_state(self) -> None:
        self._messages: list[SentMessage] = []
        self._edits: list[SentMessage] = []
        self._current: dict[tuple[str, int], SentMessage] = {}
        self._rejected: list[Rejected] = []
        self._requests: list[tuple[str, dict[str, Any]]] = []
        self._callback_answers: list[dict[str, Any]] = []
        self._callbacks_open: set[str] = set()
        self._counters: Counter[str] = Counter()
        self._chat_failures: dict[str, tuple[str, int | None]] = {}
        self._faults: list[Fault] = []
        self._chat_types: dict[str, tuple[str, str | None]] = {}
        self._admins: dict[str, dict[int, str]] = {}
        self._commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self._webhook: dict[str, Any] = {"url": ""}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(10_001)
        self._msg_ids: dict[str, itertools.count[int]] = {}
        self._callback_ids = itertools.count(1)
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._waiters: set[asyncio.Event] = set()
        self._webhook_lock: asyncio.Lock | None = None
        self._webhook_tasks: set[asyncio.Task[None]] = set()
        self._bot_window = SlidingWindow(self.limits.bot_per_second, self.limits.bot_window)
        self._chat_limiters: dict[str, SlidingWindow | TokenBucket] = {}

    # ------------------------------------------------------------------ addresses
    @property
    def base_url(self) -> str:
        """python-telegram-bot's ``base_url``: the token is appended to it."""
        return f"{self.origin}/bot"

    def _setup(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._handle)

    async def _on_stop(self) -> None:
        self._wake_pollers()
        for task in list(self._webhook_tasks):
            task.cancel()

    # ------------------------------------------------------------------ knobs
    def set_limits(self, **changes: Any) -> None:
        """Change rate limits (fields of TelegramLimits); resets the limiters' history."""
        with self._lock:
            for key, value in changes.items():
                if not hasattr(self.limits, key):
                    raise AttributeError(f"TelegramLimits has no {key!r}")
                setattr(self.limits, key, value)
            self._bot_window = SlidingWindow(self.limits.bot_per_second, self.limits.bot_window)
            self._chat_limiters.clear()

    def set_chat(self, chat_id: int | str, type: str, title: str | None = None) -> None:
        """Declare a chat's type (private | group | supergroup | channel)."""
        with self._lock:
            self._chat_types[str(chat_id)] = (type, title)

    def set_admins(self, chat_id: int | str, admins: list[int], *, creator: int | None = None) -> None:
        """Who getChatMember / getChatAdministrators report as administrators of ``chat_id``."""
        with self._lock:
            table = {uid: "administrator" for uid in admins}
            if creator is not None:
                table[creator] = "creator"
            self._admins[str(chat_id)] = table

    def fail_chat(self, chat_id: int | str, kind: str, *, migrate_to: int | None = None) -> None:
        """From now on every call naming ``chat_id`` fails as ``kind`` (see CHAT_FAILURES)."""
        if kind not in CHAT_FAILURES:
            raise ValueError(f"unknown chat failure {kind!r}; one of {sorted(CHAT_FAILURES)}")
        if kind == "migrated" and migrate_to is None:
            migrate_to = -1_000_000_000_000 - abs(int(chat_id))
        with self._lock:
            self._chat_failures[str(chat_id)] = (kind, migrate_to)
            if kind == "migrated":
                self._chat_types.setdefault(str(migrate_to), ("supergroup", None))

    def clear_chat(self, chat_id: int | str) -> None:
        with self._lock:
            self._chat_failures.pop(str(chat_id), None)

    def inject(
        self,
        kind: str,
        *,
        method: str | None = "sendMessage",
        chat_id: int | str | None = None,
        times: int | None = 1,
        duration: float | None = None,
        retry_after: int = 3,
        delay: float = 1.0,
        migrate_to: int | None = None,
    ) -> Fault:
        """Schedule a fault for the next ``times`` matching calls (None: until cleared or for
        ``duration`` seconds). Kinds: bad_gateway (502), server_error (500), flood (429 with
        ``retry_after``), slow (answer normally after ``delay`` s), drop (wait ``delay`` s, then
        close the connection without processing), and the CHAT_FAILURES kinds."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(FAULT_KINDS)}")
        until = self.clock() + duration if duration is not None else None
        if duration is not None and times == 1:
            times = None
        fault = Fault(kind, method, chat_id, times, until, retry_after, delay, migrate_to)
        with self._lock:
            self._faults.append(fault)
        return fault

    def flood_storm(self, seconds: float, *, retry_after: int = 1, chat_id: int | str | None = None) -> Fault:
        """Every sendMessage (to ``chat_id``, or any) gets 429 for the next ``seconds``."""
        return self.inject("flood", chat_id=chat_id, times=None, duration=seconds, retry_after=retry_after)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # ------------------------------------------------------------------ updates (incoming side)
    def _next_msg_id(self, chat_id: int | str) -> int:
        counter = self._msg_ids.setdefault(str(chat_id), itertools.count(1))
        return next(counter)

    def _chat_obj(self, chat_id: int | str) -> dict[str, Any]:
        ctype, title = self._chat_type(chat_id)
        chat: dict[str, Any] = {"id": chat_id, "type": ctype}
        if ctype == "private":
            chat["first_name"] = title or f"User{chat_id}"
        else:
            chat["title"] = title or f"Chat {chat_id}"
        if isinstance(chat_id, str):
            chat["username"] = chat_id.lstrip("@")
        return chat

    def _chat_type(self, chat_id: int | str) -> tuple[str, str | None]:
        known = self._chat_types.get(str(chat_id))
        if known:
            return known
        if isinstance(chat_id, str):
            return "channel", None
        if chat_id > 0:
            return "private", None
        return ("supergroup" if str(chat_id).startswith("-100") else "group"), None

    def _user_obj(self, user_id: int, language_code: str | None, username: str | None,
                  first_name: str | None = None) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name or f"User{user_id}"}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        return user

    def bot_user(self) -> dict[str, Any]:
        bot_id = int((self.token or DEFAULT_TOKEN).split(":", 1)[0])
        return {
            "id": bot_id, "is_bot": True, "first_name": "Digest Bot", "username": self.bot_username,
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False,
        }

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue a raw update (``update_id`` is assigned if missing); returns its id."""
        with self._lock:
            update = dict(update)
            update.setdefault("update_id", next(self._update_ids))
            self._updates.append(update)
        self._wake_pollers()
        self._push_webhook(update)
        return int(update["update_id"])

    @staticmethod
    def _command_entities(text: str) -> list[dict[str, Any]]:
        m = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
        if not m:
            return []
        return [{"type": "bot_command", "offset": 0, "length": utf16_len(m.group(0))}]

    def user_message(
        self,
        text: str,
        *,
        user_id: int = 1001,
        chat_id: int | str | None = None,
        chat_type: str | None = None,
        language_code: str | None = "en",
        username: str | None = None,
        first_name: str | None = None,
    ) -> int:
        """A user writes ``text`` (commands get their bot_command entity). Private chat with the
        user unless ``chat_id`` (a group / supergroup) is given. Returns the update_id."""
        chat = user_id if chat_id is None else _norm_chat(chat_id)
        assert chat is not None
        with self._lock:
            if chat_type:
                self._chat_types[str(chat)] = (chat_type, self._chat_types.get(str(chat), (None, None))[1])
            message = {
                "message_id": self._next_msg_id(chat),
                "from": self._user_obj(user_id, language_code, username, first_name),
                "chat": self._chat_obj(chat),
                "date": int(time.time()),
                "text": text,
            }
        entities = self._command_entities(text)
        if entities:
            message["entities"] = entities
        return self.push_update({"message": message})

    def channel_post(self, text: str, *, chat_id: int | str = -1001234567890, title: str = "News") -> int:
        """A post in a channel where the bot is an administrator."""
        chat = _norm_chat(chat_id)
        assert chat is not None
        with self._lock:
            self._chat_types[str(chat)] = ("channel", title)
            message = {
                "message_id": self._next_msg_id(chat),
                "sender_chat": self._chat_obj(chat),
                "chat": self._chat_obj(chat),
                "date": int(time.time()),
                "text": text,
            }
        entities = self._command_entities(text)
        if entities:
            message["entities"] = entities
        return self.push_update({"channel_post": message})

    def callback(
        self,
        data: str,
        *,
        message_id: int | None = None,
        chat_id: int | str | None = None,
        user_id: int = 1001,
        language_code: str | None = "en",
    ) -> int:
        """A user presses an inline button with ``callback_data=data`` on a message the bot sent
        (the last one to ``chat_id`` — default: the user's private chat — unless ``message_id``).
        The query id is ``cb<update_id>``-like and must be answered with answerCallbackQuery."""
        chat = user_id if chat_id is None else _norm_chat(chat_id)
        assert chat is not None
        with self._lock:
            sent = None
            if message_id is None:
                for msg in reversed(self._messages):
                    if _same_chat(msg.chat_id, chat):
                        sent = self._current.get((str(chat), msg.message_id), msg)
                        break
            else:
                sent = self._current.get((str(chat), message_id))
            query_id = f"cbq{next(self._callback_ids)}"
            self._callbacks_open.add(query_id)
            query: dict[str, Any] = {
                "id": query_id,
                "from": self._user_obj(user_id, language_code, None),
                "chat_instance": f"ci{chat}",
                "data": data,
            }
            if sent is not None:
                query["message"] = self._message_obj(sent)
            elif message_id is not None:
                query["message"] = {"message_id": message_id, "chat": self._chat_obj(chat), "date": 0}
        return self.push_update({"callback_query": query})

    def _wake_pollers(self) -> None:
        def wake() -> None:
            for ev in list(self._waiters):
                ev.set()
        self._call_soon(wake)

    def _push_webhook(self, update: dict[str, Any]) -> None:
        with self._lock:
            url = self._webhook.get("url")
            secret = self._webhook.get("secret_token")
        if not url:
            return

        def start() -> None:
            task = asyncio.get_running_loop().create_task(self._deliver_webhook(url, secret, update))
            self._webhook_tasks.add(task)
            task.add_done_callback(self._webhook_tasks.discard)
        self._call_soon(start)

    async def _deliver_webhook(self, url: str, secret: str | None, update: dict[str, Any]) -> None:
        # One delivery at a time, in update order, as Telegram does with max_connections=1
        # (asyncio.Lock wakes waiters first come, first served).
        if self._webhook_lock is None:
            self._webhook_lock = asyncio.Lock()
        async with self._webhook_lock:
            await self._post_webhook(url, secret, update)

    async def _post_webhook(self, url: str, secret: str | None, update: dict[str, Any]) -> None:
        import aiohttp

        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        try:
            async with aiohttp.ClientSession() as session:
                async with session.post(url, json=update, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=10)) as resp:
                    status = resp.status
        except Exception as exc:  # recorded, as Telegram's last_error_message
            status = 0
            log.info("webhook delivery to %s failed: %s", url, exc)
        with self._lock:
            self._counters[f"webhook_{status}"] += 1
            if status != 200:
                self._webhook["last_error_date"] = int(time.time())
                self._webhook["last_error_message"] = f"Wrong response from the webhook: {status}"
            else:
                self._updates = [u for u in self._updates if u["update_id"] != update["update_id"]]

    # ------------------------------------------------------------------ accessors
    def messages(self, chat_id: int | str | None = None) -> list[SentMessage]:
        """Accepted sendMessage calls, in acceptance order (as first sent, edits not applied)."""
        with self._lock:
            return [m for m in self._messages if chat_id is None or _same_chat(m.chat_id, chat_id)]

    def texts(self, chat_id: int | str | None = None) -> list[str]:
        return [m.text for m in self.messages(chat_id)]

    def current(self, chat_id: int | str, message_id: int) -> SentMessage | None:
        """A message as it reads now (after edits)."""
        with self._lock:
            return self._current.get((str(chat_id), message_id))

    def edits(self, chat_id: int | str | None = None) -> list[SentMessage]:
        with self._lock:
            return [m for m in self._edits if chat_id is None or _same_chat(m.chat_id, chat_id)]

    def rejected(self, chat_id: int | str | None = None, method: str | None = None) -> list[Rejected]:
        with self._lock:
            return [r for r in self._rejected
                    if (chat_id is None or _same_chat(r.chat_id, chat_id))
                    and (method is None or r.method.lower() == method.lower())]

    def requests(self, method: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """Every request that reached a method handler: (method, decoded params)."""
        with self._lock:
            return [r for r in self._requests if method is None or r[0].lower() == method.lower()]

    def callback_answers(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._callback_answers)

    def commands(self, language_code: str = "", scope: str = "default") -> list[dict[str, str]]:
        with self._lock:
            return list(self._commands.get((scope, language_code), []))

    def all_commands(self) -> dict[tuple[str, str], list[dict[str, str]]]:
        with self._lock:
            return {k: list(v) for k, v in self._commands.items()}

    def webhook(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._webhook)

    def pending_updates(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._updates)

    @property
    def stats(self) -> dict[str, int]:
        """Counters: accepted, rejected, 429 (all), 429_bot / 429_chat / 429_group / 429_forced,
        5xx, dropped, slow, getUpdates, webhook_<status>."""
        with self._lock:
            return dict(self._counters)

    def count_429(self, kind: str | None = None) -> int:
        with self._lock:
            return self._counters["429" if kind is None else f"429_{kind}"]

    def wait_messages(self, n: int, timeout: float = 5.0, chat_id: int | str | None = None) -> bool:
        """Blocking: wait until at least ``n`` messages (to ``chat_id``) were accepted."""
        return self.wait_until(lambda: len(self.messages(chat_id)) >= n, timeout)

    async def await_messages(
        self, n: int, timeout: float = 5.0, chat_id: int | str | None = None  # noqa: ASYNC109
    ) -> bool:
        return await self.await_until(lambda: len(self.messages(chat_id)) >= n, timeout)

    def wait_idle_poll(self, timeout: float = 5.0) -> bool:
        """Blocking: wait until a client is parked in getUpdates with nothing left to fetch."""
        return self.wait_until(lambda: bool(self._waiters) and not self._updates, timeout)

    async def await_idle_poll(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
        return await self.await_until(lambda: bool(self._waiters) and not self._updates, timeout)

    def reset(self) -> None:
        """Forget everything recorded and injected (chat types and admins too)."""
        with self._lock:
            self._reset_state()

    # ------------------------------------------------------------------ HTTP
    def _reply(self, result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    def _error(self, err: ApiError) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": err.status, "description": err.description}
        if err.parameters:
            body["parameters"] = err.parameters
        return web.json_response(body, status=err.status)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        # Rate limits count arrivals, so take the time before reading and parsing the body.
        _ARRIVAL.set(self.clock())
        token = request.match_info["token"]
        method = request.match_info["method"]
        if (self.token is not None and token != self.token) or not _TOKEN_RE.match(token):
            return self._error(ApiError(401, "Unauthorized"))
        try:
            params = await read_params(request)
        except (ValueError, UnicodeDecodeError):
            return self._error(ApiError(400, "Bad Request: can't parse JSON"))
        handler = self._methods().get(method.lower())
        if handler is None:
            return self._error(ApiError(404, "Not Found"))
        chat_id = _norm_chat(params.get("chat_id"))
        with self._lock:
            self._requests.append((method, params))
            self._counters[method] += 1
        try:
            await self._apply_faults(method, chat_id)
            result = await handler(params)
        except ApiError as err:
            self._record_reject(method, chat_id, err, params)
            return self._error(err)
        except _Drop:
            # The client sees the connection die with no answer, as when a proxy gives up.
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=504)
        except (ValueError, TypeError, KeyError) as exc:
            err = ApiError(400, f"Bad Request: {exc}")
            self._record_reject(method, chat_id, err, params)
            return self._error(err)
        return self._reply(result)

    def _record_reject(self, method: str, chat_id: int | str | None, err: ApiError, params: dict) -> None:
        with self._lock:
            self._rejected.append(Rejected(method, chat_id, err.status, err.description, err.parameters,
                                           time.time(), params))
            self._counters["rejected"] += 1
            if err.status == 429:
                self._counters["429"] += 1
            elif err.status >= 500:
                self._counters["5xx"] += 1

    async def _apply_faults(self, method: str, chat_id: int | str | None) -> None:
        now = self.clock()
        with self._lock:
            failure = self._chat_failures.get(str(chat_id)) if chat_id is not None else None
            fault = next((f for f in self._faults if f.matches(method, chat_id, now)), None)
            if fault is not None:
                fault.hits += 1
        if fault is not None:
            await self._raise_fault(fault)
        if failure is not None and method.lower() not in ("getme",):
            kind, migrate_to = failure
            raise self._chat_error(kind, migrate_to)

    def _chat_error(self, kind: str, migrate_to: int | None) -> ApiError:
        status, description = CHAT_FAILURES[kind]
        params = {"migrate_to_chat_id": migrate_to} if kind == "migrated" else None
        return ApiError(status, description, params)

    async def _raise_fault(self, fault: Fault) -> None:
        kind = fault.kind
        if kind == "bad_gateway":
            raise ApiError(502, "Bad Gateway")
        if kind == "server_error":
            raise ApiError(500, "Internal Server Error")
        if kind == "flood":
            with self._lock:
                self._counters["429_forced"] += 1
            raise ApiError(429, f"Too Many Requests: retry after {fault.retry_after}",
                           {"retry_after": fault.retry_after})
        if kind == "slow":
            with self._lock:
                self._counters["slow"] += 1
            await asyncio.sleep(fault.delay)
            return
        if kind == "drop":
            with self._lock:
                self._counters["dropped"] += 1
            await asyncio.sleep(fault.delay)
            raise _Drop
        migrate_to = fault.migrate_to
        if kind == "migrated" and migrate_to is None:
            migrate_to = -1_000_000_000_001
        raise self._chat_error(kind, migrate_to)

    def _methods(self) -> dict[str, Any]:
        return {
            "getme": self._get_me,
            "logout": self._true,
            "close": self._true,
            "getupdates": self._get_updates,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_reply_markup,
            "answercallbackquery": self._answer_callback,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "getchatmember": self._get_chat_member,
            "getchatadministrators": self._get_chat_administrators,
            "getchat": self._get_chat,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendchataction": self._true,
        }

    # ------------------------------------------------------------------ methods
    async def _true(self, params: dict[str, Any]) -> bool:
        return True

    async def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user()

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self._lock:
            if self._webhook.get("url"):
                raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                    "use deleteWebhook to delete the webhook first")
            self._poll_generation += 1
            generation = self._poll_generation
        self._wake_pollers()  # a newer getUpdates terminates an older one, as on Telegram
        offset = int_field(params, "offset", 0) or 0
        limit = max(1, min(100, int_field(params, "limit", 100) or 100))
        timeout = max(0.0, float(params.get("timeout") or 0))
        allowed = json_field(params, "allowed_updates")
        deadline = self.clock() + timeout
        with self._lock:
            if allowed is not None:
                self._allowed_updates = list(allowed) or None
        while True:
            with self._lock:
                if generation != self._poll_generation:
                    raise ApiError(409, "Conflict: terminated by other getUpdates request; "
                                        "make sure that only one bot instance is running")
                if offset > 0:
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                elif offset < 0:  # the last -offset updates; older ones are forgotten
                    self._updates = self._updates[offset:]
                if self._allowed_updates:
                    kept = set(self._allowed_updates)
                    self._updates = [u for u in self._updates if kept & (u.keys() - {"update_id"})]
                batch = self._updates[:limit]
            remaining = deadline - self.clock()
            if batch or remaining <= 0 or self._closing:
                return batch
            event = asyncio.Event()
            with self._lock:
                self._waiters.add(event)
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass
            finally:
                with self._lock:
                    self._waiters.discard(event)

    def _check_text(self, params: dict[str, Any]) -> tuple[str, str | None, str]:
        text = params.get("text")
        if text is None:
            raise ApiError(400, "Bad Request: message text is empty")
        text = str(text)
        parse_mode = params.get("parse_mode") or None
        if parse_mode is not None and str(parse_mode).lower() not in ("html", "markdown", "markdownv2"):
            raise ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode}")
        visible = text
        if parse_mode is not None and str(parse_mode).lower() == "html":
            try:
                visible = parse_telegram_html(text, strict_amp=self.strict_html)
            except TelegramHTMLError as exc:
                raise ApiError(400, exc.description) from None
        trimmed = visible.strip()
        if not trimmed:
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(trimmed) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        return text, parse_mode, visible

    def _check_markup(self, params: dict[str, Any]) -> dict[str, Any] | None:
        if params.get("reply_markup") in (None, ""):
            return None
        try:
            markup = json_field(params, "reply_markup")
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object") from None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise ApiError(400, "Bad Request: can't parse inline keyboard button: "
                                    "InlineKeyboardMarkup must be an Array of Arrays")
            if sum(len(r) for r in rows) > 100:
                raise ApiError(400, "Bad Request: reply markup is too long")
            for row in rows:
                for button in row:
                    self._check_button(button)
        return markup

    @staticmethod
    def _check_button(button: Any) -> None:
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise ApiError(400, "Bad Request: can't parse inline keyboard button: Text must be a String")
        if not button["text"].strip():
            raise ApiError(400, "Bad Request: BUTTON_TEXT_EMPTY")
        actions = [k for k in _BUTTON_ACTIONS if k in button]
        if not actions:
            raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
        if "callback_data" in button:
            data = button["callback_data"]
            if not isinstance(data, str) or not (1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA):
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        if "url" in button:
            url = button["url"]
            if not isinstance(url, str) or not re.match(r"^(https?|tg)://\S+$", url):
                raise ApiError(400, f"Bad Request: inline keyboard button URL '{url}' is invalid: "
                                    "Wrong HTTP URL")

    def _check_rate(self, chat_id: int | str) -> None:
        """Raise 429 if this send would exceed a limit; otherwise count it."""
        if not self.limits.enabled:
            return
        now = _ARRIVAL.get() or self.clock()
        with self._lock:
            limiter = self._chat_limiters.get(str(chat_id))
            if limiter is None:
                ctype, _ = self._chat_type(chat_id)
                if ctype == "private":
                    limiter = TokenBucket(self.limits.private_rate, self.limits.private_burst)
                else:
                    limiter = SlidingWindow(self.limits.group_per_window, self.limits.group_window)
                self._chat_limiters[str(chat_id)] = limiter
            wait_bot = self._bot_window.check(now)
            wait_chat = limiter.check(now)
            if wait_bot <= 0 and wait_chat <= 0:
                self._bot_window.hit(now)
                limiter.hit(now)
                return
            per_chat = "chat" if isinstance(limiter, TokenBucket) else "group"
            kind = "bot" if wait_bot >= wait_chat else per_chat
            self._counters[f"429_{kind}"] += 1
            retry = retry_after_seconds(max(wait_bot, wait_chat))
        raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})

    def _message_obj(self, msg: SentMessage) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "message_id": msg.message_id,
            "from": self.bot_user(),
            "chat": self._chat_obj(msg.chat_id),
            "date": int(msg.time),
            "text": msg.visible_text,
        }
        if msg.reply_markup and "inline_keyboard" in msg.reply_markup:
            obj["reply_markup"] = msg.reply_markup
        return obj

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = _norm_chat(params.get("chat_id"))
        if chat_id is None:
            raise ApiError(400, "Bad Request: chat_id is empty")
        text, parse_mode, visible = self._check_text(params)
        markup = self._check_markup(params)
        self._check_rate(chat_id)
        with self._lock:
            msg = SentMessage(self._next_msg_id(chat_id), chat_id, text, parse_mode, markup, visible,
                              time.time(), time.monotonic(), "sendMessage", dict(params))
            self._messages.append(msg)
            self._current[(str(chat_id), msg.message_id)] = msg
            self._counters["accepted"] += 1
        return self._message_obj(msg)

    def _find_message(self, params: dict[str, Any]) -> tuple[int | str, SentMessage]:
        chat_id = _norm_chat(params.get("chat_id"))
        message_id = int_field(params, "message_id")
        if chat_id is None:
            raise ApiError(400, "Bad Request: chat_id is empty")
        if message_id is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        with self._lock:
            msg = self._current.get((str(chat_id), message_id))
        if msg is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return chat_id, msg

    async def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, old = self._find_message(params)
        text, parse_mode, visible = self._check_text(params)
        markup = self._check_markup(params)
        if visible == old.visible_text and markup == old.reply_markup:
            raise ApiError(400, "Bad Request: message is not modified: specified new message content and "
                                "reply markup are exactly the same as a current content and reply markup "
                                "of the message")
        with self._lock:
            msg = SentMessage(old.message_id, chat_id, text, parse_mode, markup, visible, time.time(),
                              time.monotonic(), "editMessageText", dict(params))
            self._edits.append(msg)
            self._current[(str(chat_id), msg.message_id)] = msg
            self._counters["edited"] += 1
        return self._message_obj(msg)

    async def _edit_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, old = self._find_message(params)
        markup = self._check_markup(params)
        if markup == old.reply_markup:
            raise ApiError(400, "Bad Request: message is not modified: specified new message content and "
                                "reply markup are exactly the same as a current content and reply markup "
                                "of the message")
        with self._lock:
            msg = SentMessage(old.message_id, chat_id, old.text, old.parse_mode, markup, old.visible_text,
                              time.time(), time.monotonic(), "editMessageReplyMarkup", dict(params))
            self._edits.append(msg)
            self._current[(str(chat_id), msg.message_id)] = msg
        return self._message_obj(msg)

    async def _answer_callback(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        with self._lock:
            if query_id not in self._callbacks_open:
                raise ApiError(400, "Bad Request: query is too old and response timeout expired or "
                                    "query ID is invalid")
            self._callbacks_open.discard(query_id)
            self._callback_answers.append(
                {"callback_query_id": query_id, "text": text, "show_alert": bool_field(params, "show_alert")}
            )
        return True

    @staticmethod
    def _scope_key(params: dict[str, Any]) -> str:
        scope = json_field(params, "scope")
        if not scope:
            return "default"
        if not isinstance(scope, dict) or "type" not in scope:
            raise ApiError(400, "Bad Request: can't parse BotCommandScope JSON object")
        key = str(scope["type"])
        if "chat_id" in scope:
            key += f":{scope['chat_id']}"
        if "user_id" in scope:
            key += f":{scope['user_id']}"
        return key

    async def _set_my_commands(self, params: dict[str, Any]) -> bool:
        try:
            commands = json_field(params, "commands")
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse commands JSON object") from None
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        if len(commands) > 100:
            raise ApiError(400, "Bad Request: too many commands")
        clean: list[dict[str, str]] = []
        for cmd in commands:
            if not isinstance(cmd, dict) or not _COMMAND_RE.match(str(cmd.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            desc = str(cmd.get("description", ""))
            if not (1 <= len(desc.strip()) and len(desc) <= 256):
                raise ApiError(400, "Bad Request: command description is empty or too long")
            clean.append({"command": str(cmd["command"]), "description": desc})
        lang = str(params.get("language_code") or "")
        with self._lock:
            self._commands[(self._scope_key(params), lang)] = clean
        return True

    async def _get_my_commands(self, params: dict[str, Any]) -> list[dict[str, str]]:
        lang = str(params.get("language_code") or "")
        with self._lock:
            return list(self._commands.get((self._scope_key(params), lang), []))

    async def _delete_my_commands(self, params: dict[str, Any]) -> bool:
        lang = str(params.get("language_code") or "")
        with self._lock:
            self._commands.pop((self._scope_key(params), lang), None)
        return True

    def _member_obj(self, chat_id: int | str, user_id: int) -> dict[str, Any]:
        user = self._user_obj(user_id, None, None)
        ctype, _ = self._chat_type(chat_id)
        status = self._admins.get(str(chat_id), {}).get(user_id)
        if status is None and ctype == "private" and _same_chat(chat_id, user_id):
            status = "member"
        status = status or "member"
        if status == "creator":
            return {"status": "creator", "user": user, "is_anonymous": False}
        if status == "administrator":
            rights = {k: True for k in (
                "can_be_edited", "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
                "can_restrict_members", "can_promote_members", "can_change_info", "can_invite_users",
                "can_post_stories", "can_edit_stories", "can_delete_stories")}
            rights["can_be_edited"] = False
            return {"status": "administrator", "user": user, "is_anonymous": False, **rights}
        return {"status": "member", "user": user}

    async def _get_chat_member(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = _norm_chat(params.get("chat_id"))
        user_id = int_field(params, "user_id")
        if chat_id is None:
            raise ApiError(400, "Bad Request: chat_id is empty")
        if user_id is None:
            raise ApiError(400, "Bad Request: user_id is empty")
        with self._lock:
            return self._member_obj(chat_id, user_id)

    async def _get_chat_administrators(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        chat_id = _norm_chat(params.get("chat_id"))
        if chat_id is None:
            raise ApiError(400, "Bad Request: chat_id is empty")
        with self._lock:
            if self._chat_type(chat_id)[0] == "private":
                raise ApiError(400, "Bad Request: there are no administrators in the private chat")
            return [self._member_obj(chat_id, uid) for uid in self._admins.get(str(chat_id), {})]

    async def _get_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = _norm_chat(params.get("chat_id"))
        if chat_id is None:
            raise ApiError(400, "Bad Request: chat_id is empty")
        with self._lock:
            return {**self._chat_obj(chat_id), "accent_color_id": 0, "max_reaction_count": 11}

    async def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if url and not re.match(r"^https?://", url):
            raise ApiError(400, "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 "
                                "or 8443")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        with self._lock:
            self._webhook = {"url": url, "secret_token": secret,
                             "allowed_updates": json_field(params, "allowed_updates")}
            if bool_field(params, "drop_pending_updates"):
                self._updates.clear()
        return True

    async def _delete_webhook(self, params: dict[str, Any]) -> bool:
        with self._lock:
            self._webhook = {"url": ""}
            if bool_field(params, "drop_pending_updates"):
                self._updates.clear()
        return True

    async def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            info: dict[str, Any] = {
                "url": self._webhook.get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": len(self._updates),
            }
            for key in ("last_error_date", "last_error_message", "allowed_updates"):
                if self._webhook.get(key):
                    info[key] = self._webhook[key]
            return info


class _Drop(Exception):
    """Internal: close the connection without answering."""
