"""Masking secrets in text that is shown or logged.

Three kinds of secret are masked wherever they appear: the values the configuration
resolved as secrets (tokens, signing secrets, passwords), anything shaped like a Telegram or
Slack token, and the password in a URL's userinfo (``scheme://user:pass@host`` shows as
``scheme://user:***@host``). The patterns catch what the configuration does not know, e.g. a
token a library echoes back in an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MASK = "***"
# Shorter configured values are not masked as text: "abc" would blank out every "abc".
MIN_SECRET_CHARS = 6

# Telegram: the token follows "bot" in every Bot API URL (…/bot123456:ABC…/sendMessage); bare
# tokens are <bot id>:<35 characters>. The bot id stays visible (it is public); the rest goes.
_TG_URL_RE = re.compile(r"(?<![A-Za-z0-9])(bot\d+:)[A-Za-z0-9_-]+")
_TG_BARE_RE = re.compile(r"(?<![\w-])(\d{5,}:)[A-Za-z0-9_-]{30,}")
_SLACK_RE = re.compile(r"\b(xox[abposre]|xapp)-[A-Za-z0-9-]+")
_USERINFO_RE = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*):[^\s/@]*@")


def mask_patterns(text: str) -> str:
    """Token-shaped strings and URL passwords masked (no configured values needed)."""
    if "bot" in text:
        text = _TG_URL_RE.sub(rf"\g<1>{MASK}", text)
    if ":" in text:
        text = _TG_BARE_RE.sub(rf"\g<1>{MASK}", text)
        if "@" in text:
            text = _USERINFO_RE.sub(rf"\g<1>:{MASK}@", text)
    if "x" in text:
        text = _SLACK_RE.sub(rf"\g<1>-{MASK}", text)
    return text


def mask_userinfo(url: str) -> str:
    """A URL without its password (``http://user:***@host/…``), for reports and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_patterns(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def strip_userinfo(url: str) -> str:
    """A URL without ``user:pass@`` at all: a base for links that others will see."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


class Redactor:
    """Masks the given secret values and the token / URL-password patterns in any text."""

    def __init__(self, secrets: Iterable[str] = ()):
        forms: set[str] = set()
        for s in secrets:
            if not isinstance(s, str) or len(s) < MIN_SECRET_CHARS:
                continue
            # As written, percent-encoded or decoded (a URL password), JSON-escaped (--json output).
            for form in (s, unquote(s)):
                forms.update({form, quote(form, safe=""), json.dumps(form)[1:-1]})
        self._secrets_re = (re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))
                            if forms else None)

    def __call__(self, text: str) -> str:
        text = mask_patterns(text)  # first: it keeps what is not secret (a bot's id, a user name)
        if self._secrets_re is not None:
            text = self._secrets_re.sub(MASK, text)
        return text
