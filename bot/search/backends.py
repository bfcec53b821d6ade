"""The two index implementations behind one interface: SQLite FTS5 and PostgreSQL full-text.

Both index the same pre-segmented tokens (bot.search.tokens) and build their query syntax from
parsed clauses, quoting every token. Ranking runs over the newest matches only (a window of
article ids, newest first): relevance is computed for at most that many rows, which keeps a
broad query on a large archive as fast as a narrow one, and recency counts anyway.
Rows are collapsed to one per story key k (story id, or minus the article id).
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

    def ranked(self, pq: ParsedQuery, now_epoch: float) -> tuple[str, dict[str, Any]]:
        """SQL over the newest :window matches giving one row per story (id, k, score, groups, hits),
        best first, with :limit / :offset; ``groups`` and ``hits`` count the whole window."""
        ...

    def count(self, pq: ParsedQuery) -> tuple[str, dict[str, Any]]:
        """SQL counting every matching article (cheap: no ranking)."""
        ...


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

    def ranked(self, pq: ParsedQuery, now_epoch: float) -> tuple[str, dict[str, Any]]:
        # bm25() is negative (smaller is better); the outlet column never adds to relevance.
        rel = f"-bm25(search_fts, {TITLE_WEIGHT}, 1.0, 0.0)" if pq.include else "0.0"
        base = "0.0" if pq.include else "1.0"
        boost = f"(1.0 + {RECENCY_BOOST} / (1.0 + MAX(0.0, :now - s.day) / {RECENCY_HALF_DAYS}))"
        sql = f"""
WITH m AS (
  SELECT rowid AS id, {rel} AS rel FROM search_fts WHERE search_fts MATCH :match
  ORDER BY rowid DESC LIMIT :window
),
hits AS (
  SELECT m.id AS id, s.k AS k, ({base} + m.rel) * {boost} AS score
  FROM m JOIN search_meta s ON s.article_id = m.id
)
SELECT id, k, MAX(score) AS score, COUNT(*) OVER () AS groups, SUM(COUNT(*)) OVER () AS hits
FROM hits GROUP BY k ORDER BY score DESC, k DESC LIMIT :limit OFFSET :offset
"""
        # SQLite returns the bare column id from the row holding MAX(score): the story's best article.
        return sql, {"match": fts_match(pq), "now": now_epoch / 86400.0 + 2440587.5}

    def count(self, pq: ParsedQuery) -> tuple[str, dict[str, Any]]:
        return "SELECT COUNT(*) FROM search_fts WHERE search_fts MATCH :match", {"match": fts_match(pq)}


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

    def _where(self, pq: ParsedQuery) -> tuple[list[str], dict[str, Any]]:
        params: dict[str, Any] = {}
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
        return where, params

    def ranked(self, pq: ParsedQuery, now_epoch: float) -> tuple[str, dict[str, Any]]:
        where, params = self._where(pq)
        params["now"] = now_epoch
        d = 1.0 / TITLE_WEIGHT
        weights = f"'{{{d}, {d}, {d}, 1.0}}'::float4[]"  # {D, C, B, A}: body D, title A
        rel = f"ts_rank_cd({weights}, m.tsv, CAST(:q AS tsquery), 1)" if pq.include else "0.0"
        base = "0.0" if pq.include else "1.0"
        age_days = "GREATEST(0.0, CAST(:now AS float8) - EXTRACT(EPOCH FROM a.published_at)) / 86400.0"
        sql = f"""
WITH m AS (
  SELECT s.article_id AS id, s.tsv FROM search_index s WHERE {" AND ".join(where)}
  ORDER BY s.article_id DESC LIMIT :window
),
hits AS (
  SELECT m.id AS id, COALESCE(a.story_id, -a.id) AS k,
         ({base} + {rel}) * (1.0 + {RECENCY_BOOST} / (1.0 + {age_days} / {RECENCY_HALF_DAYS})) AS score
  FROM m JOIN articles a ON a.id = m.id
),
best AS (SELECT DISTINCT ON (k) id, k, score FROM hits ORDER BY k, score DESC, id DESC)
SELECT id, k, score, COUNT(*) OVER () AS groups, (SELECT COUNT(*) FROM hits) AS hits
FROM best ORDER BY score DESC, k DESC LIMIT :limit OFFSET :offset
"""
        return sql, params

    def count(self, pq: ParsedQuery) -> tuple[str, dict[str, Any]]:
        where, params = self._where(pq)
        return f"SELECT COUNT(*) FROM search_index s WHERE {' AND '.join(where)}", params
