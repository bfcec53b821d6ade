"""`digestbot search` through the real CLI, on the backend this run targets."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.store.db import Store
from tests.search_helpers import add_docs

ROOT = Path(__file__).resolve().parent.parent


def _config(tmp_path: Path, db_url: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f'database: {{url: "{db_url}"}}\n'
        f"sources:\n  - {{name: local, type: folder, path: {json.dumps(str(folder))}}}\n"
        "adapters:\n  console: {}\n",
        encoding="utf-8",
    )
    return cfg


def digestbot(cfg: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args, "--config", str(cfg)],
        capture_output=True, text=True, cwd=ROOT, timeout=timeout,
    )


@pytest.fixture
async def cli_cfg(tmp_path: Path, db_url: str) -> Path:
    store = await Store.open(db_url)
    try:
        await add_docs(store)
    finally:
        await store.close()
    return _config(tmp_path, db_url, tmp_path / "articles")


def test_search_json_and_text(cli_cfg: Path):
    r = digestbot(cli_cfg, "search", "苹果", "阿里", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["query"] == "苹果 阿里" and data["total"] == 1
    item = data["items"][0]
    assert item["outlet_count"] == 3 and item["story_id"] is not None and item["url"].startswith("https://")
    assert {"title", "url", "outlet", "outlets", "published_at", "snippet", "score"} <= set(item)

    r = digestbot(cli_cfg, "search", "security", "update", "--limit", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Results for “security update” (3 stories):")
    assert "1. " in r.stdout and "2. " not in r.stdout and "More: results 2–3." in r.stdout


def test_search_bad_input(cli_cfg: Path):
    r = digestbot(cli_cfg, "search", "", "--json")
    assert r.returncode == 2 and "query" in r.stderr
    r = digestbot(cli_cfg, "search", "NEAR(", '"', "*", "^", "x" * 1000)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("No results for “NEAR( \" * ^ xxx") and len(r.stdout) < 260  # capped


def test_dev_set_apple_alibaba_story_ranks_first(tmp_path: Path, db_url: str, shared_dir: Path):
    pytest.importorskip("bot.ingest")
    dev = shared_dir / "eval" / "dev"
    cfg = _config(tmp_path, db_url, dev / "articles")
    r = digestbot(cfg, "ingest", "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    with (dev / "labels.tsv").open(encoding="utf-8") as f:
        story_of = {row["file"]: row["story"] for row in csv.DictReader(f, delimiter="\t")}
    arts = json.loads(digestbot(cfg, "articles", "--json").stdout)
    path_of = {a["id"]: Path(a["path"]).name for a in arts}

    r = digestbot(cfg, "search", "苹果", "阿里", "--json")
    assert r.returncode == 0, r.stderr
    items = json.loads(r.stdout)["items"]
    assert items, "no results for 苹果 阿里 on the dev set"
    assert story_of[path_of[items[0]["article_id"]]] == "apple_alibaba_ai"
    if not json.loads(digestbot(cfg, "stories", "--json").stdout):
        pytest.skip("ranked first; collapsing needs story clustering, which made no stories here")
    # The seeds' outlets and Solidot, folded into one story.
    assert items[0]["story_id"] is not None and items[0]["outlet_count"] >= 2
    # One result per story: no other result belongs to the same story.
    rest = [story_of[path_of[i["article_id"]]] for i in items[1:]]
    assert "apple_alibaba_ai" not in rest
