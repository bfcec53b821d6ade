"""Logging set-up for the CLI and the service: one redacting filter on the root handlers.

The filter sits on the handlers, not on loggers, so it sees every record that is written,
whichever logger (ours, httpx, telegram, slack, aiohttp, SQLAlchemy) made it. It masks
secrets (bot.text.redact) in the message, the traceback and the stack, and escapes control
characters in the message's arguments, so a file name cannot forge a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.text.safe import printable

Redact = Callable[[str], str]


class RedactingFilter(logging.Filter):
    def __init__(self, redact: Redact):
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if isinstance(record.args, tuple) and record.args:
                record.args = tuple(printable(a) if isinstance(a, str) else a for a in record.args)
            message = record.getMessage()
        except Exception:
            return True  # a broken format string: logging reports that itself
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install_redaction(redact: Redact) -> RedactingFilter:
    """Put one redacting filter on every root handler (replacing an earlier one)."""
    new = RedactingFilter(redact)
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(new)
    return new
