"""One- or two-sentence summaries, cut by display width at sentence or clause boundaries.

The front-matter summary wins when it is a real sentence; crawlers often write a
truncated stub ("…据多家媒体报道称，苹果公司与阿里巴巴集团宣布合作，两家公司将为国行iPho...")
or repeat the title, and then the lead sentences of the body are used instead.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from bot.text.clean import clean_markdown, strip_closing_link
from bot.text.tokenize import _jieba, is_cjk
from bot.text.width import display_width

ELLIPSIS = "…"
_SENT_END = "。！？!?；;…"
_CLAUSE_END = "，、：,:—；;"
_FULL_STOP = "。！？!?."
_CLOSERS = "”’」』）)]】\"'"
_STUB_END_RE = re.compile(r"(\.{2,}|…+|。{2,}|⋯+)\s*$")
# Markdown leftovers that clean_markdown may not see (nested or broken markup).
_DEBRIS = [
    (re.compile(r"!\[[^\]]*\]\([^)]*\)?"), ""),  # images, also unterminated
    (re.compile(r"\[([^\]]*)\]\([^)]*\)"), r"\1"),  # links -> label
    (re.compile(r"https?://\S+"), ""),  # bare URLs read badly in a summary
    (re.compile(r"^\s*#{1,6}\s*", re.M), ""),
    (re.compile(r"\*{2,}|_{2,}|~~|`+"), ""),
    (re.compile(r"#{2,}\s*"), ""),  # heading marks run into a line
    (re.compile(r"\[!\[?|\]\(\S*\)?"), ""),  # halves of image links clean_markdown could not pair
    (re.compile(r"(?<![A-Za-z0-9])\*+|\*+(?![A-Za-z0-9])"), ""),  # stray emphasis stars, not 5*3
    (re.compile(r"^\s*(?:[*+-]|\d+[.)])\s+", re.M), ""),
    (re.compile(r"^\s*>\s?", re.M), ""),
    (re.compile(r"</?[a-zA-Z][^>]*>"), ""),
]
_SPACES_RE = re.compile(r"[ \t\u3000]+")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LINE_JUNK_RE = re.compile(r"^[\W_]*$")

Measure = Callable[[str], int]


def scrub(text: str) -> str:
    """Plain prose: Markdown debris, control characters and runs of spaces removed."""
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL_RE.sub("", text)
    for rx, rep in _DEBRIS:
        text = rx.sub(rep, text)
    lines = [_SPACES_RE.sub(" ", ln).strip() for ln in text.split("\n")]
    return "\n".join(ln for ln in lines if ln)


_NON_WORD_RE = re.compile(r"[\W_]+")


def _key(text: str) -> str:
    """Text as compared for sameness: letters and digits only, case-folded."""
    return _NON_WORD_RE.sub("", unicodedata.normalize("NFKC", text).casefold())


def is_real_summary(summary: str, title: str) -> bool:
    """Not empty, not a truncated stub, not just the title again."""
    s = summary.strip()
    if not s or _STUB_END_RE.search(s):
        return False
    k, tk = _key(s), _key(title)
    if not k or k == tk or (tk and (tk.startswith(k) or k.startswith(tk))):
        return False
    return display_width(s) >= 16


_ABBREV_RE = re.compile(r"(?:^|\s)(?:(?:[A-Za-z]\.)*[A-Za-z]|Mr|Mrs|Ms|Dr|St|Inc|Ltd|Co|Corp|Jr|Sr|vs|No|"
                        r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)$")


def _is_abbreviation(text: str, dot: int) -> bool:
    """'U.S.' or 'Mr.' before a dot: not the end of a sentence."""
    return bool(_ABBREV_RE.search(text[max(0, dot - 12) : dot]))


def split_sentences(text: str) -> list[str]:
    """Sentences, each keeping its end mark and closing quotes. '18.5' or 'U.S. ' style dots need
    a following space and then a capital letter or CJK to end a sentence."""
    out: list[str] = []
    start = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        end = False
        if c in _SENT_END:
            end = True
        elif c == "." and (i + 1 == n or text[i + 1].isspace()) and not _is_abbreviation(text, i):
            j = i + 1
            while j < n and text[j].isspace():
                j += 1
            # "iOS", "iPhone", "eBay" start sentences too.
            camel = j + 1 < n and text[j].islower() and text[j + 1].isupper()
            end = j == n or text[j].isupper() or camel or is_cjk(text[j]) or not text[j].isalnum()
        elif c == "\n":
            end = True
        if end:
            j = i + 1
            while j < n and (text[j] in _CLOSERS or text[j] in _SENT_END):
                j += 1
            piece = text[start:j].strip()
            if piece:
                out.append(piece)
            start = i = j
            continue
        i += 1
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def _tokens(text: str) -> list[str]:
    """Words covering every character of ``text``: jieba for CJK runs, whitespace elsewhere."""
    if is_cjk(text):

        return list(_jieba().cut(text))
    return re.findall(r"\s+|\S+", text)


def shorten(text: str, limit: int, measure: Measure = display_width, ellipsis: str = ELLIPSIS) -> str:
    """``text`` if it fits, else a prefix ending at a sentence, clause or word boundary plus
    ``ellipsis`` that fits in ``limit`` (as counted by ``measure``). Never cuts inside a word."""
    text = text.strip()
    end = _fitting_prefix(text, limit, measure)
    if end == len(text):
        return text
    budget = limit - measure(ellipsis)
    while budget > 0:
        out = _shorten_once(text[: end + 64], budget, measure, ellipsis)
        # Measures that are not strictly additive (escaping) get a second, tighter try.
        if measure(out) <= limit:
            return out
        budget -= max(1, measure(out) - limit)
    return ""


def _fitting_prefix(text: str, limit: int, measure: Measure) -> int:
    """Length of the longest prefix within ``limit``: galloping then binary search, so a megabyte
    of text costs about as much as the part that fits (measures grow with the prefix)."""
    n = len(text)
    k = max(1, limit)
    while k < n and measure(text[:k]) <= limit:
        k *= 2
    if k >= n:
        if measure(text) <= limit:
            return n
        k = n
    lo, hi = k // 2 if k > limit else 0, k  # measure(text[:lo]) <= limit < measure(text[:hi])
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if measure(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid
    return lo


def _shorten_once(text: str, budget: int, measure: Measure, ellipsis: str) -> str:
    best_sentence = best_clause = best_word = 0  # end offsets into ``text``
    used = pos = 0
    for tok in _tokens(text):
        m = measure(tok)
        if used + m > budget:
            break
        used += m
        pos += len(tok)
        core = tok.rstrip()
        if not core:
            continue
        stop = pos - (len(tok) - len(core))  # end of the text so far without trailing space
        last = text[stop - 1]
        if last in _FULL_STOP or (last in _CLOSERS and stop > 1 and text[stop - 2] in _FULL_STOP):
            best_sentence = stop
        elif last in _CLAUSE_END:
            best_clause = stop
        best_word = stop
    # A boundary that keeps at least ~40% of the room is worth more than a few extra words.
    floor = budget * 0.4
    if best_sentence and measure(text[:best_sentence]) >= floor:
        return text[:best_sentence]
    trim = _CLAUSE_END + _SENT_END + " "
    if best_clause and measure(text[:best_clause]) >= floor:
        return text[:best_clause].rstrip(trim) + ellipsis
    if best_word:
        return text[:best_word].rstrip(trim) + ellipsis
    # One word longer than the room (a URL, a long CJK run jieba kept whole): cut characters.
    used = pos = 0
    for c in text:
        used += measure(c)
        if used > budget:
            break
        pos += 1
    return (text[:pos] + ellipsis) if pos else ""


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks, hard-wrapped lines joined back together."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in block.split("\n") if ln.strip()]
        if not lines:
            continue
        para = lines[0]
        for ln in lines[1:]:
            cjk_join = is_cjk(para[-1]) or not para[-1].isascii()
            para += ("" if cjk_join else " ") + ln
        out.append(para)
    return out


def _is_prose(para: str, title_key: str) -> bool:
    """Bylines, captions, headings, navigation and the repeated title are not prose."""
    if _LINE_JUNK_RE.match(para):
        return False
    k = _key(para)
    if title_key and (k == title_key or title_key.startswith(k)):
        return False
    if not any(c in _FULL_STOP or c in "；;" for c in para):
        return False
    if is_cjk(para):
        return display_width(para) >= 30
    return len(para.split()) >= 8


def _prose_paragraphs(body: str) -> list[str]:
    text, _ = clean_markdown(strip_closing_link(body))
    text = _CONTROL_RE.sub("", text)
    for rx, rep in _DEBRIS:
        text = rx.sub(rep, text)
    return [_SPACES_RE.sub(" ", p).strip() for p in _paragraphs(text)]


def boilerplate_keys(bodies: list[str], min_count: int = 2, max_paragraphs: int = 80) -> frozenset[str]:
    """Paragraphs and sentences that recur across an outlet's articles ("译文仅供参考…",
    "We read every piece of feedback…"): page furniture, never a summary."""
    counts: dict[str, int] = {}
    for body in bodies:
        seen: set[str] = set()
        for para in _prose_paragraphs(body)[:max_paragraphs]:
            seen.add(_key(para))
            seen.update(_key(x) for x in split_sentences(para))
        for k in seen:
            if k:
                counts[k] = counts.get(k, 0) + 1
    return frozenset(k for k, n in counts.items() if n >= min_count)


def lead_sentences(body: str, width: int, max_sentences: int = 2, title: str = "",
                   boilerplate: frozenset[str] = frozenset()) -> str:
    """The first one or two sentences of the body's first prose paragraphs, within ``width``."""
    title_key = _key(title)
    sentences: list[str] = []
    for para in _prose_paragraphs(body):
        if not _is_prose(para, title_key) or _key(para) in boilerplate:
            continue
        for sent in split_sentences(para):
            k = _key(sent)
            # A paragraph may open with the title run into the text; drop that sentence.
            if (title_key and k == title_key) or k in boilerplate:
                continue
            sentences.append(sent)
        if len(sentences) >= max_sentences:
            break
    return cjk_punctuation(_fit(sentences, width, max_sentences))


