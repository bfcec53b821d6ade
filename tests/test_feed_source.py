"""FeedSource against a real HTTP server on 127.0.0.1 (aiohttp), through real httpx + feedparser."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.config import FeedSourceConfig, Settings
from bot.sources.base import SourceState
from bot.sources.feed import FeedSource

RSS20 = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel>
<title>Example Wire</title><link>https://wire.example.com/</link><language>en-us</language>
<item>
  <title>Fabrikam restores east-2 &amp; apologises</title>
  <link>https://wire.example.com/a/1?utm_source=rss</link>
  <guid isPermaLink="false">wire-1</guid>
  <pubDate>Tue, 11 Mar 2025 10:05:00 +0000</pubDate>
  <category>Cloud</category>
  <description><![CDATA[<p>Service is <b>back</b>&nbsp;after six hours. <a href="/status">Status</a></p>
  <p>Second paragraph.</p><img src="/x.png">]]></description>
</item>
<item>
  <title>Second item without guid</title>
  <link>https://wire.example.com/a/2?utm_medium=feed#top</link>
  <pubDate>Tue, 11 Mar 2025 18:00:00</pubDate>
  <description>Plain words only.</description>
</item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="zh-CN">
  <title>新智网</title><id>urn:x</id><updated>2025-03-10T08:00:00Z</updated>
  <entry>
    <title type="html">青岚汽车发布&lt;b&gt;半固态电池&lt;/b&gt;</title>
    <id>tag:xinzhi.example.com,2025:1</id>
    <link href="https://xinzhi.example.com/auto/1"/>
    <published>2025-03-10T15:20:00+08:00</published>
    <updated>2025-03-10T16:00:00+08:00</updated>
    <content type="html">&lt;p&gt;青岚汽车今天在合肥发布“磐石”电池，
    能量密度360Wh/kg。&lt;/p&gt;</content>
  </entry>
</feed>"""

RSS10 = """<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://old.example.com/"><title>Old School</title>
    <link>https://old.example.com/</link><description>d</description></channel>
  <item rdf:about="https://old.example.com/n/7">
    <title>RDF still lives</title><link>https://old.example.com/n/7</link>
    <description>An RSS 1.0 item.</description><dc:date>2025-03-11T09:00:00+00:00</dc:date>
  </item>
</rdf:RDF>"""

JSONFEED = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "ByteBeat JSON",
    "home_page_url": "https://bytebeat.example.com/",
    "language": "en",
    "items": [
        {"id": 42, "url": "https://bytebeat.example.com/n/42", "title": "Tern 1.0 ships",
         "content_html": "<p>Contoso released <a href='https://tern.example.com/'>Tern</a>.</p>",
         "date_published": "2025-03-10T14:40:00Z", "tags": ["rust", "build"]},
        {"id": "no-title", "content_text": "A short post with no title at all.\nSecond line.",
         "date_published": "2025-03-10T15:00:00"},
        "not an object",
        {"id": "nothing"},
    ],
}

GBK_RSS = """<?xml version="1.0" encoding="GBK"?>
<rss version="2.0"><channel><title>快报科技</title><language>zh-cn</language>
<item><title>云州地铁全线开通刷掌乘车</title><link>https://kuaibao.example.com/p/1</link>
<guid>kb-1</guid><pubDate>Tue, 11 Mar 2025 12:20:00 +0800</pubDate>
<description>乘客录入掌纹并绑定支付账户后即可进站。镕</description></item>
</channel></rss>""".encode("gbk")


