"""Composition against a real store (SQLite, or PostgreSQL with DIGESTBOT_TEST_BACKEND=postgres)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import App
from bot.config import load_settings
from bot.digest import compose, record_delivered
from bot.digest.select import keyword_matches
from bot.i18n.format import outlets_label
from bot.model import Filters
from bot.store.tables import deliveries, subscriptions
from tests.digest_helpers import NOW, Art, add_articles, add_story, add_subscription

BODY_ZH = (
    "![](https://img.example/a.jpg)\n\n快讯3月10日消息，综合多方消息，**苹果公司与阿里巴巴集团宣布合作，"
    "两家公司将为国行iPhone用户开发人工智能功能。**\n\n分析人士认为，这项合作有望帮助苹果提振在华销量。"
)


def _app(store, **digest) -> App:
    import yaml

    text = (
        yaml.safe_dump({"digest": digest, "timezone": "Asia/Shanghai"})
        if digest
        else "timezone: Asia/Shanghai"
    )
    return App(settings=load_settings(text=text), store=store)


async def _three(store):
    big, _ = await add_story(
        store,
        "苹果携手阿里巴巴",
        [
            Art(
                "苹果携手阿里巴巴",
                outlet="iyiou",
                body=BODY_ZH,
                url="https://www.iyiou.com/a/1",
                summary="快讯3月10日消息，综合多方消息，苹果公司与阿里巴巴集团宣布合作，两家公司将为国行iPho...",
            ),
            Art("苹果阿里组CP", outlet="qq", url="https://new.qq.com/a/2"),
            Art("蔡崇信透露阿里与苹果合作", outlet="qq", url="https://new.qq.com/a/3"),
        ],
        headline=0,
    )
    small, _ = await add_story(
        store,
        "Apple patches zero-day",
        [
            Art(
                "Apple patches zero-day",
                outlet="BleepingComputer",
                lang="en",
                categories=["security"],
                body="Apple has released emergency updates to fix a zero-day vulnerability. "
                "It was exploited in extremely sophisticated attacks. Updates are available now.",
                url="https://b.example/x",
                published_at=NOW - timedelta(minutes=30),
            ),
        ],
    )
    old, _ = await add_story(
        store,
        "Old news",
        [
            Art(
                "Old news",
                outlet="x",
                lang="en",
                ingested_at=NOW - timedelta(days=3),
                published_at=NOW - timedelta(days=3),
            ),
        ],
    )
    return big, small, old


async def test_window_ranking_and_entry(store) -> None:
    big, small, _old = await _three(store)
    app = _app(store)
    sub = await add_subscription(store)
    d = await compose(app, sub, now=NOW)
    assert [e.story_id for e in d.entries] == [
        big,
        small,
    ]  # two outlets before one; old is outside the window
    e = d.entries[0]
    assert e.headline == "苹果携手阿里巴巴"
    assert e.url == "https://www.iyiou.com/a/1"  # the story's headline article
    assert e.outlets == ["腾讯新闻", "亿欧"] and e.outlet_count == 2  # most articles first, localised
    # The front-matter stub ends in "..." so the body's lead is used, without Markdown debris.
    assert e.summary.startswith("快讯3月10日消息，综合多方消息，苹果公司")
    assert "**" not in e.summary and "![" not in e.summary and "http" not in e.summary
    assert d.heading == "📰 新闻摘要 · 2025年2月14日 周五 08:00"
    assert d.locale == "zh-CN" and d.timezone == "Asia/Shanghai"


async def test_first_digest_looks_back_lookback_hours(store) -> None:
    _big, _small, old = await _three(store)
    app = _app(store, lookback_hours=100)
    d = await compose(app, await add_subscription(store), now=NOW)
    assert old in [e.story_id for e in d.entries]


async def test_window_starts_at_last_digest(store) -> None:
    big, small, _ = await _three(store)
    sub = await add_subscription(store, last_digest_at=NOW - timedelta(minutes=90))
    d = await compose(_app(store), sub, now=NOW)
    assert {e.story_id for e in d.entries} == {big, small}
    sub.last_digest_at = NOW - timedelta(minutes=30)
    assert (await compose(_app(store), sub, now=NOW)).entries == []
    # window_start overrides; articles ingested after ``now`` are not seen yet.
    assert (await compose(_app(store), sub, now=NOW - timedelta(hours=2))).entries == []


async def test_max_stories(store) -> None:
    await _three(store)
    sub = await add_subscription(store, max_stories=1)
    assert len((await compose(_app(store), sub, now=NOW)).entries) == 1


async def test_delivered_not_again_and_updates(store) -> None:
    big, small, _ = await _three(store)
    app = _app(store)
    sub = await add_subscription(store)
    d = await compose(app, sub, now=NOW)
    async with store.begin() as conn:
        await record_delivered(conn, sub.id, d)
    async with store.connect() as conn:
        rows = {r.story_id: r.size for r in (await conn.execute(select(deliveries))).all()}
        last = (
            await conn.execute(select(subscriptions.c.last_digest_at).where(subscriptions.c.id == sub.id))
        ).scalar_one()
    assert rows == {big: 3, small: 1}
    assert last == NOW
    # Same window again (e.g. a retry): nothing is delivered twice.
    assert (await compose(app, sub, now=NOW, window_start=NOW - timedelta(hours=24))).entries == []
    # The big story grows by 3 articles: off by default, an update when enabled.
    later = NOW + timedelta(hours=2)
    await add_articles(
        store,
        big,
        [Art(f"more {i}", outlet=f"o{i}", ingested_at=later - timedelta(minutes=5)) for i in range(3)],
    )
    sub.last_digest_at = NOW
    assert (await compose(app, sub, now=later)).entries == []
    app_u = _app(store, updates=True, update_growth=3)
    d2 = await compose(app_u, sub, now=later)
    assert [(e.story_id, e.is_update, e.outlet_count) for e in d2.entries] == [(big, True, 5)]
    # Growth below the threshold is not an update.
    app_4 = _app(store, updates=True, update_growth=4)
    assert (await compose(app_4, sub, now=later)).entries == []
    async with store.begin() as conn:
        await record_delivered(conn, sub.id, d2)
    async with store.connect() as conn:
        size = (
            await conn.execute(select(deliveries.c.size).where(deliveries.c.story_id == big))
        ).scalar_one()
    assert size == 6


@pytest.mark.parametrize(
    ("flt", "expect"),
    [
        (Filters(include=["苹果"]), {"big"}),
        (Filters(include=["阿里"]), {"big"}),  # substring of 阿里巴巴 whatever jieba does
        (Filters(include=["zero-day"]), {"small"}),
        (Filters(include=["apple"]), {"small"}),  # case-insensitive, word-based
        (Filters(include=["app"]), set()),  # English keywords match whole words, not prefixes
        (Filters(exclude=["苹果"]), {"small"}),
        (Filters(langs=["en"]), {"small"}),
        (Filters(langs=["zh"]), {"big"}),
        (Filters(categories=["Security"]), {"small"}),
        (Filters(outlets=["亿欧"]), {"big"}),  # by display name
        (Filters(outlets=["iyiou"]), {"big"}),  # or by the raw outlet
        (Filters(exclude_outlets=["qq", "iyiou"]), {"small"}),
    ],
)
async def test_filters(store, flt: Filters, expect: set[str]) -> None:
    big, small, _ = await _three(store)
    names = {big: "big", small: "small"}
    sub = await add_subscription(store, filters=flt)
    d = await compose(_app(store), sub, now=NOW)
    assert {names[e.story_id] for e in d.entries} == expect


async def test_excluded_outlet_is_not_linked_or_counted(store) -> None:
    big, _, _ = await _three(store)
    sub = await add_subscription(store, filters=Filters(exclude_outlets=["iyiou"]))
    e = next(e for e in (await compose(_app(store), sub, now=NOW)).entries if e.story_id == big)
    assert e.outlets == ["腾讯新闻"] and "iyiou" not in (e.url or "")


async def test_english_locale_and_zone(store) -> None:
    await _three(store)
    sub = await add_subscription(store, locale="en", timezone="America/New_York")
    d = await compose(_app(store), sub, now=NOW)
    assert d.heading == "📰 News digest · Thu 13 Feb 2025, 19:00"
    assert d.entries[0].outlets == ["QQ News", "iyiou"]


async def test_preview_defaults_and_formats(store) -> None:
    await _three(store)
    app = _app(store)
    text = await app.preview_digest(fmt="text", now=NOW)
    assert len(text) == 1 and "苹果携手阿里巴巴" in text[0]["text"]
    tg = await app.preview_digest(fmt="telegram", locale="en", now=NOW)
    assert tg[0]["parse_mode"] == "HTML" and "News digest" in tg[0]["text"]
    sl = await app.preview_digest(fmt="slack", now=NOW)
    assert sl[0]["blocks"][0]["type"] == "header"
    with pytest.raises(ValueError, match="unknown digest format"):
        await app.preview_digest(fmt="pdf", now=NOW)


async def test_empty_store_previews_empty_digest(store) -> None:
    out = await _app(store).preview_digest(fmt="text", locale="en", now=NOW)
    assert "No new stories" in out[0]["text"]


def test_keyword_matching() -> None:
    assert keyword_matches("苹果", "苹果公司发布新品")
    assert keyword_matches("iOS 18.5", "随 iOS 18.5 版本更新")
    assert not keyword_matches("iOS 18", "随 iOS 18.5 版本更新")
    assert not keyword_matches("AI", "he said so")
    assert keyword_matches("ai", "AI features for iPhone")
    assert not keyword_matches("", "anything")


def test_outlets_label() -> None:
    assert outlets_label("zh-CN", ["亿欧", "腾讯新闻"], 6) == "亿欧、腾讯新闻等 6 家媒体"
    assert outlets_label("en", ["iyiou", "QQ News"], 6) == "iyiou, QQ News and 4 more"
    assert outlets_label("en", ["iyiou", "QQ News"], 2) == "iyiou and QQ News"
    assert outlets_label("zh-CN", ["a", "b", "c"], 3) == "a、b、c"
    assert outlets_label("en", ["a"], 1) == "a"
    assert outlets_label("en", [], 0) == "unknown source"


async def test_filtered_picks_come_from_later_ranks(store) -> None:
    """Ranking reads full rows in batches; a filter that rejects the top ranks still fills the digest."""
    for i in range(25):
        await add_story(store, f"en {i}", [Art(f"en {i}", outlet=f"o{j}", lang="en") for j in range(3)])
    zh, _ = await add_story(store, "苹果", [Art("苹果", outlet="qq")])
    sub = await add_subscription(store, filters=Filters(langs=["zh-CN"]))
    assert [e.story_id for e in (await compose(_app(store), sub, now=NOW)).entries] == [zh]
    sub_all = await add_subscription(store, max_stories=30)
    entries = (await compose(_app(store), sub_all, now=NOW)).entries
    assert len(entries) == 26 and entries[-1].story_id == zh  # one outlet ranks last


async def test_outlet_boilerplate_is_not_a_summary(store) -> None:
    notice = "译文仅供参考，具体内容表达以及含义原文为准。"
    for i, lead in enumerate(["微软发出警告，攻击者正利用网上获取的静态密钥部署恶意软件。",
                              "思科已发布更新，以修复身份服务引擎存在的两个严重安全漏洞。"]):
        await add_story(store, f"old {i}", [Art(f"old {i}", outlet="anquanke", body=f"{notice}\n\n{lead}",
                                                ingested_at=NOW - timedelta(days=3))])
    lead = "黑客正瞄准存在漏洞的远程监控与管理客户端，以创建管理员账户并植入后门。"
    sid, _ = await add_story(store, "new", [Art("new", outlet="anquanke", body=f"{notice}\n\n{lead}")])
    # The same lead twice inside one story (a repost) is the story's text, not furniture.
    repost = "云州地铁全线开通刷掌乘车，绑定后无需手机即可进站，首日使用人数超过十万。"
    sid2, _ = await add_story(store, "palm", [Art("palm", outlet="kuaibao", body=repost),
                                              Art("palm 2", outlet="kuaibao", body=repost),
                                              Art("palm 3", outlet="kuaibao", body=repost)])
    d = await compose(_app(store), await add_subscription(store), now=NOW)
    by_id = {e.story_id: e for e in d.entries}
    assert by_id[sid].summary == lead
    assert by_id[sid2].summary == repost


async def test_stories_cut_by_max_stories_are_not_offered_again_until_they_grow(store) -> None:
    big, small, _ = await _three(store)
    app = _app(store)
    sub = await add_subscription(store, max_stories=1)
    d = await compose(app, sub, now=NOW)
    assert [e.story_id for e in d.entries] == [big] and d.passed_over == {small: 1}
    async with store.begin() as conn:
        await record_delivered(conn, sub.id, d)
    async with store.connect() as conn:
        rows = {r.story_id: (r.size, r.shown) for r in (await conn.execute(select(deliveries))).all()}
    assert rows == {big: (3, True), small: (1, False)}
    # The next window overlaps the last one (the outbox does so to catch late commits): nothing repeats.
    later = NOW + timedelta(hours=1)
    assert (await compose(app, sub, now=later, window_start=NOW - timedelta(minutes=90))).entries == []
    # The cut story gains an article: it is new again (not an "update"), and then shown.
    await add_articles(store, small, [Art("Apple patches zero-day, again", outlet="The Record", lang="en",
                                          ingested_at=later - timedelta(minutes=5))])
    d2 = await compose(app, sub, now=later, window_start=NOW - timedelta(minutes=10))
    assert [(e.story_id, e.is_update) for e in d2.entries] == [(small, False)]
    async with store.begin() as conn:
        await record_delivered(conn, sub.id, d2)
        # A passed-over record never hides a story that was shown.
        d2.passed_over = {big: 99}
        d2.entries = []
        await record_delivered(conn, sub.id, d2)
    async with store.connect() as conn:
        rows = {r.story_id: (r.size, r.shown) for r in (await conn.execute(select(deliveries))).all()}
    assert rows == {big: (3, True), small: (2, True)}


async def test_runaway_title_is_cut_in_the_entry(store) -> None:
    title = "苹果与阿里巴巴合作" + "，据多方消息称双方将共同开发人工智能功能" * 20  # ~400 characters
    assert len(title) > 400
    await add_story(store, title, [Art(title, outlet="iyiou", url="https://www.iyiou.com/a/9")])
    d = await compose(_app(store), await add_subscription(store), now=NOW)
    [entry] = d.entries
    assert entry.headline.startswith("苹果与阿里巴巴合作") and entry.headline.endswith("…")
    assert len(entry.headline) < 100
