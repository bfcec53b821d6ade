"""Migrations apply cleanly from empty and from the previous revision, on both backends."""

from __future__ import annotations

from sqlalchemy import inspect, text

from bot.store.db import Store, downgrade_to, upgrade_to
from bot.store.tables import metadata


async def _tables(store: Store) -> set[str]:
    async with store.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def _revision(store: Store) -> str:
    async with store.connect() as conn:
        return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()


async def test_from_empty_to_head_creates_every_table(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        assert set(metadata.tables) <= await _tables(store)
        assert await _revision(store) == "0002"
    finally:
        await store.close()


async def test_from_the_previous_revision_and_back(db_url: str) -> None:
    store = await Store.open(db_url, migrate=False)
    try:
        async with store.engine.begin() as conn:
            await conn.run_sync(upgrade_to, "0001")
        assert await _revision(store) == "0001"
        assert set(metadata.tables) <= await _tables(store)
        async with store.engine.begin() as conn:
            await conn.run_sync(upgrade_to, "head")
        assert await _revision(store) == "0002"
        async with store.engine.begin() as conn:
            await conn.run_sync(downgrade_to, "0001")
        assert await _revision(store) == "0001"
        await store.migrate()  # and up again: the downgrade left nothing behind
        assert await _revision(store) == "0002"
    finally:
        await store.close()
