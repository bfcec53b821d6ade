"""Digest and reply -> Slack chat.postMessage payloads: Block Kit plus a plain fallback ``text``.

``&``, ``<`` and ``>`` are escaped in every piece of article text, so ``<!channel>``,
``<!here>``, ``<@U…>`` or ``<#C…>`` in a title notify nobody; ``<url|label>`` links are
only built here. Block Kit limits are kept: 50 blocks per message (more entries go to
further messages, numbered), 3000 characters per section, 150 per header.
"""

from __future__ import annotations

import re
from typing import Any

from bot.adapters.slack.limits import (
    MAX_ACTION_ID,
    MAX_ACTIONS,
    MAX_BLOCKS,
    MAX_BUTTON_TEXT,
    MAX_BUTTON_VALUE,
    MAX_FALLBACK,
    MAX_HEADER,
    MAX_SECTION,
)
from bot.digest.format import clean_text, entry_meta, link_url, part_label
from bot.i18n import t
from bot.model import Button, Digest, DigestEntry, Reply, ResultItem
from bot.text.summary import shorten
from bot.text.width import utf16_len

# Bare @here/@channel/@everyone only notify with link_names, but a word joiner makes sure.
_AT_RE = re.compile(r"@(?=(here|channel|everyone)\b)", re.I)


def esc(text: str) -> str:
    """Slack's three escapes, and nothing else (mrkdwn shows other entities literally)."""
    return _AT_RE.sub("@\u2060", text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))




def _esc_len(text: str) -> int:
    return utf16_len(esc(text))


def _fit(text: str, limit: int) -> str:
    """``text`` shortened (before escaping, so no escape is cut) until its escaped form fits."""
    return esc(shorten(text, limit, measure=_esc_len))


def _url(url: str | None) -> str | None:
    """A URL safe inside <url|label>: no character that ends the link, & escaped."""
    url = link_url(url)
    return url.replace("&", "&amp;") if url else None


def _link(url: str | None, label_raw: str, room: int) -> str:
    href = _url(url)
    if not href:
        return _fit(label_raw, room)
    return f"<{href}|{_fit(label_raw, max(16, room - len(href) - 3))}>"


