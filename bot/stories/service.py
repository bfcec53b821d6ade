"""Story assignment as ingest sees it. Stub: clustering lands with issue 3."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.model import Article, Story


class StoryService:
    """Incremental duplicates + stories. ``load`` once per pass, ``add`` per batch."""

    @classmethod
    async def load(cls, store: Any, settings: Any) -> StoryService:
        return cls()

    async def add(self, conn: AsyncConnection, articles: list[Article]) -> None:
        """Assign ``story_id`` / ``duplicate_of`` to stored articles (ids set) and persist them."""
        return None


async def list_stories(store: Any, since: datetime | None = None) -> list[Story]:
    return []


async def recluster(app: Any) -> dict[str, int]:
    raise NotImplementedError("recluster lands with issue 3")
