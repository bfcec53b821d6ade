"""Chat commands, once for every platform: ``handle(app, incoming) -> Reply``.

Adapters turn a platform event into an ``Incoming`` and render the ``Reply``; nothing
here knows about markup. Every failure becomes a short localised reply: bad input
gets a usage line, a crash gets "something went wrong" (and a logged trace).
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.adapters.base import Incoming
from bot.i18n import normalise_locale, t
from bot.model import Button, Filters, Reply, ResultItem, Subscription
from bot.ratelimit_users import UserRateLimiter
from bot.store import subscriptions as subs

log = logging.getLogger(__name__)

# The order adapters register and /help lists them in.
COMMAND_NAMES = ("start", "help", "subscribe", "unsubscribe", "digest", "search", "settings", "filter")
ALIASES = {"stop": "unsubscribe", "filters": "filter", "find": "search", "s": "search", "set": "settings",
           "sub": "subscribe", "unsub": "unsubscribe", "now": "digest"}
# Commands that change the chat's subscription: only chat admins may use them in groups.
_MUTATING = {"subscribe", "unsubscribe"}
_MUTATING_WITH_ARGS = {"settings", "filter"}
MAX_FILTER_TERMS = 30
MAX_TERM_CHARS = 40
# Telegram allows 64 bytes of callback data; "search:" takes 7 of them.
MAX_BUTTON_VALUE_BYTES = 56
_SEARCH_TOKENS = 2000  # long queries kept server-side for paging buttons


class Usage(Exception):
    """Malformed arguments: answer with the usage line ``key``."""

    def __init__(self, key: str, **kw: Any):
        super().__init__(key)
        self.key = key
        self.kw = kw


@dataclass(slots=True)
class Ctx:
    app: Any
    incoming: Incoming
    sub: Subscription | None
    locale: str

    def t(self, key: str, **kw: Any) -> str:
        return t(self.locale, f"commands.{key}", **kw)

    def cmd(self, name: str) -> str:
        """How the user types command ``name`` on this platform ('/search' or '/digest search')."""
        return f"{self.incoming.extra.get('command_prefix', '/')}{name}"


Handler = Callable[[Ctx], Awaitable[Reply]]


# -- entry point ----------------------------------------------------------------------------------

async def handle(app: Any, incoming: Incoming) -> Reply:
    locale = normalise_locale(incoming.language_code) if incoming.language_code else _default_locale(app)
    try:
        limiter = _limiter(app)
        if not limiter.allow(incoming.adapter, incoming.user_id or incoming.chat_id):
            if limiter.first_refusal(incoming.adapter, incoming.user_id or incoming.chat_id):
                secs = max(1, round(limiter.retry_in(incoming.adapter, incoming.user_id or incoming.chat_id)))
                return Reply(t(locale, "commands.rate_limited", seconds=secs), ephemeral=True)
            return Reply("")  # told once already; stay quiet rather than answer a flood
        sub = await subs.get(app.store, incoming.adapter, incoming.chat_id)
        if sub is not None:
            locale = sub.locale
        ctx = Ctx(app, incoming, sub, locale)
        name = resolve(incoming.command)
        fn = HANDLERS.get(name)
        if fn is None:
            text = ctx.t("unknown", command=incoming.command[:40], help=ctx.cmd("help"))
            return Reply(text, ephemeral=True)
        if _needs_admin(name, incoming) and not incoming.is_admin:
            return Reply(ctx.t("admin_only"), ephemeral=True)
        return await fn(ctx)
    except Usage as u:
        return Reply(t(locale, f"commands.usage.{u.key}", **u.kw), ephemeral=True)
    except subs.InvalidSetting as e:
        return Reply(t(locale, f"commands.invalid.{e.key}", value=e.value[:64]), ephemeral=True)
    except Exception:
        log.exception("command %r from %s:%s failed", incoming.command, incoming.adapter, incoming.chat_id)
        return Reply(t(locale, "commands.error"), ephemeral=True)


def resolve(command: str) -> str:
    name = (command or "").strip().lower().lstrip("/")
    return ALIASES.get(name, name)


def needs_admin(command: str, args: str, chat_type: str, *, callback: bool = False) -> bool:
    """Whether this command changes the chat's subscription where not everyone may.

    Groups: only admins change settings. Channels: only admins can post, but anyone who
    can see a message can press its buttons, so button presses are checked too."""
    if chat_type in ("group", "supergroup") or (chat_type == "channel" and callback):
        name = resolve(command)
        return name in _MUTATING or (name in _MUTATING_WITH_ARGS and bool(args.strip()))
    return False


def _needs_admin(name: str, incoming: Incoming) -> bool:
    return needs_admin(name, incoming.args, incoming.chat_type, callback=incoming.callback)


def _default_locale(app: Any) -> str:
    return app.settings.digest.locale


def _limiter(app: Any) -> UserRateLimiter:
    # Lives on the app so each process (and each test) has its own.
    lim = getattr(app, "_command_limiter", None)
    if lim is None:
        lim = UserRateLimiter(app.settings.commands.per_user_per_minute)
        app._command_limiter = lim
    return lim


def descriptions(locale: str) -> list[tuple[str, str]]:
    """(command, one-line description) for the platform's command menu."""
    return [(c, t(locale, f"commands.desc.{c}")) for c in COMMAND_NAMES]


