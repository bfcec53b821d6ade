"""Killing ``digestbot ingest`` mid-pass leaves no process behind (issue 16 item 7).

Passes of 2,000 files or more parse in a pool of worker processes. SIGKILL gives the parent no
chance to clean up, so the workers must notice on their own; SIGTERM stops the pass after the
batch being written, shuts the pool down and exits 143.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.sources.folder import POOL_THRESHOLD
from tests.ingest_helpers import cli_json, write_config

ROOT = Path(__file__).resolve().parent.parent
N_FILES = POOL_THRESHOLD + 600

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _big_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    words = " ".join(f"term{j}" for j in range(200))
    for i in range(N_FILES):
        p = path / f"{i:05d}.md"
        p.write_text(f'---\ntitle: "Generated story {i}"\ndate: "2025-02-12 08:00:00"\n---\n\n'
                     f"Body {i} of our own. {words}\n", encoding="utf-8")
        os.utime(p, (1.7e9, 1.7e9))
    return path


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _big_folder(tmp_path_factory.mktemp("big") / "articles")


def _start(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    with log.open("wb") as err:
        return subprocess.Popen([sys.executable, "-m", "bot", "ingest", "--json", "--config", str(cfg)],
                                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err)


def _wait_for_workers(proc: subprocess.Popen[bytes], n: int = 2) -> set[int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kids = {p for p in _descendants(proc.pid)
                if "multiprocessing" in _cmdline(p) and "resource_tracker" not in _cmdline(p)}
        if len(kids) >= n:
            return _descendants(proc.pid)
        assert proc.poll() is None, "ingest ended before its workers started"
        time.sleep(0.05)
    raise AssertionError("no parse workers appeared")


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _all_gone(pids: set[int], timeout: float = 10.0) -> set[int]:
    deadline = time.monotonic() + timeout
    left = {p for p in pids if _alive(p)}
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = {p for p in left if _alive(p)}
    return left


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the pool is only used with two or more CPUs")
def test_sigkill_mid_pass_leaves_no_child(tmp_path: Path, db_url: str, big_folder: Path) -> None:
    cfg = write_config(tmp_path / "config.yaml", big_folder, db_url)
    proc = _start(cfg, tmp_path / "err.txt")
    kids = _wait_for_workers(proc)
    proc.kill()
    proc.wait(timeout=30)
    left = _all_gone(kids)
    try:
        assert not left, [(p, _cmdline(p)) for p in left]
    finally:
        for p in left:  # our own orphans: do not leave them to the next test
            os.kill(p, signal.SIGKILL)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the pool is only used with two or more CPUs")
def test_sigterm_mid_pass_stops_cleanly_with_143(tmp_path: Path, db_url: str, big_folder: Path) -> None:
    cfg = write_config(tmp_path / "config.yaml", big_folder, db_url)
    proc = _start(cfg, tmp_path / "err.txt")
    kids = _wait_for_workers(proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    err = (tmp_path / "err.txt").read_text()
    left = _all_gone(kids)
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, [(p, _cmdline(p)) for p in left]
    assert proc.returncode == 143, err[-3000:]
    assert "stopped by SIGTERM" in err
    report = json.loads(out)
    assert report["interrupted"] == "SIGTERM"
    stored = len(cli_json("--config", str(cfg), "articles"))
    assert report["new"] == stored < N_FILES
    assert stored % 500 == 0  # whole batches only, never half of one
    again = cli_json("--config", str(cfg), "ingest")  # the rest comes on the next pass
    assert again["new"] == N_FILES - stored and again["rejected"] == 0
