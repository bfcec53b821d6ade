"""Slack adapter (slack-bolt). Stub: config only; the I/O lands with issue 5."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from bot.adapters.base import AdapterConfig


class SlackConfig(AdapterConfig):
    bot_token: SecretStr
    app_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    mode: Literal["socket", "http"] = "socket"
    port: int = 3000
    base_url: str = "https://slack.com/api/"
    command: str = "/digest"
    search_command: str | None = None


class SlackAdapter:
    config_model = SlackConfig
