"""The folder source on its own: parsing, identity, bad input, change detection."""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import load_settings
from bot.model import content_hash
from bot.sources.base import SourceState
from bot.sources.folder import FolderSource
from bot.sources.folder_parse import Reject, build_article, decode, parse_date, split_front_matter
from tests.ingest_helpers import BROKEN, ODD, article_text, write

SH = ZoneInfo("Asia/Shanghai")


def _source(folder: Path, **opts: object) -> FolderSource:
    extra = "".join(f", {k}: {v}" for k, v in opts.items())
    settings = load_settings(text=f'sources:\n  - {{name: f, type: folder, path: "{folder}"{extra}}}\n')
    return FolderSource(settings.sources[0], settings)  # type: ignore[arg-type]


def _build(meta: dict, body: str = "Body.\n", rel: str = "a.md") -> tuple:
    return build_article(meta, body, rel=rel, source="f", tz=SH, mtime=1_700_000_000.0)


# ---------------------------------------------------------------- dates


@pytest.mark.parametrize(("value", "expected"), [
    ("2025-02-12 00:25:43", datetime(2025, 2, 11, 16, 25, 43, tzinfo=UTC)),
    ("2025-02-12T00:25:43+08:00", datetime(2025, 2, 11, 16, 25, 43, tzinfo=UTC)),
    ("2025-02-12T00:25:43Z", datetime(2025, 2, 12, 0, 25, 43, tzinfo=UTC)),
    ("2025/02/12 08:00", datetime(2025, 2, 12, 0, 0, tzinfo=UTC)),
    ("2025年02月12日 08:00", datetime(2025, 2, 12, 0, 0, tzinfo=UTC)),
    ("Wed, 12 Feb 2025 08:00:00 +0000", datetime(2025, 2, 12, 8, 0, tzinfo=UTC)),
    (datetime(2025, 2, 12, 8, 0), datetime(2025, 2, 12, 0, 0, tzinfo=UTC)),  # YAML unquoted, naive
    (date(2025, 2, 12), datetime(2025, 2, 11, 16, 0, tzinfo=UTC)),
    (1739318400, datetime(2025, 2, 12, 0, 0, tzinfo=UTC)),
])
def test_parse_date_reads_naive_values_in_the_source_zone(value: object, expected: datetime) -> None:
    assert parse_date(value, SH) == expected


@pytest.mark.parametrize("value", ["yesterday", "", "2025-13-45", True, None, [1], "0001-01-01 00:00:00", -5])
def test_parse_date_gives_none_for_nonsense(value: object) -> None:
    assert parse_date(value, SH) is None


def test_source_timezone_overrides_the_global_one(tmp_path: Path) -> None:
    write(tmp_path, "a.md", article_text(date="2025-02-12 08:00:00"))
    src = _source(tmp_path, timezone="UTC")
    import asyncio

    res = asyncio.run(src.fetch(SourceState()))
    assert res.articles[0].published_at == datetime(2025, 2, 12, 8, 0, tzinfo=UTC)


# ---------------------------------------------------------------- decoding and front matter


def test_decode_utf8_bom_gbk_gb18030() -> None:
    assert decode("中文".encode()) == ("中文", None)
    text, note = decode(b"\xef\xbb\xbf" + "中文".encode())
    assert text == "中文" and note and "byte order mark" in note
    text, note = decode("苹果与阿里巴巴合作".encode("gbk"))
    assert text == "苹果与阿里巴巴合作" and note and "GB18030" in note
    text, _ = decode("罕见字 𠀀".encode("gb18030"))
    assert text == "罕见字 𠀀"


def test_yaml_error_names_the_file_line() -> None:
    text = "---\ntitle: ok\ntags: [a, b\nsummary: x\n---\nbody\n"
    with pytest.raises(Reject, match=r"line [34]"):
        split_front_matter(text)
    with pytest.raises(Reject, match="line 3"):
        split_front_matter("---\ntitle: ok\n  bad: indent: here\n---\nbody\n")


def test_front_matter_shapes() -> None:
    assert split_front_matter("---\ntitle: x\n---\nbody\n") == ({"title": "x"}, "\nbody\n")
    assert split_front_matter("\n\n---\ntitle: x\n---\nb")[0] == {"title": "x"}
    assert split_front_matter("---\n---\nbody")[0] == {}
    with pytest.raises(Reject, match="no front matter"):
        split_front_matter("# Title\n\ntext")
    with pytest.raises(Reject, match="not closed"):
        split_front_matter("---\ntitle: x\n")
    with pytest.raises(Reject, match="not a mapping"):
        split_front_matter("---\n- a\n---\nbody")


