"""Commands that change a chat's subscription: /start /subscribe /unsubscribe /settings /filter."""

from __future__ import annotations

from bot.commands.context import Ctx, Usage, apply_filter_args, filters_text, terms
from bot.i18n import t
from bot.model import Button, Filters, Reply, Subscription
from bot.store import subscriptions as subs


async def cmd_start(ctx: Ctx) -> Reply:
    sub = ctx.sub
    if sub is not None and not sub.active and sub.retired_reason not in (None, "unsubscribed"):
        # The chat came back (e.g. unblocked the bot): resume what it had.
        if not ctx.incoming.is_admin and ctx.incoming.chat_type in ("group", "supergroup"):
            return Reply(ctx.t("welcome", subscribe=ctx.cmd("subscribe"), help=ctx.cmd("help")))
        await subs.reactivate(ctx.app.store, sub.id)  # type: ignore[arg-type]
        sub = await subs.get(ctx.app.store, sub.adapter, sub.chat_id)
        if sub:
            await ctx.app.subscription_changed(sub)
        return Reply(ctx.t("welcome_back", times=", ".join(sub.times) if sub else "", help=ctx.cmd("help")))
    if sub is not None and sub.active:
        return Reply(ctx.t("welcome_subscribed", times=", ".join(sub.times), tz=sub.timezone,
                           help=ctx.cmd("help")))
    return Reply(ctx.t("welcome", subscribe=ctx.cmd("subscribe"), help=ctx.cmd("help")))


async def cmd_subscribe(ctx: Ctx) -> Reply:
    keywords = terms(ctx.incoming.args)
    sub = ctx.sub or subs.defaults(ctx.app.settings, ctx.incoming.adapter, ctx.incoming.chat_id,
                                   chat_type=ctx.incoming.chat_type, locale=ctx.locale)
    was_active = ctx.sub is not None and ctx.sub.active
    sub.active, sub.retired_reason = True, None
    if keywords:
        sub.filters.include = keywords
        sub.filters.exclude = [w for w in sub.filters.exclude if w not in keywords]
    sub = await subs.upsert(ctx.app.store, sub)
    await ctx.app.subscription_changed(sub)
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
    await ctx.app.subscription_changed(ctx.sub)
    return Reply(ctx.t("unsubscribed", subscribe=ctx.cmd("subscribe")))


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
    await ctx.app.subscription_changed(sub)
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
             ctx.t("settings_filters", filters=filters_text(ctx, shown.filters))]
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
        return Reply(ctx.t("filter_show", filters=filters_text(ctx, f), filter=ctx.cmd("filter")))
    if ctx.sub is None:
        return Reply(ctx.t("not_subscribed", subscribe=ctx.cmd("subscribe")), ephemeral=True)
    f = apply_filter_args(ctx.sub.filters, args)
    sub = await subs.set_filters(ctx.app.store, ctx.sub.id, f)  # type: ignore[arg-type]
    await ctx.app.subscription_changed(sub)
    return Reply(ctx.t("filter_saved", filters=filters_text(ctx, sub.filters)))
