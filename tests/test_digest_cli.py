"""``digestbot digest --preview`` end to end, through the real CLI in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.adapters.slack.limits import check_message as slack_check
from bot.store.db import Store
from tests.conftest import EXAMPLES, ROOT
from tests.digest_helpers import Art, add_story
from tests.fakes.telegram_html import parse_telegram_html, visible_length

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _cli(cfg: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args, "--config", str(cfg)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _config(tmp_path: Path, db_url: str, *, sources: str = "sources: []") -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f'database: {{url: "{db_url}"}}\ntimezone: Asia/Shanghai\n{sources}\n', encoding="utf-8")
    return cfg


def _fill(db_url: str) -> None:
    async def go() -> None:
        store = await Store.open(db_url)
        try:
            recent = datetime.now(UTC) - timedelta(hours=1)
            await add_story(
                store,
                "苹果携手阿里巴巴 <!here>",
                [
                    Art(
                        "苹果携手阿里巴巴 <!here>",
                        outlet="iyiou",
                        url="https://www.iyiou.com/a/1",
                        ingested_at=recent,
                        body="快讯3月10日消息，苹果公司与阿里巴巴集团宣布合作，两家公司将开发人工智能功能。",
                    ),
                    Art("苹果阿里组CP", outlet="qq", ingested_at=recent),
                ],
                headline=0,
            )
            await add_story(
                store, "Stale story", [Art("Stale story", ingested_at=recent - timedelta(days=5))]
            )
        finally:
            await store.close()

    asyncio.run(go())


def test_preview_formats_through_cli(tmp_path: Path, db_url: str) -> None:
    _fill(db_url)
    cfg = _config(tmp_path, db_url)
    tg = _cli(cfg, "digest", "--preview", "--format", "telegram", "--json", cwd=tmp_path)
    assert tg.returncode == 0, tg.stderr
    payloads = json.loads(tg.stdout)
    assert len(payloads) == 1
    visible = parse_telegram_html(payloads[0]["text"], strict_amp=True)
    assert visible_length(payloads[0]["text"]) <= 4096
    assert "苹果携手阿里巴巴 <!here>" in visible and "亿欧、腾讯新闻" in visible and "Stale" not in visible
    assert payloads[0]["link_preview_options"] == {"is_disabled": True}

    sl = _cli(cfg, "digest", "--preview", "--format", "slack", "--locale", "en", "--json", cwd=tmp_path)
    assert sl.returncode == 0, sl.stderr
    msgs = json.loads(sl.stdout)
    assert all(slack_check(m) == [] for m in msgs)
    assert "iyiou and QQ News" in json.dumps(msgs, ensure_ascii=False)

    txt = _cli(cfg, "digest", "--preview", cwd=tmp_path)
    assert txt.returncode == 0, txt.stderr
    assert "1. 苹果携手阿里巴巴 <!here>" in txt.stdout and "https://www.iyiou.com/a/1" in txt.stdout


def test_preview_on_empty_store(tmp_path: Path, db_url: str) -> None:
    cfg = _config(tmp_path, db_url)
    out = _cli(cfg, "digest", "--preview", "--locale", "en", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "No new stories" in out.stdout


_HEAD_RE = re.compile(r"(📰 (?:新闻摘要|News digest) · )[^\"\\<]*")
_RULE_RE = re.compile(r"\\n=+\\n")


def _normalise(payloads: list[dict]) -> str:
    """The golden text with the heading's date (today) taken out."""
    text = json.dumps(payloads, ensure_ascii=False, indent=2, sort_keys=True)
    return _RULE_RE.sub(r"\\n=\\n", _HEAD_RE.sub(r"\1<DATE>", text)) + "\n"


def test_examples_golden(tmp_path: Path) -> None:
    """The example corpus through ingest, stories and the three renderers, in both locales."""
    if not any(EXAMPLES.glob("*.md")):
        pytest.skip("examples/articles is empty")
    db_url = f"sqlite:///{tmp_path / 'ex.db'}"
    cfg = _config(
        tmp_path, db_url, sources=f"sources:\n  - {{name: examples, type: folder, path: {EXAMPLES}}}"
    )
    ing = _cli(cfg, "ingest", "--json", cwd=ROOT)
    assert ing.returncode == 0, ing.stderr
    stories = json.loads(_cli(cfg, "stories", "--json", cwd=ROOT).stdout)
    if not stories:
        pytest.skip("no stories from the examples yet (clustering not in place)")
    for fmt in ("telegram", "slack", "text"):
        for locale in ("zh-CN", "en"):
            out = _cli(cfg, "digest", "--preview", "--format", fmt, "--locale", locale, "--json", cwd=ROOT)
            assert out.returncode == 0, out.stderr
            payloads = json.loads(out.stdout)
            if fmt == "telegram":
                for p in payloads:
                    parse_telegram_html(p["text"], strict_amp=True)
                    assert visible_length(p["text"]) <= 4096
            if fmt == "slack":
                assert all(slack_check(m) == [] for m in payloads)
            path = GOLDEN / f"examples_{fmt}.{locale}.json"
            got = _normalise(payloads)
            if UPDATE:
                path.write_text(got, encoding="utf-8")
            elif not path.exists():
                pytest.skip(f"{path.name} not recorded yet: run with UPDATE_GOLDEN=1")
            else:
                assert got == path.read_text(encoding="utf-8"), f"{path} differs; UPDATE_GOLDEN=1 to accept"
