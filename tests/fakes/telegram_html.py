"""Telegram's ``parse_mode=HTML`` parser, as strict as the Bot API's (modelled on TDLib's
``parse_html``), for the fake server and for renderers' tests.

    from tests.fakes.telegram_html import parse_telegram_html, TelegramHTMLError
    visible = parse_telegram_html(html)      # raises TelegramHTMLError when Telegram would reject

Rules kept:
- tags: b strong i em u ins s strike del a[href] code[class] pre[language] tg-spoiler
  span[class="tg-spoiler"] blockquote[expandable] tg-emoji[emoji-id]; anything else is
  ``Unsupported start tag "x" at byte offset N``. Tags must nest properly; every tag must close.
- entities: only ``&lt; &gt; &amp; &quot;`` and numeric ``&#NN;`` / ``&#xHH;`` are decoded. Like
  Telegram, an ``&`` that starts no known entity stays literal text; pass ``strict_amp=True`` to
  reject it instead (a renderer that escapes properly never produces one).
- a bare ``<`` is a start tag and so an error; a bare ``>`` is text.
Byte offsets in messages are UTF-8 offsets into the input, as Telegram reports them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tests.fakes.common import utf16_len

SUPPORTED_TAGS = frozenset({
    "a", "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre",
    "tg-spoiler", "span", "blockquote", "tg-emoji",
})
ENTITY_TYPE = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "code": "code", "pre": "pre",
    "tg-spoiler": "spoiler", "span": "spoiler", "a": "text_link", "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8})|([a-zA-Z]+));")
_SPACE = " \t\r\n\f\v"


class TelegramHTMLError(ValueError):
    """What Telegram answers as ``Bad Request: can't parse entities: <message>``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def description(self) -> str:
        return f"Bad Request: can't parse entities: {self.message}"


@dataclass(slots=True)
class Entity:
    type: str
    offset: int  # UTF-16 code units, as in the Bot API
    length: int
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Open:
    tag: str
    attrs: dict[str, str]
    start: int  # UTF-16 offset in the output


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _decode_entity(text: str, i: int) -> tuple[str, int] | None:
    """(decoded char, length consumed) for a recognised entity at ``text[i]``, else None."""
    m = _ENTITY_RE.match(text, i)
    if not m:
        return None
    dec, hexa, name = m.groups()
    if name is not None:
        ch = _NAMED.get(name)
        return (ch, m.end() - i) if ch else None
    code = int(dec) if dec is not None else int(hexa, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), m.end() - i


def _decode_value(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "&":
            got = _decode_entity(value, i)
            if got:
                out.append(got[0])
                i += got[1]
                continue
        out.append(value[i])
        i += 1
    return "".join(out)


def parse_telegram_html_entities(text: str, *, strict_amp: bool = False) -> tuple[str, list[Entity]]:
    """Visible text and the entities Telegram would extract; raises TelegramHTMLError."""
    out: list[str] = []
    out_len = 0  # UTF-16 length of the output so far
    stack: list[_Open] = []
    entities: list[Entity] = []
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c == "&":
            got = _decode_entity(text, i)
            if got:
                out.append(got[0])
                out_len += utf16_len(got[0])
                i += got[1]
                continue
            if strict_amp:
                raise TelegramHTMLError(f"Unescaped \"&\" at byte offset {_byte_offset(text, i)}")
            out.append("&")
            out_len += 1
            i += 1
            continue
        if c != "<":
            # Copy a run of plain text at once.
            j = i + 1
            while j < n and text[j] not in "<&":
                j += 1
            chunk = text[i:j]
            out.append(chunk)
            out_len += utf16_len(chunk)
            i = j
            continue
        begin = i
        if i + 1 < n and text[i + 1] == "/":
            # End tag: "</name>" with optional spaces before ">".
            j = i + 2
            while j < n and text[j] not in _SPACE and text[j] != ">":
                j += 1
            name = text[i + 2:j].lower()
            while j < n and text[j] in _SPACE:
                j += 1
            if j >= n or text[j] != ">":
                raise TelegramHTMLError(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
            if not stack:
                raise TelegramHTMLError(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
            top = stack[-1]
            if name != top.tag:
                raise TelegramHTMLError(
                    f'Unmatched end tag at byte offset {_byte_offset(text, begin)}, '
                    f'expected "</{top.tag}>", found "</{name}>"'
                )
            stack.pop()
            entities.append(Entity(ENTITY_TYPE[top.tag], top.start, out_len - top.start, top.attrs))
            i = j + 1
            continue
        # Start tag.
        j = i + 1
        while j < n and text[j] not in _SPACE and text[j] not in ">/":
            j += 1
        name = text[i + 1:j].lower()
        if name not in SUPPORTED_TAGS:
            raise TelegramHTMLError(
                f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, begin)}'
            )
        attrs: dict[str, str] = {}
        while True:
            while j < n and text[j] in _SPACE:
                j += 1
            if j >= n:
                raise TelegramHTMLError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
            if text[j] == ">":
                j += 1
                break
            k = j
            while k < n and (text[k].isascii() and (text[k].isalnum() or text[k] in "-_")):
                k += 1
            if k == j:
                raise TelegramHTMLError(
                    f'Empty attribute name in the tag "{name}" at byte offset {_byte_offset(text, begin)}'
                )
            attr = text[j:k].lower()
            j = k
            while j < n and text[j] in _SPACE:
                j += 1
            value = ""
            if j < n and text[j] == "=":
                j += 1
                while j < n and text[j] in _SPACE:
                    j += 1
                if j >= n:
                    raise TelegramHTMLError(
                        f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                    )
                if text[j] in "\"'":
                    quote = text[j]
                    end = text.find(quote, j + 1)
                    if end < 0:
                        raise TelegramHTMLError(
                            f'Unclosed quoted attribute value in the tag "{name}" at byte offset '
                            f"{_byte_offset(text, begin)}"
                        )
                    value = _decode_value(text[j + 1:end])
                    j = end + 1
                else:
                    k = j
                    while k < n and text[k] not in _SPACE and text[k] != ">":
                        k += 1
                    value = _decode_value(text[j:k])
                    j = k
            attrs[attr] = value
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise TelegramHTMLError(
                f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(text, begin)}'
            )
        if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
            raise TelegramHTMLError(
                f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {_byte_offset(text, begin)}'
            )
        kept = {k: v for k, v in attrs.items() if (name, k) in _KEPT_ATTRS}
        stack.append(_Open(name, kept, out_len))
        i = j
    if stack:
        raise TelegramHTMLError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    entities.sort(key=lambda e: (e.offset, -e.length))
    return "".join(out), entities


_KEPT_ATTRS = {("a", "href"), ("code", "class"), ("pre", "language"), ("pre", "class"),
               ("blockquote", "expandable"), ("tg-emoji", "emoji-id")}


def parse_telegram_html(text: str, *, strict_amp: bool = False) -> str:
    """The visible text of a Telegram HTML message; raises TelegramHTMLError if Telegram would
    answer ``400 can't parse entities``."""
    return parse_telegram_html_entities(text, strict_amp=strict_amp)[0]


def visible_length(text: str, parse_mode: str | None = "HTML") -> int:
    """The length Telegram checks against 4096: UTF-16 units of the trimmed visible text."""
    visible = parse_telegram_html(text) if parse_mode and parse_mode.upper() == "HTML" else text
    return utf16_len(visible.strip())
