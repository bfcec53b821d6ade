"""/healthz and /metrics through `digestbot run` on a real port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import EXAMPLES


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthz_and_metrics_served_by_run(tmp_path: Path, db_url: str) -> None:
    port = _free_port()
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"database: {{url: '{db_url}'}}\n"
        f"sources: [{{name: examples, type: folder, path: '{EXAMPLES}'}}]\n"
        "adapters: {console: {interactive: false}}\n"
        f"server: {{host: 127.0.0.1, port: {port}}}\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "DIGESTBOT_EXIT_AFTER_START"}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(cfg), "run"], cwd=tmp_path,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                if health.status_code == 200 and health.json()["leases"].get("leader"):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert health is not None and health.status_code == 200, "healthz never answered"
        body = health.json()
        assert body["status"] == "ok" and body["leases"] == {"leader": True}
        want = 'digestbot_articles_ingested_total{kind="new",source="examples"} 20.0'
        metrics = ""
        while time.monotonic() < deadline and want not in metrics:  # the first ingest may still run
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            time.sleep(0.2)
        assert want in metrics
        assert "digestbot_duplicates 1.0" in metrics and "digestbot_outbox_depth" in metrics
        assert 'digestbot_lease_held{name="leader"} 1.0' in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
