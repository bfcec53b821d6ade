"""Per-article text features: line keys for boilerplate, character shingles, MinHash, title keys.

Everything here is a pure function of the text, so the same article always yields
the same features (recluster and incremental assignment agree).
"""

from __future__ import annotations

import hashlib
import re
import struct
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from bot.stories.roundup import is_roundup
from bot.text.frequency import script_language
from bot.text.tokenize import name_terms, terms

NUM_PERM = 128
# 42 bands x 3 rows (126 of the 128 values): a pair at Jaccard 0.45 is found with
# probability 0.98 (32 x 4: 0.74). Two outlets' frames around one copied text keep its
# whole-page Jaccard that low.
LSH_BANDS = 42
LSH_ROWS = 3
SHINGLE = 5
MINHASH_SEED = 1729

_SPACE_RE = re.compile(r"\s+")
_LATIN_WORD_RE = re.compile(r"[0-9a-z]+(?:[.'’-][0-9a-z]+)*")
_PUNCT_RE = re.compile(r"[\W_]+", re.UNICODE)
_LETTERS_RE = re.compile(r"[^\W\d_]+")


def norm_line(line: str) -> str:
    """A line as boilerplate detection compares it: NFKC, lower case, no spaces or punctuation."""
    return _PUNCT_RE.sub("", unicodedata.normalize("NFKC", line).lower())


def line_key(norm: str) -> int:
    """A stable 64-bit key (Python's own hash is salted per process)."""
    return int.from_bytes(hashlib.blake2b(norm.encode("utf-8"), digest_size=8).digest(), "little")


def body_lines(body: str) -> list[tuple[int, str]]:
    """(key, original line) for every non-empty line of the body, in order."""
    out: list[tuple[int, str]] = []
    for raw in body.splitlines():
        n = norm_line(raw)
        if n:
            out.append((line_key(n), raw.strip()))
    return out


def shingle_text(text: str) -> str:
    """The text shingles are cut from: lower case, no whitespace, so re-wrapping changes nothing."""
    return _SPACE_RE.sub("", unicodedata.normalize("NFKC", text).lower())


def shingles(text: str, k: int = SHINGLE) -> set[str]:
    s = shingle_text(text)
    if len(s) <= k:
        return {s} if s else set()
    return {s[i : i + k] for i in range(len(s) - k + 1)}


def minhash(shingle_sets: Sequence[Iterable[str]]) -> list[list[int]]:
    """MinHash signatures (NUM_PERM uint32 each) for several shingle sets in one native call."""
    from rensa import RMinHash  # native extension, loaded where signatures are first cut

    sigs: list[list[int]] = []
    for sh in shingle_sets:
        m = RMinHash(num_perm=NUM_PERM, seed=MINHASH_SEED)
        m.update(list(sh) or [""])
        sigs.append([int(x) for x in m.digest()])
    return sigs


def pack_signature(sig: Sequence[int]) -> bytes:
    return struct.pack(f"<{len(sig)}I", *sig)


def unpack_signature(data: bytes | None) -> list[int] | None:
    if not data or len(data) != 4 * NUM_PERM:
        return None
    return list(struct.unpack(f"<{NUM_PERM}I", data))


def bands(sig: Sequence[int]) -> list[tuple[int, bytes]]:
    """LSH bucket keys: (band, the band's rows packed)."""
    data = pack_signature(sig)
    w = 4 * LSH_ROWS
    return [(b, data[b * w : (b + 1) * w]) for b in range(LSH_BANDS)]


_TITLE_NOISE_RE = re.compile(r"^(?:【[^】]{1,12}】|\[[^\]]{1,12}\])\s*")


def title_key(title: str) -> str:
    """A title as duplicate detection compares it: without outlet tags like 【安全圈】, no punctuation."""
    t = unicodedata.normalize("NFKC", title).strip()
    t = _TITLE_NOISE_RE.sub("", t)
    return norm_line(t)


def title_trigrams(key: str) -> frozenset[str]:
    """A title key's character 3-grams: how much two titles agree, for duplicate checks."""
    return frozenset(key[i : i + 3] for i in range(max(1, len(key) - 2))) if key else frozenset()


CJK_CHAR_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_MOJIBAKE_RE = re.compile(r"[\u00c0-\u024f\u0400-\u04ff\u2500-\u257f\ufffd]")


def garbled(title: str, body: str) -> bool:
    """A Chinese title over a body that decoded as Latin-1/Cyrillic soup: the text says nothing."""
    if not CJK_CHAR_RE.search(title):
        return False
    sample = body[:3000]
    letters = sum(1 for c in sample if c.isalpha())
    if letters < 50:
        return False
    return len(_MOJIBAKE_RE.findall(sample)) >= 0.3 * letters


