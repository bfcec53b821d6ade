"""How common a word is before the store has seen any news: a background prior for term weights.

A young store cannot tell a common word from a rare one by its own counts (with five articles
about one event, the words all five share look the *least* informative). The prior comes from
wordfreq's word lists (general-language frequencies shipped inside the package, no download):
Chinese and English in full, and the common words of the other languages a tech feed carries,
so that their function words ("della", "und", "которые") never look like names. The same lists
tell which of those languages a text is written in. The story engine blends the prior with its
rolling counts; the prior fades as the store grows.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from functools import lru_cache

_FULL = ("zh", "en")  # every listed word (down to 1 in a million)
_COMMON = ("it", "de", "fr", "es", "pt", "nl", "ru", "uk", "pl", "tr", "sv", "id", "vi", "ja", "ko")
_COMMON_MIN = 2e-5  # frequency (per word of text) down to which another language's words are kept
FLOOR = 1e-6  # what a word no list holds gets (a name, an identifier)
TOKENS_PER_DOC = 300  # a news article's length in words, to turn a word frequency into a document share

# Years and the vocabulary of every day's tech and security news (genres, kinds of product and
# attack) recur in every week's stream, so they say nothing about which event an article reports,
# however rare they are in general language.
YEAR_RE = re.compile(r"^(?:19[5-9]\d|20[0-4]\d)(?:年|年度)?$")
_NUMBER_RE = re.compile(r"^\d[\d.,]*$")
_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_KANA_RE = re.compile(r"[\u3040-\u30ff]")
_HANGUL_RE = re.compile(r"[\uac00-\ud7af]")
GENRE_SHARE = 0.05  # the document share such a word is given, at least
GENRE = frozenset("""
    漏洞 复现 漏洞复现 预警 漏洞预警 通告 漏洞通告 风险 风险通告 安全 网络安全 信息安全 数据安全
    攻击 攻防 渗透 渗透测试 利用 远程 代码 执行 远程代码执行 命令 注入 命令注入 反序列化 白名单
    黑名单 逆向 逆向分析 分析 解读 研究 报告 技术 工具 实战 教程 原理 学习 面试 靶场 挖掘 漏洞挖掘
    补丁 更新 修复 发布 升级 版本 高危 严重 紧急 在野 零日 0day 恶意 恶意软件 勒索 勒索软件 木马
    病毒 后门 钓鱼 黑客 威胁 情报 威胁情报 apt 组织 团伙 样本 检测 防御 防护 权限 提权 绕过 越权
    泄露 数据泄露 安全漏洞 高危漏洞 安全更新 安全公告 公告 通知 活动 大会 峰会 论坛 直播 课程 培训
    攻击者 攻击方 招聘 干货 原创 合集 资源 免费 福利 推荐 分享 总结 思路 方法 案例 方案 平台 系统
    产品 服务 企业 行业 中心 rce poc exp cve exploit exploits exploited exploitation vulnerability
    vulnerabilities vuln flaw flaws bug bugs patch patches patched update updates security cyber
    cybersecurity attack attacks attackers hacker hackers hacking malware ransomware threat threats
    actor actors breach breached data leak leaked phishing backdoor trojan botnet critical severity
    advisory attacker advisories analysis research report researchers zero-day zeroday 0-day remote
    code execution injection bypass privilege escalation authentication vendor vendors users
    customers nas vpn vpns api apis iot saas paas router routers firewall firewalls server servers
    browser browsers app apps llm llms gpu gpus cpu cpus chip chips email wifi wi-fi edr xdr siem
    soc ddos dns ssl tls ssh sql xss csrf ssrf kev catalog catalogue 已知 目录 plugin plugins
    extension extensions 插件 扩展
