"""The ``feed`` source: RSS / Atom / JSON Feed over HTTP, politely and defensively.

One fetch = one conditional GET (ETag / If-Modified-Since), redirects followed by hand so
each hop passes the address guard and the hop count is capped, the body streamed and cut
at ``max_bytes``, the whole exchange bounded by ``timeout``. Whatever goes wrong with the
feed as a whole comes back as ``SourceResult.error`` plus a Rejection naming the URL; a
bad entry is a Rejection of its own and the others still count. Nothing here raises.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import httpx

from bot.i18n import language_tag
from bot.model import Article, content_hash
from bot.sources.address_guard import AddressRefused, GuardedTransport, ResolveError, check_url
from bot.sources.base import Rejection, SourceResult, SourceState, future_date, hostname
from bot.sources.feed_parse import FeedDoc, FeedEntry, FeedError, parse_date, parse_feed
from bot.text.clean import detect_lang, nfkc
from bot.text.html import html_to_text, one_line, plain_text
from bot.text.redact import mask_userinfo, strip_userinfo
from bot.text.urls import canonical_url

if TYPE_CHECKING:
    from bot.config import FeedSourceConfig, Settings

log = logging.getLogger(__name__)

PROJECT_URL = "https://github.com/digestbot/digestbot"
ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, "
          "text/xml;q=0.9, application/json;q=0.8, */*;q=0.5")
REDIRECTS = frozenset({301, 302, 303, 307, 308})
TITLE_FROM_TEXT_CHARS = 80
SUMMARY_FALLBACK_CHARS = 120
OUTLET_MAX = 200
_WS_RE = re.compile(r"\s+")
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def user_agent() -> str:
    try:
        ver = version("digestbot")
    except PackageNotFoundError:
        ver = "0"
    return f"digestbot/{ver} (+{PROJECT_URL})"


@dataclass(slots=True)
class Fetched:
    status: int
    url: str  # after redirects
    body: bytes = b""
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None


class FetchError(Exception):
    """The feed could not be fetched; ``str(exc)`` is the reason shown to the user."""


class FeedSource:
    def __init__(self, config: FeedSourceConfig, settings: Settings, client: httpx.AsyncClient | None = None):
        self.config = config
        self.settings = settings
        self.name = config.name
        self.url = str(config.url)  # may carry user:password@ (sent as basic auth): never shown
        self.shown_url = mask_userinfo(self.url)
        self.tz = ZoneInfo(settings.source_timezone(config))
        self._client = client

    # --- fetching -------------------------------------------------------------------------------

    async def fetch(self, state: SourceState) -> SourceResult:
        now = datetime.now(UTC)
        result = SourceResult(state=SourceState(etag=state.etag, last_modified=state.last_modified,
                                                last_fetched_at=now))
        try:
            async with asyncio.timeout(self.config.timeout):
                fetched = await self._get(state)
        except TimeoutError:
            return self._fail(result, f"timed out after {self.config.timeout:g}s")
        except FetchError as exc:
            return self._fail(result, str(exc))
        except (AddressRefused, ResolveError) as exc:
            return self._fail(result, str(exc))
        except httpx.HTTPError as exc:
            return self._fail(result, _network_reason(exc))
        except httpx.InvalidURL as exc:
            return self._fail(result, f"invalid URL: {exc}")
        except Exception as exc:  # a boundary: report, never take the pass down
            log.exception("feed %s: unexpected error fetching %s", self.name, self.shown_url)
            return self._fail(result, f"unexpected error: {type(exc).__name__}: {exc}")

        if fetched.status == 304:
            result.not_modified = True
            return result
        try:
            # feedparser is synchronous and a big feed takes a while: keep the event loop free.
            doc = await asyncio.to_thread(parse_feed, fetched.body, fetched.content_type,
                                        strip_userinfo(fetched.url))
        except FeedError as exc:
            return self._fail(result, str(exc))
        except Exception as exc:
            log.exception("feed %s: parser failed on %s", self.name, fetched.url)
            return self._fail(result, f"cannot parse the feed: {type(exc).__name__}: {exc}")
        # New validators only once the body was usable: a broken feed is fetched (and reported) again.
        result.state.etag = fetched.etag
        result.state.last_modified = fetched.last_modified
        self._collect(doc, fetched.url, now, result)
        return result

    def _fail(self, result: SourceResult, reason: str) -> SourceResult:
        log.warning("feed %s (%s): %s", self.name, self.shown_url, reason)
        result.error = reason
        result.rejections.append(Rejection(where=self.shown_url, reason=reason))
        # The validators stay those of the last good fetch, so the next pass asks conditionally again.
        return result

    async def _get(self, state: SourceState) -> Fetched:
        if self._client is not None:
            return await self._get_with(self._client, state)
        async with self._new_client() as client:
            return await self._get_with(client, state)

    def _new_client(self) -> httpx.AsyncClient:
        timeout = httpx.Timeout(self.config.timeout)
        if self.config.allow_private_addresses or any(os.environ.get(v) for v in _PROXY_VARS):
            # Through a proxy the connect-time guard would check the proxy, not the feed;
            # the per-hop check in _get_with still applies.
            return httpx.AsyncClient(timeout=timeout)
        return httpx.AsyncClient(timeout=timeout, transport=GuardedTransport())

    async def _get_with(self, client: httpx.AsyncClient, state: SourceState) -> Fetched:
        cfg = self.config
        headers = {"User-Agent": cfg.user_agent or user_agent(), "Accept": ACCEPT}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        url = self.url
        for hop in range(cfg.max_redirects + 1):
            try:
                await check_url(url, allow_private=cfg.allow_private_addresses)
            except ValueError as exc:
                raise FetchError(str(exc)) from None
            async with client.stream("GET", url, headers=headers, follow_redirects=False,
                                     timeout=cfg.timeout) as resp:
                status = resp.status_code
                if status in REDIRECTS and resp.headers.get("location"):
                    if hop == cfg.max_redirects:
                        raise FetchError(f"too many redirects (more than {cfg.max_redirects}; last to {url})")
                    url = urljoin(url, resp.headers["location"])
                    continue
                if status == 304:
                    return Fetched(304, url)
                if status >= 400 or status < 200 or status in REDIRECTS:
                    reason = f"HTTP {status} {resp.reason_phrase}".rstrip()
                    if resp.headers.get("retry-after"):
                        reason += f" (Retry-After: {resp.headers['retry-after'][:40]})"
                    raise FetchError(reason)
                length = resp.headers.get("content-length")
                if length and length.isdigit() and int(length) > cfg.max_bytes:
                    raise FetchError(f"feed too large: {int(length)} bytes (max_bytes is {cfg.max_bytes})")
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > cfg.max_bytes:
                        raise FetchError(f"feed too large: stopped reading at max_bytes ({cfg.max_bytes})")
                return Fetched(status, url, bytes(body), resp.headers.get("content-type", ""),
                               resp.headers.get("etag"), resp.headers.get("last-modified"))
        raise FetchError("too many redirects")  # not reached: the loop returns or raises

    # --- entries -> articles --------------------------------------------------------------------

    def _collect(self, doc: FeedDoc, fetched_url: str, now: datetime, result: SourceResult) -> None:
        # Relative links resolve against the feed's URL: without its credentials, which would
        # otherwise end up in articles' links; reports name the feed with the password masked.
        feed_url = strip_userinfo(fetched_url)
        shown = mask_userinfo(fetched_url)
        outlet = nfkc(self.config.outlet or one_line(html_to_text(doc.title)[0]) or hostname(feed_url)
                      or self.name).strip()[:OUTLET_MAX]
        for entry in doc.entries:
            where = entry.link or f"{shown}#entry-{entry.index + 1}"
            if entry.problem:
                result.rejections.append(Rejection(where=where, reason=entry.problem))
                continue
            try:
                article = self._article(entry, doc, feed_url, outlet, now)
            except EntryRejected as exc:
                result.rejections.append(Rejection(where=where, reason=str(exc)))
                continue
            except Exception as exc:  # one odd entry must not cost the others
                log.exception("feed %s: entry %d of %s", self.name, entry.index + 1, shown)
                result.rejections.append(Rejection(where=where, reason=f"{type(exc).__name__}: {exc}"))
                continue
            for w in article.warnings:
                result.warnings.append(Rejection(where=article.url or where, reason=w))
            result.articles.append(article)

    def _article(self, e: FeedEntry, doc: FeedDoc, feed_url: str, outlet: str, now: datetime) -> Article:
        warnings: list[str] = []
        url = _http_url(urljoin(feed_url, e.link)) if e.link else None
        base = url or feed_url
        body, links = _text(e.content, e.content_html, base)
        summary, summary_links = _text(e.summary, e.summary_html, base)
        if not body:
            body, links = summary, summary_links
        title = one_line(_text(e.title, e.title_html, base)[0])
        if not title:
            first = next((ln for ln in body.splitlines() if ln.strip()), "")
            if not first:
                raise EntryRejected("entry has neither a title nor any text")
            cut = TITLE_FROM_TEXT_CHARS
            title = first[:cut].rstrip() + ("…" if len(first) > cut else "")
            warnings.append("entry has no title; used the start of its text")
        if not summary:
            flat = _WS_RE.sub(" ", body).strip()
            summary = flat[:SUMMARY_FALLBACK_CHARS] + ("…" if len(flat) > SUMMARY_FALLBACK_CHARS else "")

        published = parse_date(e.published, e.published_utc, self.tz)
        if published is None:
            warnings.append(f"unparseable date {e.published[:60]!r}; used the fetch time" if e.published
                            else "entry has no date; used the fetch time")
            published = now
        elif ahead := future_date(published, now):
            warnings.append(f"{ahead}; used the fetch time")
            published = now

        digest = content_hash(title, body)
        external_id = (e.guid or "").strip()[:2000] or canonical_url(url) or f"sha256:{digest}"
        return Article(
            source=self.name, external_id=external_id, title=title, body=body, published_at=published,
            outlet=outlet, url=url, path=None, summary=summary,
            lang=choose_lang(e.lang or doc.lang, title, body),
            tags=list(e.tags), categories=list(e.tags), links=links, content_hash=digest, warnings=warnings,
        )


class EntryRejected(Exception):
    pass


def _text(value: str, is_html: bool, base: str) -> tuple[str, list[str]]:
    if not value:
        return "", []
    if is_html:
        return html_to_text(value, base)
    return plain_text(value), []


def _http_url(url: str) -> str | None:
    try:
        return url if canonical_url(url) else None
    except ValueError:  # e.g. a non-numeric port, which urlsplit only notices on .port
        return None


def choose_lang(declared: str | None, title: str, body: str) -> str:
    """The declared language, unless it is zh/en and the text plainly says the other one.

    Feed-level language tags are often a CMS default ("en-us" on a Chinese blog), so for the
    two languages the bot segments differently the text decides.
    """
    lang = language_tag(declared)
    detected = detect_lang(title + "\n" + body)
    if lang in ("", "zh-CN", "en"):
        return detected
    return lang


def _network_reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {exc}" if str(exc) else "cannot connect"
    if isinstance(exc, httpx.DecodingError):
        return f"bad response encoding: {exc}"
    name = type(exc).__name__
    return f"network error: {name}: {exc}" if str(exc) else f"network error: {name}"
