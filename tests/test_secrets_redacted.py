"""Secrets never reach a log, a report or --json output, at any log level (issue 16, items 4/5)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.config import load_settings
from bot.logs import RedactingFilter, install_redaction
from bot.text.redact import Redactor, mask_userinfo
from tests.fakes.telegram import FakeTelegram
from tests.test_adapters_support import folder_source, settings_yaml, write_articles

ROOT = Path(__file__).resolve().parent.parent
# Shaped like a real token (id, colon, 35 characters), so both the pattern and the value match.
TOKEN = "7351824096:AAH3kZq9vXw2Lr8Tn5Yb1Jc6Md0Fp4Gs7Hu"
SLACK_BOT = "xoxb-4321-8765-AbCdEfGhIjKlMnOpQrStUv"
FEED_PASS = "s3cret-Feed-Pa55"


# ---------------------------------------------------------------- units


def test_redactor_masks_values_patterns_and_userinfo() -> None:
    r = Redactor([TOKEN, "signing-secret-123", "abc"])
    assert TOKEN not in r(f"POST http://127.0.0.1:1/bot{TOKEN}/sendMessage")
    assert r(f"POST http://h/bot{TOKEN}/getMe") == "POST http://h/bot7351824096:***/getMe"
    assert r("bare 1234567:AAbbccddeeffgghhiijjkkllmmnnooppqqrr") == "bare 1234567:***"
    assert r(f"{SLACK_BOT} xapp-1-A0B1-99-abcdef") == "xoxb-*** xapp-***"
    assert r("x signing-secret-123 y") == "x *** y"
    assert r("abc stays (too short to mask as text)") == "abc stays (too short to mask as text)"
    assert r("postgresql+asyncpg://bot:pw%40x@db/news") == "postgresql+asyncpg://bot:***@db/news"
    assert r("http://reader:p@ss@h/f") .startswith("http://reader:***@")
    assert mask_userinfo("http://reader:pw@127.0.0.1:8/feed?x=1") == "http://reader:***@127.0.0.1:8/feed?x=1"
    assert mask_userinfo("https://example.com/feed") == "https://example.com/feed"


def test_config_collects_every_secret_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG", TOKEN)
    monkeypatch.setenv("WH", "webhook-secret-xyz")
    monkeypatch.setenv("FEED_PASS", FEED_PASS)
    monkeypatch.setenv("DATABASE_URL", "postgresql://bot:db-pass-123@127.0.0.1/x")
    s = load_settings(text=(
        "adapters:\n"
        '  telegram: {token: "${TG}", mode: webhook, webhook_url: "https://bot.example.com/t",'
        ' webhook_secret: "${WH}"}\n'
        "sources:\n"
        '  - {name: f, type: feed, url: "http://reader:${FEED_PASS}@feeds.example.com/x"}\n'))
    assert {TOKEN, "webhook-secret-xyz", FEED_PASS, "db-pass-123"} <= set(s.secrets)


def test_filter_covers_library_loggers_args_and_tracebacks() -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install_redaction(Redactor([TOKEN]))
        assert any(isinstance(f, RedactingFilter) for f in handler.filters)
        lib = logging.getLogger("httpx")
        old = lib.level
        lib.setLevel(logging.INFO)
        lib.info('HTTP Request: %s %s "%s"', "POST", f"http://127.0.0.1/bot{TOKEN}/getUpdates",
                 "HTTP/1.1 200")
        try:
            raise RuntimeError(f"cannot reach http://reader:{FEED_PASS}@h/feed with {TOKEN}")
        except RuntimeError:
            logging.getLogger("telegram.ext").warning("failed for %s", "x\nforged line", exc_info=True)
        lib.setLevel(old)
    finally:
        root.removeHandler(handler)
    text = "\n".join(records)
    assert TOKEN not in text and FEED_PASS not in text
    assert "bot7351824096:***/getUpdates" in text and "reader:***@h" in text
    assert "x\\nforged line" in text


# ---------------------------------------------------------------- Telegram, end to end


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and "proxy" not in k.lower()}
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


def _telegram_config(tmp_path: Path, db_url: str, base_url: str) -> Path:
    write_articles(tmp_path / "a")
    cfg = tmp_path / "config.yaml"
    adapters = (f'  telegram: {{token: "${{TG}}", base_url: "{base_url}", poll_timeout: 1, '
                "register_commands: true}")
    cfg.write_text(settings_yaml(db_url, adapters, folder_source(tmp_path / "a")), encoding="utf-8")
    return cfg


def _run(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args, "--config", str(cfg)], cwd=ROOT,
                          env=_env(TG=TOKEN), capture_output=True, text=True, timeout=120)


def test_digest_send_verbose_logs_no_token(tmp_path: Path, db_url: str) -> None:
    with FakeTelegram.in_thread() as tg:
        tg.set_limits(enabled=False)
        cfg = _telegram_config(tmp_path, db_url, tg.base_url)
        assert _run(cfg, "ingest").returncode == 0
        assert _run(cfg, "subscriptions", "add", "telegram", "4242").returncode == 0
        res = _run(cfg, "-v", "digest", "--send")
        assert res.returncode == 0, res.stderr[-3000:]
        assert tg.messages(chat_id=4242), "nothing was sent"
        res_json = _run(cfg, "-v", "--json", "digest", "--send")
    for out in (res, res_json):
        text = out.stdout + out.stderr
        assert TOKEN not in text and TOKEN.split(":")[1] not in text
        # -v stays useful: the requests are logged, with the token masked.
        assert "/bot7351824096:***/sendMessage" in out.stderr or out is res_json


def test_polling_run_verbose_logs_no_token(tmp_path: Path, db_url: str) -> None:
    with FakeTelegram.in_thread() as tg:
        tg.set_limits(enabled=False)
        cfg = _telegram_config(tmp_path, db_url, tg.base_url)
        # Files, not pipes: -v writes more than a pipe holds while nobody reads it.
        out_path, err_path = tmp_path / "out.txt", tmp_path / "err.txt"
        with out_path.open("wb") as out_f, err_path.open("wb") as err_f:
            proc = subprocess.Popen([sys.executable, "-m", "bot", "-v", "run", "--config", str(cfg)],
                                    cwd=ROOT, env=_env(TG=TOKEN), stdin=subprocess.DEVNULL, stdout=out_f,
                                    stderr=err_f)
        try:
            for i in range(3):  # three polls answered, three commands served
                assert tg.wait_idle_poll(timeout=60), "the bot never polled"
                tg.user_message("/help", user_id=4242, language_code="en")
                assert tg.wait_messages(i + 1, timeout=30, chat_id=4242), tg.texts()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    text = out_path.read_text() + err_path.read_text()
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    assert "bot7351824096:***/getUpdates" in text  # still says what it did


# ---------------------------------------------------------------- a feed URL with a password


@pytest.fixture
async def auth_feed() -> AsyncIterator[tuple[int, list[str]]]:
    seen: list[str] = []

    async def feed(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Authorization", ""))
        import base64

        if request.headers.get("Authorization") != "Basic " + base64.b64encode(
                f"reader:{FEED_PASS}".encode()).decode():
            return web.Response(status=401)
        body = ("<?xml version='1.0'?><rss version='2.0'><channel><title>Wire</title>"
                "<item><title>Linked entry</title><link>https://wire.example.com/1</link>"
                "<pubDate>Mon, 10 Mar 2025 21:30:00 +0000</pubDate><description>Text.</description></item>"
                "<item><description></description></item>"  # no link, no text: rejected, named by feed URL
                "<item><title>No date, no link</title><description>Text two.</description></item>"
                "<item><title>Relative link</title><link>/posts/4</link><description>Three.</description>"
                "</item>"
                "</channel></rss>")
        return web.Response(body=body.encode(), content_type="application/rss+xml")

    app = web.Application()
    app.router.add_get("/feed", feed)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield int(runner.addresses[0][1]), seen
    finally:
        await runner.cleanup()


async def test_feed_password_never_shown(tmp_path: Path, db_url: str,
                                         auth_feed: tuple[int, list[str]]) -> None:
    port, seen = auth_feed
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f'database: {{url: "{db_url}"}}\nsources:\n'
        f'  - {{name: wire, type: feed, url: "http://reader:${{FEED_PASS}}@127.0.0.1:{port}/feed", '
        "allow_private_addresses: true, timeout: 10s}\nadapters: {console: {}}\n", encoding="utf-8")
    outputs = []
    for args in (["-v", "--json", "ingest"], ["-v", "ingest"], ["--json", "ingest"], ["check"],
                 ["--json", "articles"]):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *args, "--config", str(cfg), cwd=ROOT, env=_env(FEED_PASS=FEED_PASS),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()[-3000:]
        outputs.append((args, out.decode(), err.decode()))
    assert seen and all(h.startswith("Basic ") for h in seen)  # the password was used
    for args, out, err in outputs:
        assert FEED_PASS not in out + err, args
    first_json = json.loads(outputs[0][1])
    assert first_json["new"] == 3
    wheres = [r["where"] for r in first_json["rejections"]] + [w["where"] for w in first_json["warnings"]]
    assert any(w.startswith(f"http://reader:***@127.0.0.1:{port}/feed") for w in wheres), wheres
    assert f"reader:***@127.0.0.1:{port}" in outputs[0][2]  # the -v request log, masked
    assert f"http://reader:***@127.0.0.1:{port}/feed" in outputs[1][1]  # the text report
    # A relative link resolves against the feed's address without its credentials at all.
    urls = {a["title"]: a["url"] for a in json.loads(outputs[4][1])}
    assert urls["Relative link"] == f"http://127.0.0.1:{port}/posts/4"
