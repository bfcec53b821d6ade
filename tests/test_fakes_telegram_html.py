"""The Telegram HTML checker that the fake and renderers' tests rely on."""

from __future__ import annotations

import html

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fakes.common import utf16_len
from tests.fakes.telegram_html import (
    TelegramHTMLError,
    parse_telegram_html,
    parse_telegram_html_entities,
    visible_length,
)

SIMPLE_TAGS = ["b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "tg-spoiler",
               "blockquote"]


def test_entities_and_attributes() -> None:
    text = ('<b>bold <i>both</i></b> <a href="https://e.com/?a=1&amp;b=2">link</a> &lt;&gt;&amp;&quot; '
            '&#33;&#x1F600; <span class="tg-spoiler">s</span> <pre language="python">x</pre> '
            '<code class="language-py">c</code> <blockquote expandable>q</blockquote> '
            '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>')
    visible, entities = parse_telegram_html_entities(text)
    assert visible == 'bold both link <>&" !😀 s x c q 👍'
    link = next(e for e in entities if e.type == "text_link")
    assert link.attrs == {"href": "https://e.com/?a=1&b=2"}
    assert visible[link.offset:link.offset + link.length] == "link"
    bold = next(e for e in entities if e.type == "bold")
    assert (bold.offset, bold.length) == (0, 9)
    assert {e.type for e in entities} >= {"italic", "spoiler", "pre", "code", "blockquote", "custom_emoji"}


def test_offsets_are_utf16() -> None:
    visible, entities = parse_telegram_html_entities("😀😀<b>苹果</b>")
    assert visible == "😀😀苹果" and (entities[0].offset, entities[0].length) == (4, 2)


def test_unknown_entities_stay_literal_unless_strict() -> None:
    assert parse_telegram_html("AT&T &nbsp; &#0; &unknown;") == "AT&T &nbsp; &#0; &unknown;"
    with pytest.raises(TelegramHTMLError, match='Unescaped "&" at byte offset 2'):
        parse_telegram_html("AT&T", strict_amp=True)
    assert parse_telegram_html("&amp;", strict_amp=True) == "&"


@pytest.mark.parametrize(("text", "message"), [
    ("<br>", 'Unsupported start tag "br" at byte offset 0'),
    ("<br/>", 'Unsupported start tag "br" at byte offset 0'),
    ("<p>x</p>", 'Unsupported start tag "p" at byte offset 0'),
    ("苹果<script>", 'Unsupported start tag "script" at byte offset 6'),
    ("a <b", "Unclosed start tag at byte offset 2"),
    ("<b>x</b", "Unclosed end tag at byte offset 4"),
    ('<a href="x>y</a>', 'Unclosed quoted attribute value in the tag "a" at byte offset 0'),
    ("<b =1>x</b>", 'Empty attribute name in the tag "b" at byte offset 0'),
    ("<tg-emoji>x</tg-emoji>", 'Tag "tg-emoji" must have attribute "emoji-id" at byte offset 0'),
    ("<b><i>x</i>", "Can't find end tag corresponding to start tag \"b\""),
])
def test_errors(text: str, message: str) -> None:
    with pytest.raises(TelegramHTMLError) as info:
        parse_telegram_html(text)
    assert info.value.message == message
    assert info.value.description == f"Bad Request: can't parse entities: {message}"


def test_tags_are_case_insensitive_and_bare_gt_is_text() -> None:
    assert parse_telegram_html("<B>x</b> a > b") == "x a > b"


def test_visible_length_trims_and_counts_utf16() -> None:
    assert visible_length("  <b>😀</b>\n") == 2
    assert visible_length("<b>😀</b>", parse_mode=None) == utf16_len("<b>😀</b>")


@given(st.text())
def test_escaped_text_reads_back_as_itself(text: str) -> None:
    assert parse_telegram_html(html.escape(text, quote=False), strict_amp=True) == text
    assert parse_telegram_html(html.escape(text, quote=True)) == text


@st.composite
def markup(draw: st.DrawFn, depth: int = 0) -> tuple[str, str]:
    """(valid Telegram HTML, its visible text)."""
    parts = draw(st.lists(st.one_of(st.text(max_size=8).map(lambda t: ("text", t)),
                                    st.sampled_from(SIMPLE_TAGS).map(lambda t: ("tag", t))),
                          max_size=4))
    out, visible = [], []
    for kind, value in parts:
        if kind == "text":
            out.append(html.escape(value, quote=False))
            visible.append(value)
        elif depth < 3:
            inner_html, inner_text = draw(markup(depth + 1))
            out.append(f"<{value}>{inner_html}</{value}>")
            visible.append(inner_text)
    return "".join(out), "".join(visible)


@given(markup())
def test_valid_nested_markup_parses_to_its_text(pair: tuple[str, str]) -> None:
    source, visible = pair
    assert parse_telegram_html(source, strict_amp=True) == visible


@given(st.text(alphabet="<>/&;#abiux\"'= 苹😀", max_size=30))
def test_arbitrary_input_either_parses_or_raises_the_checkers_error(text: str) -> None:
    try:
        visible = parse_telegram_html(text)
    except TelegramHTMLError as exc:
        assert exc.description.startswith("Bad Request: can't parse entities: ")
    else:
        assert "<" not in visible or "&lt;" in text or "&#" in text