def _header_block(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": _fit(text, MAX_HEADER), "emoji": True}}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(text)]}


def _title_and_body(n: int, url: str | None, title: str, body: str, prefix: str = "") -> str:
    """'*1. <url|title>*' then the body, the whole within one section's limit."""
    head = f"*{n}. {esc(prefix)}{_link(url, title, 600)}*"
    if not body:
        return head
    room = MAX_SECTION - utf16_len(head) - 1
    return f"{head}\n{_fit(body, room)}" if room > 20 else head


def _entry_blocks(digest: Digest, n: int, e: DigestEntry) -> list[dict[str, Any]]:
    title = clean_text(e.headline, oneline=True) or t(digest.locale, "digest.untitled")
    prefix = t(digest.locale, "digest.update_tag") if e.is_update else ""
    return [_section(_title_and_body(n, e.url, title, clean_text(e.summary), prefix)),
            _context(_fit(clean_text(entry_meta(digest, e), oneline=True), 600))]


def _fallback(lines: list[str]) -> str:
    text = "\n".join(x for x in lines if x)
    return _fit(text, MAX_FALLBACK) or "—"


def _split(units: list[list[dict[str, Any]]], room: int) -> list[list[list[dict[str, Any]]]]:
    """Group units (lists of blocks that belong together) so each group has at most ``room`` blocks."""
    groups: list[list[list[dict[str, Any]]]] = [[]]
    used = 0
    for u in units:
        if groups[-1] and used + len(u) > room:
            groups.append([])
            used = 0
        groups[-1].append(u)
        used += len(u)
    return groups


def render_digest(digest: Digest, *, plain: bool = False) -> list[dict[str, Any]]:
    locale = digest.locale
    heading = clean_text(digest.heading, oneline=True)
    if not digest.entries:
        empty = t(locale, "digest.empty")
        blocks = [_header_block(heading), _section(esc(empty))] if heading else [_section(esc(empty))]
        return [{"text": _fallback([heading, empty]), "blocks": blocks}]
    units = [_entry_blocks(digest, i, e) for i, e in enumerate(digest.entries, 1)]
    titles = [f"{i}. {clean_text(e.headline, oneline=True)}" for i, e in enumerate(digest.entries, 1)]
    groups = _split(units, MAX_BLOCKS - 1)
    out = []
    start = 0
    for i, group in enumerate(groups, 1):
        label = part_label(locale, i, len(groups))
        head = f"{heading}{label}" if heading else label.strip()
        blocks = [_header_block(head)] if head.strip() else []
        for u in group:
            blocks.extend(u)
        out.append({"text": _fallback([head, *titles[start : start + len(group)]]), "blocks": blocks})
        start += len(group)
    return out


def _item_blocks(n: int, item: ResultItem) -> list[dict[str, Any]]:
    blocks = [_section(_title_and_body(n, item.url, clean_text(item.title, oneline=True) or "—",
                                      clean_text(item.snippet)))]
    detail = clean_text(item.detail, oneline=True)
    if detail:
        blocks.append(_context(_fit(detail, 600)))
    return blocks


def actions_block(buttons: list[Button]) -> dict[str, Any]:
    """Buttons: action_id = action (made unique with '#n' when two share one), value = value."""
    seen: dict[str, int] = {}
    elements = []
    for b in buttons[:MAX_ACTIONS]:
        action = b.action[:MAX_ACTION_ID - 4]
        seen[action] = seen.get(action, 0) + 1
        action_id = action if seen[action] == 1 else f"{action}#{seen[action]}"
        label = _fit(clean_text(b.label, oneline=True) or action, MAX_BUTTON_TEXT)
        el: dict[str, Any] = {"type": "button", "action_id": action_id,
                              "text": {"type": "plain_text", "emoji": True, "text": label}}
        if b.value:  # Slack refuses an empty value; no value is fine
            el["value"] = b.value[:MAX_BUTTON_VALUE]
        elements.append(el)
    return {"type": "actions", "elements": elements}


def render_reply(reply: Reply, *, plain: bool = False) -> list[dict[str, Any]]:
    if reply.digest is not None:
        parts = render_digest(reply.digest)
        if reply.buttons:
            if len(parts[-1]["blocks"]) >= MAX_BLOCKS:
                parts.append({"text": "…", "blocks": []})
            parts[-1]["blocks"].append(actions_block(reply.buttons))
        return parts
    text = clean_text(reply.text)
    units: list[list[dict[str, Any]]] = []
    if text:
        # A long text becomes several sections of at most 3000 characters each.
        rest = text
        while rest and len(units) < 40:
            part = shorten(rest, MAX_SECTION, measure=_esc_len, ellipsis="")
            if not part:
                part = rest[: MAX_SECTION // 6]
            units.append([_section(esc(part))])
            rest = rest[len(part) :].lstrip()
    units.extend(_item_blocks(i, item) for i, item in enumerate(reply.items, 1))
    actions = [actions_block(reply.buttons)] if reply.buttons else []
    groups = _split(units, MAX_BLOCKS - len(actions)) if units else [[]]
    out = []
    for i, group in enumerate(groups, 1):
        blocks = [b for u in group for b in u]
        if i == len(groups):
            blocks.extend(actions)
        lines = [text] if i == 1 else []
        lines += [clean_text(it.title, oneline=True) for it in reply.items] if i == 1 else []
        out.append({"text": _fallback(lines) if lines else "…", "blocks": blocks})
    return out


def render(value: Digest | Reply, *, plain: bool = False) -> list[dict[str, Any]]:
    if isinstance(value, Digest):
        return render_digest(value, plain=plain)
    return render_reply(value, plain=plain)
