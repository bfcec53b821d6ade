"""The query language a chat user types, parsed into token clauses.

    苹果 阿里        words: every one must match (a CJK run is cut into words)
    "苹果 公司"      a phrase: its words adjacent and in order (“curly” and 「corner」 quotes too)
    -广告            exclude a word or "a phrase"
    source:solidot   only articles whose outlet has these words (case-insensitive; -source: excludes)

Nothing a user types reaches the database as syntax: backends build their MATCH / tsquery from
these clauses and quote every token, so FTS5 or tsquery operators are just words (or nothing).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from bot.search.tokens import query_groups
from bot.text.tokenize import search_words


class QueryError(ValueError):
    """The query cannot be run at all (empty); callers show usage."""


Clause = tuple[str, ...]  # tokens that must be adjacent, in order (one token: a plain word)

_QUOTES = str.maketrans({c: '"' for c in "“”„‟«»「」『』〝〞"})
_CHUNK_RE = re.compile(r'\s*(-)?(?:((?i:source|site|outlet)|来源):)?(?:"([^"]*)(?:"|$)|([^\s"]+))')
# Single-character function words dropped from unquoted CJK text, unless nothing else is left.
_CJK_STOP = frozenset("的了和与及在是也就都而或把被对从向之其")


@dataclass(slots=True)
class ParsedQuery:
    text: str  # the query as run (normalised, capped)
    include: list[Clause] = field(default_factory=list)
    exclude: list[Clause] = field(default_factory=list)
    sources: list[Clause] = field(default_factory=list)
    exclude_sources: list[Clause] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # surface forms, for snippets
    truncated: bool = False

    @property
    def runnable(self) -> bool:
        """False when nothing positive is left (punctuation, operators, only exclusions)."""
        return bool(self.include or self.sources)


def parse_query(query: str, *, max_chars: int = 200) -> ParsedQuery:
    text = unicodedata.normalize("NFKC", query or "").translate(_QUOTES)
    text = " ".join(text.split())
    if not text:
        raise QueryError("empty query")
    truncated = len(text) > max_chars
    if truncated:
        text = text[:max_chars].rstrip()
    pq = ParsedQuery(text=text, truncated=truncated)
    stop_candidates: list[Clause] = []
    for m in _CHUNK_RE.finditer(text):
        negated, prefix, quoted, bare = m.group(1), m.group(2), m.group(3), m.group(4)
        chunk = quoted if quoted is not None else bare
        if not chunk:
            continue
        groups = query_groups(chunk)
        if not groups:
            continue
        joined: Clause = tuple(t for g in groups for t in g)
        if prefix:
            (pq.exclude_sources if negated else pq.sources).append(joined)
        elif negated:
            pq.exclude.append(joined)
        elif quoted is not None:
            pq.include.append(joined)
            pq.words.extend(w for w, _ in search_words(chunk))
        else:
            for g in groups:
                if len(g) == 1 and g[0] in _CJK_STOP:
                    stop_candidates.append(g)
                else:
                    pq.include.append(g)
            pq.words.extend(w for w, _ in search_words(chunk))
    if not pq.include:
        pq.include.extend(stop_candidates)
    pq.include = _dedupe(pq.include)
    pq.exclude = _dedupe(pq.exclude)
    return pq


def _dedupe(clauses: list[Clause]) -> list[Clause]:
    return list(dict.fromkeys(clauses))
