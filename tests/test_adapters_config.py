"""Adapter config sections are validated at load; third-party adapters come from entry points."""

from __future__ import annotations

from typing import Any

import pytest

from bot.adapters import base
from bot.config import ConfigError, load_settings


def _problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as e:
        load_settings(text=text)
    return e.value.problems


def test_telegram_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T", "1:x")
    ok = load_settings(text='adapters: {telegram: {token: "${T}", mode: polling}}')
    cfg: Any = ok.adapter_configs["telegram"]
    assert cfg.token.get_secret_value() == "1:x" and cfg.base_url == "https://api.telegram.org/bot"
    assert "1:x" not in repr(cfg)  # secrets never show in logs
    [(path, msg)] = _problems('adapters: {telegram: {token: "${T}", mode: webhook}}')
    assert path == "adapters.telegram" and "webhook_url" in msg
    [(path, msg)] = _problems('adapters: {telegram: {token: "${T}", mode: webhook, '
                              'webhook_url: "https://x.example/t"}}')
    assert "webhook_secret" in msg
    [(path, msg)] = _problems('adapters: {telegram: {token: "${T}", mode: push}}')
    assert path == "adapters.telegram.mode"
    [(path, msg)] = _problems('adapters: {telegram: {token: "${T}", colour: blue}}')
    assert (path, msg) == ("adapters.telegram.colour", "unknown key")
    [(path, msg)] = _problems("adapters: {telegram: {}}")
    assert (path, msg) == ("adapters.telegram.token", "required key is missing")


def test_slack_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("B", "xoxb-1")
    monkeypatch.setenv("A", "xapp-1")
    monkeypatch.setenv("S", "sec")
    ok = load_settings(text='adapters: {slack: {bot_token: "${B}", app_token: "${A}", base_url: "http://h/api"}}')
    cfg: Any = ok.adapter_configs["slack"]
    assert cfg.mode == "socket" and cfg.base_url == "http://h/api/" and cfg.command == "/digest"
    [(path, msg)] = _problems('adapters: {slack: {bot_token: "${B}"}}')
    assert path == "adapters.slack" and "app_token" in msg
    [(path, msg)] = _problems('adapters: {slack: {bot_token: "${B}", mode: http}}')
    assert "signing_secret" in msg
    assert load_settings(text='adapters: {slack: {bot_token: "${B}", mode: http, signing_secret: "${S}"}}')
    [(path, msg)] = _problems('adapters: {slack: {bot_token: "${B}", app_token: "${A}", command: "digest"}}')
    assert path == "adapters.slack.command"


def test_third_party_adapter_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint, entry_points

    installed = list(entry_points(group=base.ENTRY_POINT_GROUP))
    extra = [EntryPoint("matrix", "tests.test_adapters_config:MatrixAdapter", base.ENTRY_POINT_GROUP),
             EntryPoint("broken", "no.such.module:Adapter", base.ENTRY_POINT_GROUP)]

    def eps(group: str) -> list[Any]:
        return [*installed, *extra] if group == base.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(base, "entry_points", eps)
    reg = base.registry()
    assert {"console", "telegram", "slack", "matrix"} <= set(reg) and "broken" not in reg
    s = load_settings(text="adapters: {matrix: {room: '!r'}}")
    assert s.adapter_configs["matrix"].room == "!r"  # type: ignore[attr-defined]
    [(path, msg)] = _problems("adapters: {nope: {}}")
    assert path == "adapters.nope" and msg.startswith("unknown adapter")


class MatrixConfig(base.AdapterConfig):
    room: str


class MatrixAdapter:
    config_model = MatrixConfig

    def __init__(self, name: str, config: MatrixConfig, context: base.AdapterContext):
        self.name = name
