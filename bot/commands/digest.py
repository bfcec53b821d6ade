"""/digest: the chat's digest now, composed as its schedule would."""

from __future__ import annotations

from bot.commands.context import Ctx
from bot.digest import compose
from bot.model import Reply
from bot.store import subscriptions as subs


async def cmd_digest(ctx: Ctx) -> Reply:
    sub = ctx.sub or subs.defaults(ctx.app.settings, ctx.incoming.adapter, ctx.incoming.chat_id,
                                   chat_type=ctx.incoming.chat_type, locale=ctx.locale)
    digest = await compose(ctx.app, sub)
    if digest is None or not digest.entries:
        return Reply(ctx.t("digest_empty", search=ctx.cmd("search")))
    return Reply("", digest=digest)
