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


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # A regular (content-storing) FTS5 table: SQLite before 3.43 cannot delete from a contentless
        # one without the original text, and re-indexing an edited article needs that delete.
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5("
            "title, body, outlet, tokenize = 'unicode61 remove_diacritics 0', detail = full)"
        )
        op.execute(
            "CREATE TRIGGER search_fts_article_deleted AFTER DELETE ON articles "
            "BEGIN DELETE FROM search_fts WHERE rowid = old.id; END"
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
        op.execute("DROP TRIGGER IF EXISTS search_fts_article_deleted")
        op.execute("DROP TABLE IF EXISTS search_fts")
        return
    op.drop_index("ix_search_index_tsv", table_name="search_index")
    op.drop_table("search_index")
