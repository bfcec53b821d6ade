"""Body cleaning for later stages: Markdown markup out, link targets kept, NFKC."""

from __future__ import annotations

import re
import unicodedata

from bot.text.tokenize import _CJK

_IMG_RE = re.compile(r"!\[([^\]]*)\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")
_LINK_RE = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")
_AUTOLINK_RE = re.compile(r"<(https?://[^>\s]+)>")
_HTML_TAG_RE = re.compile(r"</?[a-zA-Z][^>]*>")
_EMPH_RE = re.compile(r"(\*{1,3}|_{2,3}|~~)(?=\S)(.+?)(?<=\S)\1")
_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s*", re.M)
_LIST_RE = re.compile(r"^\s*(?:[*+-]|\d+[.)])\s+", re.M)
_QUOTE_RE = re.compile(r"^\s*>\s?", re.M)
_RULE_RE = re.compile(r"^\s*(?:[-*_]\s*){3,}$", re.M)
_CODE_FENCE_RE = re.compile(r"^```.*$", re.M)
_BLANKS_RE = re.compile(r"\n{3,}")
_CLOSING_LINK_RE = re.compile(r"^\s*\[([^\]]+)\]\((https?://[^)\s]+)\)\s*$")
_CJK_CHAR_RE = re.compile(rf"[{_CJK}]")
_LATIN_RE = re.compile(r"[A-Za-z]")


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def closing_link(body: str) -> tuple[str, str] | None:
    """The ``[outlet](url)`` on the body's last non-empty line, if any."""
    for line in reversed(body.splitlines()):
        if line.strip():
            m = _CLOSING_LINK_RE.match(line)
            return (m.group(1).strip(), m.group(2).strip()) if m else None
    return None


def strip_closing_link(body: str) -> str:
    lines = body.rstrip().splitlines()
    if lines and _CLOSING_LINK_RE.match(lines[-1]):
        lines = lines[:-1]
    return "\n".join(lines)


def clean_markdown(md: str) -> tuple[str, list[str]]:
    """Markdown -> plain text and the link targets that were in it (images dropped)."""
    links: list[str] = []

    def link(m: re.Match[str]) -> str:
        if m.group(2):
            links.append(m.group(2))
        return m.group(1)

    text = nfkc(md).replace("\r\n", "\n").replace("\r", "\n")
    text = _IMG_RE.sub("", text)
    text = _LINK_RE.sub(link, text)
    text = _AUTOLINK_RE.sub(lambda m: (links.append(m.group(1)), m.group(1))[1], text)
    text = _HTML_TAG_RE.sub("", text)
    text = _CODE_FENCE_RE.sub("", text)
    text = _RULE_RE.sub("", text)
    text = _HEADING_RE.sub("", text)
    text = _LIST_RE.sub("", text)
    text = _QUOTE_RE.sub("", text)
    for _ in range(2):  # nested emphasis (***x***, **_x_**)
        text = _EMPH_RE.sub(r"\2", text)
    lines = [ln.strip() for ln in text.split("\n")]
    text = _BLANKS_RE.sub("\n\n", "\n".join(lines)).strip()
    return text, links


def detect_lang(text: str) -> str:
    """zh-CN when CJK characters make up a real share of the letters, else en."""
    sample = text[:4000]
    cjk = len(_CJK_CHAR_RE.findall(sample))
    latin_words = len(re.findall(r"[A-Za-z]+", sample))
    if cjk == 0:
        return "en"
    # One CJK character carries about as much as one English word.
    return "zh-CN" if cjk >= 0.3 * latin_words else "en"
