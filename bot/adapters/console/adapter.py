"""The console adapter: prints digests and replies to the terminal. The embedded default.

When stdin is a terminal (or ``interactive: true``), lines typed there are commands
(``/search 苹果``, ``/help``) answered by the same handlers as the chat platforms.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

from bot.adapters.base import AdapterBase, AdapterConfig, AdapterContext, CommandHandler
from bot.adapters.console.render import render
from bot.model import Incoming

log = logging.getLogger(__name__)


class ConsoleConfig(AdapterConfig):
    chat_id: str = "terminal"  # the one chat this adapter has
    locale: str | None = None  # default: digest.locale
    interactive: bool | None = None  # read commands from stdin; default: when stdin is a terminal


class ConsoleAdapter(AdapterBase[ConsoleConfig]):
    config_model = ConsoleConfig
    renderer = staticmethod(render)

    def __init__(self, name: str, config: ConsoleConfig, context: AdapterContext):
        super().__init__(name, config, context)
        self._fd: int | None = None
        self._buf = b""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def start(self, on_command: CommandHandler) -> None:
        self._on_command = on_command
        interactive = self.config.interactive
        try:
            fd = sys.stdin.fileno()
        except (AttributeError, ValueError, OSError):
            return  # no stdin at all (e.g. a service manager)
        if interactive is None:
            interactive = os.isatty(fd)
        if not interactive:
            return
        try:
            asyncio.get_running_loop().add_reader(fd, self._readable)
        except (NotImplementedError, PermissionError, OSError, ValueError) as exc:  # e.g. a regular file
            log.warning("console: cannot read commands from stdin: %s", exc)
            return
        self._fd = fd
        task = asyncio.ensure_future(self._consume())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info("console: type /help for commands")

    async def stop(self) -> None:
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
            self._fd = None
        for task in list(self._tasks):
            task.cancel()

    def _readable(self) -> None:
        assert self._fd is not None
        try:
            chunk = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            chunk = b""
            log.warning("console: stdin failed: %s", exc)
        if not chunk:  # end of input: stop listening, keep printing digests
            asyncio.get_running_loop().remove_reader(self._fd)
            self._fd = None
            chunk, self._buf = self._buf + b"\n", b""
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", errors="replace").strip()
            if line:
                self._queue.put_nowait(line)

    async def _consume(self) -> None:
        # One at a time, in the order typed: "/subscribe" then "/settings …" must not race.
        while True:
            line = await self._queue.get()
            await self._command(line)

    async def _command(self, line: str) -> None:
        assert self._on_command is not None
        name, _, args = line.lstrip("/").partition(" ")
        incoming = Incoming(adapter=self.name, chat_id=self.config.chat_id, user_id="terminal",
                            command=name.split("@", 1)[0], args=args.strip(), chat_type="private",
                            language_code=self.config.locale)
        try:
            reply = await self._on_command(incoming)
            if not reply.text and not reply.items and reply.digest is None:
                return  # nothing to say (e.g. a repeated rate-limit refusal)
            for payload in self.render(reply):
                await self.send(self.config.chat_id, payload)
        except Exception:  # a bad line must not end the service
            log.exception("console command %r failed", line)

    async def send(self, chat_id: str, payload: dict[str, Any]) -> str | None:
        sys.stdout.write(payload["text"].rstrip("\n") + "\n\n")
        sys.stdout.flush()
        return None
