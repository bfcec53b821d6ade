"""The two index implementations behind one interface: SQLite FTS5 and PostgreSQL full-text.

Both index the same pre-segmented tokens (bot.search.tokens) and build their query syntax from
parsed clauses, quoting every token. Each returns a "hits" SELECT (id, k, score) that
bot.search.engine ranks and collapses to one row per story (k).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.search.query import Clause, ParsedQuery
from bot.search.tokens import Stream

# Title words count this much more than body words (FTS5 bm25 column weights; PostgreSQL A vs D).
TITLE_WEIGHT = 4.0
# Recency boost: score * (1 + BOOST / (1 + age_days / HALF_DAYS)); today x1.5, a week x1.25, a year ~x1.
RECENCY_BOOST = 0.5
RECENCY_HALF_DAYS = 7.0


@dataclass(slots=True)
class IndexDoc:
    article_id: int
    title: Stream
    body: Stream
    outlet: Stream


class Backend(Protocol):
    async def write(self, conn: AsyncConnection, docs: list[IndexDoc]) -> None: ...

    async def delete(self, conn: AsyncConnection, ids: list[int]) -> None: ...

    def hits(self, pq: ParsedQuery, now_epoch: float) -> tuple[str, dict[str, Any]]: ...


def backend_for(dialect: str) -> Backend:
    if dialect == "sqlite":
        return SqliteBackend()
    if dialect == "postgresql":
        return PostgresBackend()
    raise RuntimeError(f"search has no index for the {dialect} database")


# ---------------------------------------------------------------- SQLite FTS5


def _fts_text(s: Stream) -> str:
    # Inner words (阿里 of 阿里巴巴) go after the reading-order words so phrases stay adjacent.
    return " ".join(s.tokens + s.extras())


def _fts_phrase(clause: Clause) -> str:
    return " + ".join('"' + t.replace('"', '""') + '"' for t in clause)


def _fts_any(clauses: list[Clause]) -> str:
    return "(" + " OR ".join(_fts_phrase(c) for c in clauses) + ")"


def fts_match(pq: ParsedQuery) -> str:
    """The FTS5 MATCH expression for a runnable query."""
    parts = []
    if pq.include:
        parts.append("{title body} : (" + " AND ".join(_fts_phrase(c) for c in pq.include) + ")")
    if pq.sources:
        parts.append("{outlet} : " + _fts_any(pq.sources))
    expr = " AND ".join(parts)
    if pq.exclude:
        expr += " NOT {title body} : " + _fts_any(pq.exclude)
    if pq.exclude_sources:
        expr += " NOT {outlet} : " + _fts_any(pq.exclude_sources)
    return expr


class SqliteBackend:
    async def delete(self, conn: AsyncConnection, ids: list[int]) -> None:
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join(str(int(x)) for x in chunk)
            await conn.exec_driver_sql(f"DELETE FROM search_fts WHERE rowid IN ({marks})")

    async def write(self, conn: AsyncConnection, docs: list[IndexDoc]) -> None:
        await self.delete(conn, [d.article_id for d in docs])
        rows = [(d.article_id, _fts_text(d.title), _fts_text(d.body), _fts_text(d.outlet)) for d in docs]
        if rows:
            await conn.exec_driver_sql(
                "INSERT INTO search_fts(rowid, title, body, outlet) VALUES (?, ?, ?, ?)", rows
            )

    def hits(self, pq: ParsedQuery, now_epoch: float) -> tuple[str, dict[str, Any]]:
        # bm25() is negative (smaller is better); the outlet column never adds to relevance.
        rel = f"-bm25(search_fts, {TITLE_WEIGHT}, 1.0, 0.0)" if pq.include else "0.0"
        base = "0.0" if pq.include else "1.0"
        sql = (
            "SELECT a.id AS id, COALESCE(a.story_id, -a.id) AS k, "
            f"({base} + {rel}) * (1.0 + {RECENCY_BOOST} / (1.0 + "
            f"MAX(0.0, :now - julianday(a.published_at)) / {RECENCY_HALF_DAYS})) AS score "
            "FROM search_fts JOIN articles a ON a.id = search_fts.rowid "
            "WHERE search_fts MATCH :match"
        )
        return sql, {"match": fts_match(pq), "now": now_epoch / 86400.0 + 2440587.5}


# ---------------------------------------------------------------- PostgreSQL


_MAX_POSITION = 16383  # tsvector positions above this are clamped by PostgreSQL
_MAX_POSITIONS_PER_LEXEME = 255


def _pg_quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(fields: list[tuple[Stream, str]]) -> str:
    """A tsvector in PostgreSQL's input syntax from our own tokens: no parser or dictionary of
    PostgreSQL touches them, so index and query agree exactly. Inner words share their word's
    position, so "阿里巴巴 集团" and "阿里 集团" are both adjacent pairs."""
    positions: dict[str, list[str]] = {}
    pos = 1
    for stream, weight in fields:
        suffix = weight if weight != "D" else ""
        for tok, inner in zip(stream.tokens, stream.inner, strict=True):
            p = f"{min(pos, _MAX_POSITION)}{suffix}"
            for lex in (tok, *inner):
                lst = positions.setdefault(lex, [])
                if len(lst) < _MAX_POSITIONS_PER_LEXEME:
                    lst.append(p)
            pos += 1
        pos += 10  # no phrase spans the title/body boundary
    return " ".join(f"{_pg_quote(lex)}:{','.join(ps)}" for lex, ps in positions.items())


def _pg_phrase(clause: Clause) -> str:
    return "(" + " <-> ".join(_pg_quote(t) for t in clause) + ")"


def _pg_any(clauses: list[Clause]) -> str:
    return "(" + " | ".join(_pg_phrase(c) for c in clauses) + ")"


def tsquery_text(pq: ParsedQuery) -> str | None:
    """The tsquery over the text vector (None when only outlets are asked for)."""
    if not pq.include and not pq.exclude:
        return None
    parts = [_pg_phrase(c) for c in pq.include]
    if pq.exclude:
        parts.append("!" + _pg_any(pq.exclude))
    return " & ".join(parts)


class PostgresBackend:
    async def delete(self, conn: AsyncConnection, ids: list[int]) -> None:
        if ids:
            await conn.execute(text("DELETE FROM search_index WHERE article_id = ANY(:ids)"), {"ids": ids})

    async def write(self, conn: AsyncConnection, docs: list[IndexDoc]) -> None:
        if not docs:
            return
        rows = [
            {
                "id": d.article_id,
                "tsv": tsvector_literal([(d.title, "A"), (d.body, "D")]),
                "otsv": tsvector_literal([(d.outlet, "D")]),
            }
            for d in docs
        ]
        await conn.execute(
            text(
                "INSERT INTO search_index (article_id, tsv, outlet_tsv) "
                "VALUES (:id, CAST(:tsv AS tsvector), CAST(:otsv AS tsvector)) "
                "ON CONFLICT (article_id) DO UPDATE SET tsv = EXCLUDED.tsv, outlet_tsv = EXCLUDED.outlet_tsv"
            ),
            rows,
        )

    def hits(self, pq: ParsedQuery, now_epoch: float) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"now": now_epoch}
        where = []
        tq = tsquery_text(pq)
        if tq is not None:
            params["q"] = tq
            where.append("s.tsv @@ CAST(:q AS tsquery)")
        if pq.sources:
            params["src"] = _pg_any(pq.sources)
            where.append("s.outlet_tsv @@ CAST(:src AS tsquery)")
        if pq.exclude_sources:
            params["xsrc"] = _pg_any(pq.exclude_sources)
            where.append("NOT (s.outlet_tsv @@ CAST(:xsrc AS tsquery))")
        d = 1.0 / TITLE_WEIGHT
        weights = f"'{{{d}, {d}, {d}, 1.0}}'::float4[]"  # {D, C, B, A}: body D, title A
        rel = f"ts_rank_cd({weights}, s.tsv, CAST(:q AS tsquery), 1)" if pq.include else "0.0"
        base = "0.0" if pq.include else "1.0"
        sql = (
            "SELECT a.id AS id, COALESCE(a.story_id, -a.id) AS k, "
            f"({base} + {rel}) * (1.0 + {RECENCY_BOOST} / (1.0 + "
            f"GREATEST(0.0, CAST(:now AS float8) - EXTRACT(EPOCH FROM a.published_at)) / 86400.0 "
            f"/ {RECENCY_HALF_DAYS})) AS score "
            "FROM search_index s JOIN articles a ON a.id = s.article_id "
            "WHERE " + " AND ".join(where)
        )
        return sql, params
