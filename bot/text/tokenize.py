"""Words for clustering and search: Chinese via jieba-rs (rjieba), English lower-cased."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Runs of CJK, or runs of letters/digits (with inner . - _ + for "iOS 18.5", "CVE-2025-24200").
_RUN_RE = re.compile(rf"[{_CJK}]+|[^\W_](?:[\w.+\-]*[^\W_])?", re.UNICODE)
_CJK_RE = re.compile(rf"[{_CJK}]")


def is_cjk(text: str) -> bool:
    return bool(_CJK_RE.search(text))


@lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    import rjieba

    return rjieba


def words(text: str) -> list[str]:
    """Precise segmentation: each CJK run cut by jieba, other runs lower-cased as words."""
    text = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    jb = None
    for m in _RUN_RE.finditer(text):
        run = m.group(0)
        if _CJK_RE.match(run):
            jb = jb or _jieba()
            out.extend(w for w in jb.cut(run) if w.strip())
        else:
            out.append(run.lower())
    return out


def search_terms(text: str) -> list[str]:
    """Search-mode segmentation: long CJK words also yield their sub-words (阿里巴巴 -> 阿里, 巴巴)."""
    text = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    jb = None
    for m in _RUN_RE.finditer(text):
        run = m.group(0)
        if _CJK_RE.match(run):
            jb = jb or _jieba()
            out.extend(w for w in jb.cut_for_search(run) if w.strip())
        else:
            out.append(run.lower())
    return out
