"""Digest and reply -> Telegram sendMessage payloads (HTML parse mode), within Telegram's limits.

Every piece of article text is escaped; markup is only ever built here. A digest longer
than one message is split between entries and its parts are numbered; an entry that alone
exceeds the limit is shortened (its plain text, before escaping, so no tag or entity is cut).
``plain=True`` gives the same parts as plain text, for when Telegram rejects the markup.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
from typing import Any

from bot.digest.format import clean_text, entry_meta, link_url, part_label
from bot.i18n import t
from bot.model import Button, Digest, DigestEntry, Reply, ResultItem
from bot.text.summary import shorten
from bot.text.width import utf16_len

log = logging.getLogger(__name__)

MAX_TEXT = 4096  # UTF-16 code units after entity parsing
MAX_CALLBACK_BYTES = 64
_TAGS_RE = re.compile(r"<[^>]+>")
_MAX_HEADING = 256
_SEP = "\n\n"
NO_PREVIEW = {"is_disabled": True}




def esc(text: str) -> str:
    return html.escape(text, quote=False)


def _href(url: str | None) -> str | None:
    url = link_url(url)
    return html.escape(url, quote=True) if url else None


class _Block:
    """One unit that is never split: its HTML and its plain-text twin."""

    __slots__ = ("cost", "html", "plain")

    def __init__(self, html_text: str, plain_text: str):
        self.html, self.plain = html_text, plain_text
        # Both variants must fit, so the parts are the same in both. Our own HTML has no '<'
        # outside tags, so removing tags and unescaping gives exactly what Telegram counts.
        self.cost = max(utf16_len(html.unescape(_TAGS_RE.sub("", html_text))), utf16_len(plain_text))


def _entry_block(n: int, headline: str, summary: str, meta: str, url: str | None, update: str) -> _Block:
    href = _href(url)
    title_html = f'<a href="{href}">{esc(headline)}</a>' if href else esc(headline)
    prefix = update
    h = [f"{n}. <b>{esc(prefix)}{title_html}</b>"]
    p = [f"{n}. {prefix}{headline}"]
    if summary:
        h.append(esc(summary))
        p.append(summary)
    if meta:
        h.append(f"<i>{esc(meta)}</i>")
        p.append(meta)
    if href:
        p.append(html.unescape(href))
    return _Block("\n".join(h), "\n".join(p))


def _fit_block(make: Callable[[str, str], _Block], headline: str, summary: str, budget: int) -> _Block:
    """Shorten summary, then headline, until the block fits ``budget``."""
    block = make(headline, summary)
    if block.cost <= budget:
        return block
    room = budget - make(headline, "").cost
    if room > 40:
        return make(headline, shorten(summary, room - 1, measure=utf16_len))
    head_room = max(16, budget - make("", "").cost - 1)
    headline = shorten(headline, min(head_room, 1024), measure=utf16_len) or headline[:16]
    room = budget - make(headline, "").cost - 1
    return make(headline, shorten(summary, room, measure=utf16_len) if room > 40 else "")


def _header(text: str, part: str) -> _Block:
    if not text:
        part = part.strip()
        return _Block(esc(part), part)
    return _Block(f"<b>{esc(text)}</b>{esc(part)}", f"{text}{part}")


def _pack(header_text: str, locale: str, blocks: list[_Block], limit: int) -> list[list[_Block]]:
    worst = _header(header_text, part_label(locale, 99, 99)).cost + len(_SEP)
    parts: list[list[_Block]] = [[]]
    used = worst
    for b in blocks:
        add = b.cost + (len(_SEP) if parts[-1] else 0)
        if parts[-1] and used + add > limit:
            parts.append([])
            used = worst
            add = b.cost
        parts[-1].append(b)
        used += add
    return parts


def _payloads(header_text: str, locale: str, groups: list[list[_Block]], plain: bool,
              markup: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    total = len(groups)
    for i, group in enumerate(groups, 1):
        head = _header(header_text, part_label(locale, i, total))
        blocks = ([head] if (header_text or total > 1) else []) + group
        if plain:
            payload: dict[str, Any] = {"text": _SEP.join(b.plain for b in blocks if b.plain),
                                       "link_preview_options": dict(NO_PREVIEW)}
        else:
            payload = {"text": _SEP.join(b.html for b in blocks if b.html), "parse_mode": "HTML",
                       "link_preview_options": dict(NO_PREVIEW)}
            if markup and i == total:
                payload["reply_markup"] = markup
        out.append(payload)
    return out


def render_digest(digest: Digest, *, plain: bool = False, limit: int = MAX_TEXT) -> list[dict[str, Any]]:
    locale = digest.locale
    head = shorten(clean_text(digest.heading, oneline=True), _MAX_HEADING, measure=utf16_len)
    if not digest.entries:
        empty = _Block(esc(t(locale, "digest.empty")), t(locale, "digest.empty"))
        return _payloads(head, locale, [[empty]], plain)
    budget = limit - _header(head, part_label(locale, 99, 99)).cost - len(_SEP)
    blocks = [_digest_entry(digest, i, e, budget) for i, e in enumerate(digest.entries, 1)]
    return _payloads(head, locale, _pack(head, locale, blocks, limit), plain)


def _digest_entry(digest: Digest, n: int, e: DigestEntry, budget: int) -> _Block:
    meta = shorten(clean_text(entry_meta(digest, e), oneline=True), 512, measure=utf16_len)
    update = t(digest.locale, "digest.update_tag") if e.is_update else ""
    headline = clean_text(e.headline, oneline=True) or t(digest.locale, "digest.untitled")

    def make(h: str, s: str) -> _Block:
        return _entry_block(n, h, s, meta, e.url, update)

    return _fit_block(make, headline, clean_text(e.summary), budget)


def _item_block(n: int, item: ResultItem, budget: int) -> _Block:
    detail = shorten(clean_text(item.detail, oneline=True), 512, measure=utf16_len)

    def make(h: str, s: str) -> _Block:
        href = _href(item.url)
        title_html = f'<a href="{href}">{esc(h)}</a>' if href else f"<b>{esc(h)}</b>"
        hp, pp = [f"{n}. {title_html}"], [f"{n}. {h}"]
        if detail:
            hp.append(f"<i>{esc(detail)}</i>")
            pp.append(detail)
        if s:
            hp.append(esc(s))
            pp.append(s)
        if href:
            pp.append(html.unescape(href))
        return _Block("\n".join(hp), "\n".join(pp))

    return _fit_block(make, clean_text(item.title, oneline=True) or "—", clean_text(item.snippet), budget)


def callback_data(button: Button) -> str:
    """'action:value' within Telegram's 64 bytes; an over-long value is cut at a character boundary."""
    data = f"{button.action}:{button.value}" if button.value else button.action
    raw = data.encode("utf-8")
    if len(raw) <= MAX_CALLBACK_BYTES:
        return data
    log.warning("callback data over %d bytes cut: %r", MAX_CALLBACK_BYTES, data)
    return raw[:MAX_CALLBACK_BYTES].decode("utf-8", errors="ignore")


