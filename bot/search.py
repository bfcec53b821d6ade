"""Archive search. Stub: the full-text index lands with issue 7."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.model import Article


async def index_articles(conn: AsyncConnection, articles: list[Article]) -> None:
    """Keep the index in step with ingest, inside the caller's transaction."""
    return None


async def search(store: Any, query: str, *, limit: int = 10, offset: int = 0, max_chars: int = 200) -> Any:
    raise NotImplementedError("search lands with issue 7")
