"""Golden files for the three renderers, both locales, from a fixed digest.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/test_render_golden.py``
and review the diff.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.console.render import render as console_render
from bot.adapters.slack.limits import check_message as slack_check
from bot.adapters.slack.render import render as slack_render
from bot.adapters.telegram.render import render as telegram_render
from bot.i18n.format import heading, outlet_name, zone
from bot.model import Button, Digest, DigestEntry, Reply, ResultItem
from tests.fakes.slack import validate_blocks
from tests.fakes.telegram_html import parse_telegram_html, visible_length

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
GENERATED = datetime(2025, 2, 14, 0, 0, tzinfo=UTC)


def fixed_digest(locale: str) -> Digest:
    tz = "Asia/Shanghai"
    o = [outlet_name(locale, x) for x in ("iyiou", "qq")]
    entries = [
        DigestEntry(
            story_id=1,
            headline="苹果携手阿里巴巴，为国行iPhone带来人工智能功能",
            summary="快讯3月10日消息，综合多方消息，苹果公司与阿里巴巴集团宣布合作，"
            "两家公司将为国行iPhone用户开发人工智能功能。",
            outlets=[o[1], o[0], "36氪"],
            outlet_count=6,
            time=datetime(2025, 2, 13, 10, 26, tzinfo=UTC),
            url="https://news.example.com/analysis/2025021201?from=a&to=b",
        ),
        DigestEntry(
            story_id=2,
            headline="Apple fixes <b>zero-day</b> & warns <!channel> users",
            summary='Apple released emergency updates for a flaw "exploited in an extremely '
            'sophisticated attack" — update now.',
            outlets=["BleepingComputer", "The Record"],
            outlet_count=2,
            time=datetime(2025, 2, 11, 2, 0, tzinfo=UTC),
            url="https://example.com/apple?q=1&r=<2>",
        ),
        DigestEntry(
            story_id=3,
            headline="蔡崇信透露阿里与苹果合作 🍎",
            summary="",
            outlets=[o[1]],
            outlet_count=1,
            time=datetime(2025, 2, 13, 18, 26, tzinfo=UTC),
            url=None,
            is_update=True,
        ),
    ]
    return Digest(
        locale=locale,
        timezone=tz,
        generated_at=GENERATED,
        entries=entries,
        heading=heading(locale, GENERATED, zone(tz)),
        subscription_id=7,
    )


def fixed_reply() -> Reply:
    return Reply(
        text="找到 2 条结果 <苹果>",
        items=[
            ResultItem(
                title="苹果携手阿里巴巴",
                url="https://www.iyiou.com/a?x=1&y=2",
                detail="亿欧、腾讯新闻 · 2月12日",
                snippet="苹果公司已与阿里巴巴集团达成合作",
            ),
            ResultItem(title="<@U123> ping", detail="x"),
        ],
        buttons=[Button("下一页 ›", "more", "苹果:5"), Button("Close", "close")],
    )


RENDERERS: dict[str, Any] = {
    "telegram": lambda v: telegram_render(v),
    "telegram_plain": lambda v: telegram_render(v, plain=True),
    "slack": slack_render,
    "text": console_render,
}


def _compare(name: str, payloads: list[dict[str, Any]]) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(payloads, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"{path} is missing; run with UPDATE_GOLDEN=1 to create it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert text == path.read_text(encoding="utf-8"), f"{path} differs; UPDATE_GOLDEN=1 to accept"


@pytest.mark.parametrize("fmt", list(RENDERERS))
@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_digest_golden(fmt: str, locale: str) -> None:
    payloads = RENDERERS[fmt](fixed_digest(locale))
    _compare(f"digest_{fmt}.{locale}", payloads)


@pytest.mark.parametrize("fmt", list(RENDERERS))
def test_reply_golden(fmt: str) -> None:
    _compare(f"reply_{fmt}", RENDERERS[fmt](fixed_reply()))


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_golden_payloads_are_valid(locale: str) -> None:
    d = fixed_digest(locale)
    for p in telegram_render(d):
        parse_telegram_html(p["text"], strict_amp=True)
        assert visible_length(p["text"]) <= 4096
        assert p["link_preview_options"] == {"is_disabled": True}
    for p in slack_render(d):
        assert slack_check(p) == [] and validate_blocks(p["blocks"]) == []
    text = console_render(d)[0]["text"]
    assert "<!channel>" in text  # the terminal shows titles as written
    assert ("【更新】" if locale == "zh-CN" else "[Update]") in text


def test_reply_markup() -> None:
    tg = telegram_render(fixed_reply())[-1]
    assert tg["reply_markup"] == {
        "inline_keyboard": [
            [
                {"text": "下一页 ›", "callback_data": "more:苹果:5"},
                {"text": "Close", "callback_data": "close"},
            ]
        ]
    }
    sl = slack_render(fixed_reply())[-1]["blocks"][-1]
    assert sl["type"] == "actions"
    assert [(e["action_id"], e.get("value")) for e in sl["elements"]] == [("more", "苹果:5"), ("close", None)]
    assert validate_blocks([sl]) == []
    assert "reply_markup" not in telegram_render(fixed_reply(), plain=True)[-1]


def test_reply_with_digest_renders_the_digest() -> None:
    r = Reply(text="", digest=fixed_digest("en"), buttons=[Button("More", "more", "1")])
    tg = telegram_render(r)
    assert tg[0]["text"] == telegram_render(fixed_digest("en"))[0]["text"]
    assert tg[-1]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "more:1"
    assert slack_render(r)[-1]["blocks"][-1]["type"] == "actions"
    assert console_render(r) == console_render(fixed_digest("en"))
