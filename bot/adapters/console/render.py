"""Digest and reply -> readable plain text for the terminal (console adapter and previews)."""

from __future__ import annotations

import re
import textwrap
from typing import Any

from bot.digest.format import entry_meta
from bot.i18n import t
from bot.model import Digest, Reply
from bot.text.width import display_width

_BAD_CHARS_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
_INDENT = "   "


def _clean(text: str, *, oneline: bool = False) -> str:
    text = _BAD_CHARS_RE.sub("", text or "")
    return " ".join(text.split()) if oneline else text.strip()


def _indent(text: str) -> str:
    # Wrap only space-separated text; CJK lines are left to the terminal.
    lines = []
    for line in text.split("\n"):
        if display_width(line) > len(line) or len(line) <= 76:
            lines.append(_INDENT + line)
        else:
            lines.extend(textwrap.wrap(line, 76, initial_indent=_INDENT, subsequent_indent=_INDENT))
    return "\n".join(lines)


def render_digest(digest: Digest) -> list[dict[str, Any]]:
    heading = _clean(digest.heading, oneline=True)
    out = [heading, "=" * min(60, max(8, display_width(heading)))] if heading else []
    if not digest.entries:
        out.append(t(digest.locale, "digest.empty"))
    for i, e in enumerate(digest.entries, 1):
        update = t(digest.locale, "digest.update_tag") if e.is_update else ""
        title = _clean(e.headline, oneline=True) or t(digest.locale, "digest.untitled")
        out.append("")
        out.append(f"{i}. {update}{title}")
        if e.summary.strip():
            out.append(_indent(_clean(e.summary)))
        out.append(_INDENT + _clean(entry_meta(digest, e), oneline=True))
        if e.url:
            out.append(_INDENT + _clean(e.url, oneline=True))
    return [{"text": "\n".join(out) + "\n"}]


def render_reply(reply: Reply) -> list[dict[str, Any]]:
    if reply.digest is not None:
        return render_digest(reply.digest)
    out = [_clean(reply.text)] if reply.text.strip() else []
    for i, item in enumerate(reply.items, 1):
        out.append(f"{i}. {_clean(item.title, oneline=True)}")
        if item.detail.strip():
            out.append(_INDENT + _clean(item.detail, oneline=True))
        if item.snippet.strip():
            out.append(_indent(_clean(item.snippet)))
        if item.url:
            out.append(_INDENT + _clean(item.url, oneline=True))
    if reply.buttons:
        out.append("  ".join(f"[{_clean(b.label, oneline=True)}]" for b in reply.buttons))
    return [{"text": "\n".join(out) + "\n"}]


def render(value: Digest | Reply, *, plain: bool = False) -> list[dict[str, Any]]:
    """The console adapter's renderer: one plain-text payload."""
    if isinstance(value, Digest):
        return render_digest(value)
    return render_reply(value)
