"""The adapter protocol and the registry fed by the ``digestbot.adapters`` entry points.

An adapter owns one chat platform: its I/O and (beside it) its rendering. The core
hands it neutral values (``Digest``, ``Reply``) and receives neutral commands.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from bot.model import Digest, Reply

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "digestbot.adapters"
_BUILTIN = {
    "console": "bot.adapters.console.adapter:ConsoleAdapter",
    "telegram": "bot.adapters.telegram.adapter:TelegramAdapter",
    "slack": "bot.adapters.slack.adapter:SlackAdapter",
}


class AdapterConfig(BaseModel):
    """Base of every adapter's own config section; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass(slots=True)
class Incoming:
    """A command as it arrived from a chat, stripped of platform specifics."""

    adapter: str
    chat_id: str
    user_id: str
    command: str  # "search", "subscribe", ... (no slash, no bot suffix)
    args: str = ""
    chat_type: str = "private"  # private | group | supergroup | channel
    language_code: str | None = None
    is_admin: bool = True  # whether the user may change this chat's settings
    message_id: str | None = None  # for edits (paging buttons)
    callback: bool = False  # came from an inline button
    extra: dict[str, Any] = field(default_factory=dict)


CommandHandler = Callable[[Incoming], Awaitable[Reply]]


class SendError(Exception):
    """A send failed; ``kind`` tells delivery what to do about it.

    kinds: ``retry_after`` (obey ``retry_after`` seconds), ``transient`` (retry with
    backoff), ``blocked`` / ``kicked`` / ``deactivated`` / ``not_found`` (retire the
    subscription), ``migrated`` (move to ``new_chat_id``), ``markup`` (resend as plain
    text), ``fatal`` (dead-letter now).
    """

    def __init__(self, kind: str, message: str, *, retry_after: float | None = None,
                 new_chat_id: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after
        self.new_chat_id = new_chat_id


@runtime_checkable
class Adapter(Protocol):
    """What every chat platform implements. Adapters are constructed with
    ``(name, config, app)`` and must not touch the network before ``start()`` or ``send()``
    (``send`` works without ``start``: ``digestbot digest --send`` only sends).

    Optional extras the built-ins offer and the core uses when present:
    ``edit(chat_id, message_id, payload)`` (replace an earlier message; raises ``SendError``)
    and a static ``normalise_chat_id(chat_id) -> (chat_id, chat_type)`` that raises
    ``ValueError`` for an id the platform cannot have (``digestbot subscriptions add``)."""

    name: str
    config_model: ClassVar[type[AdapterConfig]]

    async def start(self, on_command: CommandHandler) -> None: ...

    async def stop(self) -> None: ...

    def render(self, value: Digest | Reply, *, plain: bool = False) -> list[dict[str, Any]]:
        """Turn a neutral value into the platform payloads to send, in order."""
        ...

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        """Send one rendered payload; return the platform's message id.

        Raises ``SendError`` with a classified ``kind`` on failure."""
        ...


AdapterFactory = Any  # a class with ``config_model`` and ``__init__(name, config, app)``


def registry() -> dict[str, AdapterFactory]:
    """Adapters by name: built-ins first, then installed entry points (which may override)."""
    from importlib import import_module

    found: dict[str, AdapterFactory] = {}
    targets = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        targets[ep.name] = ep.value
    for name, target in targets.items():
        module, _, attr = target.partition(":")
        try:
            found[name] = getattr(import_module(module), attr)
        except Exception as exc:  # a broken third-party plugin must not stop the bot
            log.warning("adapter %s (%s) cannot be loaded: %s", name, target, exc)
    return found


def create_adapter(name: str, config: AdapterConfig, app: App) -> Adapter:
    factory = registry()[name]
    return factory(name, config, app)
