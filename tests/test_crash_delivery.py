"""Crash safety through the real ``digestbot`` CLI against the fake Telegram server (in a thread).

SIGKILL mid-broadcast, restart: every chat ends up with its messages exactly once and in
order, except that the one message in flight per chat at the kill may arrive twice.
SIGTERM: the process finishes what is in flight, exits 0, and nothing is lost or repeated.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.delivery import queue as outbox
from bot.store import subscriptions as subs
from bot.store.db import Store
from tests.fakes.telegram import FakeTelegram

TOKEN = "123456:TEST-token"
ROOT = Path(__file__).resolve().parent.parent


def _write_config(tmp: Path, db_url: str, base_url: str) -> Path:
    cfg = tmp / "config.yaml"
    cfg.write_text(f"""
database: {{url: "{db_url}"}}
sources: []
adapters:
  telegram: {{token: "${{TG_TEST_TOKEN}}", base_url: "{base_url}", request_timeout: 5,
             register_commands: false, poll_timeout: 1}}
delivery: {{max_attempts: 5, backoff_base: 0.1, backoff_max: 0.5}}
""")
    return cfg


@pytest.fixture(autouse=True)
def _token(monkeypatch):
    monkeypatch.setenv("TG_TEST_TOKEN", TOKEN)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(TG_TEST_TOKEN=TOKEN, PYTHONPATH=str(ROOT))
    return env


def _prefill(cfg: Path, n_chats: int, parts: int) -> dict[str, list[str]]:
    """Queue a 'broadcast' (as a digest run would) straight into the outbox."""

    async def go() -> dict[str, list[str]]:
        settings = load_settings(cfg)
        store = await Store.open(settings.database.resolved_url())
        expected: dict[str, list[str]] = {}
        try:
            async with store.begin() as conn:
                for i in range(n_chats):
                    chat = str(10_000 + i)
                    sub = await subs.upsert(conn, subs.defaults(settings, "telegram", chat))
                    texts = [f"digest for {chat} ({p + 1}/{parts})" for p in range(parts)]
                    payloads = [{"text": f"<b>{t}</b>", "parse_mode": "HTML"} for t in texts]
                    await outbox.enqueue(conn, adapter="telegram", chat_id=chat, subscription_id=sub.id,
                                         payloads=payloads)
                    expected[chat] = texts
                # The window is recorded as composed, as enqueue_digest does in this transaction.
                from datetime import UTC, datetime

                from sqlalchemy import update

                from bot.store.tables import subscriptions as t_subs

                await conn.execute(update(t_subs).values(last_digest_at=datetime.now(UTC)))
        finally:
            await store.close()
        return expected

    return asyncio.run(go())


def _check(fake: FakeTelegram, expected: dict[str, list[str]], *, allow_repeat: bool) -> int:
    """Every chat got its messages in order; returns how many were repeated in total."""
    repeats = 0
    for chat, texts in expected.items():
        got = [m.visible_text for m in fake.messages(int(chat))]
        collapsed = [t for i, t in enumerate(got) if i == 0 or got[i - 1] != t]
        assert collapsed == texts, f"chat {chat}: {got}"
        extra = len(got) - len(texts)
        assert extra <= (1 if allow_repeat else 0), f"chat {chat} got {extra} repeats: {got}"
        repeats += extra
    return repeats


def _outbox_json(cfg: Path) -> dict:
    import json

    out = subprocess.run([sys.executable, "-m", "bot", "outbox", "--json", "--config", str(cfg)],
                         capture_output=True, text=True, env=_env(), timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_sigkill_mid_broadcast_then_restart_sends_each_digest_once(tmp_path, db_url):
    n_chats, parts = 120, 2
    with FakeTelegram.in_thread() as fake:
        cfg = _write_config(tmp_path, db_url, fake.base_url)
        expected = _prefill(cfg, n_chats, parts)
        cmd = [sys.executable, "-m", "bot", "digest", "--send", "--config", str(cfg)]
        proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert fake.wait_messages(90, timeout=60), "the broadcast did not get going"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)
        first = len(fake.messages())
        assert 90 <= first < n_chats * parts, "the kill did not land mid-broadcast"
        st = _outbox_json(cfg)
        assert st["pending"] > 0 and st["dead"] == 0

        time.sleep(1.1)  # let the fake's one-second window forget the killed run, as Telegram's would
        out = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        repeats = _check(fake, expected, allow_repeat=True)
        # At most the messages in flight at the kill: bounded by the worker's concurrency.
        assert repeats <= 60
        assert fake.count_429() == 0
        st = _outbox_json(cfg)
        assert (st["pending"], st["dead"], st["sent"]) == (0, 0, n_chats * parts)


def test_sigterm_finishes_in_flight_exits_0_and_loses_nothing(tmp_path, db_url):
    n_chats, parts = 90, 2
    with FakeTelegram.in_thread() as fake:
        cfg = _write_config(tmp_path, db_url, fake.base_url)
        expected = _prefill(cfg, n_chats, parts)
        run = [sys.executable, "-m", "bot", "run", "--config", str(cfg)]
        proc = subprocess.Popen(run, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
        try:
            assert fake.wait_messages(40, timeout=60), "the service did not start sending"
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
        assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
        stopped_at = len(fake.messages())
        assert stopped_at < n_chats * parts, "SIGTERM came too late to test anything"
        time.sleep(1.1)
        assert len(fake.messages()) == stopped_at, "the process kept sending after it exited"
        # Nothing was left claimed: a restart sends the rest at once and exits when done.
        env = {**_env(), "DIGESTBOT_EXIT_AFTER_START": "1"}
        out = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
        _check(fake, expected, allow_repeat=False)
        assert fake.count_429() == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_idle_service_stops_cleanly_on_signal(tmp_path, db_url, signum):
    with FakeTelegram.in_thread() as fake:
        cfg = _write_config(tmp_path, db_url, fake.base_url)
        proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(cfg)], env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
        try:
            assert fake.wait_until(lambda: fake.stats.get("getUpdates", 0) >= 1, timeout=30)
            proc.send_signal(signum)
            _out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