# ---------------------------------------------------------------- building articles


def test_outlet_and_url_precedence() -> None:
    body = "Text.\n\n[closing outlet](https://closing.example/x)\n"
    a, _ = _build({"title": "T"}, body)
    assert (a.outlet, a.url) == ("closing outlet", "https://closing.example/x")
    assert "closing.example" not in a.body and "closing outlet" not in a.body
    a, _ = _build({"title": "T", "categories": ["qq"]}, body)
    assert a.outlet == "qq"
    a, _ = _build({"title": "T", "categories": ["qq"], "source": "Src", "url": "https://fm.example/1"}, body)
    assert (a.outlet, a.url) == ("Src", "https://fm.example/1")
    a, _ = _build({"title": "T", "outlet": "Out", "source": "Src", "link": "https://fm.example/2"}, body)
    assert (a.outlet, a.url) == ("Out", "https://fm.example/2")
    a, warnings = _build({"title": "T", "url": "not a url"}, body)
    assert a.url == "https://closing.example/x" and any("not an http" in w for w in warnings)
    a, _ = _build({"title": "T"}, "No link at all.")
    assert a.outlet == "f" and a.url is None  # nothing says: the source name


def test_identity_falls_back_guid_url_path() -> None:
    body = "x\n\n[o](https://Example.com/a?utm_source=rss&id=3#frag)\n"
    assert _build({"title": "T", "guid": "g-1"}, body)[0].external_id == "g-1"
    assert _build({"title": "T"}, body)[0].external_id == "https://example.com/a?id=3"
    assert _build({"title": "T"}, "no link", rel="sub/x.md")[0].external_id == "sub/x.md"
    assert _build({"title": "T"}, "no link", rel="")[0].external_id.startswith("sha256:")


def test_title_from_heading_or_a_reason() -> None:
    a, warnings = _build({}, "intro\n\n## The **real** title\n\ntext")
    assert a.title == "The real title" and any("heading" in w for w in warnings)
    with pytest.raises(Reject, match="no title"):
        _build({"title": "  "}, "no heading")
    with pytest.raises(Reject, match="not text"):
        _build({"title": {"a": 1}}, "x")
    assert _build({"title": 2025})[0].title == "2025"


def test_body_cleaning_lang_summary_hash() -> None:
    body = ("![](https://img.example/a.png)\n\n苹果与**阿里巴巴**合作,见[报道](https://news.example/r)。\n\n"
            "[qq](https://new.qq.com/x)\n")
    a, _ = _build({"title": "苹果阿里", "lang": ["zh-CN"], "tags": "one"}, body)
    assert a.body == "苹果与阿里巴巴合作,见报道。"
    assert a.links == ["https://news.example/r"]
    assert a.lang == "zh-CN" and a.tags == ["one"]
    assert a.summary.startswith("苹果与阿里巴巴合作")  # no summary in front matter: the body's start
    assert a.content_hash == content_hash("苹果阿里", a.body)
    b, _ = _build({"title": "Apple"}, "An English body about Apple and Alibaba.")
    assert b.lang == "en"
    c, _ = _build({"title": "x", "lang": "zh"}, "whatever")
    assert c.lang == "zh-CN"
    assert content_hash("T", "a  b\n c") == content_hash("T", "a b c")


def test_missing_or_bad_date_keeps_the_article_with_file_time() -> None:
    a, warnings = _build({"title": "T", "date": "soon"})
    assert a.published_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert any("unparseable date" in w for w in warnings)
    a, warnings = _build({"title": "T"})
    assert any("no date" in w for w in warnings)


# ---------------------------------------------------------------- whole passes


