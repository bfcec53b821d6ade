"""Store errors during a pass, and one article's failure (issue 16 item 6, issue 13).

A full disk is a store error: the pass stops, says so, counts only what was committed and exits 1.
One article that cannot be stored is rejected on its own, named with its cause; its batch
neighbours are stored.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.config import load_settings
from bot.ingest import run_ingest
from bot.store.articles import list_articles
from tests.conftest import BACKEND
from tests.ingest_helpers import article_text, cli_json, write, write_config

ROOT = Path(__file__).resolve().parent.parent
N = 120


def _folder(path: Path, n: int = N) -> Path:
    for i in range(n):
        body = f"Report {i} of our own making. " + " ".join(f"word{i}x{j}" for j in range(300))
        write(path, f"{i:04d}.md", article_text(f"Story number {i}", url=f"https://example.com/{i}",
                                                body=body))
    return path


def _faulty(mode: str, limit: int, batch: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "tests.store_faults", mode, str(limit), str(batch), "--",
                           *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_full_store_mid_pass_stops_with_honest_counts_and_exit_1(tmp_path: Path, db_url: str) -> None:
    folder = _folder(tmp_path / "articles")
    cfg = write_config(tmp_path / "config.yaml", folder, db_url)
    mode, limit = ("pg_full", 50) if BACKEND == "postgres" else ("sqlite_full", 120)
    res = _faulty(mode, limit, 20, "--config", str(cfg), "--json", "ingest")
    assert res.returncode == 1, res.stderr[-3000:]
    report = json.loads(res.stdout)
    stored = len(cli_json("--config", str(cfg), "articles"))
    assert 0 < report["new"] < N, report["new"]
    assert report["new"] == stored  # nothing counted that was not committed
    src = report["sources"]["local"]
    assert src["store_error"] and ("full" in src["store_error"] or "No space" in src["store_error"])
    assert report["store_errors"] and "store error" in res.stderr
    assert "zip()" not in res.stderr and "Traceback" not in res.stderr
    # Not a rejection of the files: they are read again once there is room.
    assert not [r for r in report["rejections"] if r["where"].endswith(".md")]

    clear = _faulty("pg_clear" if BACKEND == "postgres" else "none", 0, 20, "--config", str(cfg), "--json",
                    "ingest")
    assert clear.returncode == 0, clear.stderr[-3000:]
    again = json.loads(clear.stdout)
    assert again["new"] == N - stored and again["rejected"] == 0
    assert len(cli_json("--config", str(cfg), "articles")) == N


@pytest.mark.skipif(BACKEND != "sqlite", reason="a SQLite file on a small tmpfs")
def test_full_tmpfs(tmp_path: Path) -> None:
    """The real thing, where the machine allows mounting a small tmpfs (root)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=640k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        folder = _folder(tmp_path / "articles", 300)
        cfg = write_config(tmp_path / "config.yaml", folder, f"sqlite:///{mnt / 'full.db'}")
        res = _faulty("none", 0, 20, "--config", str(cfg), "--json", "ingest")
        assert res.returncode == 1, res.stderr[-3000:]
        report = json.loads(res.stdout)
        assert report["store_errors"], report
        stored = len(cli_json("--config", str(cfg), "articles"))
        assert report["new"] == stored < 300
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


async def test_one_failing_article_is_rejected_alone(tmp_path: Path, db_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _folder(tmp_path / "articles", 12)
    settings = load_settings(text=f'database: {{url: "{db_url}"}}\n'
                                  f'sources:\n  - {{name: local, type: folder, path: "{folder}"}}\n')
    from bot.stories.service import StoryService

    real_add = StoryService.add
    invalidated: list[int] = []

    async def add(self: Any, conn: Any, arts: list[Any]) -> Any:
        if any(a.path == "0005.md" for a in arts):
            raise KeyError(8673)  # what the engine raised in issue 13
        return await real_add(self, conn, arts)

    monkeypatch.setattr(StoryService, "add", add)
    monkeypatch.setattr(StoryService, "invalidate", lambda self: invalidated.append(1), raising=False)
    app = await App.open(settings)
    try:
        report = await run_ingest(app)
        arts = await list_articles(app.store)
    finally:
        await app.close()
    assert report.new == 11 and len(arts) == 11
    assert "0005.md" not in {a.path for a in arts}
    [rej] = report.rejections
    assert rej.where == str(folder / "0005.md")
    assert rej.reason == "cannot store: KeyError: 8673"
    assert report.store_errors == []
    # The story engine was told to forget what the rolled-back attempts taught it.
    assert invalidated


async def test_one_article_with_a_constraint_error_keeps_its_neighbours(
        tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database error about the data (not the store) is the article's own."""
    folder = _folder(tmp_path / "articles", 6)
    settings = load_settings(text=f'database: {{url: "{db_url}"}}\n'
                                  f'sources:\n  - {{name: local, type: folder, path: "{folder}"}}\n')
    import bot.ingest

    real_index = bot.ingest.index_articles

    async def index(conn: Any, arts: list[Any]) -> Any:
        if any(a.path == "0002.md" for a in arts):
            from sqlalchemy import text

            # A genuine constraint violation from the database, inside the savepoint.
            await conn.execute(text("UPDATE articles SET story_id = -424242 WHERE path = '0002.md'"))
        return await real_index(conn, arts)

    monkeypatch.setattr(bot.ingest, "index_articles", index)
    app = await App.open(settings)
    try:
        report = await run_ingest(app)
        paths = {a.path for a in await list_articles(app.store)}
    finally:
        await app.close()
    assert paths == {f"{i:04d}.md" for i in range(6)} - {"0002.md"}
    assert report.new == 5 and report.store_errors == []
    [rej] = report.rejections
    assert rej.where.endswith("0002.md") and rej.reason.startswith("cannot store: IntegrityError: ")
    assert "UPDATE articles" not in rej.reason  # the driver's message, not the statement


def test_unique_name() -> None:
    assert uuid.uuid4().hex  # keeps the module importable on every backend (no skip-only module)
