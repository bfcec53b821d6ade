"""CLI behaviour at its edges: error messages, exit codes, ``stories --top``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import EXAMPLES
from tests.fakes.telegram import FakeTelegram
from tests.ingest_helpers import cli, cli_json, write_config

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


def test_top_level_error_names_its_kind(tmp_path: Path, db_url: str) -> None:
    """A KeyError used to print `digestbot: error: 8673`."""
    cfg = write_config(tmp_path / "config.yaml", tmp_path / "none", db_url)
    script = textwrap.dedent(f"""
        import sys
        import bot.stories.service as service
        async def broken(app, **kw):
            raise KeyError(8673)
        service.recluster = broken
        from bot.cli import main
        sys.exit(main(["--config", {str(cfg)!r}, *sys.argv[1:]]))
    """)
    res = subprocess.run([sys.executable, "-c", script, "recluster"], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == \
        "digestbot: error: KeyError: 8673 (run with -v for the traceback)"
    verbose = subprocess.run([sys.executable, "-c", script, "-v", "recluster"], cwd=ROOT, env=_env(),
                             capture_output=True, text=True, timeout=120)
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr and "in broken" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1] == "digestbot: error: KeyError: 8673"


def test_a_broken_store_is_named(tmp_path: Path) -> None:
    db = tmp_path / "broken.db"
    db.write_bytes(b"this is not a database file at all, just text" * 100)
    cfg = write_config(tmp_path / "config.yaml", tmp_path / "none", f"sqlite:///{db}")
    res = cli("--config", str(cfg), "articles")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == (
        "digestbot: error: DatabaseError: file is not a database (run with -v for the traceback)")


def test_stories_top_samples_titles(tmp_path: Path, db_url: str) -> None:
    cfg = write_config(tmp_path / "config.yaml", EXAMPLES, db_url)
    cli_json("--config", str(cfg), "ingest")
    full = cli_json("--config", str(cfg), "stories")
    assert "sample" not in full[0]  # the listing without --top is as before
    top = cli_json("--config", str(cfg), "stories", "--top", "2")
    assert [s["id"] for s in top] == [s["id"] for s in full[:2]]
    for s in top:
        assert set(s) >= {"id", "title", "size", "sources", "articles", "sample", "more"}
        assert 1 <= len(s["sample"]) <= 5 and s["more"] == s["size"] - len(s["sample"])
        members = {a["id"]: a for a in s["articles"]}
        for item in s["sample"]:
            assert members[item["id"]]["title"] == item["title"]
            assert members[item["id"]]["outlet"] == item["outlet"]
        # Each outlet shows before any outlet shows twice.
        outlets = [i["outlet"] for i in s["sample"]]
        assert outlets[:len(set(outlets))] == list(dict.fromkeys(outlets))
    text = cli("--config", str(cfg), "stories", "--top", "1")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split()[0] == str(top[0]["id"])
    assert sum(1 for ln in lines if ln.startswith("          - [")) == len(top[0]["sample"])
    if top[0]["more"]:
        assert f"… and {top[0]['more']} more" in text.stdout
    assert lines[-1] == "1 stories"
    bad = cli("--config", str(cfg), "stories", "--top", "0")
    assert bad.returncode == 2 and "--top" in bad.stderr


def test_digest_send_with_dead_letters_exits_1(tmp_path: Path, db_url: str) -> None:
    token = "123456:TEST-token"
    with FakeTelegram.in_thread() as tg:
        tg.set_limits(enabled=False)
        cfg = tmp_path / "config.yaml"
        cfg.write_text(
            f'database: {{url: "{db_url}"}}\ntimezone: Asia/Shanghai\n'
            f'sources:\n  - {{name: ex, type: folder, path: "{EXAMPLES}"}}\n'
            f'adapters:\n  telegram: {{token: "${{TG}}", base_url: "{tg.base_url}", '
            "register_commands: false}\n"
            "delivery: {max_attempts: 2, backoff_base: 0.05, backoff_max: 0.1}\n", encoding="utf-8")

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "bot", *args, "--config", str(cfg)], cwd=ROOT,
                                  env=_env(TG=token), capture_output=True, text=True, timeout=120)

        assert run("ingest").returncode == 0
        assert run("subscriptions", "add", "telegram", "4242").returncode == 0
        tg.inject("server_error", chat_id=4242, times=None)
        res = run("--json", "digest", "--send")
        assert res.returncode == 1, res.stderr[-2000:]
        out = json.loads(res.stdout)
        assert out["dead"] >= 1 and out["pending"] == 0 and out["sent"] == 0
        assert "dead letters" in res.stderr
        tg.clear_faults()
        outbox = json.loads(run("--json", "outbox").stdout)
        assert outbox["dead"] == out["dead"]
