"""Alembic environment: always run programmatically on a connection we pass in."""

from alembic import context

from bot.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via bot.store.db
    raise RuntimeError("run migrations through bot.store.db.Store.migrate()")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
