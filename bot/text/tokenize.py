"""Words for clustering and search: Chinese via jieba-rs (rjieba), English lower-cased."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from bot.text.aliases import align
from bot.text.frequency import YEAR_RE, is_common, stemmer

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Other scripts written without spaces between words: kana, Thai, Lao, Khmer, Myanmar. Without a
# segmenter for them, their runs are cut into overlapping character pairs (never one blob).
_UNSPACED = r"\u3040-\u30ff\u31f0-\u31ff\u0e00-\u0eff\u1780-\u17ff\u1000-\u109f"
_NOT_WORD = _CJK + _UNSPACED
# Runs of CJK, runs of unspaced scripts, or runs of letters/digits (with inner . - _ + for
# "iOS 18.5", "CVE-2025-24200"). The last kind stops at the others, so "Apple和阿里巴巴" is two runs.
_RUN_RE = re.compile(
    rf"[{_CJK}]+|[{_UNSPACED}]+|[^\W_{_NOT_WORD}](?:(?:[^\W{_NOT_WORD}]|[.+\-])*[^\W_{_NOT_WORD}])?",
    re.UNICODE,
)
_CJK_RE = re.compile(rf"[{_CJK}]")
_UNSPACED_RE = re.compile(rf"[{_UNSPACED}]")


def _bigrams(run: str) -> list[str]:
    return [run] if len(run) < 3 else [run[i:i + 2] for i in range(len(run) - 1)]


def is_cjk(text: str) -> bool:
    return bool(_CJK_RE.search(text))


@lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    import rjieba

    return rjieba


def _segment(text: str, search_mode: bool) -> list[str]:
    text = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    cut = None
    for m in _RUN_RE.finditer(text):
        run = m.group(0)
        if run.isascii():  # most runs: one test in C before the script regexes
            out.append(run.lower())
        elif _CJK_RE.match(run):
            if cut is None:
                jb = _jieba()
                cut = jb.cut_for_search if search_mode else jb.cut
            out.extend(w for w in cut(run) if w.strip())
        elif _UNSPACED_RE.match(run):
            out.extend(_bigrams(run))
        else:
            out.append(run.lower())
    return out


def words(text: str) -> list[str]:
    """Precise segmentation: each CJK run cut by jieba, other runs lower-cased as words."""
    return _segment(text, search_mode=False)


def search_words(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """Precise words in order, each with the shorter dictionary words jieba's search mode finds
    inside it (阿里巴巴 -> (阿里, 巴巴)); non-CJK runs are lower-cased and have none.

    For a search index: the words keep their order for phrases, the inner words make 阿里 find 阿里巴巴.
    """
    return [(w, inner) for w, inner, _cjk in search_runs(text)]


def search_runs(text: str) -> list[tuple[str, tuple[str, ...], bool]]:
    """``search_words`` with a third field: True for CJK words."""
    text = unicodedata.normalize("NFKC", text)
    out: list[tuple[str, tuple[str, ...], bool]] = []
    jb = None
    for run in _RUN_RE.findall(text):
        if _UNSPACED_RE.match(run):
            out.extend((w, (), True) for w in _bigrams(run))
            continue
        if not _CJK_RE.match(run):
            out.append((run.lower(), (), False))
            continue
        jb = jb or _jieba()
        precise = [w for w in jb.cut(run) if w.strip()]
        if all(len(w) <= 2 for w in precise):  # search mode only adds words inside longer ones
            out.extend((w, (), True) for w in precise)
            continue
        # Search mode emits each precise word's inner words just before the word itself.
        inner: list[str] = []
        i = 0
        for w in jb.cut_for_search(run):
            if not w.strip():
                continue
            if i < len(precise) and w == precise[i]:
                out.append((w, tuple(inner), True))
                inner = []
                i += 1
            else:
                inner.append(w)
        out.extend((w, (), True) for w in precise[i:])  # never expected; keeps every word if jieba differs
    return out


# Words that say nothing about which event an article reports (generic, not corpus-derived).
_STOP_EN = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers him his how i if in into is it its itself just me more most my no nor not
    now of off on once only or other our ours out over own same she should so some such than that the
    their theirs them then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours said says new one two may
    like get got via per many much use used using make made first last year years week day days today
    read more share click here home news login sign subscribe menu search cookie cookies privacy policy
    http https www com html""".split()
)
_STOP_ZH = frozenset(
    """的 了 和 是 在 也 有 就 不 都 而 及 与 或 被 对 把 让 向 从 到 为 以 于 上 下 中 等 之 其 这 那 该
    此 个 并 但 还 又 很 更 最 将 已 已经 可以 可能 进行 通过 目前 相关 以及 表示 认为 指出 称 据 据悉
    我们 他们 你们 它们 自己 一个 一些 这些 那些 这个 那个 什么 如何 如果 因为 所以 由于 但是 而且 或者
    以下 以上 其中 之后 之前 同时 此外 另外 然而 因此 其他 包括 关于 对于 没有 不是 就是 还是 这样 那样
    今天 昨天 日前 近日 近期 消息 报道 记者 文章 原文 来源 阅读 点击 关注 分享 转载 免责声明 编辑 作者
    发布 发表 公众号 微信 扫码 二维码 推荐 更多 查看 评论 登录 注册 首页 全文 链接""".split()
)
_NUM_RE = re.compile(r"^[\d.+\-]+$")
_CVE_RE = re.compile(r"^cve-\d{4}-\d{4,}$")