_ASCII_TO_FULL = {",": "，", ":": "：", ";": "；", "!": "！", "?": "？", "(": "（", ")": "）"}


def cjk_punctuation(text: str) -> str:
    """Undo NFKC's folding of full-width punctuation where it sits next to CJK text
    ("消息,据" -> "消息，据", "墨石(MoshiDB)" -> "墨石（MoshiDB）"), so Chinese reads as written.
    Punctuation between Latin letters or digits ("18,600", "12:30", "Apple, Inc.") stays."""
    chars = list(text)
    n = len(chars)

    def near_cjk(i: int) -> bool:
        return (i > 0 and is_cjk(chars[i - 1])) or (i + 1 < n and is_cjk(chars[i + 1]))

    opened: list[int] = []
    for i, c in enumerate(chars):
        if c == "(":
            opened.append(i)
        elif c == ")" and opened:
            j = opened.pop()
            before = chars[j - 1] if j else ""
            after = chars[i + 1] if i + 1 < n else ""
            spaced = before in ("", " ") and after in ("", " ")
            if is_cjk(before) or is_cjk(after) or (not spaced and is_cjk("".join(chars[j + 1 : i]))):
                chars[j], chars[i] = "（", "）"
        elif c in _ASCII_TO_FULL and c not in "()" and near_cjk(i):
            nxt = chars[i + 1] if i + 1 < n else ""
            if nxt != " " or (i > 0 and is_cjk(chars[i - 1])):
                chars[i] = _ASCII_TO_FULL[c]
    return "".join(chars)


def _fit(sentences: list[str], width: int, max_sentences: int) -> str:
    if not sentences:
        return ""
    first = sentences[0]
    if display_width(first) > width:
        return shorten(first, width)
    out = first
    for s in sentences[1:max_sentences]:
        joined = out + ("" if is_cjk(out[-1]) or not out[-1].isascii() else " ") + s
        if display_width(joined) > width:
            break
        out = joined
    return out


def summarize(title: str, summary: str, body: str, width: int = 120,
              boilerplate: frozenset[str] = frozenset()) -> str:
    """The summary shown under a headline: front matter if real, else the body's lead
    (skipping ``boilerplate``, see boilerplate_keys)."""
    if is_real_summary(summary, title):
        clean = scrub(clean_markdown(summary)[0]).replace("\n", " ")
        if clean and _key(clean) != _key(title):
            return cjk_punctuation(_fit(split_sentences(clean), width, 2))
    return lead_sentences(body, width, title=title, boilerplate=boilerplate)