# -- handlers -------------------------------------------------------------------------------------

async def cmd_start(ctx: Ctx) -> Reply:
    sub = ctx.sub
    if sub is not None and not sub.active and sub.retired_reason not in (None, "unsubscribed"):
        # The chat came back (e.g. unblocked the bot): resume what it had.
        if not ctx.incoming.is_admin and ctx.incoming.chat_type in ("group", "supergroup"):
            return Reply(ctx.t("welcome", subscribe=ctx.cmd("subscribe"), help=ctx.cmd("help")))
        await subs.reactivate(ctx.app.store, sub.id)  # type: ignore[arg-type]
        sub = await subs.get(ctx.app.store, sub.adapter, sub.chat_id)
        if sub:
            await subs.notify_changed(ctx.app, sub)
        return Reply(ctx.t("welcome_back", times=", ".join(sub.times) if sub else "", help=ctx.cmd("help")))
    if sub is not None and sub.active:
        return Reply(ctx.t("welcome_subscribed", times=", ".join(sub.times), tz=sub.timezone,
                           help=ctx.cmd("help")))
    return Reply(ctx.t("welcome", subscribe=ctx.cmd("subscribe"), help=ctx.cmd("help")))


async def cmd_help(ctx: Ctx) -> Reply:
    lines = [ctx.t("help_intro")]
    for name, desc in descriptions(ctx.locale):
        lines.append(f"{ctx.cmd(name)} — {desc}")
    lines.append("")
    lines.append(ctx.t("help_examples", search=ctx.cmd("search"), settings=ctx.cmd("settings"),
                       filter=ctx.cmd("filter"), subscribe=ctx.cmd("subscribe")))
    return Reply("\n".join(lines))


async def cmd_subscribe(ctx: Ctx) -> Reply:
    keywords = _terms(ctx.incoming.args)
    sub = ctx.sub or subs.defaults(ctx.app.settings, ctx.incoming.adapter, ctx.incoming.chat_id,
                                   chat_type=ctx.incoming.chat_type, locale=ctx.locale)
    was_active = ctx.sub is not None and ctx.sub.active
    sub.active, sub.retired_reason = True, None
    if keywords:
        sub.filters.include = keywords
        sub.filters.exclude = [w for w in sub.filters.exclude if w not in keywords]
    sub = await subs.upsert(ctx.app.store, sub)
    await subs.notify_changed(ctx.app, sub)
    key = "subscribed_again" if was_active else "subscribed"
    text = ctx.t(key, times=", ".join(sub.times), tz=sub.timezone, settings=ctx.cmd("settings"))
    if keywords:
        text += "\n" + ctx.t("subscribed_keywords", keywords=", ".join(keywords))
    return Reply(text)


