"""Chat commands, once for every platform: ``handle(app, incoming) -> Reply`` routes each
to its handler (``subscription``, ``digest``, ``search``).

Adapters turn a platform event into an ``Incoming`` and render the ``Reply``; nothing
here knows about markup. Every failure becomes a short localised reply: bad input
gets a usage line, a crash gets "something went wrong" (and a logged trace).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.commands.context import Ctx, Handler, Usage
from bot.commands.digest import cmd_digest
from bot.commands.search import cmd_search
from bot.commands.subscription import cmd_filter, cmd_settings, cmd_start, cmd_subscribe, cmd_unsubscribe
from bot.i18n import normalise_locale, t
from bot.model import Incoming, Reply
from bot.store import subscriptions as subs

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

# The order adapters register and /help lists them in.
COMMAND_NAMES = ("start", "help", "subscribe", "unsubscribe", "digest", "search", "settings", "filter")
ALIASES = {"stop": "unsubscribe", "filters": "filter", "find": "search", "s": "search", "set": "settings",
           "sub": "subscribe", "unsub": "unsubscribe", "now": "digest"}
# Commands that change the chat's subscription: only chat admins may use them in groups.
_MUTATING = {"subscribe", "unsubscribe"}
_MUTATING_WITH_ARGS = {"settings", "filter"}


async def handle(app: App, incoming: Incoming) -> Reply:
    locale = normalise_locale(incoming.language_code) if incoming.language_code else _default_locale(app)
    try:
        limiter = app.command_limiter
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


def _default_locale(app: App) -> str:
    return app.settings.digest.locale


def descriptions(locale: str) -> list[tuple[str, str]]:
    """(command, one-line description) for the platform's command menu."""
    return [(c, t(locale, f"commands.desc.{c}")) for c in COMMAND_NAMES]


async def cmd_help(ctx: Ctx) -> Reply:
    lines = [ctx.t("help_intro")]
    for name, desc in descriptions(ctx.locale):
        lines.append(f"{ctx.cmd(name)} — {desc}")
    lines.append("")
    lines.append(ctx.t("help_examples", search=ctx.cmd("search"), settings=ctx.cmd("settings"),
                       filter=ctx.cmd("filter"), subscribe=ctx.cmd("subscribe")))
    return Reply("\n".join(lines))


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


