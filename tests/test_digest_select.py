"""Digest ranking and filters as pure functions: no store, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.digest.select import Art, StoryRows, best_article, outlet_names, passes, rank
from bot.model import Filters

T = datetime(2025, 2, 14, 8, 0, tzinfo=UTC)


def _rank(stats, delivered=None, *, excluded=(), updates=False, growth=3):
    return rank(list(stats), stats, delivered or {}, locale="en", excluded_outlets=set(excluded),
                updates=updates, update_growth=growth)


def test_more_outlets_then_more_articles_then_the_latest_report() -> None:
    stats = {
        1: [("qq", 5, T)],  # one outlet, many articles
        2: [("qq", 1, T - timedelta(hours=2)), ("iyiou", 1, T - timedelta(hours=2))],
        3: [("qq", 1, T), ("iyiou", 1, T)],  # as many outlets as 2, reported later
        4: [("qq", 2, T - timedelta(hours=5)), ("iyiou", 1, T - timedelta(hours=5))],
    }
    order, passed = _rank(stats)
    assert [sid for sid, _ in order] == [4, 3, 2, 1]
    assert passed == {1: 5, 2: 2, 3: 2, 4: 3}  # until composition takes them, all are "passed over"


def test_what_was_delivered_comes_back_only_as_a_grown_update() -> None:
    stats = {1: [("qq", 6, T)], 2: [("qq", 2, T)], 3: [("qq", 4, T)], 4: [("qq", 2, T)]}
    delivered = {1: (2, True), 2: (2, True), 3: (3, False), 4: (2, False)}
    order, _ = _rank(stats, delivered)
    assert order == [(3, False)]  # cut before and grown since; 4 was cut and did not grow
    order, passed = _rank(stats, delivered, updates=True, growth=3)
    assert order == [(3, False), (1, True)]  # new before updates
    assert 1 not in passed  # an update is not remembered as passed over


def test_excluded_outlets_do_not_count_and_can_drop_a_story() -> None:
    stats = {1: [("qq", 1, T), ("iyiou", 1, T)], 2: [("qq", 3, T)]}
    order, _ = _rank(stats, excluded={"qq news"})  # by its display name
    assert [sid for sid, _ in order] == [1]


def test_filters_headline_and_outlets_without_a_store() -> None:
    rows = [("qq", None, "zh-CN", 900), ("iyiou", "https://i/1", "zh", 300),
            ("qq", "https://q/2", "zh-CN", 50)]
    arts = [Art(id=i, story_id=1, outlet=o, url=u, title="苹果携手阿里巴巴", summary="", lang=lang,
                categories=[], tags=[], published_at=T + timedelta(minutes=i), ingested_at=T,
                duplicate_of=None, body_len=n)
            for i, (o, u, lang, n) in enumerate(rows)]
    story = StoryRows(id=1, title="苹果携手阿里巴巴", headline_article_id=None, arts=arts)
    assert passes(story, arts, Filters(langs=["zh"], include=["阿里"]), "en")
    assert not passes(story, arts, Filters(exclude=["苹果"]), "en")
    assert not passes(story, arts, Filters(langs=["en"]), "en")
    assert best_article(story, arts).id == 1  # linkable and substantial
    assert outlet_names(arts, "en") == ["QQ News", "iyiou"]
