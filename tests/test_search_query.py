"""The query language and the index tokens, without a store."""

from __future__ import annotations

import sqlite3
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.search.backends import fts_match, tsquery_text, tsvector_literal
from bot.search.query import QueryError, parse_query
from bot.search.results import make_snippet
from bot.search.tokens import stream
from bot.text.tokenize import search_words


def test_words_phrases_exclusions_and_sources():
    pq = parse_query('苹果 阿里 "security update" -广告 -"press release" source:Solidot -source:"QQ News"')
    assert pq.include == [("苹果",), ("阿里",), ("secur", "updat")]
    assert pq.exclude == [("广告",), ("press", "releas")]
    assert pq.sources == [("solidot",)]
    assert pq.exclude_sources == [("qq", "news")]
    assert pq.runnable


def test_chinese_runs_are_cut_and_function_words_dropped():
    assert parse_query("苹果和阿里").include == [("苹果",), ("阿里",)]
    assert parse_query("的").include == [("的",)]  # kept when it is all there is
    assert parse_query("Apple和阿里巴巴").include == [("appl",), ("阿里巴巴",)]


def test_latin_words_with_inner_punctuation_are_phrases():
    assert parse_query("CVE-2025-24200").include == [("cve", "2025", "24200")]
    assert parse_query("iOS 18.3.1").include == [("io",), ("18", "3", "1")]
    assert parse_query("Café").include == [("cafe",)]


def test_quotes_of_every_kind():
    for q in ['"苹果 公司"', "“苹果 公司”", "「苹果 公司」", "＂苹果 公司＂"]:
        assert parse_query(q).include == [("苹果", "公司")], q
    assert parse_query('"unterminated phrase').include == [("untermin", "phrase")]


def test_operators_are_plain_words_or_nothing():
    pq = parse_query("NEAR(a b) OR NOT * ^ : & | ! ()")
    assert pq.include == [("near",), ("a",), ("b",), ("or",), ("not",)]
    pq = parse_query("* ^ : & | ! () -- ''")
    assert not pq.runnable and pq.include == []


def test_empty_query_is_a_usage_error_and_long_ones_are_capped():
    for q in ["", "  ", "\u3000", "\n\t"]:
        with pytest.raises(QueryError):
            parse_query(q)
    pq = parse_query("word " * 100, max_chars=30)
    assert pq.truncated and len(pq.text) <= 30 and pq.include == [("word",)]


def test_index_stream_keeps_order_and_inner_words():
    s = stream("阿里巴巴集团 patches CVE-2025-24200")
    assert s.tokens == ["阿里巴巴", "集团", "patch", "cve", "2025", "24200"]
    assert s.inner[0] == ("阿里", "巴巴") and s.extras() == ["阿里", "巴巴"]
    assert search_words("中华人民共和国")[0][0] == "中华人民共和国"


def test_tsvector_literal_colocates_inner_words_and_weights_the_title():
    lit = tsvector_literal([(stream("阿里巴巴 集团"), "A"), (stream("it's 阿里巴巴"), "D")])
    parts = dict(p.rsplit(":", 1) for p in lit.split(" "))
    # Title at 1-2 (weight A), a gap of 10, then the body from 13 (weight D, written without a letter).
    assert parts == {"'阿里巴巴'": "1A,15", "'阿里'": "1A,15", "'巴巴'": "1A,15", "'集团'": "2A",
                     "'it'": "13", "'s'": "14"}
    assert tsquery_text(parse_query('"阿里 集团" -广告')) == "('阿里' <-> '集团') & !(('广告'))"


def _fts() -> sqlite3.Connection:
    c = sqlite3.connect(":memory:")
    c.execute("CREATE VIRTUAL TABLE search_fts USING fts5(title, body, outlet, "
              "tokenize = 'unicode61 remove_diacritics 0')")
    c.execute("INSERT INTO search_fts(rowid, title, body, outlet) VALUES (1, 'near or and not', "
              "'苹果 阿里巴巴 阿里 巴巴 secur updat', 'solidot')")
    return c


@settings(max_examples=300, deadline=None)
@given(q=st.text(alphabet=st.sampled_from(list('"\'-:*^()&|!+{}[],.<>~ NEARORNOTAND苹果😀\u200b_'))
                 | st.characters(), max_size=80))
def test_any_text_gives_a_valid_fts5_expression(q):
    c = _fts()
    try:
        pq = parse_query(q)
    except QueryError:
        assert not unicodedata.normalize("NFKC", q).split()
        return
    if pq.runnable:
        c.execute("SELECT rowid FROM search_fts WHERE search_fts MATCH ?", (fts_match(pq),)).fetchall()
        tsquery_text(pq)  # built without error; the store tests run it on PostgreSQL


def test_snippet_is_a_window_around_the_first_query_word():
    body = "Menu Home Login " * 20 + "The Summit heard that 阿里巴巴 and Apple agreed. " + "tail " * 50
    snip = make_snippet(body, ["阿里巴巴"])
    assert "阿里巴巴" in snip and snip.startswith("…") and snip.endswith("…") and len(snip) <= 122
    assert snip[1:].split()[0] in body.split()  # starts on a whole word
    assert make_snippet("短文本苹果", ["苹果"]) == "短文本苹果"
    assert make_snippet("no match here", ["zzz"]) == "no match here"
    assert make_snippet("", ["x"]) == ""


def test_snippet_restores_chinese_punctuation_as_digests_do() -> None:
    # The index holds NFKC text: full-width punctuation was folded to ASCII on the way in.
    body = "据报道,苹果将与阿里巴巴合作(AI功能)。价格为18,600元,12:30发布。"
    snip = make_snippet(body, ["苹果"])
    assert "据报道，苹果" in snip and "（AI功能）" in snip
    assert "18,600" in snip and "12:30" in snip  # between digits it stays as it was
