"""Shared set-up for the adapter and command tests: an App on the test database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.app import App
from bot.config import load_settings
from bot.search import SearchHit, SearchResults


def settings_yaml(db_url: str, adapters: str = "  console: {}", extra: str = "") -> str:
    return f'database: {{url: "{db_url}"}}\ntimezone: Asia/Shanghai\nadapters:\n{adapters}\n{extra}'


async def open_app(db_url: str, adapters: str = "  console: {}", extra: str = "") -> App:
    return await App.open(load_settings(text=settings_yaml(db_url, adapters, extra)))


def fake_search(total: int = 7, calls: list[dict[str, Any]] | None = None) -> Any:
    """A stand-in for bot.search.search over ``total`` stories titled '苹果 story N'."""

    async def search(store: Any, query: str, *, limit: int = 10, offset: int = 0,
                     max_chars: int = 200) -> Any:
        if calls is not None:
            calls.append({"query": query, "limit": limit, "offset": offset, "max_chars": max_chars})
        outlets = ["亿欧", "腾讯新闻", "新浪"]
        hits = [
            SearchHit(story_id=i, article_id=i, title=f"{query} story {i}", url=f"https://news.example/{i}",
                      outlet=outlets[0], outlets=outlets[: 1 + i % 3], outlet_count=1 + i % 3,
                      published_at=datetime(2025, 2, 12, 1, 0, tzinfo=UTC), snippet="", score=1.0)
            for i in range(1, total + 1)
        ]
        return SearchResults(query, hits[offset: offset + limit], total=total, offset=offset, limit=limit)

    return search


def dumps(x: Any) -> str:
    return json.dumps(x, ensure_ascii=False)


# Three short articles of our own (two outlets on one event, one on another) so /search has a corpus.
ARTICLES = {
    "apple-ali-a.md": ("苹果与阿里巴巴在华合作推出人工智能功能", "2025-02-12 09:00:00", "科技日报",
                       "苹果公司与阿里巴巴宣布合作，为中国市场的苹果手机提供人工智能功能。双方表示，"
                       "新功能将在今年上线，阿里巴巴负责模型，苹果负责系统集成。"),
    "apple-ali-b.md": ("苹果发布新款平板电脑，售价下调", "2025-02-12 11:30:00", "财经快报",
                       "苹果公司周三发布新款苹果平板电脑，起售价比上一代下调五百元。"
                       "苹果表示新品采用更大的屏幕，苹果门店下周起销售。"),
    "rain.md": ("北方多地迎来降雨，气温明显下降", "2025-02-13 08:00:00", "天气周刊",
                "受冷空气影响，北方多地今天迎来降雨，最高气温下降五到八度，气象部门提醒市民注意保暖。"),
}


def write_articles(folder: Any) -> None:
    from pathlib import Path

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    for name, (title, date, outlet, body) in ARTICLES.items():
        (root / name).write_text(
            f'---\ntitle: "{title}"\ndate: "{date}"\ncategories:\n  - "{outlet}"\n---\n\n{body}\n',
            encoding="utf-8")


def folder_source(folder: Any) -> str:
    return f'sources:\n  - {{name: local, type: folder, path: "{folder}"}}\n'