async def test_pass_reports_each_bad_file_and_keeps_going(tmp_path: Path) -> None:
    for name, data in {**BROKEN, **ODD}.items():
        write(tmp_path, name, data)
    write(tmp_path, "good.md", article_text("Good", url="https://example.com/good"))
    write(tmp_path, "notes.txt", "not matched by the pattern")
    res = await _source(tmp_path).fetch(SourceState())
    assert sorted(a.path for a in res.articles) == sorted([*ODD, "good.md"])
    assert sorted(Path(r.where).name for r in res.rejections) == sorted(BROKEN)
    assert all(r.reason and not r.retry for r in res.rejections)
    assert set(res.file_states) == {*BROKEN, *ODD, "good.md"}
    assert all(res.file_states[n].error for n in BROKEN)


async def test_unchanged_files_are_not_reread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "a.md", article_text("A", url="https://example.com/a"))
    write(tmp_path, "b.md", article_text("B", url="https://example.com/b"))
    src = _source(tmp_path)
    first = await src.fetch(SourceState())
    state = SourceState(files=dict(first.file_states))
    import bot.sources.folder as folder_mod

    opened: list[str] = []
    real_open = open

    def spy(path, *a, **kw):  # type: ignore[no-untyped-def]
        opened.append(str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(folder_mod, "open", spy, raising=False)
    second = await src.fetch(state)
    assert second.articles == [] and second.unchanged == 2 and opened == []

    # Same bytes, new mtime: read once (sha256 confirms no change), not an article.
    os.utime(tmp_path / "a.md", (time.time() - 50, time.time() - 50))
    third = await src.fetch(state)
    assert third.articles == [] and third.unchanged == 2 and len(opened) == 1
    assert third.file_states["a.md"].mtime_ns != state.files["a.md"].mtime_ns

    write(tmp_path, "b.md", article_text("B edited", url="https://example.com/b"), age=30)
    fourth = await src.fetch(state)
    assert [a.title for a in fourth.articles] == ["B edited"]


async def test_half_written_files_are_retried_not_remembered(tmp_path: Path) -> None:
    write(tmp_path, "partial.md", b'---\ntitle: "Half', age=0)
    write(tmp_path, "growing.md", b"", age=0)
    write(tmp_path, "fresh_ok.md", article_text("Complete and fresh"), age=0)
    res = await _source(tmp_path, settle_seconds=60).fetch(SourceState())
    assert [a.path for a in res.articles] == ["fresh_ok.md"]  # a complete file is taken at once
    retried = {Path(r.where).name: r for r in res.rejections}
    assert set(retried) == {"partial.md", "growing.md"}
    assert all(r.retry and "retry" in r.reason for r in retried.values())
    assert set(res.file_states) == {"fresh_ok.md"}
    # Once the writer is done the file goes through.
    write(tmp_path, "partial.md", article_text("Half no more"), age=0)
    again = await _source(tmp_path, settle_seconds=60).fetch(SourceState(files=dict(res.file_states)))
    assert [a.title for a in again.articles] == ["Half no more"]


async def test_file_changing_while_read_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, "moving.md", article_text("Moving"))
    import bot.sources.folder as folder_mod

    real_stat = os.stat
    calls = {"n": 0}

    def stat(path, *a, **kw):  # type: ignore[no-untyped-def]
        st = real_stat(path, *a, **kw)
        if str(path) == str(p):
            calls["n"] += 1
            if calls["n"] == 1:  # the file grows between the stat and the read
                p.write_text(article_text("Moving") + "more\n", encoding="utf-8")
        return st

    monkeypatch.setattr(folder_mod.os, "stat", stat)
    res = await _source(tmp_path).fetch(SourceState())
    assert res.articles == []
    assert res.rejections[0].retry and "changed while" in res.rejections[0].reason
    assert res.file_states == {}


async def test_missing_folder_is_a_source_error(tmp_path: Path) -> None:
    res = await _source(tmp_path / "nope").fetch(SourceState())
    assert res.error and "does not exist" in res.error


async def test_big_folder_uses_the_process_pool(tmp_path: Path) -> None:
    for i in range(30):
        write(tmp_path, f"d{i % 3}/{i:03}.md", article_text(f"T{i}", url=f"https://example.com/{i}"))
    src = _source(tmp_path)
    src.pool_threshold = 10
    parts = [p async for p in src.batches(SourceState(), batch_size=7)]
    arts = [a for p in parts for a in p.articles]
    assert sorted(a.title for a in arts) == sorted(f"T{i}" for i in range(30))
    assert len(parts) == 1 + 5  # the stat part, then ceil(30 / 7) parsed parts
    assert set(parts[-1].state.files) == {a.path for a in arts}
