"""`digestbot run` with Telegram and Slack side by side in one process, against the fakes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram
from tests.test_adapters_support import folder_source, settings_yaml, write_articles

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_serves_telegram_and_slack_together(db_url: str, tmp_path: Path) -> None:
    write_articles(tmp_path / "a")
    port = _free_port()
    with FakeTelegram.in_thread() as tg, FakeSlack.in_thread() as slack:
        tg.set_limits(enabled=False)
        adapters = (
            f'  telegram: {{token: "${{TG}}", base_url: "{tg.base_url}", poll_timeout: 1}}\n'
            f'  slack: {{bot_token: "${{SB}}", signing_secret: "${{SS}}", mode: http, host: 127.0.0.1, '
            f'port: {port}, base_url: "{slack.base_url}"}}')
        cfg = tmp_path / "config.yaml"
        cfg.write_text(settings_yaml(db_url, adapters, folder_source(tmp_path / "a")), encoding="utf-8")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TG": "123456:TEST-token",
               "SB": slack.bot_token, "SS": slack.signing_secret}
        subprocess.run([sys.executable, "-m", "bot", "ingest", "--config", str(cfg)], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=60)
        proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(cfg)], cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            tg.user_message("/search 苹果", user_id=42, language_code="en")
            assert tg.wait_messages(1, timeout=30, chat_id=42), tg.texts()
            assert tg.messages(chat_id=42)[0].visible_text.startswith("Results for “苹果” (1–2 of 2):")
            deadline = time.monotonic() + 20
            status, body = 0, ""
            while time.monotonic() < deadline:  # the HTTP listener may still be coming up
                try:
                    status, body = slack.slash_command("/digest", "search 降雨").send(
                        f"http://127.0.0.1:{port}/slack/events", slack.signing_secret)
                    break
                except OSError:
                    time.sleep(0.2)
            assert status == 200, body
            assert "北方多地迎来降雨" in json.dumps(json.loads(body), ensure_ascii=False)
            assert [c["command"] for c in tg.commands(language_code="zh")][:2] == ["start", "help"]
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                _, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
        assert proc.returncode == 0, err.decode()[-2000:]
