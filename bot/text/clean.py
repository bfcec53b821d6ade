"""Body cleaning for later stages: Markdown markup out, link targets kept, NFKC.

Ingest runs this on every article, so the hot paths avoid whole-text multiline
regexes (slow in ``re``): block markup is stripped line by line and inline
patterns only run when their marker character is present.
"""

from __future__ import annotations

import re
import unicodedata

from bot.text.tokenize import _CJK

_IMG_RE = re.compile(r"!\[([^\]\n]*)\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")
# An image whose address the crawler cut off ("![](https://i0.wp.com/se..."): its URL is no text.
_CUT_IMG_RE = re.compile(r"!\[[^\]\n]*\]\([^)\n]*$", re.MULTILINE)
# A signed advisory's signature or key: base64 lines that would pass for its rarest words.
_PGP_BEGIN = "-----BEGIN PGP "
_PGP_KINDS = ("SIGNATURE-----", "PUBLIC KEY BLOCK-----")
_LINK_RE = re.compile(r"(?<!!)\[([^\]\n]*)\]\(([^)\s]*)(?:\s+\"[^\"]*\")?\)")
_AUTOLINK_RE = re.compile(r"<(https?://[^>\s]+)>")
_HTML_TAG_RE = re.compile(r"</?[a-zA-Z][^>\n]*>")
_EMPH_RE = re.compile(r"(\*{1,3}|_{2,3}|~~)(?=\S)([^\n]+?)(?<=\S)\1")
# Block prefixes of one line: heading marks, quote marks, list bullets (applied repeatedly: "> * x").
_PREFIX_RE = re.compile(r"#{1,6}(?:\s+|$)|>\s?|(?:[*+-]|\d+[.)])(?:\s+|$)")
_RULE_RE = re.compile(r"(?:[-*_]\s*){3,}")
_BLANKS_RE = re.compile(r"\n{3,}")
_CLOSING_LINK_RE = re.compile(r"^\s*\[([^\]]+)\]\((https?://[^)\s]+)\)\s*$")
_CJK_RUN_RE = re.compile(rf"[{_CJK}]+")
_LATIN_WORD_RE = re.compile(r"[A-Za-z]+")


def nfkc(text: str) -> str:
    # The quick check is far cheaper than normalising text that is already normal (most of it).
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


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


def _strip_block(line: str) -> str:
    """One line without its block markup (fences and rules become empty lines)."""
    s = line.strip()
    if not s:
        return ""
    if s.startswith("```") or (s[0] in "-*_" and _RULE_RE.fullmatch(s)):
        return ""
    for _ in range(4):  # nested prefixes: "> * item", "> ## heading"
        if s[0] not in "#>*+-0123456789":
            break
        m = _PREFIX_RE.match(s)
        if not m:
            break
        s = s[m.end():].lstrip()
        if not s:
            break
    return s


def _cut_pgp(text: str) -> str:
    """Drop PGP signature and key blocks (one pass, ``str.find`` only: linear on any input); a
    block the crawler cut before its end runs to the end of the text."""
    out: list[str] = []
    at = 0
    while (i := text.find(_PGP_BEGIN, at)) >= 0:
        kind = next((k for k in _PGP_KINDS if text.startswith(k, i + len(_PGP_BEGIN))), None)
        if kind is None:  # a signed message's header: its text is the advisory
            out.append(text[at: i + len(_PGP_BEGIN)])
            at = i + len(_PGP_BEGIN)
            continue
        out.append(text[at:i])
        end = text.find("-----END PGP " + kind, i)
        at = len(text) if end < 0 else end + len("-----END PGP ") + len(kind)
    out.append(text[at:])
    return "".join(out)


def clean_markdown(md: str) -> tuple[str, list[str]]:
    """Markdown -> plain text and the link targets that were in it (images dropped)."""
    links: list[str] = []

    def link(m: re.Match[str]) -> str:
        if m.group(2):
            links.append(m.group(2))
        return m.group(1)

    def autolink(m: re.Match[str]) -> str:
        links.append(m.group(1))
        return m.group(1)

    text = nfkc(md)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _PGP_BEGIN in text:
        text = _cut_pgp(text)
    if "](" in text:
        if "![" in text:
            text = _CUT_IMG_RE.sub("", _IMG_RE.sub("", text))
        text = _LINK_RE.sub(link, text)
    if "<" in text:
        text = _AUTOLINK_RE.sub(autolink, text)
        text = _HTML_TAG_RE.sub("", text)
    text = "\n".join(map(_strip_block, text.split("\n")))
    if "*" in text or "__" in text or "~~" in text:
        for _ in range(2):  # nested emphasis (***x***, **_x_**)
            text = _EMPH_RE.sub(r"\2", text)
    text = _BLANKS_RE.sub("\n\n", text).strip()
    return text, links


def detect_lang(text: str) -> str:
    """zh-CN when CJK characters make up a real share of the letters, else en."""
    sample = text[:4000]
    cjk = sum(len(run) for run in _CJK_RUN_RE.findall(sample))
    if cjk == 0:
        return "en"
    latin_words = len(_LATIN_WORD_RE.findall(sample))
    # One CJK character carries about as much as one English word.
    return "zh-CN" if cjk >= 0.3 * latin_words else "en"
