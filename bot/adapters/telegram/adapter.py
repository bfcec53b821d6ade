"""Telegram adapter (python-telegram-bot). Stub: config only; the I/O lands with issue 5."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from bot.adapters.base import AdapterConfig


class TelegramConfig(AdapterConfig):
    token: SecretStr
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    webhook_secret: SecretStr | None = None


class TelegramAdapter:
    config_model = TelegramConfig
