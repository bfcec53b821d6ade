"""Untrusted values made safe to show: bounded in length, and on one line.

Front matter and feeds hand us values of any shape and size. Formatting one with ``str()``
or ``repr()`` costs time and memory in proportion to the whole value (a nested structure can
be huge), so reports and warnings use ``brief``, which stops once it has ``limit`` characters.
``printable`` escapes control characters, so a file name with a newline cannot forge a line in
a report or a log.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any

ELLIPSIS = "…"
_MAX_DEPTH = 8
_MAX_INT_BITS = 256  # str() of a big int is quadratic (and refused past 4300 digits)

# C0 and C1 controls, DEL, line and paragraph separators, and the bidirectional overrides
# that can make a line read differently from what it is.
_UNPRINTABLE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\x1b``, ``\\u2028``): one visible line."""
    if text.isprintable():
        return text  # the common case, at C speed
    return _UNPRINTABLE_RE.sub(_escape, text)


def _escape(m: re.Match[str]) -> str:
    ch = m.group(0)
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def brief(value: Any, limit: int = 80) -> str:
    """A repr-like, printable text of ``value`` of at most ``limit`` characters (plus an ellipsis).

    Never formats more of ``value`` than it shows: containers are walked item by item with a
    budget, strings are cut before they are quoted, recursion and depth are bounded.
    """
    out: list[str] = []
    budget = [max(1, limit)]
    _walk(value, out, budget, set(), 0)
    text = "".join(out)
    if budget[0] <= 0 or len(text) > limit:
        return printable(text[:limit]) + ELLIPSIS
    return printable(text)


def _put(out: list[str], budget: list[int], piece: str) -> bool:
    """Append what fits; False once the budget is spent."""
    if budget[0] <= 0:
        return False
    out.append(piece[: budget[0] + 1])  # one more than fits, so the caller sees it was cut
    budget[0] -= len(piece)
    return budget[0] > 0


def _walk(value: Any, out: list[str], budget: list[int], seen: set[int], depth: int) -> bool:
    if isinstance(value, str):
        return _put(out, budget, repr(value[: budget[0] + 1]))
    if isinstance(value, bytes | bytearray):
        return _put(out, budget, repr(bytes(value[: budget[0] + 1])))
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return _put(out, budget, repr(value))
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:
            return _put(out, budget, f"<a {value.bit_length()}-bit number>")
        return _put(out, budget, repr(value))
    if isinstance(value, datetime | date | time):
        return _put(out, budget, value.isoformat())
    if isinstance(value, dict | list | tuple | set | frozenset):
        if id(value) in seen or depth >= _MAX_DEPTH:
            return _put(out, budget, "…")
        seen.add(id(value))
        try:
            return _walk_container(value, out, budget, seen, depth)
        finally:
            seen.discard(id(value))
    # Anything else: its kind only (its own __repr__ could be anything).
    return _put(out, budget, f"<{type(value).__name__}>")


def _walk_container(value: Any, out: list[str], budget: list[int], seen: set[int], depth: int) -> bool:
    if isinstance(value, dict):
        open_, close = "{", "}"
    elif isinstance(value, list):
        open_, close = "[", "]"
    elif isinstance(value, tuple):
        open_, close = "(", ")"
    else:
        open_, close = "{", "}"
    if not _put(out, budget, open_):
        return False
    for i, item in enumerate(value.items() if isinstance(value, dict) else value):
        if i and not _put(out, budget, ", "):
            return False
        if isinstance(value, dict):
            key, val = item
            if not _walk(key, out, budget, seen, depth + 1) or not _put(out, budget, ": "):
                return False
            item = val
        if not _walk(item, out, budget, seen, depth + 1):
            return False
    return _put(out, budget, close)


def describe_error(exc: BaseException, limit: int = 300) -> str:
    """``KeyError: 8673``: an exception's kind and message, bounded and on one line.

    A database error names the driver's message, not the statement and its parameters
    (SQLAlchemy's ``orig``), which would repeat a whole batch of articles.
    """
    orig = getattr(exc, "orig", None)
    try:
        message = str(orig if isinstance(orig, BaseException) else exc)
    except Exception:  # a broken __str__ must not hide the error it describes
        message = ""
    message = printable(" ".join(message[: limit * 2].split()))
    if len(message) > limit:
        message = message[:limit] + ELLIPSIS
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
