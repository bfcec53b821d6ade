"""run_ingest with sources that only have ``fetch`` (the feed contract), reports and progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import bot.ingest as ingest
from bot.app import App
from bot.config import load_settings
from bot.model import Article
from bot.sources.base import Rejection, SourceResult, SourceState
from bot.store.articles import list_articles
from bot.store.tables import sources
from tests.ingest_helpers import article_text, write

FEED_URL = "https://feeds.example.com/rss.xml"


class FakeFeed:
    """Answers like a feed source: articles, validators, 304s and failures on demand."""

    def __init__(self, script: list[SourceResult]):
        self.script = script
        self.seen_states: list[SourceState] = []

    async def fetch(self, state: SourceState) -> SourceResult:
        self.seen_states.append(state)
        return self.script.pop(0)


def _items(n: int, title: str = "Item") -> list[Article]:
    t0 = datetime(2025, 2, 12, tzinfo=UTC)
    return [Article(source="feed", external_id=f"guid-{i}", title=f"{title} {i}", body=f"body {i}",
                    published_at=t0 + timedelta(minutes=i), url=f"https://news.example.com/{i}",
                    outlet="News")
            for i in range(n)]


async def _app(tmp_path: Path, db_url: str, *, with_folder: bool = False) -> App:
    text = f'database: {{url: "{db_url}"}}\nsources:\n  - {{name: feed, type: feed, url: "{FEED_URL}"}}\n'
    if with_folder:
        text += f'  - {{name: local, type: folder, path: "{tmp_path / "f"}"}}\n'
    return await App.open(load_settings(text=text))


async def test_fetch_only_source_batches_validators_and_errors(tmp_path: Path, db_url: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ok = SourceResult(articles=_items(7), rejections=[Rejection(FEED_URL + "#bad", "entry without a link")],
                      state=SourceState(etag='"v1"', last_modified="Wed, 12 Feb 2025 08:00:00 GMT"))
    edited = SourceResult(articles=[*_items(7)[:2], _items(8, "Item")[7]],
                          state=SourceState(etag='"v2"'))
    edited.articles[0].title = "Item 0 (corrected)"
    fake = FakeFeed([ok, SourceResult(not_modified=True, state=SourceState(etag='"v2"')), edited,
                     SourceResult(error="HTTP 500 from the server",
                                  rejections=[Rejection(FEED_URL, "HTTP 500 from the server")])])
    monkeypatch.setattr(ingest, "make_source", lambda config, settings: fake)
    app = await _app(tmp_path, db_url)
    try:
        rep = await ingest.run_ingest(app, batch_size=3)
        assert (rep.new, rep.rejected) == (7, 1)
        d = rep.as_dict()
        assert d["rejections"] == [{"where": FEED_URL + "#bad", "reason": "entry without a link"}]
        assert d["sources"]["feed"]["type"] == "feed"
        assert len(await list_articles(app.store)) == 7

        rep = await ingest.run_ingest(app)
        assert rep.sources["feed"].not_modified and rep.new == 0
        assert fake.seen_states[1].etag == '"v1"'  # validators from the store
        assert fake.seen_states[1].last_modified == "Wed, 12 Feb 2025 08:00:00 GMT"

        rep = await ingest.run_ingest(app)
        assert (rep.new, rep.updated, rep.unchanged) == (1, 1, 1)

        rep = await ingest.run_ingest(app)
        assert rep.sources["feed"].error == "HTTP 500 from the server" and rep.rejected == 1
        async with app.store.connect() as conn:
            row = (await conn.execute(select(sources))).one()
        assert row.last_error == "HTTP 500 from the server" and row.last_error_at is not None
        assert row.etag == '"v2"'  # a failed pass keeps the validators
        assert "HTTP 500" in rep.render_text()
    finally:
        await app.close()


async def test_a_failing_source_does_not_stop_the_others(tmp_path: Path, db_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "f", "a.md", article_text("Folder article"))

    class Exploding:
        async def fetch(self, state: SourceState) -> SourceResult:
            raise RuntimeError("boom")

    real = ingest.make_source
    monkeypatch.setattr(ingest, "make_source", lambda config, settings: (
        Exploding() if config.type == "feed" else real(config, settings)))
    app = await _app(tmp_path, db_url, with_folder=True)
    try:
        rep = await ingest.run_ingest(app)
    finally:
        await app.close()
    assert rep.sources["local"].new == 1
    assert "boom" in (rep.sources["feed"].error or "")
    assert any(r.where == FEED_URL and "boom" in r.reason for r in rep.rejections)


async def test_only_and_disabled_sources(tmp_path: Path, db_url: str) -> None:
    write(tmp_path / "f", "a.md", article_text("A"))
    write(tmp_path / "g", "b.md", article_text("B", url="https://example.com/b"))
    app = await App.open(load_settings(text=(
        f'database: {{url: "{db_url}"}}\nsources:\n'
        f'  - {{name: one, type: folder, path: "{tmp_path / "f"}"}}\n'
        f'  - {{name: two, type: folder, path: "{tmp_path / "g"}", enabled: false}}\n')))
    try:
        rep = await ingest.run_ingest(app)
        assert list(rep.sources) == ["one"]
        rep = await ingest.run_ingest(app, only=["two"])  # named explicitly: runs even when disabled
        assert rep.sources["two"].new == 1
        with pytest.raises(ValueError, match="unknown source"):
            await ingest.run_ingest(app, only=["three"])
    finally:
        await app.close()


async def test_progress_bar_for_long_passes(tmp_path: Path, db_url: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.progress import Progress

    real = ingest._progress_bar()
    assert isinstance(real, Progress) and real.console.stderr
    for i in range(ingest.PROGRESS_MIN_FILES + 5):
        write(tmp_path / "f", f"{i:04}.md", article_text(f"T{i}", url=f"https://example.com/{i}"))
    updates: list[tuple[int, int]] = []

    class Bar:
        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc: Any) -> None:
            return None

        def add_task(self, description: str, total: int) -> int:
            assert "local" in description
            updates.append((0, total))
            return 1

        def update(self, task: int, completed: int) -> None:
            updates.append((completed, task))

    monkeypatch.setattr(ingest, "_progress_bar", Bar)
    app = await App.open(load_settings(text=f'database: {{url: "{db_url}"}}\nsources:\n'
                                            f'  - {{name: local, type: folder, path: "{tmp_path / "f"}"}}\n'))
    try:
        rep = await ingest.run_ingest(app, progress=True, batch_size=100)
    finally:
        await app.close()
    assert rep.new == ingest.PROGRESS_MIN_FILES + 5
    assert updates[0] == (0, ingest.PROGRESS_MIN_FILES + 5)
    assert [c for c, _ in updates[1:]] == [100, 200, ingest.PROGRESS_MIN_FILES + 5]


def test_report_text_and_json_shapes() -> None:
    rep = ingest.IngestReport()
    s = ingest.SourceReport("local", "folder", new=2, updated=1, unchanged=3)
    s.rejections.append(Rejection("/x/bad.md", "empty file"))
    s.warnings.append(Rejection("/x/odd.md", "decoded as GB18030 (not UTF-8)"))
    rep.sources["local"] = s
    d = rep.as_dict()
    assert {k: d[k] for k in ("new", "updated", "unchanged", "rejected")} == {
        "new": 2, "updated": 1, "unchanged": 3, "rejected": 1}
    assert d["rejections"] == [{"where": "/x/bad.md", "reason": "empty file"}]
    assert d["warnings"] == [{"where": "/x/odd.md", "reason": "decoded as GB18030 (not UTF-8)"}]
    assert d["sources"]["local"]["rejected"] == 1
    text = rep.render_text()
    assert "2 new, 1 updated, 3 unchanged, 1 rejected" in text
    assert "/x/bad.md: empty file" in text and "/x/odd.md: decoded as GB18030" in text
    assert "no sources" in ingest.IngestReport().render_text()
