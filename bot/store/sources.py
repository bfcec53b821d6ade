"""Source rows (validators, last fetch, last error) and the folder sources' seen files."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.model import FileState, SourceState
from bot.store.tables import seen_files, sources


def _insert(conn: AsyncConnection, table: Any) -> Any:
    """An INSERT that can say ON CONFLICT on both backends."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


async def ensure_source(conn: AsyncConnection, name: str, type_: str) -> int:
    """The id of source ``name``, creating its row on first sight."""
    row = (await conn.execute(select(sources.c.id, sources.c.type).where(sources.c.name == name))).first()
    if row is not None:
        if row.type != type_:
            await conn.execute(update(sources).where(sources.c.id == row.id).values(type=type_))
        return int(row.id)
    stmt = _insert(conn, sources).values(name=name, type=type_)
    stmt = stmt.on_conflict_do_nothing(index_elements=["name"])
    await conn.execute(stmt)
    return int((await conn.execute(select(sources.c.id).where(sources.c.name == name))).scalar_one())


async def load_state(conn: AsyncConnection, source_id: int, *, with_files: bool = True) -> SourceState:
    row = (await conn.execute(select(sources).where(sources.c.id == source_id))).first()
    state = SourceState()
    if row is not None:
        state.etag = row.etag
        state.last_modified = row.last_modified
        state.last_fetched_at = row.last_fetched_at
    if with_files:
        res = await conn.execute(
            select(seen_files.c.path, seen_files.c.mtime_ns, seen_files.c.size, seen_files.c.sha256,
                   seen_files.c.error).where(seen_files.c.source_id == source_id)
        )
        state.files = {r.path: FileState(int(r.mtime_ns), int(r.size), r.sha256, r.error) for r in res}
    return state


async def save_file_states(conn: AsyncConnection, source_id: int, states: dict[str, FileState],
                           article_ids: dict[str, int] | None = None) -> None:
    """Remember files as read (only call once their articles are stored)."""
    if not states:
        return
    article_ids = article_ids or {}
    rows = [
        {"source_id": source_id, "path": path, "mtime_ns": st.mtime_ns, "size": st.size, "sha256": st.sha256,
         "article_id": article_ids.get(path), "error": st.error}
        for path, st in states.items()
    ]
    stmt = _insert(conn, seen_files)
    # An unchanged file (same bytes, new mtime) keeps its article link.
    article_id = stmt.excluded.article_id
    stmt = stmt.on_conflict_do_update(
        index_elements=["source_id", "path"],
        set_={"mtime_ns": stmt.excluded.mtime_ns, "size": stmt.excluded.size, "sha256": stmt.excluded.sha256,
              "error": stmt.excluded.error,
              "article_id": func.coalesce(article_id, seen_files.c.article_id)},
    )
    await conn.execute(stmt, rows)


async def forget_files(conn: AsyncConnection, source_id: int, paths: Iterable[str]) -> None:
    """Files that vanished from the folder; their articles stay in the archive."""
    paths = list(paths)
    for i in range(0, len(paths), 500):
        await conn.execute(delete(seen_files).where(seen_files.c.source_id == source_id,
                                                    seen_files.c.path.in_(paths[i:i + 500])))


async def record_fetch(conn: AsyncConnection, source_id: int, *, fetched_at: datetime,
                       etag: str | None = None, last_modified: str | None = None,
                       error: str | None = None, next_due_at: datetime | None = None) -> None:
    """After a pass: validators (kept when the source sent none), when, and the error or its absence."""
    values: dict[str, Any] = {"last_fetched_at": fetched_at, "last_error": error, "next_due_at": next_due_at}
    if etag is not None:
        values["etag"] = etag
    if last_modified is not None:
        values["last_modified"] = last_modified
    if error is not None:
        values["last_error_at"] = fetched_at
    await conn.execute(update(sources).where(sources.c.id == source_id).values(**values))
