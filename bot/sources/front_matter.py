"""Reading a front matter block safely: bounded YAML, and flat blocks that YAML refuses.

YAML aliases let a few hundred bytes stand for gigabytes (``b: [*a, *a, …]`` nested nine
deep). A crawler never writes them, so a block with an alias is refused before anything is
built; without aliases, what YAML builds is proportional to the block, and the block is
capped at ``MAX_CHARS``.

Crawlers also write titles unquoted (``title: Iconv, set the charset to RCE: Exploiting…``),
which YAML rightly refuses. When the block is flat ``key: value`` lines, the intent is plain,
so ``flat_block`` reads it line by line; anything nested or ambiguous is still refused.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# Far above any real front matter (a crawler's is well under 1 KB), far below a slow parse.
MAX_CHARS = 65_536

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FLAT_LINE_RE = re.compile(r"([A-Za-z_][\w-]*):(?:\s(.*))?")
_BLOCK_SCALAR_RE = re.compile(r"[|>][-+0-9]*")


class Refused(ValueError):
    """The block cannot be read; the message says why (and where, when it knows)."""


def load_yaml(block: str, line_offset: int = 0) -> Any:
    """``block`` through YAML's safe loader, refusing aliases. Raises yaml.YAMLError or Refused."""
    if "*" in block:  # no alias without a '*': the common case skips the event scan
        for event in yaml.parse(block, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1 + line_offset if event.start_mark else None
                where = f" at line {line}" if line else ""
                raise Refused(f"YAML alias (*{str(event.anchor)[:40]}) in front matter{where}: "
                              "aliases are not allowed")
    return yaml.load(block, Loader=_LOADER)


def flat_block(block: str) -> dict[str, Any] | None:
    """A block of flat ``key: value`` lines read line by line; None when it is not that.

    Each value is the rest of its line, stripped; matching quotes around it are removed (and
    their escapes read as YAML reads them); a whole ``[…]`` / ``{…}`` that YAML reads alone
    stays a list or mapping. Not flat: an indented line (nesting, continuations), a list item,
    a comment, a block scalar (``|``, ``>``), a quote or bracket left open at the end of the
    line (YAML would continue it on the next one), a key given twice.
    """
    out: dict[str, Any] = {}
    for line in block.split("\n"):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        m = _FLAT_LINE_RE.fullmatch(line)
        if m is None:
            return None
        key, value = m.group(1), (m.group(2) or "").strip()
        if key in out or _BLOCK_SCALAR_RE.fullmatch(value) or _left_open(value):
            return None
        out[key] = _value(value)
    return out


def _value(raw: str) -> Any:
    if not raw:
        return None
    first = raw[0]
    if first in "\"'" and len(raw) >= 2 and raw[-1] == first:
        try:
            parsed = yaml.load(raw, Loader=_LOADER)
        except yaml.YAMLError:
            parsed = None
        return parsed if isinstance(parsed, str) else raw[1:-1]
    if first in "[{" and raw[-1] == ("]" if first == "[" else "}") and "*" not in raw:
        try:
            parsed = yaml.load(raw, Loader=_LOADER)
        except yaml.YAMLError:
            return raw
        if isinstance(parsed, list | dict):
            return parsed
    return raw


def _left_open(value: str) -> bool:
    """A quote or bracket that does not close on this line: YAML would read on into the next."""
    if not value:
        return False
    first = value[0]
    if first in "'\"":
        i = 1
        while True:
            j = value.find(first, i)
            if j < 0:
                return True
            # An escaped quote does not close: '' in single quotes, \" in double quotes.
            if first == "'" and value[j + 1:j + 2] == "'":
                i = j + 2
            elif first == '"' and _escaped(value, j):
                i = j + 1
            else:
                return False
    if first in "[{":
        depth = 0
        for ch in value:
            if ch in "[{":
                depth += 1
            elif ch in "]}":
                depth -= 1
                if depth == 0:
                    return False
        return True
    return False


def _escaped(s: str, j: int) -> bool:
    n = 0
    while j - 1 - n >= 0 and s[j - 1 - n] == "\\":
        n += 1
    return n % 2 == 1
