"""Digest and reply -> readable plain text for the terminal (console adapter and previews)."""

from __future__ import annotations

import textwrap
from typing import Any

from bot.digest.format import clean_text, entry_meta
from bot.i18n import t
from bot.model import Digest, Reply
from bot.text.width import display_width

_INDENT = "   "




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
    heading = clean_text(digest.heading, oneline=True)
    out = [heading, "=" * min(60, max(8, display_width(heading)))] if heading else []
    if not digest.entries:
        out.append(t(digest.locale, "digest.empty"))
    for i, e in enumerate(digest.entries, 1):
        update = t(digest.locale, "digest.update_tag") if e.is_update else ""
        title = clean_text(e.headline, oneline=True) or t(digest.locale, "digest.untitled")
        out.append("")
        out.append(f"{i}. {update}{title}")
        if e.summary.strip():
            out.append(_indent(clean_text(e.summary)))
        out.append(_INDENT + clean_text(entry_meta(digest, e), oneline=True))
        if e.url:
            out.append(_INDENT + clean_text(e.url, oneline=True))
    return [{"text": "\n".join(out) + "\n"}]


def render_reply(reply: Reply) -> list[dict[str, Any]]:
    if reply.digest is not None:
        return render_digest(reply.digest)
    out = [clean_text(reply.text)] if reply.text.strip() else []
    for i, item in enumerate(reply.items, 1):
        out.append(f"{i}. {clean_text(item.title, oneline=True)}")
        if item.detail.strip():
            out.append(_INDENT + clean_text(item.detail, oneline=True))
        if item.snippet.strip():
            out.append(_indent(clean_text(item.snippet)))
        if item.url:
            out.append(_INDENT + clean_text(item.url, oneline=True))
    if reply.buttons:
        out.append("  ".join(f"[{clean_text(b.label, oneline=True)}]" for b in reply.buttons))
    return [{"text": "\n".join(out) + "\n"}]


def render(value: Digest | Reply, *, plain: bool = False) -> list[dict[str, Any]]:
    """The console adapter's renderer: one plain-text payload."""
    if isinstance(value, Digest):
        return render_digest(value)
    return render_reply(value)