async def cmd_unsubscribe(ctx: Ctx) -> Reply:
    if ctx.sub is None or not ctx.sub.active:
        return Reply(ctx.t("not_subscribed", subscribe=ctx.cmd("subscribe")))
    await subs.retire(ctx.app.store, ctx.sub.id, "unsubscribed")  # type: ignore[arg-type]
    ctx.sub.active = False
    await subs.notify_changed(ctx.app, ctx.sub)
    return Reply(ctx.t("unsubscribed", subscribe=ctx.cmd("subscribe")))


async def cmd_digest(ctx: Ctx) -> Reply:
    from bot.digest import compose

    sub = ctx.sub or subs.defaults(ctx.app.settings, ctx.incoming.adapter, ctx.incoming.chat_id,
                                   chat_type=ctx.incoming.chat_type, locale=ctx.locale)
    digest = await compose(ctx.app, sub)
    if digest is None or not digest.entries:
        return Reply(ctx.t("digest_empty", search=ctx.cmd("search")))
    return Reply("", digest=digest)


async def cmd_search(ctx: Ctx) -> Reply:
    from bot.search import search

    cfg = ctx.app.settings.commands
    offset, query = 0, ctx.incoming.args
    if ctx.incoming.callback:
        offset, query = _decode_page(ctx, query)
    query = " ".join(_printable(query).split())
    if not query:
        raise Usage("search", search=ctx.cmd("search"))
    truncated = len(query) > cfg.max_query_chars
    query = query[: cfg.max_query_chars]
    limit = cfg.search_page_size
    res = await search(ctx.app.store, query, limit=limit, offset=offset, max_chars=cfg.max_query_chars)
    data = res.as_dict() if hasattr(res, "as_dict") else dict(res)
    if hasattr(res, "result_items"):
        items = list(res.result_items(ctx.locale))
    else:
        tz = ctx.sub.timezone if ctx.sub else ctx.app.settings.timezone
        items = [_result_item(ctx, r, tz) for r in data.get("results") or data.get("items") or []]
    edit = ctx.incoming.message_id if ctx.incoming.callback else None
    if not items:
        key = "search_no_more" if offset else "search_none"
        return Reply(ctx.t(key, query=query), ephemeral=True, edit_message_id=edit)
    total = data.get("total")
    more = data.get("has_more")
    if more is None:
        more = (offset + len(items) < total) if isinstance(total, int) else len(items) >= limit
    head = ctx.t("search_head", query=query, start=offset + 1, end=offset + len(items),
                 total=total if isinstance(total, int) else "?")
    if truncated:
        head += "\n" + ctx.t("query_truncated", n=cfg.max_query_chars)
    buttons = [Button(ctx.t("more"), "search", _encode_page(ctx, offset + len(items), query))] if more else []
    return Reply(head, items=items, buttons=buttons, ephemeral=True, edit_message_id=edit)


async def cmd_settings(ctx: Ctx) -> Reply:
    args = ctx.incoming.args.strip()
    if not args:
        return _settings_view(ctx, ctx.sub)
    if ctx.sub is None:
        return Reply(ctx.t("not_subscribed", subscribe=ctx.cmd("subscribe")), ephemeral=True)
    key, _, value = args.partition(" ")
    key, value = key.lower(), value.strip()
    if not value:
        raise Usage("settings", settings=ctx.cmd("settings"))
    if key in ("time", "times", "时间"):
        sub = await subs.update_settings(ctx.app.store, ctx.sub.id, times=value)  # type: ignore[arg-type]
    elif key in ("tz", "timezone", "zone", "时区"):
        sub = await subs.update_settings(ctx.app.store, ctx.sub.id, timezone=value)  # type: ignore[arg-type]
    elif key in ("lang", "language", "locale", "语言"):
        sub = await subs.update_settings(ctx.app.store, ctx.sub.id, locale=value)  # type: ignore[arg-type]
    elif key in ("max", "max_stories", "条数"):
        sub = await subs.update_settings(ctx.app.store, ctx.sub.id, max_stories=value)  # type: ignore[arg-type]
    else:
        raise Usage("settings", settings=ctx.cmd("settings"))
    await subs.notify_changed(ctx.app, sub)
    ctx.locale = sub.locale  # a language change answers in the new language
    view = _settings_view(ctx, sub)
    view.text = ctx.t("settings_saved") + "\n" + view.text
    return view


