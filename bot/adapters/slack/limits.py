"""Slack Block Kit limits and the "no live mention" rule, checked strictly. Shared by the
renderer's tests and the fake Slack Web API so both reject what Slack would."""

from __future__ import annotations

import re
from typing import Any

from bot.text.width import utf16_len

# The one copy of Slack's limits: the renderer keeps to them, this module's check and the fake
# Web API enforce them. Blocks per message; characters of a section's text and of a header.
MAX_BLOCKS, MAX_SECTION, MAX_HEADER = 50, 3000, 150
# Elements of a context block; buttons of an actions block.
MAX_CONTEXT_ELEMENTS, MAX_ACTIONS = 10, 25
# A button's label, action id and value.
MAX_BUTTON_TEXT, MAX_ACTION_ID, MAX_BUTTON_VALUE = 75, 255, 2000
# A message's text; the notification text a digest part carries beside its blocks.
MAX_TEXT, MAX_FALLBACK = 40000, 3000

# The only angle-bracket syntax allowed: a link to an http(s) URL, optionally labelled.
_LINK_RE = re.compile(r"<https?://[^|<>\s]+(?:\|[^<>]*)?>")
_AMP_RE = re.compile(r"&(?!(?:amp|lt|gt);)")


def live_mentions(text: str) -> list[str]:
    """Control sequences Slack would act on: <!channel>, <!here>, <@U…>, <#C…>, <!subteam^…>,
    or any other bracket that is not one of our links."""
    rest = _LINK_RE.sub("", text)
    found = re.findall(r"<[^>]*>?", rest)
    if ">" in rest and not found:
        found.append(">")
    return found


def _check_text(where: str, text: Any, limit: int, problems: list[str]) -> None:
    if not isinstance(text, str) or not text.strip():
        problems.append(f"{where}: empty text")
        return
    if utf16_len(text) > limit:
        problems.append(f"{where}: {utf16_len(text)} characters > {limit}")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        problems.append(f"{where}: lone surrogate")
    for m in live_mentions(text):
        problems.append(f"{where}: live control sequence {m!r}")
    if _AMP_RE.search(_LINK_RE.sub("", text)):
        problems.append(f"{where}: unescaped '&'")


def check_message(payload: dict[str, Any]) -> list[str]:
    """Problems with one chat.postMessage payload; empty when Slack would accept it."""
    problems: list[str] = []
    _check_text("text", payload.get("text"), MAX_TEXT, problems)
    blocks = payload.get("blocks") or []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks > {MAX_BLOCKS}")
    for i, b in enumerate(blocks):
        kind = b.get("type")
        where = f"blocks[{i}]({kind})"
        if kind == "header":
            if b["text"].get("type") != "plain_text":
                problems.append(f"{where}: header text must be plain_text")
            _check_text(where, b["text"].get("text"), MAX_HEADER, problems)
        elif kind == "section":
            _check_text(where, b["text"].get("text"), MAX_SECTION, problems)
        elif kind == "context":
            els = b.get("elements") or []
            if not 1 <= len(els) <= MAX_CONTEXT_ELEMENTS:
                problems.append(f"{where}: {len(els)} elements")
            for j, el in enumerate(els):
                _check_text(f"{where}.elements[{j}]", el.get("text"), MAX_SECTION, problems)
        elif kind == "actions":
            els = b.get("elements") or []
            if not 1 <= len(els) <= MAX_ACTIONS:
                problems.append(f"{where}: {len(els)} elements")
            ids = [el.get("action_id") for el in els]
            if len(set(ids)) != len(ids):
                problems.append(f"{where}: duplicate action_id")
            for j, el in enumerate(els):
                if not 1 <= len(str(el.get("action_id") or "")) <= MAX_ACTION_ID:
                    problems.append(f"{where}.elements[{j}]: bad action_id")
                if "value" in el and not 1 <= len(str(el["value"])) <= MAX_BUTTON_VALUE:
                    problems.append(f"{where}.elements[{j}]: value too long")
                _check_text(f"{where}.elements[{j}].text", el.get("text", {}).get("text"), MAX_BUTTON_TEXT,
                            problems)
        elif kind != "divider":
            problems.append(f"{where}: unexpected block type")
    return problems