""".split())


@lru_cache(maxsize=1)
def _tables() -> dict[str, dict[str, int]]:
    """language -> word -> centibels below 1 (0 is the most common word); read once per process."""
    from wordfreq import available_languages, cB_to_freq, read_cBpack

    paths = available_languages("small")
    out: dict[str, dict[str, int]] = {}
    for lang in _FULL + _COMMON:
        if lang not in paths:
            continue
        table: dict[str, int] = {}
        for cb, bucket in enumerate(read_cBpack(paths[lang])):
            if lang not in _FULL and cB_to_freq(-cb) < _COMMON_MIN:
                break
            for word in bucket:
                table.setdefault(word, cb)
        out[lang] = table
    return out


def _freq(cb: int | None) -> float:
    return FLOOR if cb is None else max(FLOOR, 10.0 ** (-cb / 100.0))


_CUT = -round(100 * math.log10(_COMMON_MIN))  # languages are told apart by their common words alone
_DETECT = tuple(lang for lang in ("en", *_COMMON) if lang not in ("ja", "ko"))


@lru_cache(maxsize=1)
def _common_words() -> dict[str, tuple[tuple[int, float], ...]]:
    """word -> (language index in ``_DETECT``, gain over an unlisted word) for each language
    that lists it among its common words: one lookup per word when telling languages apart."""
    tables = _tables()
    gains: dict[str, list[tuple[int, float]]] = {}
    for i, lang in enumerate(_DETECT):
        for word, cb in tables.get(lang, {}).items():
            if cb <= _CUT:
                gains.setdefault(word, []).append((i, (_CUT - cb) / 100.0 + 1.0))
    return {w: tuple(g) for w, g in gains.items()}


def language_of(words: list[str]) -> str:
    """The listed language whose word list explains ``words`` (lower-cased, Latin or Cyrillic
    script) best; "en" when nothing is clear. Unigram likelihood over the first 300 words."""
    sample = Counter(w for w in words[:300] if not w.isdigit())
    if not sample:
        return "en"
    index = _common_words()
    scores = [0.0] * len(_DETECT)
    for w, n in sample.items():
        for i, gain in index.get(w, ()):
            scores[i] += gain * n
    best = max(range(len(_DETECT)), key=lambda i: (scores[i], i == 0))
    return _DETECT[best] if scores[best] > 0 else "en"


def script_language(text: str, latin_words: list[str]) -> str:
    """A text's language: Chinese, Japanese or Korean when their script carries a real share of
    it (one CJK character is worth about one word), else by its words."""
    sample = text[:4000]
    cjk = len(_CJK_RE.findall(sample))
    if cjk and cjk >= 0.3 * len(latin_words[:4000]):
        kana = len(_KANA_RE.findall(sample))
        hangul = len(_HANGUL_RE.findall(sample))
        if kana >= 0.1 * cjk:
            return "ja"
        if hangul >= 0.5 * cjk:
            return "ko"
        return "zh"
    return language_of(latin_words)


_SNOWBALL = {"en": "english", "it": "italian", "de": "german", "fr": "french", "es": "spanish",
             "pt": "portuguese", "nl": "dutch", "ru": "russian", "sv": "swedish", "tr": "turkish"}


@lru_cache(maxsize=16)
def stemmer(lang: str) -> Callable[[str], str] | None:
    """Snowball stemming for a language PyStemmer has, cached per word; None for others (CJK)."""
    name = _SNOWBALL.get(lang)
    if name is None:
        return None
    import Stemmer

    return lru_cache(maxsize=65_536)(Stemmer.Stemmer(name).stemWord)


@lru_cache(maxsize=1)
def _genre() -> frozenset[str]:
    stem = stemmer("en")
    assert stem is not None
    return GENRE | {stem(w) for w in GENRE if w.isascii()}


def is_genre(term: str) -> bool:
    """A word of every day's tech and security news, as written or as story terms stem it."""
    return term in _genre()


def is_common(word: str, lang: str) -> bool:
    """Whether the word list of ``lang`` (English for languages without one) holds ``word``."""
    tables = _tables()
    return word in tables.get(lang, tables["en"])


def number_share(number: str) -> float:
    """Round numbers (100万 -> 1000000, 500) recur in unrelated news; 882000 or 813500000 name one
    thing. One significant digit: 10 %; each more: thirty times rarer, down to 0.05 %."""
    digits = number.replace(".", "").replace(",", "").rstrip("0").lstrip("0")
    return min(0.1, max(0.0005, 0.1 / 30 ** max(0, len(digits) - 1)))


@lru_cache(maxsize=65_536)
def prior_share(term: str, lang: str = "en") -> float:
    """The share of news articles expected to contain ``term`` (an article in ``lang``), before the
    store has counted any. Latin words are looked up in English too (tech news everywhere uses it)."""
    if is_genre(term) or YEAR_RE.match(term):
        base = GENRE_SHARE
    elif _NUMBER_RE.match(term):
        base = number_share(term)
    else:
        base = 0.0
    tables = _tables()
    if _CJK_RE.search(term):
        lists = ("ja", "zh") if lang == "ja" else ("ko",) if lang == "ko" else ("zh",)
    else:
        lists = ("en",) if lang in ("en", "zh") else ("en", lang)
    cb = min((c for name in lists if (c := tables.get(name, {}).get(term)) is not None), default=None)
    if cb is None and not _CJK_RE.search(term):
        # Story terms stem common words ("device" -> "devic"): a stem is as common as its words.
        cb = min((c for name in lists if (c := _stems(name).get(term)) is not None), default=None)
    freq = _freq(cb)
    return min(1.0, max(base, 1.0 - math.exp(-freq * TOKENS_PER_DOC)))


@lru_cache(maxsize=16)
def _stems(lang: str) -> dict[str, int]:
    """Snowball stem -> centibels of its most common word, for a language with a stemmer."""
    stem = stemmer(lang)
    table = _tables().get(lang)
    if stem is None or not table:
        return {}
    out: dict[str, int] = {}
    for word, cb in table.items():
        if word.isalpha():
            s = stem(word)
            if s != word and cb < out.get(s, 10**9):
                out[s] = cb
    return out
