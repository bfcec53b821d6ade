"""What every command handler shares: its context, the usage error, argument parsing."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.i18n import t
from bot.model import Filters, Incoming, Reply, Subscription

if TYPE_CHECKING:
    from bot.app import App

MAX_FILTER_TERMS = 30
MAX_TERM_CHARS = 40


class Usage(Exception):
    """Malformed arguments: answer with the usage line ``key``."""

    def __init__(self, key: str, **kw: Any):
        super().__init__(key)
        self.key = key
        self.kw = kw


@dataclass(slots=True)
class Ctx:
    app: App
    incoming: Incoming
    sub: Subscription | None
    locale: str

    def t(self, key: str, **kw: Any) -> str:
        return t(self.locale, f"commands.{key}", **kw)

    def cmd(self, name: str) -> str:
        """How the user types command ``name`` on this platform ('/search' or '/digest search')."""
        return f"{self.incoming.extra.get('command_prefix', '/')}{name}"


Handler = Callable[[Ctx], Awaitable[Reply]]


_SPLIT = re.compile(r"[\s,，、;；]+")
_OUTLET_PREFIXES = ("source:", "outlet:", "来源:", "来源：", "媒体:", "媒体：")


def printable(text: str) -> str:
    # Control and format characters (NUL, zero-width spaces) never belong in a keyword; PostgreSQL
    # also refuses NUL in text.
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))


def terms(args: str) -> list[str]:
    out: list[str] = []
    for w in _SPLIT.split(printable(args or "")):
        w = w.strip()
        if not w:
            continue
        if len(w) > MAX_TERM_CHARS:
            raise Usage("term_too_long", n=MAX_TERM_CHARS)
        if w not in out:
            out.append(w)
    if len(out) > MAX_FILTER_TERMS:
        raise Usage("too_many_terms", n=MAX_FILTER_TERMS)
    return out


def apply_filter_args(current: Filters, args: str) -> Filters:
    """'+苹果 -广告 source:亿欧 -source:某站' (or 'clear') applied to ``current`` -> new Filters."""
    words = terms(args)
    if [w.lower() for w in words] in (["clear"], ["清除"], ["reset"]):
        return Filters()
    f = Filters.from_dict(current.as_dict())

    for raw in words:
        sign, w = "+", raw
        if w[0] in "+-−":
            sign, w = ("-" if w[0] != "+" else "+"), w[1:]
        outlet = next((w[len(p):] for p in _OUTLET_PREFIXES if w.lower().startswith(p)), None)
        # Keywords or outlets: a word goes on the wanted or the unwanted list, and off the other.
        wanted, unwanted = (f.include, f.exclude) if outlet is None else (f.outlets, f.exclude_outlets)
        w = w if outlet is None else outlet
        if not w:
            raise Usage("filter", filter="/filter")
        to, off = (wanted, unwanted) if sign == "+" else (unwanted, wanted)
        if w in off:
            off.remove(w)
        if w not in to:
            to.append(w)
    for lst in (f.include, f.exclude, f.outlets, f.exclude_outlets):
        if len(lst) > MAX_FILTER_TERMS:
            raise Usage("too_many_terms", n=MAX_FILTER_TERMS)
    return f


def filters_text(ctx: Ctx, f: Filters) -> str:
    parts = []
    if f.include:
        parts.append(ctx.t("f_include", words=", ".join(f.include)))
    if f.exclude:
        parts.append(ctx.t("f_exclude", words=", ".join(f.exclude)))
    if f.outlets:
        parts.append(ctx.t("f_outlets", words=", ".join(f.outlets)))
    if f.exclude_outlets:
        parts.append(ctx.t("f_exclude_outlets", words=", ".join(f.exclude_outlets)))
    return "; ".join(parts) if parts else ctx.t("f_none")
