"""Run the ``digestbot`` CLI against a store that fails the way a full disk does (tests only).

``python -m tests.store_faults MODE LIMIT BATCH -- ARGS…`` runs ``digestbot ARGS…`` with ingest
batches of BATCH articles and, once the store is open and migrated:

- ``sqlite_full``: SQLite's ``max_page_count`` set LIMIT pages above the current size, so writes
  past it fail with SQLITE_FULL, exactly as on a full disk;
- ``pg_full``: a trigger on ``articles`` that raises SQLSTATE 53100 (disk_full) once LIMIT rows
  are stored, as PostgreSQL does when it cannot extend a file;
- ``pg_clear``: that trigger dropped (the disk has room again);
- ``none``: nothing.
"""

from __future__ import annotations

import sys
from typing import Any

PG_TRIGGER = """
CREATE OR REPLACE FUNCTION digestbot_test_disk_full() RETURNS trigger AS $$
BEGIN
  IF (SELECT count(*) FROM articles) >= {limit} THEN
    RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql
"""


def _sqlite_full(store: Any, pages: int) -> None:
    from sqlalchemy import event

    limit: dict[str, int] = {}

    @event.listens_for(store.engine.sync_engine, "checkout")
    def _cap(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        cur = dbapi_conn.cursor()
        if "pages" not in limit:
            cur.execute("PRAGMA page_count")
            limit["pages"] = int(cur.fetchone()[0]) + pages
        cur.execute(f"PRAGMA max_page_count = {limit['pages']}")
        cur.close()


async def _pg(store: Any, mode: str, rows: int) -> None:
    async with store.begin() as conn:
        await conn.exec_driver_sql("DROP TRIGGER IF EXISTS digestbot_test_disk_full ON articles")
        if mode == "pg_full":
            await conn.exec_driver_sql(PG_TRIGGER.format(limit=int(rows)))
            await conn.exec_driver_sql(
                "CREATE TRIGGER digestbot_test_disk_full BEFORE INSERT ON articles "
                "FOR EACH ROW EXECUTE FUNCTION digestbot_test_disk_full()")


def main(argv: list[str]) -> int:
    mode, limit, batch = argv[0], int(argv[1]), int(argv[2])
    args = argv[argv.index("--") + 1:]
    import bot.ingest
    import bot.store.db as db

    bot.ingest.run_ingest.__kwdefaults__["batch_size"] = batch
    original = db.Store.open.__func__  # type: ignore[attr-defined]

    async def open_(cls: Any, url: str, **kw: Any) -> Any:
        store = await original(cls, url, **kw)
        if mode == "sqlite_full":
            _sqlite_full(store, limit)
        elif mode in ("pg_full", "pg_clear"):
            await _pg(store, mode, limit)
        return store

    db.Store.open = classmethod(open_)  # type: ignore[method-assign, assignment]
    from bot.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
