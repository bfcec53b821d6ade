"""Article upserts and one ingest pass in process (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import App
from bot.config import load_settings
from bot.ingest import run_ingest
from bot.model import Article
from bot.store import articles as article_store
from bot.store import sources as source_store
from bot.store.db import Store
from bot.store.tables import articles, seen_files
from bot.store.tables import sources as sources_table
from tests.ingest_helpers import BROKEN, article_text, write


def _art(ext: str, title: str = "T", path: str | None = None, **kw: Any) -> Article:
    a = Article(source="s", external_id=ext, title=title, body=kw.pop("body", "body"),
                published_at=kw.pop("published_at", datetime(2025, 2, 12, tzinfo=UTC)), path=path, **kw)
    article_store.validate(a)
    return a


async def _upsert(store: Store, batch: list[Article], live: set[str] | None = None) -> list[str]:
    async with store.begin() as conn:
        sid = await source_store.ensure_source(conn, "s", "folder")
        return await article_store.upsert_articles(conn, sid, batch, live_paths=live)


async def test_upsert_new_unchanged_updated(store: Store) -> None:
    a, b = _art("u1", "One"), _art("u2", "Two")
    assert await _upsert(store, [a, b]) == ["new", "new"]
    assert a.id and b.id and a.id != b.id
    again = [_art("u1", "One"), _art("u2", "Two changed")]
    assert await _upsert(store, again) == ["unchanged", "updated"]
    assert [x.id for x in again] == [a.id, b.id]
    stored = {x.external_id: x for x in await article_store.list_articles(store)}
    assert stored["u2"].title == "Two changed"
    assert stored["u1"].source == "s"


async def test_same_url_in_two_live_files_stays_two_articles(store: Store) -> None:
    live = {"a.md", "b.md"}
    a, b = _art("https://x/1", path="a.md"), _art("https://x/1", path="b.md", body="mirror")
    assert await _upsert(store, [a, b], live) == ["new", "new"]
    assert b.external_id == "b.md" and a.external_id == "https://x/1"
    assert any("same identity" in w for w in b.warnings)
    # Next pass: both unchanged, nothing merges.
    a2, b2 = _art("https://x/1", path="a.md"), _art("https://x/1", path="b.md", body="mirror")
    assert await _upsert(store, [a2, b2], live) == ["unchanged", "unchanged"]
    assert (a2.id, b2.id) == (a.id, b.id)


async def test_renamed_file_and_changed_url_keep_the_id(store: Store) -> None:
    a = _art("https://x/1", path="old.md")
    await _upsert(store, [a], {"old.md"})
    moved = _art("https://x/1", path="new.md")
    assert await _upsert(store, [moved], {"new.md"}) == ["updated"]
    assert moved.id == a.id
    rekeyed = _art("https://x/other", path="new.md")
    assert await _upsert(store, [rekeyed], {"new.md"}) == ["updated"]
    assert rekeyed.id == a.id
    assert [x.external_id for x in await article_store.list_articles(store)] == ["https://x/other"]


async def test_reads_for_other_stages(store: Store) -> None:
    t0 = datetime(2025, 2, 12, tzinfo=UTC)
    batch = [_art(f"e{i}", f"T{i}", published_at=t0 + timedelta(hours=3 - i)) for i in range(3)]
    await _upsert(store, batch)
    listed = await article_store.list_articles(store)
    assert [a.title for a in listed] == ["T2", "T1", "T0"]  # by published_at
    assert all(a.published_at.tzinfo is not None for a in listed)
    async with store.connect() as conn:
        got = await article_store.get_articles(conn, [batch[1].id, 999_999, batch[0].id])
        assert [a.title for a in got] == ["T1", "T0"]
        now = datetime.now(UTC)
        since = await article_store.articles_since(conn, now - timedelta(minutes=5))
        assert len(since) == 3
        assert await article_store.articles_since(conn, now + timedelta(minutes=5)) == []
        pub = await article_store.articles_since(conn, t0 + timedelta(hours=2), by="published_at")
        assert [a.title for a in pub] == ["T1", "T0"]
        assert await article_store.count_articles(conn) == 3


def test_validate_makes_text_storable() -> None:
    a = _art("x", "Ti\x00tle", outlet="o" * 500, lang="zh-Hans-CN-extra-long")
    assert a.title == "Title" and len(a.outlet) == 200 and len(a.lang) == 16
    a = _art("y", "bad \ud800 surrogate")
    assert "\ud800" not in a.title
    with pytest.raises(article_store.InvalidArticle):
        _art("z", "   ")
    with pytest.raises(article_store.InvalidArticle):
        _art("w", published_at=datetime(2025, 1, 1))


def _settings(folder: Path, db_url: str) -> Any:
    return load_settings(text=f'database: {{url: "{db_url}"}}\n'
                              f'sources:\n  - {{name: local, type: folder, path: "{folder}"}}\n')


async def test_pass_stores_state_and_forgets_vanished_files(tmp_path: Path, db_url: str) -> None:
    folder = tmp_path / "f"
    write(folder, "a.md", article_text("A", url="https://ex.com/a"))
    write(folder, "b.md", article_text("B", url="https://ex.com/b"))
    write(folder, "bad.md", BROKEN["broken_yaml.md"])
    app = await App.open(_settings(folder, db_url))
    try:
        rep = await run_ingest(app)
        assert (rep.new, rep.rejected) == (2, 1)
        async with app.store.connect() as conn:
            rows = {r.path: r for r in await conn.execute(select(seen_files))}
            src = (await conn.execute(select(sources_table))).one()
        assert set(rows) == {"a.md", "b.md", "bad.md"}
        assert rows["a.md"].article_id and rows["bad.md"].error and rows["bad.md"].article_id is None
        assert src.name == "local" and src.type == "folder" and src.last_fetched_at is not None
        assert src.last_error is None and src.next_due_at > src.last_fetched_at
        (folder / "b.md").unlink()
        rep2 = await run_ingest(app)
        assert (rep2.new, rep2.unchanged, rep2.rejected) == (0, 1, 1)
        async with app.store.connect() as conn:
            assert {r.path for r in await conn.execute(select(seen_files))} == {"a.md", "bad.md"}
            assert len((await conn.execute(select(articles))).all()) == 2  # the archive keeps b
    finally:
        await app.close()


async def test_a_failing_article_does_not_lose_the_others(tmp_path: Path, db_url: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "f"
    for name in ("a", "b", "c"):
        write(folder, f"{name}.md", article_text(name.upper(), url=f"https://ex.com/{name}"))
    from bot.stories import service

    seen: list[list[str]] = []

    async def add(self: Any, conn: Any, batch: list[Article]) -> None:
        seen.append([a.title for a in batch])
        if any(a.title == "B" for a in batch):
            raise RuntimeError("story engine refuses B")

    monkeypatch.setattr(service.StoryService, "add", add)
    app = await App.open(_settings(folder, db_url))
    try:
        rep = await run_ingest(app)
        assert rep.new == 2 and rep.rejected == 1
        assert "story engine refuses B" in rep.rejections[0].reason
        assert rep.rejections[0].where == str(folder / "b.md")
        assert seen[0] == ["A", "B", "C"]  # the whole batch first, then one by one
        titles = sorted(a.title for a in await article_store.list_articles(app.store))
        assert titles == ["A", "C"]
        async with app.store.connect() as conn:
            assert {r.path for r in await conn.execute(select(seen_files))} == {"a.md", "c.md"}
        # b was not remembered, so the next pass tries it again (and now it goes through).
        monkeypatch.setattr(service.StoryService, "add", lambda self, conn, batch: _noop())
        rep2 = await run_ingest(app)
        assert (rep2.new, rep2.unchanged) == (1, 2)
    finally:
        await app.close()


async def _noop() -> None:
    return None


async def test_hooks_receive_only_new_and_changed_articles(tmp_path: Path, db_url: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "f"
    write(folder, "a.md", article_text("A", url="https://ex.com/a"))
    write(folder, "b.md", article_text("B", url="https://ex.com/b"))
    from bot.stories import service

    calls: list[list[tuple[str, int | None]]] = []

    async def add(self: Any, conn: Any, batch: list[Article]) -> None:
        calls.append([(a.title, a.id) for a in batch])

    monkeypatch.setattr(service.StoryService, "add", add)
    app = await App.open(_settings(folder, db_url))
    try:
        await run_ingest(app)
        write(folder, "b.md", article_text("B2", url="https://ex.com/b"), age=10)
        await run_ingest(app)
        await run_ingest(app, hooks=False)
    finally:
        await app.close()
    assert [sorted(t for t, _ in c) for c in calls] == [["A", "B"], ["B2"]]
    assert all(i is not None for c in calls for _, i in c)


async def test_rejected_files_are_looked_at_again_with_new_settings(tmp_path: Path, db_url: str) -> None:
    folder = tmp_path / "f"
    write(folder, "big.md", article_text("Big", body="x" * 3000))
    text = f'database: {{url: "{db_url}"}}\nsources:\n  - {{name: local, type: folder, path: "{folder}"'
    for limit, expect in ((1000, (0, 1)), (1000, (0, 1)), (100_000, (1, 0))):
        app = await App.open(load_settings(text=text + f", max_file_bytes: {limit}}}\n"))
        try:
            rep = await run_ingest(app)
        finally:
            await app.close()
        assert (rep.new, rep.rejected) == expect
        if rep.rejected:
            assert "max_file_bytes (1000)" in rep.rejections[0].reason
