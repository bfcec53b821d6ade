"""Any command text gets a Reply, never a crash (the "something went wrong" path is for bugs)."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import commands
from bot.commands.dispatch import ALIASES
from bot.i18n import t
from bot.model import Incoming, Reply
from tests.test_adapters_support import open_app

NAMES = [*commands.COMMAND_NAMES, *ALIASES, "frob", ""]
WORDS = ["time", "tz", "lang", "max", "clear", "+苹果", "-广告", "source:亿欧", "08:00", "25:99",
         "Europe/London", "en", "zh-CN", "99", "0:苹果", "~abc", "5:", ":", "—", "\u200b", "＋", "source:",
         "\x00", "苹果\x00"]


def test_handle_never_crashes(db_url: str) -> None:
    loop = asyncio.new_event_loop()
    app = loop.run_until_complete(open_app(db_url, extra="commands: {per_user_per_minute: 1000000}\n"))
    errors = {t("en", "commands.error"), t("zh-CN", "commands.error")}
    try:
        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(name=st.sampled_from(NAMES) | st.text(max_size=12),
               args=st.lists(st.sampled_from(WORDS) | st.text(max_size=20), max_size=5).map(" ".join),
               chat_type=st.sampled_from(["private", "group", "supergroup", "channel"]),
               callback=st.booleans(), admin=st.booleans(),
               lang=st.sampled_from([None, "en", "zh-hans", "de"]))
        def check(name: str, args: str, chat_type: str, callback: bool, admin: bool,
                  lang: str | None) -> None:
            inc = Incoming(adapter="console", chat_id="c1", user_id="u1", command=name, args=args,
                           chat_type=chat_type, callback=callback, is_admin=admin, language_code=lang,
                           message_id="1" if callback else None)
            reply = loop.run_until_complete(commands.handle(app, inc))
            assert isinstance(reply, Reply)
            assert reply.text or reply.digest is not None
            assert reply.text not in errors, (name, args)

        check()
    finally:
        loop.run_until_complete(app.close())
        loop.close()
