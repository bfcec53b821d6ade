"""/search: a page of results, paging buttons, long queries kept for the buttons."""

from __future__ import annotations

import hashlib

from bot.commands.context import Ctx, Usage, printable
from bot.i18n.format import zone
from bot.model import Button, Reply
from bot.search import search

# Telegram allows 64 bytes of callback data; "search:" takes 7 of them.
MAX_BUTTON_VALUE_BYTES = 56
_SEARCH_TOKENS = 2000  # long queries kept server-side for paging buttons


async def cmd_search(ctx: Ctx) -> Reply:
    cfg = ctx.app.settings.commands
    offset, query = 0, ctx.incoming.args
    if ctx.incoming.callback:
        offset, query = _decode_page(ctx, query)
    query = " ".join(printable(query).split())
    if not query:
        raise Usage("search", search=ctx.cmd("search"))
    truncated = len(query) > cfg.max_query_chars
    query = query[: cfg.max_query_chars]
    limit = cfg.search_page_size
    res = await search(ctx.app.store, query, limit=limit, offset=offset, max_chars=cfg.max_query_chars)
    # Dates in the subscriber's zone and outlets by their display names, as in its digests.
    tz = zone(ctx.sub.timezone if ctx.sub else None, ctx.app.settings.timezone)
    items = res.result_items(ctx.locale, tz)
    edit = ctx.incoming.message_id if ctx.incoming.callback else None
    if not items:
        key = "search_no_more" if offset else "search_none"
        return Reply(ctx.t(key, query=query), ephemeral=True, edit_message_id=edit)
    head = ctx.t("search_head", query=query, start=offset + 1, end=offset + len(items), total=res.total)
    if truncated:
        head += "\n" + ctx.t("query_truncated", n=cfg.max_query_chars)
    more = res.has_more
    buttons = [Button(ctx.t("more"), "search", _encode_page(ctx, offset + len(items), query))] if more else []
    return Reply(head, items=items, buttons=buttons, ephemeral=True, edit_message_id=edit)


def _encode_page(ctx: Ctx, offset: int, query: str) -> str:
    value = f"{offset}:{query}"
    if len(value.encode()) <= MAX_BUTTON_VALUE_BYTES and not query.startswith("~"):
        return value  # ("~" marks a server-side token, so a query starting with one goes there too)
    # Too long for a button: keep the query here and put a short token in the button.
    token = hashlib.sha1(query.encode()).hexdigest()[:10]
    store = ctx.app.search_tokens
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
        found = ctx.app.search_tokens.get(query[1:])
        if found is None:
            raise Usage("search_expired", search=ctx.cmd("search"))
        query = found
    return int(off), query
