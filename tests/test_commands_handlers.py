"""bot/commands/: the platform-neutral handlers, called directly with an Incoming."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import commands
from bot.commands.context import Ctx, Usage
from bot.commands.search import _decode_page, _encode_page
from bot.commands.user_limits import UserRateLimiter
from bot.ingest import run_ingest
from bot.model import Digest, DigestEntry, Filters, Incoming
from bot.search import SearchHit, SearchResults
from bot.store import subscriptions as subs
from tests.test_adapters_support import fake_search, folder_source, open_app, write_articles


@pytest.fixture
async def app(db_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    write_articles(tmp_path / "a")
    a = await open_app(db_url, extra=folder_source(tmp_path / "a") + "commands: {search_page_size: 2}\n")
    await run_ingest(a)
    try:
        yield a
    finally:
        await a.close()


def inc(command: str, args: str = "", **kw: Any) -> Incoming:
    kw.setdefault("language_code", "en")
    return Incoming(adapter="console", chat_id=kw.pop("chat_id", "c1"), user_id=kw.pop("user_id", "u1"),
                    command=command, args=args, **kw)


async def test_start_reactivates_a_retired_subscription(app: Any) -> None:
    await commands.handle(app, inc("subscribe"))
    sub = await subs.get(app.store, "console", "c1")
    assert sub is not None and sub.id is not None
    await subs.retire(app.store, sub.id, "blocked")
    r = await commands.handle(app, inc("start"))
    assert r.text == ("Welcome back! Your subscription is active again; digests at 08:00. "
                      "/help lists every command.")
    again = await subs.get(app.store, "console", "c1")
    assert again is not None and again.active and again.retired_reason is None
    # Someone who unsubscribed on purpose is only welcomed.
    await commands.handle(app, inc("unsubscribe"))
    r = await commands.handle(app, inc("start"))
    assert r.text.startswith("Hello!")
    gone = await subs.get(app.store, "console", "c1")
    assert gone is not None and not gone.active


async def test_digest_now_returns_the_composed_digest(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    async def compose(app_: Any, sub: Any) -> Digest:
        seen.append(sub)
        entries = [DigestEntry(1, "头条", "", ["亿欧"], 1, datetime.now(UTC), None)] if "降雨" not in \
            sub.filters.include else []
        return Digest(sub.locale, sub.timezone, datetime.now(UTC), entries, heading="h")

    monkeypatch.setattr("bot.commands.digest.compose", compose)
    r = await commands.handle(app, inc("digest"))
    assert r.digest is not None and r.text == "" and r.digest.entries[0].headline == "头条"
    assert seen[-1].id is None and seen[-1].locale == "en"  # not subscribed: the defaults, not stored
    await commands.handle(app, inc("subscribe", "降雨"))
    r = await commands.handle(app, inc("digest"))
    assert seen[-1].id is not None and seen[-1].filters.include == ["降雨"]
    assert r.digest is None and r.text == "Nothing new right now. Try /search to search the archive."


async def test_digest_now_with_the_real_composer(app: Any) -> None:
    from bot.stories.service import list_stories

    if not await list_stories(app.store):
        pytest.skip("story clustering is not wired into ingest yet: no stories to compose")
    r = await commands.handle(app, inc("digest"))
    assert r.digest is not None
    titles = [e.headline for e in r.digest.entries]
    assert any("苹果" in t for t in titles) and any("降雨" in t for t in titles)
    await commands.handle(app, inc("subscribe", "降雨"))
    r = await commands.handle(app, inc("digest"))
    assert r.digest is not None and all("降雨" in e.headline for e in r.digest.entries)


async def test_search_pages_and_caps_the_query(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    r = await commands.handle(app, inc("search", "苹果"))
    assert r.ephemeral and len(r.items) == 2 and r.buttons == []
    assert r.text == "Results for “苹果” (1–2 of 2):"
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("bot.commands.search.search", fake_search(9, calls))
    long = "苹果" * 150  # 300 characters; the cap is 200
    r = await commands.handle(app, inc("search", long))
    assert calls[-1]["query"] == "苹果" * 100 and calls[-1]["max_chars"] == 200
    assert "(query too long: only the first 200 characters were used)" in r.text
    [more] = r.buttons
    assert more.action == "search" and len(f"search:{more.value}".encode()) <= 64
    assert more.value.startswith("2:~")  # too long for a button: kept server-side
    r2 = await commands.handle(app, inc("search", more.value, callback=True, message_id="77"))
    assert calls[-1] == {"query": "苹果" * 100, "limit": 2, "offset": 2, "max_chars": 200}
    assert r2.edit_message_id == "77" and r2.text.startswith("Results for “" + "苹果" * 100 + "” (3–4 of 9)")
    r3 = await commands.handle(app, inc("search", "8:苹果", callback=True, message_id="77"))
    assert r3.buttons == [] and len(r3.items) == 1
    r4 = await commands.handle(app, inc("search", "4:~deadbeef00", callback=True))
    assert r4.text == "This search has expired; send /search QUERY again."
    r5 = await commands.handle(app, inc("search", "nonsense", callback=True))
    assert r5.text == "Usage: /search QUERY, e.g. /search Apple"
    r6 = await commands.handle(app, inc("search", "   "))
    assert r6.text == "Usage: /search QUERY, e.g. /search Apple"


async def test_search_with_nothing_found(app: Any) -> None:
    r = await commands.handle(app, inc("search", "量子计算"))
    assert r.text == "No news found for “量子计算”." and r.items == []


def test_needs_admin_matrix() -> None:
    assert commands.needs_admin("subscribe", "", "group")
    assert commands.needs_admin("stop", "", "supergroup")  # an alias of unsubscribe
    assert commands.needs_admin("settings", "tz UTC", "group")
    assert not commands.needs_admin("settings", "", "group")  # looking is fine
    assert not commands.needs_admin("search", "x", "group")
    assert not commands.needs_admin("subscribe", "", "private")
    assert not commands.needs_admin("subscribe", "", "channel")  # only admins can post there
    assert commands.needs_admin("settings", "lang en", "channel", callback=True)  # anyone can press


async def test_admin_only_in_groups(app: Any) -> None:
    r = await commands.handle(app, inc("subscribe", chat_type="group", is_admin=False))
    assert r.text == "Only group admins can change this group's subscription and settings."
    r = await commands.handle(app, inc("subscribe", chat_type="group", is_admin=True))
    assert r.text.startswith("Subscribed!")


async def test_rate_limit_and_errors_are_localised(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(10):
        assert (await commands.handle(app, inc("help", language_code="zh"))).text.startswith("可用命令：")
    r = await commands.handle(app, inc("help", language_code="zh"))
    assert r.text.startswith("操作太频繁了，请 ") and r.text.endswith(" 秒后再试。")
    assert (await commands.handle(app, inc("help", language_code="zh"))).text == ""

    async def boom(*a: Any, **k: Any) -> Any:
        raise KeyError("x")

    monkeypatch.setattr("bot.commands.search.search", boom)
    r = await commands.handle(app, inc("search", "x", user_id="u2"))
    assert r.text == "Something went wrong. Please try again later."


def test_rate_limiter_window() -> None:
    now = [0.0]
    lim = UserRateLimiter(2, clock=lambda: now[0], max_users=3)
    assert lim.allow("t", "a") and lim.allow("t", "a") and not lim.allow("t", "a")
    assert lim.first_refusal("t", "a") and not lim.first_refusal("t", "a")
    assert lim.retry_in("t", "a") == 60.0
    now[0] = 60.5
    assert lim.allow("t", "a")
    for u in "bcdef":  # memory stays bounded
        lim.allow("t", u)
    assert len(lim._hits) <= 3


def test_filter_args() -> None:
    f = commands.apply_filter_args(Filters(include=["广告"]), "+苹果 -广告 source:亿欧 -source:某站 阿里")
    assert f.include == ["苹果", "阿里"] and f.exclude == ["广告"]
    assert f.outlets == ["亿欧"] and f.exclude_outlets == ["某站"]
    f2 = commands.apply_filter_args(f, "-苹果 来源：某站")
    assert f2.include == ["阿里"] and f2.exclude == ["广告", "苹果"] and f2.outlets == ["亿欧", "某站"]
    assert f2.exclude_outlets == []
    assert commands.apply_filter_args(f2, "clear") == Filters()
    for bad in ("+", "source:", "-"):
        with pytest.raises(Usage):
            commands.apply_filter_args(Filters(), bad)
    with pytest.raises(Usage):
        commands.apply_filter_args(Filters(), "x" * 41)


@given(st.text(max_size=80))
def test_filter_args_any_text(text: str) -> None:
    try:
        f = commands.apply_filter_args(Filters(), text)
    except Usage:
        return
    # Nothing is in both an include and an exclude list, and nothing is empty.
    assert not set(f.include) & set(f.exclude)
    assert not set(f.outlets) & set(f.exclude_outlets)
    assert all(w for w in f.include + f.exclude + f.outlets + f.exclude_outlets)


@given(st.text(min_size=1, max_size=60))
def test_page_buttons_fit_telegram(query: str) -> None:
    class A:
        search_tokens: ClassVar[OrderedDict[str, str]] = OrderedDict()

    ctx = Ctx(A(), inc("search"), None, "en")  # type: ignore[arg-type]
    value = _encode_page(ctx, 15, query)
    assert len(f"search:{value}".encode()) <= 64
    assert _decode_page(ctx, value) == (15, query)


async def test_unknown_command_in_the_subscription_language(app: Any) -> None:
    await commands.handle(app, inc("subscribe", language_code="zh"))
    r = await commands.handle(app, inc("frob", language_code="en"))
    assert r.text == "不认识的命令 “frob”。发送 /help 查看可用命令。"
    r = await commands.handle(app, inc("settings", "lang en"))
    assert r.text.startswith("Saved.\nSettings:")


def test_strings_match_across_locales() -> None:
    import json
    import string

    root = Path(commands.__file__).parent.parent / "i18n"
    zh = json.loads((root / "commands.zh-CN.json").read_text(encoding="utf-8"))
    en = json.loads((root / "commands.en.json").read_text(encoding="utf-8"))
    assert set(zh) == set(en)

    def fields(s: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(s) if f}

    for key in zh:
        assert fields(zh[key]) == fields(en[key]), key
    # Telegram's menu needs 1-256 characters per description.
    for name in commands.COMMAND_NAMES:
        assert 3 <= len(zh[f"commands.desc.{name}"]) <= 256 and 3 <= len(en[f"commands.desc.{name}"]) <= 256


async def test_settings_time_answers_clearly_when_too_many_or_none(app: Any) -> None:
    await commands.handle(app, inc("subscribe"))
    r = await commands.handle(app, inc("settings", "time 01:00,02:00,03:00,04:00,05:00,06:00,07:00"))
    assert r.text == "At most 6 digest times a day (you gave 7). Use HH:MM, e.g. 08:00,20:00."
    r = await commands.handle(app, inc("settings", "time ,,"))
    assert r.text == "Give at least one time of day as HH:MM, e.g. 08:00,20:00."
    r = await commands.handle(app, inc("settings", "time 25:00"))
    assert r.text.startswith("Not a time of day: “25:00”")
    await commands.handle(app, inc("subscribe", language_code="zh-hans", chat_id="c2"))
    zh = await commands.handle(app, inc("settings", "time 1:00,2:00,3:00,4:00,5:00,6:00,7:00",
                                        language_code="zh-hans", chat_id="c2"))
    assert zh.text == "每天最多 6 个推送时间（你给了 7 个），请用 HH:MM，例如 08:00,20:00。"
    sub = await subs.get(app.store, "console", "c1")
    assert sub is not None and sub.times == ["08:00"]  # unchanged


async def test_search_results_read_like_digests(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dates in the subscriber's zone and outlets by their display names, as its digests show them."""

    async def search(store: Any, query: str, **kw: Any) -> SearchResults:
        hit = SearchHit(story_id=1, article_id=1, title="苹果携手阿里巴巴", url=None, outlet="qq",
                        outlets=["qq", "iyiou"], outlet_count=2,
                        published_at=datetime(2025, 2, 11, 20, 30, tzinfo=UTC),  # 12 Feb in Shanghai
                        snippet="", score=1.0)
        return SearchResults(query, [hit], total=1)

    monkeypatch.setattr("bot.commands.search.search", search)
    await commands.handle(app, inc("subscribe"))
    await commands.handle(app, inc("settings", "tz Asia/Shanghai"))
    [item] = (await commands.handle(app, inc("search", "苹果"))).items
    assert item.detail == "QQ News and iyiou · 2025-02-12"
    await commands.handle(app, inc("settings", "tz America/New_York"))
    [item] = (await commands.handle(app, inc("search", "苹果"))).items
    assert item.detail.endswith(" · 2025-02-11")
