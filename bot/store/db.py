"""The database handle: async engine, SQLite pragmas, migrations at open."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def normalise_db_url(url: str) -> str:
    """Pick the async driver for the dialect the user named."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


class Store:
    """Owns the engine. ``begin()`` yields a connection inside one transaction."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.dialect = engine.dialect.name  # "sqlite" | "postgresql"

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True, echo: bool = False) -> Store:
        url = normalise_db_url(url)
        kwargs: dict[str, Any] = {"echo": echo}
        u = make_url(url)
        if u.get_backend_name() == "sqlite":
            db = u.database or ""
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            # One connection at a time per process keeps SQLite free of "database is locked".
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_size"] = 5
            kwargs["max_overflow"] = 5
            kwargs["pool_pre_ping"] = True
        engine = create_async_engine(url, **kwargs)
        if u.get_backend_name() == "sqlite":
            _sqlite_pragmas(engine)
        store = cls(engine)
        if migrate:
            await store.migrate()
        return store

    async def migrate(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            await conn.execution_options(readonly=True)
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        # WAL: readers never block the writer; NORMAL is durable across process crashes.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()
        # We issue BEGIN ourselves (below) instead of the driver's implicit one.
        dbapi_conn.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the lock up front so they queue on busy_timeout instead of failing
        # mid-transaction; read-only connections (Store.connect) stay deferred.
        if conn.get_execution_options().get("readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Any) -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), "head")


def upgrade_to(connection: Any, revision: str) -> None:
    """For tests: migrate a connection to a given revision."""
    from alembic import command

    command.upgrade(_alembic_config(connection), revision)


def downgrade_to(connection: Any, revision: str) -> None:
    from alembic import command

    command.downgrade(_alembic_config(connection), revision)
