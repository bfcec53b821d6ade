"""Search index: SQLite FTS5 table, or a PostgreSQL tsvector table with GIN.

Revision ID: 0002
Revises: 0001

Both hold text that bot.search.tokens has already cut into words (jieba for Chinese), so the
database only splits on spaces: FTS5's unicode61 tokenizer with diacritics left to us, and on
PostgreSQL tsvectors built from our tokens directly (no text-search dictionary).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Story key: the story, or the article itself (negated) when it has none. Day: Julian day, UTC.
_K_NEW = "COALESCE(new.story_id, -new.id)"
_DAY_NEW = "COALESCE(julianday(new.published_at), 0)"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # A regular (content-storing) FTS5 table: SQLite before 3.43 cannot delete from a contentless
        # one without the original text, and re-indexing an edited article needs that delete.
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5("
            "title, body, outlet, tokenize = 'unicode61 remove_diacritics 0', detail = full)"
        )
        # What ranking needs per hit, in rows small enough that thousands of lookups stay cheap
        # (articles rows carry whole bodies). Triggers keep it exact whoever changes an article.
        op.execute(
            "CREATE TABLE search_meta (article_id INTEGER PRIMARY KEY, k INTEGER NOT NULL, day REAL NOT NULL)"
        )
        op.execute(
            "CREATE TRIGGER search_meta_article_added AFTER INSERT ON articles BEGIN "
            "INSERT OR REPLACE INTO search_meta (article_id, k, day) VALUES "
            f"(new.id, {_K_NEW}, {_DAY_NEW}); END"
        )
        op.execute(
            "CREATE TRIGGER search_meta_article_changed AFTER UPDATE OF story_id, published_at ON articles "
            f"BEGIN UPDATE search_meta SET k = {_K_NEW}, day = {_DAY_NEW} WHERE article_id = new.id; END"
        )
        op.execute(
            "CREATE TRIGGER search_article_deleted AFTER DELETE ON articles BEGIN "
            "DELETE FROM search_fts WHERE rowid = old.id; "
            "DELETE FROM search_meta WHERE article_id = old.id; END"
        )
        op.execute(
            "INSERT INTO search_meta (article_id, k, day) "
            "SELECT id, COALESCE(story_id, -id), COALESCE(julianday(published_at), 0) FROM articles"
        )
        return
    op.create_table(
        "search_index",
        sa.Column("article_id", sa.BigInteger(), nullable=False),
        sa.Column("tsv", postgresql.TSVECTOR(), nullable=False),
        sa.Column("outlet_tsv", postgresql.TSVECTOR(), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("article_id"),
    )
    op.execute("CREATE INDEX ix_search_index_tsv ON search_index USING GIN (tsv)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("search_article_deleted", "search_meta_article_changed", "search_meta_article_added"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS search_meta")
        op.execute("DROP TABLE IF EXISTS search_fts")
        return
    op.drop_index("ix_search_index_tsv", table_name="search_index")
    op.drop_table("search_index")
