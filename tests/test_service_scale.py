"""Three ``digestbot run`` processes on one PostgreSQL, one bot: each chat served once.

The leader (scheduler, delivery, Telegram polling) is SIGKILLed mid-broadcast; another
process takes the lease over and finishes. The fake Telegram server's limits stay on
throughout: the bot-wide rate holds across processes (zero 429s), and only one process
polls at a time.
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

from bot.store.db import Store
from bot.store.leases import LEADER, holder_of
from tests.fakes.telegram import FakeTelegram
from tests.test_crash_delivery import TOKEN, _check, _outbox_json, _prefill, _write_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _token(monkeypatch):
    monkeypatch.setenv("TG_TEST_TOKEN", TOKEN)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(TG_TEST_TOKEN=TOKEN, PYTHONPATH=str(ROOT), DIGESTBOT_LEASE_TTL="3")
    return env


def _leader(url: str) -> str | None:
    async def go() -> str | None:
        store = await Store.open(url, migrate=False)
        try:
            return await holder_of(store, LEADER)
        finally:
            await store.close()

    return asyncio.run(go())


def test_three_processes_one_postgresql_leader_killed_mid_broadcast(tmp_path, pg_url):
    n_chats = 1000
    with FakeTelegram.in_thread() as fake:
        cfg = _write_config(tmp_path, pg_url, fake.base_url)
        expected = _prefill(cfg, n_chats, 1)
        procs = [subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(cfg)], env=_env(),
                                  cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for _ in range(3)]
        try:
            assert fake.wait_messages(300, timeout=90), "the broadcast did not get going"
            leader = _leader(pg_url)
            assert leader is not None
            pid = int(leader.rsplit(":", 2)[1])
            victim = next(p for p in procs if p.pid == pid)
            conflicts_before = [r for r in fake.rejected(method="getUpdates") if r.status == 409]
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            killed_at = len(fake.messages())
            assert killed_at < n_chats, "the kill did not land mid-broadcast"
            assert fake.wait_messages(n_chats, timeout=120), f"only {len(fake.messages())} delivered"
            time.sleep(1.0)  # anything sent twice would show now
            new_leader = _leader(pg_url)
            assert new_leader is not None and new_leader != leader
            survivors = [p for p in procs if p is not victim]
            for p in survivors:
                assert p.poll() is None, "a standby process died"
                p.send_signal(signal.SIGTERM)
            for p in survivors:
                _out, err = p.communicate(timeout=60)
                assert p.returncode == 0, err.decode(errors="replace")[-2000:]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.communicate(timeout=10)
        repeats = _check(fake, expected, allow_repeat=True)
        assert repeats <= 60, repeats  # at most what was in flight at the kill
        assert fake.count_429() == 0, fake.stats
        # One poller at a time: no getUpdates conflict while the first leader lived.
        assert conflicts_before == []
        st = _outbox_json(cfg)
        assert st["pending"] == 0 and st["dead"] == 0