@dataclass
class Server:
    base: str
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.requests if p == path]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server(base="")

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        srv.requests.append((request.path, dict(request.headers)))
        return await handler(request)

    async def rss(request: web.Request) -> web.StreamResponse:
        etag, modified = '"v1"', "Tue, 11 Mar 2025 10:00:00 GMT"
        h = request.headers
        if h.get("If-None-Match") == etag or h.get("If-Modified-Since") == modified:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=RSS20.encode(), content_type="application/rss+xml",
                            headers={"ETag": etag, "Last-Modified": modified})

    async def lm_only(request: web.Request) -> web.StreamResponse:
        modified = "Tue, 11 Mar 2025 10:00:00 GMT"
        if request.headers.get("If-Modified-Since") == modified:
            return web.Response(status=304)
        return web.Response(body=RSS10.encode(), content_type="application/rdf+xml",
                            headers={"Last-Modified": modified})

    def static(body: bytes, ctype: str, status: int = 200) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(body=body, status=status, headers={"Content-Type": ctype})
        return handler

    stop = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 5)
        return web.Response(body=RSS20.encode(), content_type="application/rss+xml")

    async def drip(request: web.Request) -> web.StreamResponse:
        # Each chunk arrives well within a read timeout, but the whole never ends in time.
        resp = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await resp.prepare(request)
        for _ in range(50):
            await resp.write(b" ")
            await asyncio.sleep(0.1)
        return resp

    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await resp.prepare(request)
        await resp.write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
        try:
            for _ in range(200):  # up to 12.8 MB if nobody stops reading
                await resp.write(b"<!--" + b"x" * 65536 + b"-->")
        except (ConnectionResetError, ConnectionError):
            pass
        return resp

    async def big_declared(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b" " * 300_000, content_type="application/rss+xml")

    async def loop(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/loop")

    async def hop(request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        raise web.HTTPFound(f"/hop/{n - 1}" if n > 0 else "/rss")

    app = web.Application(middlewares=[record])
    app.router.add_get("/rss", rss)
    app.router.add_get("/rss10", lm_only)
    app.router.add_get("/atom", static(ATOM.encode(), "application/atom+xml"))
    app.router.add_get("/json", static(json.dumps(JSONFEED).encode(), "application/feed+json"))
    app.router.add_get("/gbk", static(GBK_RSS, "text/xml"))
    malformed = b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title><item><title>Broken</item>'
    app.router.add_get("/malformed", static(malformed, "application/xml"))
    app.router.add_get("/html", static(b"<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>",
                                       "text/html; charset=utf-8"))
    app.router.add_get("/500", static(b"oops", "text/plain", 500))

    async def busy(request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, text="later", headers={"Retry-After": "120"})

    app.router.add_get("/busy", busy)
    app.router.add_get("/slow", slow)
    app.router.add_get("/drip", drip)
    app.router.add_get("/big", big)
    app.router.add_get("/big-declared", big_declared)
    app.router.add_get("/loop", loop)
    app.router.add_get("/hop/{n}", hop)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    srv.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield srv
    finally:
        stop.set()
        await runner.cleanup()


def source(url: str, **kw: Any) -> FeedSource:
    kw.setdefault("allow_private_addresses", True)
    cfg = FeedSourceConfig(type="feed", name="t", url=url, **kw)
    return FeedSource(cfg, Settings(timezone="Asia/Shanghai"))


async def test_rss20_parsed_and_conditional_get(server: Server) -> None:
    src = source(server.url("/rss"))
    first = await src.fetch(SourceState())
    assert first.error is None and not first.not_modified and not first.rejections
    a, b = first.articles
    assert a.external_id == "wire-1"
    assert a.title == "Fabrikam restores east-2 & apologises"
    assert a.url == "https://wire.example.com/a/1?utm_source=rss"
    assert a.published_at == datetime(2025, 3, 11, 10, 5, tzinfo=UTC)
    assert a.body == "Service is back after six hours. Status\n\nSecond paragraph."
    assert a.links == ["https://wire.example.com/status"]
    assert a.outlet == "Example Wire" and a.lang == "en" and a.source == "t"
    assert a.categories == ["Cloud"] and len(a.content_hash) == 64
    # No guid: the canonical URL (tracking parameters and fragment removed) is the identity.
    assert b.external_id == "https://wire.example.com/a/2"
    # A naive pubDate is read in the source's zone (Asia/Shanghai, UTC+8).
    assert b.published_at == datetime(2025, 3, 11, 10, 0, tzinfo=UTC)
    assert first.state.etag == '"v1"' and first.state.last_modified == "Tue, 11 Mar 2025 10:00:00 GMT"
    ua = server.hits("/rss")[0]["User-Agent"]
    assert ua.startswith("digestbot/") and "(+http" in ua

    second = await src.fetch(first.state)
    assert second.not_modified and second.articles == [] and second.error is None
    assert server.hits("/rss")[1]["If-None-Match"] == '"v1"'
    assert second.state.etag == '"v1"'


async def test_if_modified_since_alone_gives_304(server: Server) -> None:
    src = source(server.url("/rss10"))
    first = await src.fetch(SourceState())
    assert first.state.etag is None and first.state.last_modified
    second = await src.fetch(first.state)
    assert second.not_modified and not second.articles
    assert server.hits("/rss10")[1]["If-Modified-Since"] == first.state.last_modified


async def test_rss10_parsed(server: Server) -> None:
    res = await source(server.url("/rss10")).fetch(SourceState())
    (a,) = res.articles
    assert a.title == "RDF still lives" and a.url == "https://old.example.com/n/7"
    assert a.published_at == datetime(2025, 3, 11, 9, 0, tzinfo=UTC)
    assert a.outlet == "Old School" and a.body == "An RSS 1.0 item."


async def test_atom_parsed_chinese(server: Server) -> None:
    res = await source(server.url("/atom")).fetch(SourceState())
    (a,) = res.articles
    assert a.external_id == "tag:xinzhi.example.com,2025:1"
    assert a.title == "青岚汽车发布半固态电池"
    # The source line break inside the Chinese sentence is not a space.
    assert a.body == "青岚汽车今天在合肥发布“磐石”电池,能量密度360Wh/kg。"  # NFKC folds the full-width comma
    assert a.published_at == datetime(2025, 3, 10, 7, 20, tzinfo=UTC)  # published, not updated
    assert a.lang == "zh-CN" and a.outlet == "新智网"


async def test_json_feed_parsed_with_per_item_rejections(server: Server) -> None:
    res = await source(server.url("/json")).fetch(SourceState())
    assert res.error is None
    first, untitled = res.articles
    assert first.external_id == "42" and first.title == "Tern 1.0 ships"
    assert first.body == "Contoso released Tern." and first.links == ["https://tern.example.com/"]
    assert first.published_at == datetime(2025, 3, 10, 14, 40, tzinfo=UTC)
    assert first.tags == ["rust", "build"] and first.outlet == "ByteBeat JSON" and first.lang == "en"
    assert untitled.title == "A short post with no title at all."
    assert untitled.published_at == datetime(2025, 3, 10, 7, 0, tzinfo=UTC)  # naive -> Asia/Shanghai
    assert any("no title" in w.reason for w in res.warnings)
    reasons = sorted(r.reason for r in res.rejections)
    assert reasons == ["JSON Feed item 2 is not an object", "entry has neither a title nor any text"]


async def test_gbk_declared_rss_decoded(server: Server) -> None:
    res = await source(server.url("/gbk")).fetch(SourceState())
    assert res.error is None
    (a,) = res.articles
    assert a.title == "云州地铁全线开通刷掌乘车"
    assert a.body.endswith("即可进站。镕")  # 镕 is GBK but not GB2312
    assert a.outlet == "快报科技" and a.lang == "zh-CN"
    assert a.published_at == datetime(2025, 3, 11, 4, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("path", "expect"),
    [
        ("/malformed", "malformed XML: line 1"),
        ("/html", "not a feed: the server returned an HTML page"),
        ("/500", "HTTP 500 Internal Server Error"),
        ("/busy", "HTTP 503 Service Unavailable (Retry-After: 120)"),
    ],
)
async def test_broken_feeds_reported(server: Server, path: str, expect: str) -> None:
    res = await source(server.url(path)).fetch(SourceState(etag='"old"'))
    assert res.error is not None and res.error.startswith(expect), res.error
    assert [r.where for r in res.rejections] == [server.url(path)]
    assert res.articles == []
    assert res.state.etag == '"old"'  # a failure keeps the validators it had


async def test_slow_feed_times_out(server: Server) -> None:
    started = asyncio.get_running_loop().time()
    res = await source(server.url("/slow"), timeout=0.5).fetch(SourceState())
    assert res.error and "timed out" in res.error
    assert asyncio.get_running_loop().time() - started < 3


async def test_dripping_feed_hits_the_total_deadline(server: Server) -> None:
    started = asyncio.get_running_loop().time()
    res = await source(server.url("/drip"), timeout=1).fetch(SourceState())
    assert res.error == "timed out after 1s"
    assert asyncio.get_running_loop().time() - started < 3


async def test_oversize_feed_cut(server: Server) -> None:
    res = await source(server.url("/big"), max_bytes=200_000).fetch(SourceState())
    assert res.error == "feed too large: stopped reading at max_bytes (200000)"
    declared = await source(server.url("/big-declared"), max_bytes=200_000).fetch(SourceState())
    assert declared.error == "feed too large: 300000 bytes (max_bytes is 200000)"


async def test_redirect_loop_capped(server: Server) -> None:
    res = await source(server.url("/loop"), max_redirects=3).fetch(SourceState())
    assert res.error and res.error.startswith("too many redirects (more than 3")
    assert len(server.hits("/loop")) == 4


async def test_redirects_followed_within_the_cap(server: Server) -> None:
    ok = await source(server.url("/hop/2"), max_redirects=3).fetch(SourceState())
    assert ok.error is None and len(ok.articles) == 2
    capped = await source(server.url("/hop/2"), max_redirects=2).fetch(SourceState())
    assert capped.error and "too many redirects" in capped.error


async def test_private_address_refused_by_default(server: Server) -> None:
    for host in ("127.0.0.1", "localhost"):
        url = server.url("/rss").replace("127.0.0.1", host)
        res = await source(url, allow_private_addresses=False).fetch(SourceState())
        assert res.error and "loopback" in res.error and "allow_private_addresses" in res.error
        assert res.rejections[0].where == url
    assert server.hits("/rss") == []  # refused before any request left
    allowed = await source(server.url("/rss"), allow_private_addresses=True).fetch(SourceState())
    assert allowed.error is None and len(allowed.articles) == 2


async def test_connection_refused_reported() -> None:
    res = await source("http://127.0.0.1:9/feed", timeout=2).fetch(SourceState())
    assert res.error and res.error.startswith("cannot connect")


async def test_injected_client_is_used_and_left_open(server: Server) -> None:
    async with httpx.AsyncClient(headers={"X-Test": "yes"}) as client:
        cfg = FeedSourceConfig(type="feed", name="t", url=server.url("/rss"), allow_private_addresses=True,
                               user_agent="custom-agent/1")
        res = await FeedSource(cfg, Settings(), client=client).fetch(SourceState())
        assert not client.is_closed
    assert len(res.articles) == 2
    hit = server.hits("/rss")[0]
    assert hit["X-Test"] == "yes" and hit["User-Agent"] == "custom-agent/1"
