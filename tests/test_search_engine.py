"""Search over a store (SQLite FTS5, or PostgreSQL with DIGESTBOT_TEST_BACKEND=postgres)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, update

from bot.search import QueryError, index_articles, rebuild_index, search
from bot.store import tables as T
from bot.store.db import Store
from tests.search_helpers import Doc, add_docs


@pytest.fixture
async def corpus(store: Store) -> dict:
    return await add_docs(store)


def keys(res, arts: dict) -> list[str]:
    by_id = {a.id: k for k, a in arts.items()}
    return [by_id[h.article_id] for h in res.items]


async def test_chinese_two_words_rank_the_story_first_and_collapse_it(store, corpus):
    res = await search(store, "苹果 阿里")
    assert res.total == 1  # the fruit article has 苹果 but not 阿里巴巴
    hit = res.items[0]
    assert hit.story_id == corpus["ali1"].story_id
    assert hit.outlet_count == 3
    assert sorted(hit.outlets) == sorted(["新智元", "36氪", "Solidot"])
    assert keys(res, corpus)[0] in {"ali1", "ali2", "ali3"}


async def test_short_chinese_word_finds_the_longer_one(store, corpus):
    # 阿里 is only ever written inside 阿里巴巴 in the corpus: jieba's search mode indexes it.
    res = await search(store, "阿里")
    assert [h.story_id for h in res.items] == [corpus["ali1"].story_id]
    res = await search(store, "苹果")
    assert res.items[0].story_id == corpus["ali1"].story_id
    assert keys(res, corpus)[1:] == ["fruit"]  # body-only mention ranks below the titled story
    assert res.items[1].story_id is None and res.items[1].outlet_count == 1


async def test_english_words_are_stemmed_and_ranked(store, corpus):
    res = await search(store, "apple patched")  # the article says "patches", the other "patched"
    assert [h.story_id for h in res.items] == [corpus["zd1"].story_id]
    assert res.items[0].outlet_count == 2
    res = await search(store, "Security UPDATES")
    assert set(keys(res, corpus)) == {"zd1", "ch1", "upd"}
    assert keys(res, corpus)[0] in {"upd", "ch1"}  # both words in the title beat a body-only match


async def test_mixed_chinese_and_english(store, corpus):
    corpus.update(await add_docs(store, [
        Doc("mix", "Apple和阿里巴巴在中国的AI合作", "双方的合作细节尚未公布。", "MixNews"),
    ]))
    assert keys(await search(store, "Apple阿里巴巴"), corpus) == ["mix"]  # no space between scripts
    assert keys(await search(store, "阿里 AI"), corpus) == ["mix"]
    assert keys(await search(store, '"和阿里巴巴在中国"'), corpus) == ["mix"]


async def test_phrases_need_adjacent_words(store, corpus):
    loose = await search(store, "security update")
    phrase = await search(store, '"security update"')
    assert set(keys(loose, corpus)) == {"zd1", "ch1", "upd"}
    assert set(keys(phrase, corpus)) == {"zd1", "ch1"}  # upd has both words, never side by side
    curly = await search(store, "“security update”")
    assert set(keys(curly, corpus)) == {"zd1", "ch1"}
    zh = await search(store, '"零日漏洞"')
    assert keys(zh, corpus) == ["pt1"]
    assert (await search(store, '"update security researcher"')).total == 1


async def test_exclusion(store, corpus):
    res = await search(store, "苹果 -阿里巴巴")
    assert keys(res, corpus) == ["fruit"]
    res = await search(store, 'security -"usb restricted mode"')
    assert set(keys(res, corpus)) == {"ch1", "upd"}
    assert (await search(store, "-苹果")).total == 0  # nothing positive to look for


async def test_source_filter(store, corpus):
    res = await search(store, "苹果 source:solidot")
    assert keys(res, corpus) == ["ali3"]
    assert res.items[0].outlet_count == 3  # the story still counts all its outlets
    res = await search(store, "阿里巴巴 source:36氪")
    assert keys(res, corpus) == ["ali2"]
    res = await search(store, 'apple source:"the hacker news"')
    assert keys(res, corpus) == ["zd2"]
    res = await search(store, "SOURCE:BleepingComputer")  # an outlet alone lists its stories
    assert keys(res, corpus) == ["zd1"]
    res = await search(store, "苹果 -source:solidot -source:新智元")
    assert keys(res, corpus) == ["ali2", "fruit"]
    assert (await search(store, "苹果 source:nowhere")).total == 0


async def test_paging(store, corpus):
    first = await search(store, "security update", limit=1)
    assert first.total == 3 and first.has_more and len(first.items) == 1
    seen = [first.items[0].article_id]
    offset = 1
    while True:
        page = await search(store, "security update", limit=1, offset=offset)
        if not page.items:
            break
        seen.append(page.items[0].article_id)
        offset += 1
    assert len(seen) == len(set(seen)) == 3
    assert not page.has_more and page.total == 3  # past the end: no items, total still known


async def test_recency_and_title_weight(store):
    await add_docs(store, [
        Doc("old", "Quasar launch report", "A quasar mission report.", "A", age_days=200),
        Doc("new", "Quasar launch report", "A quasar mission report.", "B", age_days=0.1),
        Doc("body", "Mission report", "A quasar launch was in the report.", "C", age_days=0.1),
        *[Doc(f"f{i}", f"filler {i}", "nothing to see here", "F") for i in range(8)],
    ])
    res = await search(store, "quasar")
    assert [h.outlet for h in res.items] == ["B", "A", "C"]


async def test_reindex_on_update_and_delete(store, corpus):
    a = corpus["w1"]
    async with store.begin() as conn:
        await conn.execute(update(T.articles).where(T.articles.c.id == a.id).values(title="Snowstorm"))
        a.title, a.body = "Snowstorm", "Heavy snow expected overnight."
        await index_articles(conn, [a])
    assert (await search(store, "rain forecasters")).total == 0
    assert keys(await search(store, "snowstorm"), corpus) == ["w1"]
    async with store.begin() as conn:
        await conn.execute(delete(T.articles).where(T.articles.c.id == a.id))
    assert (await search(store, "snowstorm")).total == 0
    assert await rebuild_index(store) == len(corpus) - 1
    assert keys(await search(store, "苹果 source:solidot"), corpus) == ["ali3"]


async def test_collapsing_follows_story_changes_made_after_indexing(store, corpus):
    # The story engine may move or merge articles later (recluster): no re-index is needed.
    assert len((await search(store, "apple")).items) == 1
    async with store.begin() as conn:
        zd2 = T.articles.c.id == corpus["zd2"].id
        await conn.execute(update(T.articles).where(zd2).values(story_id=None))
    res = await search(store, "apple")
    assert sorted(keys(res, corpus)) == ["zd1", "zd2"] and res.total == 2
    async with store.begin() as conn:
        await conn.execute(update(T.articles).where(T.articles.c.id == corpus["zd2"].id)
                           .values(story_id=corpus["ali1"].story_id))
        await conn.execute(delete(T.stories).where(T.stories.c.id == corpus["zd1"].story_id))  # SET NULL
    res = await search(store, "apple")
    assert sorted(keys(res, corpus)) == ["zd1", "zd2"]
    hit = next(h for h in res.items if h.article_id == corpus["zd2"].id)
    assert hit.story_id == corpus["ali1"].story_id and hit.outlet_count == 4
    assert next(h for h in res.items if h.article_id == corpus["zd1"].id).story_id is None


async def test_broad_queries_rank_a_window_and_estimate_the_total(store, monkeypatch):
    from bot.search import engine

    docs = [Doc(f"n{i}", f"Nebula note {i}", "nebula " * (1 + i % 3), "N", age_days=i) for i in range(30)]
    arts = await add_docs(store, docs)
    exact = await search(store, "nebula", limit=5)
    assert exact.total == 30 and exact.total_exact and exact.has_more
    monkeypatch.setattr(engine, "WINDOW", 10)
    res = await search(store, "nebula", limit=5)
    assert not res.total_exact and res.total == 30 and res.pageable == 10
    page = await search(store, "nebula", limit=5, offset=5)
    assert len(page.items) == 5 and not page.has_more  # paging ends with the window
    last_ingested = {arts[f"n{i}"].id for i in range(20, 30)}
    assert {h.article_id for h in res.items + page.items} == last_ingested  # the window: newest ids
    assert "about 30 stories" in res.render_text()


async def test_empty_and_punctuation_queries(store, corpus):
    for q in ["", "   ", "\u3000\t\n"]:
        with pytest.raises(QueryError):
            await search(store, q)
    assert issubclass(QueryError, ValueError)
    for q in ["!!!", "((", '"', '""', "-", "*", "NEAR(", "a:b:c", "& | !", "😀", "，。、", "source:"]:
        res = await search(store, q)
        assert res.total == len(res.items) or res.has_more  # no exception, a normal answer
    assert (await search(store, "!!! ((( *** ^^^")).total == 0


async def test_long_query_is_capped(store, corpus):
    res = await search(store, "苹果 " + "x" * 5000, max_chars=50)
    assert res.truncated and len(res.query) <= 50
    res = await search(store, "苹果 " * 500, max_chars=200)
    assert res.truncated and res.total == 2


async def test_results_render(store, corpus):
    res = await search(store, "苹果 阿里")
    d = res.as_dict()
    assert d["total"] == 1 and d["items"][0]["outlet_count"] == 3
    assert d["items"][0]["published_at"].endswith("Z")
    assert "苹果" in d["items"][0]["snippet"]
    text = res.render_text()
    assert res.items[0].title in text and "Solidot, 36氪 and 新智元" in text  # as digests label outlets
    items = res.result_items("zh-CN")
    assert items[0].title == res.items[0].title and "Solidot、36氪、新智元" in items[0].detail
    assert "No results" in (await search(store, "zzzzqqq")).render_text()


QUERY_TEXT = st.text(
    alphabet=st.sampled_from(list('苹果阿里巴巴 apple "-:*^()&|!<>~\'\\NEARORANDNOT{}[]+,.，😀\x00\u200b'))
    | st.characters(),
    max_size=60,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=QUERY_TEXT)
async def test_any_text_returns_results_or_none(store, corpus, q):
    try:
        res = await search(store, q, limit=3)
    except QueryError:
        assert not unicodedata.normalize("NFKC", q).split()  # only an empty query is refused
        return
    assert res.total >= len(res.items)
    assert len(res.query) <= 200


async def test_a_query_the_database_rejects_is_logged_as_no_results(store, corpus, monkeypatch, caplog):
    from bot.search import backends

    broken = "{title body} : (\"apple\" AND"  # what a quoting bug would produce
    monkeypatch.setattr(backends, "fts_match", lambda pq: broken)
    monkeypatch.setattr(backends, "tsquery_text", lambda pq: "'apple' &")
    res = await search(store, "apple")
    assert res.total == 0 and res.items == []
    assert "rejected the query" in caplog.text
