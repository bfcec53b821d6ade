"""HTML (feed content) -> plain text for later stages, keeping link targets as metadata.

Same contract as clean.clean_markdown: images dropped, link text kept, targets collected,
paragraphs separated by one blank line, NFKC. Built on the stdlib parser, which never
raises on broken markup, so any feed's HTML gives some text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from bot.text.clean import nfkc
from bot.text.tokenize import _CJK

# Elements whose content is never reader text.
_SKIP = frozenset({"script", "style", "noscript", "template", "head", "title", "iframe", "object",
                   "svg", "math", "select", "button", "form"})
# Elements that end a paragraph.
_PARA = frozenset({"p", "div", "section", "article", "header", "footer", "aside", "main", "nav",
                   "blockquote", "pre", "figure", "figcaption", "table", "ul", "ol", "dl",
                   "h1", "h2", "h3", "h4", "h5", "h6", "hr", "details", "summary", "address"})
# Elements that end a line.
_LINE = frozenset({"br", "li", "tr", "dt", "dd", "caption"})
_CELL = frozenset({"td", "th"})
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed",
                   "source", "track", "wbr", "param"})

_WS_RE = re.compile(r"[ \t\r\f\v\n\u00a0\u3000]+")
# A source line break between two CJK characters is not a space in Chinese text.
# (CJK punctuation and full-width forms count: "，\n能" is one sentence.)
_WIDE = _CJK + r"\u3000-\u303f\uff00-\uffef"
_CJK_BREAK_RE = re.compile(rf"(?<=[{_WIDE}])[ \t\r\f\v]*\n\s*(?=[{_WIDE}])")
_BLANKS_RE = re.compile(r"\n{3,}")
_PARA_MARK = "\x00P"
_LINE_MARK = "\x00L"
_MARKS_RE = re.compile(r"(?:[ \t]*\x00[PL])+[ \t]*")


class _Extractor(HTMLParser):
    def __init__(self, base_url: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.parts: list[str] = []
        self.links: list[str] = []
        self._skip = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            if tag not in _VOID:
                self._skip += 1
            return
        if self._skip:
            return
        if tag == "pre":
            self._pre += 1
        if tag in _PARA:
            self.parts.append(_PARA_MARK)
        elif tag in _LINE:
            self.parts.append(_LINE_MARK)
        elif tag in _CELL:
            self.parts.append(" ")
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self._add_link(href)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/>, <img/>, <a href=".."/>: same as an opening tag, with nothing to close.
        if tag in _SKIP:
            return
        self.handle_starttag(tag, attrs)
        if tag == "pre":
            self._pre = max(0, self._pre - 1)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
            return
        if self._skip:
            return
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in _PARA:
            self.parts.append(_PARA_MARK)
        elif tag in _LINE and tag != "br":
            self.parts.append(_LINE_MARK)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._pre:
            self.parts.append(data.replace("\n", _LINE_MARK))
        else:
            self.parts.append(_WS_RE.sub(" ", _CJK_BREAK_RE.sub("", data)))

    def _add_link(self, href: str) -> None:
        href = href.strip()
        url = urljoin(self.base_url, href) if self.base_url else href
        if urlsplit(url).scheme in ("http", "https") and url not in self.links:
            self.links.append(url)


def html_to_text(html: str, base_url: str | None = None) -> tuple[str, list[str]]:
    """HTML -> (plain text, absolute http(s) link targets in order of appearance)."""
    if not html:
        return "", []
    parser = _Extractor(base_url)
    try:
        parser.feed(html.replace("\x00", ""))  # NUL is never text, and it marks breaks below
        parser.close()
    except (AssertionError, ValueError):  # the stdlib parser's rare complaints: keep what it got
        pass
    raw = "".join(parser.parts)
    # Runs of breaks merge: a paragraph break wins over line breaks (</li><li> is one line break).
    raw = _MARKS_RE.sub(lambda m: "\n\n" if _PARA_MARK in m.group() else "\n", raw)
    lines = [_WS_RE.sub(" ", ln).strip() for ln in nfkc(raw).split("\n")]
    text = _BLANKS_RE.sub("\n\n", "\n".join(lines)).strip()
    return text, parser.links


def plain_text(text: str) -> str:
    """Already-plain text (a text/plain title or summary): NFKC and tidy whitespace only."""
    lines = [_WS_RE.sub(" ", ln).strip() for ln in nfkc(text).replace("\r\n", "\n").split("\n")]
    return _BLANKS_RE.sub("\n\n", "\n".join(lines)).strip()


def one_line(text: str) -> str:
    """A title: all whitespace, line breaks included, collapsed to single spaces."""
    return _WS_RE.sub(" ", text).strip()
