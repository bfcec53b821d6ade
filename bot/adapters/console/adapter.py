"""The console adapter: prints digests and replies to the terminal. The embedded default."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from bot.adapters.base import AdapterConfig, CommandHandler
from bot.model import Digest, Reply

if TYPE_CHECKING:
    from bot.app import App


class ConsoleConfig(AdapterConfig):
    chat_id: str = "terminal"  # the one chat this adapter has
    locale: str | None = None  # default: digest.locale


class ConsoleAdapter:
    config_model = ConsoleConfig

    def __init__(self, name: str, config: ConsoleConfig, app: App):
        self.name = name
        self.config = config
        self.app = app

    async def start(self, on_command: CommandHandler) -> None:
        return None

    async def stop(self) -> None:
        return None

    def render(self, value: Digest | Reply, *, plain: bool = False) -> list[dict[str, Any]]:
        from bot.adapters.console.render import render

        return render(value)

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        sys.stdout.write(payload["text"].rstrip("\n") + "\n\n")
        sys.stdout.flush()
        return None
