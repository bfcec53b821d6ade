"""Archive search: a Chinese-aware full-text index (SQLite FTS5 / PostgreSQL) and ranked queries."""

from bot.search.engine import index_articles, rebuild_index, remove_articles, search
from bot.search.query import ParsedQuery, QueryError, parse_query
from bot.search.results import SearchHit, SearchResults

__all__ = [
    "ParsedQuery",
    "QueryError",
    "SearchHit",
    "SearchResults",
    "index_articles",
    "parse_query",
    "rebuild_index",
    "remove_articles",
    "search",
]
