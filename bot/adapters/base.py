"""The adapter protocol, its context, and the registry fed by the ``digestbot.adapters`` entry points.

An adapter owns one chat platform: its I/O and (beside it) its rendering. The core hands it
neutral values (``Digest``, ``Reply``) and receives neutral commands (``Incoming``). It gets a
small ``AdapterContext``, not the app: the default locale and a way to report what happened
to a chat (``ChatMigrated``, ``BotRemoved``); the core turns those events into store changes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict

from bot.delivery.ratelimit import RateLimits
from bot.model import Digest, Incoming, Reply, SendError, SendErrorKind

__all__ = [
    "ENTRY_POINT_GROUP", "Adapter", "AdapterBase", "AdapterConfig", "AdapterContext", "AdapterEvent",
    "BotRemoved", "ChatMigrated", "CommandHandler", "Incoming", "RateLimits", "SendError", "SendErrorKind",
    "create_adapter", "registry",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "digestbot.adapters"


class AdapterConfig(BaseModel):
    """Base of every adapter's own config section; unknown keys are errors.

    ``rate_limits`` is what delivery keeps to for this adapter; a platform sets its own
    defaults by overriding the field, and a user may change them in the adapter's section."""

    model_config = ConfigDict(extra="forbid")

    rate_limits: RateLimits | None = None  # None: not limited on our side (the console)


CommandHandler = Callable[[Incoming], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class ChatMigrated:
    """The platform moved a chat to a new id (a Telegram group became a supergroup)."""

    adapter: str
    chat_id: str
    new_chat_id: str


@dataclass(frozen=True, slots=True)
class BotRemoved:
    """The bot can no longer post to a chat (kicked, left, blocked)."""

    adapter: str
    chat_id: str
    reason: str


AdapterEvent = ChatMigrated | BotRemoved


async def _ignore(event: AdapterEvent) -> None:
    log.debug("adapter event without a listener: %s", event)


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """What an adapter may know of the process that runs it."""

    default_locale: str = "zh-CN"
    report: Callable[[AdapterEvent], Awaitable[None]] = _ignore


@runtime_checkable
class Adapter(Protocol):
    """What every chat platform implements. Adapters are constructed with
    ``(name, config, context)`` and must not touch the network before ``start()`` or ``send()``
    (``send`` works without ``start``: ``digestbot digest --send`` only sends).

    Optional extras the built-ins offer and the core uses when present:
    ``edit(chat_id, message_id, payload)`` (replace an earlier message; raises ``SendError``),
    ``start_send_only()`` (set-up for sending without receiving), a static
    ``normalise_chat_id(chat_id) -> (chat_id, chat_type)`` that raises ``ValueError`` for an id
    the platform cannot have (``digestbot subscriptions add``), and a static
    ``render_preview(digest)`` for ``digestbot digest --preview --format NAME``."""

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


ConfigT = TypeVar("ConfigT", bound=AdapterConfig)


class AdapterBase(Generic[ConfigT]):
    """What the built-in adapters share (a third-party one may use it too): construction from
    ``(name, config, context)`` and rendering through a ``render(value, plain=)`` function."""

    config_model: ClassVar[type[AdapterConfig]]
    # The adapter's render.py entry point, as ``staticmethod(render)``.
    renderer: ClassVar[Callable[..., list[dict[str, Any]]]]

    def __init__(self, name: str, config: ConfigT, context: AdapterContext):
        self.name = name
        self.config: ConfigT = config
        self.context = context
        self._on_command: CommandHandler | None = None  # set by start()

    @classmethod
    def render_preview(cls, digest: Digest) -> list[dict[str, Any]]:
        return list(cls.renderer(digest))

    def render(self, value: Digest | Reply, *, plain: bool = False) -> list[dict[str, Any]]:
        """A ``Reply`` that carries a digest is sent as that digest would be."""
        if isinstance(value, Reply) and value.digest is not None:
            value = value.digest
        return list(type(self).renderer(value, plain=plain))


AdapterFactory = Any  # a class with ``config_model`` and ``__init__(name, config, context)``


def registry() -> dict[str, AdapterFactory]:
    """Adapters by name, from the installed ``digestbot.adapters`` entry points (the built-ins
    are declared there too, in pyproject.toml)."""
    found: dict[str, AdapterFactory] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # a broken third-party plugin must not stop the bot
            log.warning("adapter %s (%s) cannot be loaded: %s", ep.name, ep.value, exc)
    return found


def create_adapter(name: str, config: AdapterConfig, context: AdapterContext) -> Adapter:
    factory = registry()[name]
    adapter: Adapter = factory(name, config, context)
    return adapter
