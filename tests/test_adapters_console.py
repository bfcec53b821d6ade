"""The console adapter end to end: `digestbot run` answering commands typed on stdin."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.test_adapters_support import folder_source, settings_yaml, write_articles

ROOT = Path(__file__).resolve().parent.parent


def _read_until(proc: subprocess.Popen[bytes], needle: str, seen: list[str], within: float = 30.0) -> bool:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if needle in "".join(seen):
                return True
            if not sel.select(timeout=0.2):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            seen.append(chunk.decode("utf-8", errors="replace"))
        return needle in "".join(seen)
    finally:
        sel.close()


def test_run_answers_commands_typed_on_stdin(db_url: str, tmp_path: Path) -> None:
    write_articles(tmp_path / "a")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(settings_yaml(db_url, "  console: {interactive: true, locale: en}",
                                 folder_source(tmp_path / "a")), encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    # Ingest first: `run` starts its adapters before its own first pass.
    subprocess.run([sys.executable, "-m", "bot", "ingest", "--config", str(cfg)], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=60)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(cfg)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    out: list[str] = []
    try:
        assert proc.stdin is not None
        proc.stdin.write("/search 苹果\n".encode())
        proc.stdin.flush()
        assert _read_until(proc, "Results for “苹果” (1–2 of 2):", out), "".join(out)
        proc.stdin.write(b"/subscribe\n/settings tz Europe/London\n/frobnicate\n")
        proc.stdin.flush()
        assert _read_until(proc, "Unknown command “frobnicate”. Send /help for the list.", out), "".join(out)
        text = "".join(out)
        assert "苹果发布新款平板电脑" in text and "Time zone: Europe/London" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 0, err.decode()