def _settings_view(ctx: Ctx, sub: Subscription | None) -> Reply:
    shown = sub or subs.defaults(ctx.app.settings, ctx.incoming.adapter, ctx.incoming.chat_id,
                                 locale=ctx.locale)
    lines = [ctx.t("settings_head"),
             ctx.t("settings_times", times=", ".join(shown.times)),
             ctx.t("settings_tz", tz=shown.timezone),
             ctx.t("settings_lang", lang=t(shown.locale, "commands.lang_name")),
             ctx.t("settings_max", max=shown.max_stories),
             ctx.t("settings_filters", filters=_filters_text(ctx, shown.filters))]
    if sub is None or not sub.active:
        lines.append(ctx.t("not_subscribed", subscribe=ctx.cmd("subscribe")))
        return Reply("\n".join(lines))
    lines.append(ctx.t("settings_usage", settings=ctx.cmd("settings")))
    buttons = [
        Button("中文", "settings", "lang zh-CN"),
        Button("English", "settings", "lang en"),
        Button("08:00", "settings", "time 08:00"),
        Button("08:00, 20:00", "settings", "time 08:00,20:00"),
        Button(ctx.t("max_button", n=5), "settings", "max 5"),
        Button(ctx.t("max_button", n=10), "settings", "max 10"),
    ]
    edit = ctx.incoming.message_id if ctx.incoming.callback else None
    return Reply("\n".join(lines), buttons=buttons, edit_message_id=edit)


async def cmd_filter(ctx: Ctx) -> Reply:
    args = ctx.incoming.args.strip()
    if not args:
        f = ctx.sub.filters if ctx.sub else Filters()
        return Reply(ctx.t("filter_show", filters=_filters_text(ctx, f), filter=ctx.cmd("filter")))
    if ctx.sub is None:
        return Reply(ctx.t("not_subscribed", subscribe=ctx.cmd("subscribe")), ephemeral=True)
    f = apply_filter_args(ctx.sub.filters, args)
    sub = await subs.set_filters(ctx.app.store, ctx.sub.id, f)  # type: ignore[arg-type]
    await subs.notify_changed(ctx.app, sub)
    return Reply(ctx.t("filter_saved", filters=_filters_text(ctx, sub.filters)))


HANDLERS: dict[str, Handler] = {
    "start": cmd_start,
    "help": cmd_help,
    "subscribe": cmd_subscribe,
    "unsubscribe": cmd_unsubscribe,
    "digest": cmd_digest,
    "search": cmd_search,
    "settings": cmd_settings,
    "filter": cmd_filter,
}


# -- argument helpers -----------------------------------------------------------------------------

_SPLIT = re.compile(r"[\s,，、;；]+")
_OUTLET_PREFIXES = ("source:", "outlet:", "来源:", "来源：", "媒体:", "媒体：")


def _printable(text: str) -> str:
    # Control and format characters (NUL, zero-width spaces) never belong in a keyword; PostgreSQL
    # also refuses NUL in text.
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))


def _terms(args: str) -> list[str]:
    out: list[str] = []
    for w in _SPLIT.split(_printable(args or "")):
        w = w.strip()
        if not w:
            continue
        if len(w) > MAX_TERM_CHARS:
            raise Usage("term_too_long", n=MAX_TERM_CHARS)
        if w not in out:
            out.append(w)
    if len(out) > MAX_FILTER_TERMS:
        raise Usage("too_many_terms", n=MAX_FILTER_TERMS)
    return out