def keyboard(buttons: list[Button], per_row: int = 3) -> dict[str, Any] | None:
    if not buttons:
        return None
    keys = [{"text": shorten(clean_text(b.label, oneline=True), 64, measure=utf16_len) or b.action,
             "callback_data": callback_data(b)} for b in buttons]
    return {"inline_keyboard": [keys[i : i + per_row] for i in range(0, len(keys), per_row)]}


def render_reply(reply: Reply, *, plain: bool = False, limit: int = MAX_TEXT) -> list[dict[str, Any]]:
    if reply.digest is not None:
        # /digest answers with the digest itself; its buttons ride on the last part.
        parts = render_digest(reply.digest, plain=plain, limit=limit)
        markup = keyboard(reply.buttons)
        if markup and not plain:
            parts[-1]["reply_markup"] = markup
        return parts
    text = clean_text(reply.text)
    budget = limit - 16
    blocks: list[_Block] = []
    if text:
        blocks.append(_fit_block(lambda h, s: _Block(esc(s), s), "", text, budget))
    blocks.extend(_item_block(i, item, budget) for i, item in enumerate(reply.items, 1))
    if not blocks:
        blocks.append(_Block("—", "—"))
    groups = _pack("", "en", blocks, limit)
    return _payloads("", "en", groups, plain, markup=None if plain else keyboard(reply.buttons))


def render(value: Digest | Reply, *, plain: bool = False) -> list[dict[str, Any]]:
    if isinstance(value, Digest):
        return render_digest(value, plain=plain)
    return render_reply(value, plain=plain)