def is_strong_term(term: str) -> bool:
    """Identifiers that name one thing (CVE ids) and so tie reports together across languages."""
    return bool(_CVE_RE.match(term))


_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}\b)")
_URL_RE = re.compile(r"https?://[^\s)\]>\"']+")
_PERCENT_RE = re.compile(r"(?<=[\w/=&?.+-])%[0-9A-Fa-f]{2}")
_URL_PUNCT_RE = re.compile(r"[/\-_.?=&:#%+~]+")


@lru_cache(maxsize=4096)
def _prepare(text: str) -> str:
    """URLs split into their words (a slug often repeats the source's English title), 1,234 -> 1234,
    names and amounts in one spelling for Chinese and English (bot.text.aliases). Cached: story
    terms and names are both cut from each line."""
    if "%" in text:  # percent-escapes in addresses, whole or cut ("%2Fcharmbracelet%2Fglow")
        text = _PERCENT_RE.sub(" ", text)
    if "://" in text:
        text = _URL_RE.sub(lambda m: " " + _URL_PUNCT_RE.sub(" ", m.group(0)) + " ", text)
    if "," in text:
        text = _THOUSANDS_RE.sub("", text)
    return align(text)


def terms(text: str, lang: str = "en") -> list[str]:
    """Content words for story vectors: ``words`` without stop words, single characters, short
    numbers or years (every day's news has them), the language's common words stemmed.

    Thousands separators are dropped first, so 11,994,223 is one number and not three, and
    URLs are cut into their words. Only words the language's word list knows are stemmed
    (tools -> tool): names are kept as written, so an Italian and a German report still share them.
    """
    return [t for w in words(_prepare(text)) for t in _term(w, lang)]


def term_slots(text: str, lang: str = "en") -> list[str | None]:
    """``terms`` with ``None`` where a word was dropped (a stop word): which terms stand side by
    side in the text ("Storm-2372 used the device …" does not run the name into "device")."""
    return [t for w in words(_prepare(text)) for t in (_term(w, lang) or (None,))]


@lru_cache(maxsize=131_072)
def _term(word: str, lang: str) -> tuple[str, ...]:
    """What one word contributes to ``terms`` (words recur: decided once each)."""
    if len(word) < 2 or word in _STOP_EN or word in _STOP_ZH or YEAR_RE.match(word):
        return ()
    if _NUM_RE.match(word) and len(word) < 3:
        return ()
    stem = stemmer(lang)
    if stem is not None and word.isalpha() and is_common(word, lang):
        word = stem(word)
    if word.isdigit():
        return (word, *_rounded(word))
    return (word,)


def _rounded(number: str) -> list[str]:
    """A large count also as two significant digits: 11,994,223 accounts and "12 million"
    accounts, 882,782 and 88.2万 patients, meet."""
    if len(number) < 5 or len(number.rstrip("0")) <= 2:
        return []
    n = int(number)
    scale = 10 ** (len(number) - 2)
    return [str(round(n / scale) * scale)]


_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+\-_]*[A-Za-z0-9]")
_HAS_NAME_MARK = re.compile(r"[A-Z0-9]")


def name_terms(text: str) -> list[str]:
    """Names and identifiers written in Latin letters or digits (Cisco, ISE, CVE-2025-0108, 8.135).

    Chinese reports keep these as they are, so they are what a Chinese and an English
    report of one event have in common.
    """
    out: list[str] = []
    for m in _NAME_RE.finditer(_prepare(unicodedata.normalize("NFKC", text))):
        w = m.group(0)
        if not _HAS_NAME_MARK.search(w):
            continue
        lw = w.lower()
        if lw in _STOP_EN or (_NUM_RE.match(lw) and len(lw) < 3) or YEAR_RE.match(lw):
            continue
        out.append(lw)
        if lw.isdigit():
            out.extend(_rounded(lw))
    return out