def apply_filter_args(current: Filters, args: str) -> Filters:
    """'+苹果 -广告 source:亿欧 -source:某站' (or 'clear') applied to ``current`` -> new Filters."""
    words = _terms(args)
    if [w.lower() for w in words] in (["clear"], ["清除"], ["reset"]):
        return Filters()
    f = Filters.from_dict(current.as_dict())

    def add(lst: list[str], w: str, *others: list[str]) -> None:
        for o in others:
            if w in o:
                o.remove(w)
        if w not in lst:
            lst.append(w)

    for raw in words:
        sign, w = "+", raw
        if w[0] in "+-−":
            sign, w = ("-" if w[0] != "+" else "+"), w[1:]
        outlet = next((w[len(p):] for p in _OUTLET_PREFIXES if w.lower().startswith(p)), None)
        if outlet is not None:
            if not outlet:
                raise Usage("filter", filter="/filter")
            if sign == "+":
                add(f.outlets, outlet, f.exclude_outlets)
            else:
                add(f.exclude_outlets, outlet, f.outlets)
            continue
        if not w:
            raise Usage("filter", filter="/filter")
        if sign == "+":
            add(f.include, w, f.exclude)
        else:
            add(f.exclude, w, f.include)
    for lst in (f.include, f.exclude, f.outlets, f.exclude_outlets):
        if len(lst) > MAX_FILTER_TERMS:
            raise Usage("too_many_terms", n=MAX_FILTER_TERMS)
    return f


def _filters_text(ctx: Ctx, f: Filters) -> str:
    parts = []
    if f.include:
        parts.append(ctx.t("f_include", words=", ".join(f.include)))
    if f.exclude:
        parts.append(ctx.t("f_exclude", words=", ".join(f.exclude)))
    if f.outlets:
        parts.append(ctx.t("f_outlets", words=", ".join(f.outlets)))
    if f.exclude_outlets:
        parts.append(ctx.t("f_exclude_outlets", words=", ".join(f.exclude_outlets)))
    return "; ".join(parts) if parts else ctx.t("f_none")


def _encode_page(ctx: Ctx, offset: int, query: str) -> str:
    value = f"{offset}:{query}"
    if len(value.encode()) <= MAX_BUTTON_VALUE_BYTES and not query.startswith("~"):
        return value  # ("~" marks a server-side token, so a query starting with one goes there too)
    # Too long for a button: keep the query here and put a short token in the button.
    token = hashlib.sha1(query.encode()).hexdigest()[:10]
    store = _search_tokens(ctx.app)
    store[token] = query
    store.move_to_end(token)
    while len(store) > _SEARCH_TOKENS:
        store.popitem(last=False)
    return f"{offset}:~{token}"


def _decode_page(ctx: Ctx, value: str) -> tuple[int, str]:
    off, sep, query = value.partition(":")
    if not sep or not off.isdigit():
        raise Usage("search", search=ctx.cmd("search"))
    if query.startswith("~"):
        found = _search_tokens(ctx.app).get(query[1:])
        if found is None:
            raise Usage("search_expired", search=ctx.cmd("search"))
        query = found
    return int(off), query


def _search_tokens(app: Any) -> OrderedDict[str, str]:
    d = getattr(app, "_search_tokens", None)
    if d is None:
        d = OrderedDict()
        app._search_tokens = d
    return d


def _result_item(ctx: Ctx, r: dict[str, Any], tz: str) -> ResultItem:
    outlets = r.get("outlets") or r.get("sources") or ([r["outlet"]] if r.get("outlet") else [])
    outlets = [str(o) for o in outlets if o]
    count = r.get("outlet_count") or len(outlets)
    when = r.get("published_at") or r.get("time") or r.get("last_seen") or ""
    parts = []
    if outlets:
        shown = "、".join(outlets[:2]) if ctx.locale == "zh-CN" else ", ".join(outlets[:2])
        parts.append(ctx.t("outlets_more", outlets=shown, n=count - 2) if count > 2 else shown)
    day = _local_day(when, tz)
    if day:
        parts.append(day)
    return ResultItem(
        title=str(r.get("title") or r.get("headline") or "—"),
        url=r.get("url"),
        detail=" · ".join(parts),
        snippet=str(r.get("snippet") or ""),
    )


def _local_day(value: Any, tz: str) -> str:
    try:
        dt = value if isinstance(value, datetime) else datetime.fromisoformat(
            str(value).replace("Z", "+00:00"))
        if dt.tzinfo is None:
            return dt.strftime("%Y-%m-%d")
        return dt.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d")
    except (ValueError, TypeError, KeyError):
        return ""
