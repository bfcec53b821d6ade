"""bot/store/subscriptions.py: queries, validated changes, and the CLI that uses them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.model import Filters
from bot.store import subscriptions as subs
from tests.test_adapters_support import open_app, settings_yaml

ROOT = Path(__file__).resolve().parent.parent


def test_parse_times_normalises_and_rejects() -> None:
    assert subs.parse_times("20:00, 8:00，08:00") == ["08:00", "20:00"]
    assert subs.parse_times(["23:59"]) == ["23:59"]
    for bad in ("24:00", "8", "08:60", "", "noon", "01:00,02:00,03:00,04:00,05:00,06:00,07:00"):
        with pytest.raises(subs.InvalidSetting) as e:
            subs.parse_times(bad)
        assert e.value.key.startswith("time")


@given(st.lists(st.tuples(st.integers(0, 23), st.integers(0, 59)), min_size=1, max_size=6))
def test_parse_times_roundtrip(pairs: list[tuple[int, int]]) -> None:
    text = ",".join(f"{h}:{m:02d}" for h, m in pairs)
    out = subs.parse_times(text)
    assert out == sorted({f"{h:02d}:{m:02d}" for h, m in pairs})
    assert subs.parse_times(out) == out


@given(st.text(max_size=30))
def test_parse_times_never_crashes_otherwise(text: str) -> None:
    try:
        out = subs.parse_times(text)
    except subs.InvalidSetting:
        return
    assert all(len(t) == 5 and t[2] == ":" for t in out)


def test_validate_tz_locale_max() -> None:
    assert subs.validate_tz("Europe/London") == "Europe/London"
    assert subs.validate_tz(" UTC ") == "UTC"
    for bad in ("Mars/Olympus", "", "../etc/passwd", "/etc/localtime", "x" * 100):
        with pytest.raises(subs.InvalidSetting):
            subs.validate_tz(bad)
    assert subs.validate_locale("en-US") == "en" and subs.validate_locale("zh") == "zh-CN"
    with pytest.raises(subs.InvalidSetting):
        subs.validate_locale("fr")
    assert subs.validate_max("5") == 5
    for bad in ("0", "51", "five"):
        with pytest.raises(subs.InvalidSetting):
            subs.validate_max(bad)


async def test_upsert_get_update_retire_move(db_url: str) -> None:
    app = await open_app(db_url, '  console: {}\n  telegram: {token: "${TG_TOKEN:-1:x}"}')
    try:
        store = app.store
        [a, b] = await subs.add_many(app, "telegram", ["42", "-1001"], locale="en", tz="Europe/London")
        assert (a.chat_type, b.chat_type) == ("private", "supergroup")
        assert a.locale == "en" and a.timezone == "Europe/London" and a.times == ["08:00"] and a.id
        got = await subs.get(store, "telegram", "42")
        assert got is not None and got.as_dict() == a.as_dict()
        s = await subs.update_settings(store, a.id, times="20:00,08:00", max_stories="5")
        assert s.times == ["08:00", "20:00"] and s.max_stories == 5
        with pytest.raises(subs.InvalidSetting):
            await subs.update_settings(store, a.id, timezone="Nowhere/Land")
        s = await subs.set_filters(store, a.id, Filters(include=["苹果"]))
        assert s.filters.include == ["苹果"]
        assert await subs.retire(store, a.id, "blocked")
        assert [x.chat_id for x in await subs.list_active(store)] == ["-1001"]
        retired = await subs.get(store, "telegram", "42")
        assert retired is not None and not retired.active and retired.retired_reason == "blocked"
        # Adding again reactivates and keeps what was not given.
        [again] = await subs.add_many(app, "telegram", ["42"])
        assert again.active and again.id == a.id and again.times == ["08:00", "20:00"]
        moved = await subs.move_chat(store, "telegram", "-1001", "-1002")
        assert moved is not None and moved.id == b.id and moved.chat_id == "-1002"
        assert await subs.get(store, "telegram", "-1001") is None
        assert await subs.move_chat(store, "telegram", "-1001", "-1003") is None
        # Moving onto a chat that already has a row retires the old one.
        await subs.add_many(app, "telegram", ["-1003"])
        kept = await subs.move_chat(store, "telegram", "-1002", "-1003")
        assert kept is not None and kept.chat_id == "-1003" and kept.active
        old = await subs.get(store, "telegram", "-1002")
        assert old is not None and not old.active
        assert await subs.deactivate_many(store, "telegram", ["42", "nope"], "removed by admin") == 1
        assert len(await subs.list_subscriptions(store)) == 3
        # Works inside a caller's transaction too.
        async with store.begin() as conn:
            await subs.retire(conn, kept.id, "kicked")  # type: ignore[arg-type]
            inside = await subs.get(conn, "telegram", "-1003")
            assert inside is not None and not inside.active
        with pytest.raises(ValueError, match="not a Telegram chat id"):
            await subs.add_many(app, "telegram", ["hello world"])
        with pytest.raises(subs.InvalidSetting):
            await subs.add_many(app, "telegram", ["42"], tz="Mars/Base")
    finally:
        await app.close()


async def test_changes_reach_the_scheduler_hook(db_url: str) -> None:
    app = await open_app(db_url)
    seen: list[Any] = []

    async def hook(sub: Any) -> None:
        seen.append((sub.chat_id, sub.times))

    app.on_subscription_changed = hook  # type: ignore[attr-defined]
    try:
        await subs.add_many(app, "console", ["terminal"], times="09:30")
        assert seen == [("terminal", ["09:30"])]
    finally:
        await app.close()


def _cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args, "--config", str(cfg)], capture_output=True,
                          text=True, cwd=ROOT, timeout=60, env={"PATH": "/usr/bin:/bin", "TG_TOKEN": "1:x"})


def test_cli_subscriptions_add_and_list(db_url: str, tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    adapters = '  console: {}\n  telegram: {token: "${TG_TOKEN}"}'
    cfg.write_text(settings_yaml(db_url, adapters), encoding="utf-8")
    r = _cli(cfg, "subscriptions", "add", "telegram", "123", "456", "--locale", "en", "--tz", "Europe/London")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["subscribed telegram:123 (en, Europe/London, 08:00)",
                                     "subscribed telegram:456 (en, Europe/London, 08:00)"]
    r = _cli(cfg, "subscriptions", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [(d["adapter"], d["chat_id"], d["locale"], d["timezone"], d["schedule"], d["active"])
            for d in data] == [("telegram", "123", "en", "Europe/London", ["08:00"], True),
                               ("telegram", "456", "en", "Europe/London", ["08:00"], True)]
    assert data[0]["filters"]["include"] == []
    # Bad usage exits 2 with the reason (three independent runs, side by side to save time).
    bad = [(["add", "telegram", "789", "--tz", "Mars/Base"], "Mars/Base"),
           (["add", "telegram", "not-a-chat"], "not a Telegram chat id"),
           (["add", "slack", "C1"], "not configured")]
    procs = [subprocess.Popen([sys.executable, "-m", "bot", "subscriptions", *a, "--config", str(cfg)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                              env={"PATH": "/usr/bin:/bin", "TG_TOKEN": "1:x"}) for a, _ in bad]
    for p, (_, why) in zip(procs, bad, strict=True):
        _, err = p.communicate(timeout=60)
        assert p.returncode == 2 and why in err, err
    r = _cli(cfg, "subscriptions", "remove", "telegram", "456")
    assert r.returncode == 0 and r.stdout.strip() == "unsubscribed 1 chats"
    r = _cli(cfg, "subscriptions")
    assert "telegram:456  en  Europe/London  08:00  inactive (removed by admin)" in r.stdout
