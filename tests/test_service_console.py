"""``digestbot run`` on the embedded default: console adapter, SQLite, examples/articles."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "articles"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


def _workdir(tmp_path: Path) -> Path:
    # The embedded default reads ./examples/articles and writes ./digestbot.db.
    shutil.copytree(EXAMPLES, tmp_path / "examples" / "articles")
    return tmp_path


def _bot(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=_env(**env), capture_output=True,
                          text=True, timeout=120)


def test_quick_start_prints_a_digest_right_after_the_first_ingest(tmp_path):
    cwd = _workdir(tmp_path)
    out = _bot(cwd, "run", DIGESTBOT_EXIT_AFTER_START="1")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ingest:" in out.stderr and "created the console subscription console:terminal" in out.stderr
    stories = json.loads(_bot(cwd, "stories", "--json").stdout)
    # The digest is on stdout: its heading, and the biggest story's title when there are stories.
    assert out.stdout.strip(), "no digest printed"
    if stories:
        assert stories[0]["title"][:20] in out.stdout
    subs = json.loads(_bot(cwd, "subscriptions", "--json").stdout)
    assert [(s["adapter"], s["chat_id"], s["active"]) for s in subs] == [("console", "terminal", True)]
    assert subs[0]["last_digest_at"] is not None
    st = json.loads(_bot(cwd, "outbox", "--json").stdout)
    assert st["pending"] == 0 and st["dead"] == 0 and st["sent"] >= 1
    # A second start: nothing new, said once, and no second subscription.
    again = _bot(cwd, "run", DIGESTBOT_EXIT_AFTER_START="1")
    assert again.returncode == 0, again.stderr[-3000:]
    shown = [s["title"][:20] for s in stories if s["title"][:20] in out.stdout]
    assert shown or not stories
    for title in shown:
        assert title not in again.stdout, "a story was repeated"
    assert len(json.loads(_bot(cwd, "subscriptions", "--json").stdout)) == 1


def test_run_keeps_running_until_sigterm_then_exits_0(tmp_path):
    cwd = _workdir(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (cwd / "digestbot.db").exists():
            time.sleep(0.1)
        time.sleep(3)  # ingest, digest and scheduler start
        assert proc.poll() is None, "run exited on its own"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err[-3000:]
    assert out.strip() and "stopped" in err
