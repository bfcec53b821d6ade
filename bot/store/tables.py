"""SQLAlchemy Core tables. The migrations in ``migrations/versions`` create exactly these.

Areas: sources and seen files (ingest), articles, stories (clustering),
subscriptions and deliveries (digests), outbox (delivery), leases (scale-out).
The search index is dialect-specific and lives in ``bot/search.py``'s migration.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData()

# BigInteger ids on PostgreSQL, INTEGER PRIMARY KEY (rowid alias) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out on both backends (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


TS = UTCDateTime()

sources = Table(
    "sources",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("type", String(20), nullable=False),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("last_fetched_at", TS),
    Column("next_due_at", TS),
    Column("last_error", Text),
    Column("last_error_at", TS),
    Column("claimed_by", String(100)),
    Column("claimed_until", TS),
)

# What a folder pass has seen, so unchanged files are not reread.
seen_files = Table(
    "seen_files",
    metadata,
    Column("source_id", Id, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
    Column("path", Text, primary_key=True),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("article_id", Id),
    Column("error", Text),
)

articles = Table(
    "articles",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source_id", Id, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("external_id", Text, nullable=False),
    Column("outlet", String(200), nullable=False, default=""),
    Column("path", Text),
    Column("url", Text),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("body", Text, nullable=False, default=""),
    Column("lang", String(16), nullable=False, default=""),
    Column("tags", JSON, nullable=False, default=list),
    Column("categories", JSON, nullable=False, default=list),
    Column("links", JSON, nullable=False, default=list),
    Column("content_hash", String(64), nullable=False),
    Column("published_at", TS, nullable=False),
    Column("ingested_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("story_id", Id, ForeignKey("stories.id", ondelete="SET NULL")),
    Column("duplicate_of", Id, ForeignKey("articles.id", ondelete="SET NULL")),
    # MinHash signature (uint32 little-endian) for rebuilding the LSH index at start.
    Column("minhash", LargeBinary),
    UniqueConstraint("source_id", "external_id", name="uq_articles_source_external"),
    Index("ix_articles_published", "published_at"),
    Index("ix_articles_story", "story_id"),
    Index("ix_articles_content_hash", "content_hash"),
    # Folder ingest finds a file's earlier article by its path (a renamed or re-keyed file).
    Index("ix_articles_source_path", "source_id", "path"),
)

stories = Table(
    "stories",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("title", Text, nullable=False),
    Column("headline_article_id", Id),
    Column("size", Integer, nullable=False, default=0),
    Column("outlet_count", Integer, nullable=False, default=0),
    Column("first_seen", TS, nullable=False),
    Column("last_seen", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_stories_last_seen", "last_seen"),
)

# Rolling document frequencies for story vectors' IDF.
term_df = Table(
    "term_df",
    metadata,
    Column("term", String(200), primary_key=True),
    Column("df", Integer, nullable=False),
)

def _chat_columns() -> list[Column[Any]]:
    """How a subscription and an outbox row name their chat: adapter, the platform's id, its kind."""
    return [Column("adapter", String(50), nullable=False), Column("chat_id", String(100), nullable=False),
            Column("chat_type", String(20), nullable=False, default="private")]


subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    *_chat_columns(),
    Column("locale", String(10), nullable=False, default="zh-CN"),
    Column("timezone", String(64), nullable=False, default="Asia/Shanghai"),
    Column("times", JSON, nullable=False, default=list),
    Column("max_stories", Integer, nullable=False, default=10),
    Column("filters", JSON, nullable=False, default=dict),
    Column("quiet_hours", String(20)),
    Column("active", Boolean, nullable=False, default=True),
    Column("retired_reason", Text),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    # End of the window the last successful digest covered: the next one starts here.
    Column("last_digest_at", TS),
    UniqueConstraint("adapter", "chat_id", name="uq_subscriptions_chat"),
)

# Which stories a subscription has been sent, and at what size (for "updated" mentions).
deliveries = Table(
    "deliveries",
    metadata,
    Column("subscription_id", Id, ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True),
    Column("story_id", Id, ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("delivered_at", TS, nullable=False),
    # False: the story was in a digest's window but cut (max_stories); it may come back as new
    # once it grows, never as an update.
    Column("shown", Boolean, nullable=False, default=True),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    *_chat_columns(),
    Column("subscription_id", Id, ForeignKey("subscriptions.id", ondelete="SET NULL")),
    Column("batch", String(64), nullable=False),  # one digest = one batch of parts
    Column("seq", Integer, nullable=False, default=0),
    Column("payload", JSON, nullable=False),
    Column("plain_payload", JSON),  # fallback when the platform rejects the markup
    Column("status", String(12), nullable=False, default="pending"),  # pending|sent|dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", TS, nullable=False),
    Column("last_error", Text),
    Column("created_at", TS, nullable=False),
    Column("sent_at", TS),
    Column("message_id", String(100)),
    Column("claimed_by", String(100)),
    Column("claimed_until", TS),
    Index("ix_outbox_pending", "status", "next_attempt_at"),
    Index("ix_outbox_chat", "adapter", "chat_id", "id"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(100), nullable=False),
    Column("expires_at", TS, nullable=False),
)

# Shared token buckets so the bot-wide send rate holds across processes.
rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated_at", TS, nullable=False),
)
