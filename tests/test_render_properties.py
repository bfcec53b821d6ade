"""Property tests: whatever the article text, every payload is one the platform accepts and
nothing is lost between parts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.adapters.console.render import render as console_render
from bot.adapters.slack.limits import check_message as slack_check
from bot.adapters.slack.limits import live_mentions
from bot.adapters.slack.render import render_digest as slack_digest
from bot.adapters.slack.render import render_reply as slack_reply
from bot.adapters.telegram.render import render_digest as tg_digest
from bot.adapters.telegram.render import render_reply as tg_reply
from bot.model import Button, Digest, DigestEntry, Reply, ResultItem
from bot.text.width import utf16_len
from tests.fakes.slack import validate_blocks
from tests.fakes.telegram_html import parse_telegram_html, visible_length

SPECIALS = [
    "<b>",
    "</b>",
    "<a href='x'>",
    "</a>",
    "&amp;",
    "&",
    "<",
    ">",
    "&lt;",
    "&#x27;",
    "&#0;",
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U123ABC>",
    "<#C123|general>",
    "<!subteam^S1|team>",
    "<https://evil.example|click me>",
    "@here",
    "@channel",
    "**bold**",
    "![img](http://x/y.png)",
    "### ",
    "`code`",
    "*",
    "_",
    "~",
    "|",
    "😀",
    "👨‍👩‍👧",
    "𠀀",
    "🇨🇳",
    "\n",
    "\u200b",
    "\x00",
    "\x1b",
    "苹果",
    "阿里巴巴。",
    "Apple. ",
    "，",
]
MARK = re.compile(r"⟦(\d+)⟧")

_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="⟦⟧")
article_text = st.lists(st.one_of(st.text(_chars, max_size=10), st.sampled_from(SPECIALS)), max_size=15).map(
    "".join
)
long_text = st.one_of(article_text, st.tuples(article_text, st.integers(1, 200)).map(lambda t: t[0] * t[1]))
urls = st.one_of(
    st.none(),
    st.sampled_from(
        ["https://example.com/a?x=1&y=<2>", "http://a.b/c|d", "javascript:x", "https://e.com/" + "x" * 3000]
    ),
    article_text,
)


@st.composite
def digests(draw: st.DrawFn) -> Digest:
    n = draw(st.integers(0, 30))
    entries = []
    for i in range(n):
        entries.append(
            DigestEntry(
                story_id=i + 1,
                headline=f"⟦{i}⟧ " + draw(st.one_of(article_text, long_text)),
                summary=draw(long_text),
                outlets=draw(st.lists(article_text, max_size=4)),
                outlet_count=draw(st.integers(0, 50)),
                time=datetime(2025, 2, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 100000))),
                url=draw(urls),
                is_update=draw(st.booleans()),
            )
        )
    return Digest(
        locale=draw(st.sampled_from(["zh-CN", "en"])),
        timezone="Asia/Shanghai",
        generated_at=datetime(2025, 2, 14, tzinfo=UTC),
        entries=entries,
        heading=draw(article_text),
    )


def _marks(text: str) -> list[int]:
    return [int(m) for m in MARK.findall(text)]


PROPS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@PROPS
@given(digests())
def test_telegram_parts_valid_and_complete(d: Digest) -> None:
    parts = tg_digest(d)
    plain = tg_digest(d, plain=True)
    assert len(parts) == len(plain) >= 1
    seen: list[int] = []
    for p, q in zip(parts, plain, strict=True):
        visible = parse_telegram_html(p["text"], strict_amp=True)  # raises like Telegram would
        assert ">" not in re.sub(r"<[^<>]*>", "", p["text"])  # every '>' in text is escaped too
        assert visible.strip()
        assert visible_length(p["text"]) <= 4096 and utf16_len(visible) <= 4096
        assert p["parse_mode"] == "HTML" and p["link_preview_options"] == {"is_disabled": True}
        assert "parse_mode" not in q and "reply_markup" not in q
        assert q["text"].strip() and utf16_len(q["text"]) <= 4096
        assert _marks(visible) == _marks(q["text"])  # the plain twin holds the same entries
        seen.extend(_marks(visible))
    # Every entry's headline is in exactly one part, in order.
    assert seen == list(range(len(d.entries)))
    if len(parts) > 1:
        for i, p in enumerate(parts, 1):
            assert f"{i}/{len(parts)}" in parse_telegram_html(p["text"])


@PROPS
@given(digests())
def test_slack_messages_within_limits_and_no_live_mention(d: Digest) -> None:
    messages = slack_digest(d)
    seen: list[int] = []
    for m in messages:
        assert slack_check(m) == [], slack_check(m)
        assert validate_blocks(m["blocks"]) == []  # and what the fake Slack API enforces
        assert len(m["blocks"]) <= 50
        for b in m["blocks"]:
            if b["type"] == "section":
                seen.extend(_marks(b["text"]["text"]))
    assert seen == list(range(len(d.entries)))


@settings(PROPS, max_examples=25)
@given(digests())
def test_console_is_plain_text(d: Digest) -> None:
    out = console_render(d)
    assert len(out) == 1 and isinstance(out[0]["text"], str)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", out[0]["text"])
    assert _marks(out[0]["text"]) == list(range(len(d.entries)))


replies = st.builds(
    Reply,
    text=long_text,
    items=st.lists(
        st.builds(ResultItem, title=article_text, url=urls, detail=article_text, snippet=long_text),
        max_size=30,
    ),
    buttons=st.lists(
        st.builds(
            Button, label=article_text, action=st.sampled_from(["more", "page", "x" * 80]), value=article_text
        ),
        max_size=8,
    ),
)


@settings(PROPS, max_examples=50)
@given(replies)
def test_replies_valid_on_both_platforms(r: Reply) -> None:
    for p in tg_reply(r):
        parse_telegram_html(p["text"], strict_amp=True)
        assert visible_length(p["text"]) <= 4096 and parse_telegram_html(p["text"]).strip()
        for row in (p.get("reply_markup") or {}).get("inline_keyboard", []):
            for b in row:
                assert 1 <= len(b["callback_data"].encode()) <= 64 and b["text"].strip()
    for m in slack_reply(r):
        assert slack_check(m) == [], slack_check(m)
        assert validate_blocks(m["blocks"]) == []


def test_live_mention_checker_catches_raw_sequences() -> None:
    assert live_mentions("hi <!channel> and <@U1>") == ["<!channel>", "<@U1>"]
    assert live_mentions("<https://a.b/c|label> &lt;!here&gt;") == []
    assert slack_check(
        {"text": "x", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "<!here>"}}]}
    )
