"""Shared fixtures.

The suite runs on SQLite by default. With ``DIGESTBOT_TEST_BACKEND=postgres`` and
``DATABASE_URL`` set (``make test`` does both when DATABASE_URL is set), every store
fixture uses a fresh PostgreSQL database instead. ``DATABASE_URL`` is removed from
the environment so CLI subprocesses only use what a test gives them.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.store.db import Store

PG_URL = os.environ.pop("DATABASE_URL", None)
BACKEND = os.environ.get("DIGESTBOT_TEST_BACKEND", "sqlite")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "articles"
SHARED = ROOT.parent / "shared"


def _pg_admin_url() -> str:
    assert PG_URL
    return PG_URL.replace("postgresql+asyncpg://", "postgresql://").replace("postgres://", "postgresql://")


async def _pg_create(name: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(_pg_admin_url())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = _pg_admin_url().rsplit("/", 1)[0]
    return f"{base}/{name}"


async def _pg_drop(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_pg_admin_url())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; skips when none is configured."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests need DATABASE_URL (e.g. postgresql://postgres@127.0.0.1/test)")
    name = f"digestbot_t_{uuid.uuid4().hex[:12]}"
    url = asyncio.run(_pg_create(name))
    try:
        yield url
    finally:
        asyncio.run(_pg_drop(name))


@pytest.fixture
def db_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database URL on the backend this run targets (a fresh one per test)."""
    if BACKEND == "postgres":
        return request.getfixturevalue("pg_url")
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED / "seeds").is_dir():
        pytest.skip("../shared is not beside this checkout (only CI and developers have it)")
    return SHARED
