"""Helpers for the search tests: a small corpus written for them, stored straight into the tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from bot.model import Article
from bot.search import index_articles
from bot.store import tables as T
from bot.store.db import Store

NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Doc:
    key: str
    title: str
    body: str
    outlet: str
    story: str | None = None  # docs with the same story key share a story row
    age_days: float = 1.0
    summary: str = ""


# Written for these tests. Story keys: apple_ali (3 outlets), zero_day (2), patch_tuesday, chrome;
# lone articles have no story. 阿里 never appears on its own: only inside 阿里巴巴.
CORPUS = [
    Doc("ali1", "苹果公司与阿里巴巴合作在中国推出人工智能功能",
        "据报道，苹果将与阿里巴巴合作，为中国市场的手机提供人工智能功能。双方尚未公布时间表。",
        "新智元", "apple_ali", 2),
    Doc("ali2", "阿里巴巴董事长证实与苹果合作",
        "阿里巴巴集团董事长在迪拜的一次活动上证实，苹果选择与阿里巴巴合作开发中国版智能功能。",
        "36氪", "apple_ali", 2),
    Doc("ali3", "Solidot：苹果选择阿里巴巴作为中国人工智能伙伴",
        "消息称苹果此前评估了多家中国公司的模型，最终选择阿里巴巴。", "Solidot", "apple_ali", 1),
    Doc("fruit", "山东水果丰收",
        "今年山东的梨和桃产量创新高，当地农户说苹果的价格也比去年略高。果园里一片忙碌。",
        "农业日报", None, 5),
    Doc("zd1", "Apple patches zero-day exploited in extremely sophisticated attacks",
        "Apple released emergency security updates to fix CVE-2025-24200, a zero-day vulnerability "
        "exploited in targeted attacks. The flaw lets attackers disable USB Restricted Mode.",
        "BleepingComputer", "zero_day", 3),
    Doc("zd2", "Apple fixes actively exploited USB Restricted Mode flaw",
        "The company said the bug was patched in iOS 18.3.1. It credited a researcher for the report and "
        "urged users to update their devices as soon as possible.",
        "The Hacker News", "zero_day", 3),
    Doc("pt1", "微软发布二月补丁星期二更新，修复四个零日漏洞",
        "微软本月修复了五十多个漏洞，其中四个零日漏洞已被利用。建议管理员尽快安装更新。",
        "安全客", "patch_tuesday", 4),
    Doc("ch1", "Google Chrome security update fixes memory bug",
        "Google shipped a Chrome update this week. The browser update addresses a memory safety issue "
        "found by an outside researcher; no exploitation was seen.",
        "The Verge", "chrome", 6),
    Doc("w1", "Weekend weather: rain across the north",
        "Forecasters expect heavy rain and cool winds on Saturday, clearing by Sunday afternoon.",
        "Daily Weather", None, 2),
    Doc("w2", "北方地区迎来降雨降温天气",
        "气象台预计周六北方大部地区有中到大雨，周日下午起天气转晴，气温回升。",
        "天气网", None, 2),
    Doc("sp1", "Local team wins the cup final after extra time",
        "The home side scored twice in extra time to lift the trophy in front of a full stadium.",
        "Sports Desk", None, 8),
    Doc("sp2", "国家队在友谊赛中取胜",
        "国家队周三在主场以二比一击败对手，新帅首秀取得开门红。", "体育周刊", None, 9),
    Doc("upd", "Update: security researcher posts details",
        "Details of the update were posted by the security team. Security matters; the update is out.",
        "Sec Blog", None, 7),
]


async def add_docs(store: Store, docs: list[Doc] | None = None) -> dict[str, Article]:
    """Store the docs (sources, stories, articles) and index them in one transaction, as ingest does."""
    docs = CORPUS if docs is None else docs
    out: dict[str, Article] = {}
    async with store.begin() as conn:
        source_id = (
            await conn.execute(select(T.sources.c.id).where(T.sources.c.name == "search-tests"))
        ).scalar()
        if source_id is None:
            source_id = (
                await conn.execute(
                    insert(T.sources).values(name="search-tests", type="folder").returning(T.sources.c.id)
                )
            ).scalar_one()
        stories: dict[str, int] = {}
        for d in docs:
            if d.story and d.story not in stories:
                stories[d.story] = (
                    await conn.execute(
                        insert(T.stories)
                        .values(title=d.story, size=0, outlet_count=0, first_seen=NOW, last_seen=NOW,
                                updated_at=NOW)
                        .returning(T.stories.c.id)
                    )
                ).scalar_one()
        for d in docs:
            a = Article(
                source="search-tests", external_id=d.key, title=d.title, body=d.body, summary=d.summary,
                outlet=d.outlet, url=f"https://example.com/{d.key}",
                published_at=NOW - timedelta(days=d.age_days),
                story_id=stories.get(d.story) if d.story else None,
            )
            a.id = (
                await conn.execute(
                    insert(T.articles)
                    .values(
                        source_id=source_id, external_id=a.external_id, outlet=a.outlet, url=a.url,
                        title=a.title, summary=a.summary, body=a.body, lang="", tags=[], categories=[],
                        links=[], content_hash=d.key, published_at=a.published_at, ingested_at=NOW,
                        updated_at=NOW, story_id=a.story_id,
                    )
                    .returning(T.articles.c.id)
                )
            ).scalar_one()
            out[d.key] = a
        await index_articles(conn, list(out.values()))
    return out
