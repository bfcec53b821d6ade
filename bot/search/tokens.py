"""Index and query tokens: one pipeline for both sides, so what is indexed is what a query can name.

Chinese is cut by jieba (precise mode keeps word order for phrases; search mode's inner words make
阿里 find 阿里巴巴). Latin-script words are lower-cased, accents folded, split at inner punctuation
("cve-2025-24200" -> cve 2025 24200, kept adjacent so the phrase still matches) and stemmed with
Snowball English (patches/patched -> patch), because news queries rarely say the exact inflection
a report uses; the same stemmer runs on queries, so stems never leak into what users see.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from bot.text.tokenize import search_runs

MAX_TOKEN_CHARS = 64  # longer "words" are hashes or junk; PostgreSQL also caps lexemes
_PIECE_RE = re.compile(r"[^\W_]+")
_ASCII_WORD_RE = re.compile(r"[a-z]+")


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer("english")


def _fold(word: str) -> str:
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFKD", word)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


@lru_cache(maxsize=200_000)  # news vocabularies repeat; this is most of the indexing time saved
def latin_pieces(word: str) -> tuple[str, ...]:
    """A lower-cased non-CJK run -> its index tokens (folded, split at punctuation, stemmed)."""
    out = []
    for piece in _PIECE_RE.findall(_fold(word)):
        if len(piece) > MAX_TOKEN_CHARS:
            continue
        if _ASCII_WORD_RE.fullmatch(piece):
            piece = _stemmer().stemWord(piece)
        out.append(piece)
    return tuple(out)


@dataclass(slots=True)
class Stream:
    """Tokens of one field: ``tokens`` in reading order, ``inner[i]`` the sub-words of ``tokens[i]``."""

    tokens: list[str] = field(default_factory=list)
    inner: list[tuple[str, ...]] = field(default_factory=list)

    def extras(self) -> list[str]:
        return [w for group in self.inner for w in group]


def stream(text: str) -> Stream:
    out = Stream()
    tokens, inners = out.tokens, out.inner
    for word, inner, cjk in search_runs(text):
        if cjk:
            if len(word) <= MAX_TOKEN_CHARS:
                tokens.append(word)
                inners.append(inner)
        else:
            pieces = latin_pieces(word)
            tokens.extend(pieces)
            inners.extend([()] * len(pieces))
    return out


def query_groups(text: str) -> list[tuple[str, ...]]:
    """A query chunk -> token groups: a CJK word is a group of one; a Latin run with inner
    punctuation ("iOS-18.5") is one group of several tokens that must be adjacent."""
    groups: list[tuple[str, ...]] = []
    for word, _inner, cjk in search_runs(text):
        if cjk:
            if len(word) <= MAX_TOKEN_CHARS:
                groups.append((word,))
        else:
            pieces = latin_pieces(word)
            if pieces:
                groups.append(tuple(pieces))
    return groups