def _title_chars(title: str) -> str:
    return unicodedata.normalize("NFKC", title).lower()


def title_grams(title: str, n: int) -> set[str]:
    t = _title_chars(title)
    return {t[i : i + n] for i in range(len(t) - n + 1)}


def blank_grams(title: str, grams: set[str], n: int) -> str:
    """The title with every character covered by one of ``grams`` replaced by a space."""
    t = _title_chars(title)
    keep = [True] * len(t)
    for i in range(len(t) - n + 1):
        if t[i : i + n] in grams:
            for j in range(i, i + n):
                keep[j] = False
    # A template is whole words: a Latin word only partly covered (a gram reaching into it
    # across a space) stays whole, not cut down to a fragment such as "ing".
    for m in _LATIN_WORD_RE.finditer(t):
        span = keep[m.start() : m.end()]
        if any(span) and not all(span):
            keep[m.start() : m.end()] = [True] * (m.end() - m.start())
    return "".join(c if k else " " for c, k in zip(t, keep, strict=True))


# ------------------------------------------------------------ per-article bundle


@dataclass(slots=True)
class ArticleFeatures:
    """Everything the engine derives from one article's text alone.

    Computed where the article is parsed (a worker process for large folder passes), so the
    main process only makes decisions; picklable.
    """

    lines: list[tuple[int, str]]
    line_terms: list[list[str]]
    line_names: list[list[str]]
    title_terms: list[str]
    title_names: list[str]
    sig: list[int] | None
    title_key: str
    title_line: int
    roundup: bool
    garbled: bool
    lang: str  # zh, en, it, de, ja … (bot.text.frequency)
    grams: frozenset[str]


def _interned(words: list[str]) -> list[str]:
    return list(map(sys.intern, words))


def extract(title: str, body: str, outlet: str, *, template_gram: int, signature: bool = True
            ) -> ArticleFeatures:
    lines = body_lines(body)
    text = "\n".join(t for _, t in lines) or title
    # From the text itself: feeds mislabel languages more often than the text misleads.
    sample = title + "\n" + text[:3000]
    lang = script_language(sample, _LETTERS_RE.findall(sample.lower()))
    bad = garbled(title, body)
    return ArticleFeatures(
        lines=lines,
        # A body that decoded as mojibake says nothing: such an article is its title alone.
        # Interned where they are cut: a batch's pages then share one copy of each word, in the
        # parse worker and (pickle keeps shared objects shared) in the process that decides.
        line_terms=[[] if bad else _interned(terms(t, lang)) for _, t in lines],
        line_names=[[] if bad else _interned(name_terms(t)) for _, t in lines],
        title_terms=_interned(terms(title, lang)),
        title_names=_interned(name_terms(title)),
        sig=minhash([shingles(text)])[0] if signature else None,
        title_key=title_key(title),
        title_line=line_key(norm_line(title)),
        roundup=is_roundup(title, body, outlet),
        garbled=bad,
        lang=lang,
        grams=frozenset(title_grams(title, template_gram)),
    )


# Shingles as 64-bit polynomial hashes in numpy: the same sets as ``shingles`` (up to hash
# collisions), ~20x faster to build and intersect for the containment checks.
_PRIME = 0x100000001B3
_P = np.uint64(_PRIME)
_POW = [np.uint64(pow(_PRIME, j, 1 << 64)) for j in range(SHINGLE)]


def line_codes(line: str) -> np.ndarray:
    """A line's characters as ``shingle_text`` sees them, as code points."""
    return np.frombuffer(shingle_text(line).encode("utf-32-le"), dtype=np.uint32)


def shingle_hashes(codes: np.ndarray, k: int = SHINGLE) -> np.ndarray:
    """Sorted unique hashes of the k-character shingles of ``codes`` (a short text: one shingle)."""
    n = len(codes)
    if n == 0:
        return np.empty(0, dtype=np.uint64)
    c = codes.astype(np.uint64)
    if n <= k:
        h1 = np.uint64(0)
        with np.errstate(over="ignore"):
            for x in c:
                h1 = h1 * _P + x
        return np.array([h1], dtype=np.uint64)
    m = n - k + 1
    with np.errstate(over="ignore"):
        h = c[:m] * _POW[k - 1]
        for j in range(1, k):
            h = h + c[j : j + m] * _POW[k - 1 - j]
    return np.unique(h)


def overlap(a: np.ndarray, b: np.ndarray) -> int:
    """Shared hashes of two sorted unique arrays."""
    if not len(a) or not len(b):
        return 0
    return int(np.intersect1d(a, b, assume_unique=True).size)
