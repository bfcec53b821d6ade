"""Units behind the feed source: the address guard, HTML -> text, dates, languages, XML fix-ups."""

from __future__ import annotations

import html
import ipaddress
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import FeedSourceConfig, Settings
from bot.i18n import language_tag
from bot.sources import address_guard as net
from bot.sources.base import SourceState
from bot.sources.feed import FeedSource, choose_lang
from bot.sources.feed_parse import FeedError, parse_date, parse_feed
from bot.text.html import html_to_text

SHANGHAI = ZoneInfo("Asia/Shanghai")

# --- address guard ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("addr", "reason"),
    [
        ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"), ("172.16.0.1", "private"),
        ("192.168.1.1", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("224.0.0.1", "multicast"),
        ("fc00::1", "private"), ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a9fe:a9fe", "link-local"), ("100.64.0.1", "not globally routable"),
        ("240.0.0.1", "reserved"), ("8.8.8.8", None), ("2606:4700::1111", None), ("93.184.216.34", None),
    ],
)
def test_refusal_reason(addr: str, reason: str | None) -> None:
    assert net.refusal_reason(addr) == reason


@given(st.sampled_from(["10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"]),
       st.integers(min_value=0, max_value=2**32 - 1))
def test_every_private_ipv4_is_refused(network: str, n: int) -> None:
    net_ = ipaddress.IPv4Network(network)
    addr = net_[n % net_.num_addresses]
    assert net.refusal_reason(addr) is not None
    # The same address reached through an IPv4-mapped IPv6 address is refused too.
    assert net.refusal_reason(f"::ffff:{addr}") is not None


async def test_check_url_checks_every_address(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake_resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.7"]  # one public, one private: refused

    monkeypatch.setattr(net, "resolve", fake_resolve)
    with pytest.raises(net.AddressRefused, match=r"10\.0\.0\.7 \(private\)"):
        await net.check_url("https://mixed.example.com/feed", allow_private=False)
    await net.check_url("https://mixed.example.com/feed", allow_private=True)
    with pytest.raises(ValueError, match="not an http"):
        await net.check_url("file:///etc/passwd", allow_private=True)


async def test_redirect_to_private_address_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every hop is checked: a public feed that redirects inside the network gets nowhere."""
    addresses = {"feed.example.com": ["93.184.216.34"], "intranet.example.com": ["192.168.0.10"]}

    async def fake_resolve(host: str, port: int) -> list[str]:
        return addresses[host]

    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "http://intranet.example.com/admin"})

    monkeypatch.setattr(net, "resolve", fake_resolve)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        cfg = FeedSourceConfig(type="feed", name="t", url="https://feed.example.com/rss")
        res = await FeedSource(cfg, Settings(), client=client).fetch(SourceState())
    assert res.error and "intranet.example.com resolves to 192.168.0.10 (private)" in res.error
    assert seen == ["https://feed.example.com/rss"]


async def test_guarded_transport_refuses_at_connect_time() -> None:
    """Our own transport re-checks when it connects (a name may resolve differently by then)."""
    app = web.Application()
    app.router.add_get("/", lambda r: web.Response(text="hi"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with httpx.AsyncClient(transport=net.GuardedTransport()) as client:
            with pytest.raises(httpx.ConnectError, match="loopback"):
                await client.get(f"http://127.0.0.1:{port}/")
        async with httpx.AsyncClient() as plain:  # the same server is reachable without the guard
            assert (await plain.get(f"http://127.0.0.1:{port}/")).text == "hi"
    finally:
        await runner.cleanup()


async def test_guarded_transport_connects_to_the_address_it_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """No second lookup after the check: the connection goes to the checked address."""
    app = web.Application()
    app.router.add_get("/", lambda r: web.Response(text=r.host))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    checked: list[str] = []

    async def fake_resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]  # "feed.invalid" exists only here: any real lookup would fail

    def fake_reason(addr: str | Any) -> None:
        checked.append(str(addr))
        return None  # pretend it is public, so the request goes ahead

    monkeypatch.setattr(net, "resolve", fake_resolve)
    monkeypatch.setattr(net, "refusal_reason", fake_reason)
    try:
        async with httpx.AsyncClient(transport=net.GuardedTransport()) as client:
            resp = await client.get(f"http://feed.invalid:{port}/")
        assert resp.text == f"feed.invalid:{port}"  # Host header kept, TCP went to the checked address
        assert checked == ["127.0.0.1"]
    finally:
        await runner.cleanup()


# --- HTML -> text -------------------------------------------------------------------------------


def test_html_to_text_structure_and_links() -> None:
    text, links = html_to_text(
        '<div><h2>Title</h2><p>One <a href="/a">link</a> and <a href="https://x.example.com/b">another</a>'
        '<img src="/i.png" alt="pic"></p><ul><li>first</li><li>second</li></ul>'
        "<script>alert(1)</script><style>p{}</style><p>last&nbsp;&amp;&#x4e2d;</p></div>",
        "https://site.example.com/post/1",
    )
    assert text == "Title\n\nOne link and another\n\nfirst\nsecond\n\nlast &中"
    assert links == ["https://site.example.com/a", "https://x.example.com/b"]


def test_html_to_text_skips_non_http_links_and_survives_broken_markup() -> None:
    broken = '<p>a <a href="javascript:x()">b</a> <a href="mailto:c@d">c</a><div><p>unclosed'
    text, links = html_to_text(broken)
    assert text == "a b c\n\nunclosed"
    assert links == []


@settings(max_examples=200)
@given(st.text())
def test_escaped_text_round_trips(s: str) -> None:
    """Any text, HTML-escaped, comes back as itself (modulo NFKC and whitespace tidying)."""
    from bot.text.html import plain_text

    text, links = html_to_text(html.escape(s))
    assert links == []
    assert " ".join(text.split()) == " ".join(plain_text(s.replace("\x00", "")).split())  # NUL is dropped


@given(st.text(alphabet=st.sampled_from("<>/=\"' &;#abpdivlrhfx\n"), max_size=200))
def test_html_to_text_never_raises(s: str) -> None:
    text, _ = html_to_text(s)
    assert "<script" not in text.lower() or "<script" in s.lower()


# --- dates ----------------------------------------------------------------------------------------


ZONES = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))])


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=ZONES))
def test_aware_dates_round_trip(when: datetime) -> None:
    when = when.replace(microsecond=0)
    assert parse_date(format_datetime(when), None, SHANGHAI) == when
    assert parse_date(when.isoformat(), None, SHANGHAI) == when


def test_naive_dates_take_the_source_zone() -> None:
    expect = datetime(2025, 3, 11, 2, 0, tzinfo=UTC)
    assert parse_date("Tue, 11 Mar 2025 10:00:00", None, SHANGHAI) == expect
    assert parse_date("2025-03-11T10:00:00", None, SHANGHAI) == expect
    assert parse_date("2025-03-11 10:00:00", None, SHANGHAI) == expect
    assert parse_date("Tue, 11 Mar 2025 10:00:00 -0000", None, SHANGHAI) == expect


def test_cst_means_china_standard_time_for_a_chinese_source() -> None:
    assert parse_date("Tue, 11 Mar 2025 10:00:00 CST", None, SHANGHAI) == datetime(2025, 3, 11, 2, tzinfo=UTC)
    chicago = ZoneInfo("America/Chicago")
    assert parse_date("Tue, 11 Mar 2025 10:00:00 CST", None, chicago) == datetime(2025, 3, 11, 16, tzinfo=UTC)


def test_unparseable_date_falls_back() -> None:
    fallback = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_date("sometime last week", fallback, SHANGHAI) == fallback
    assert parse_date("garbage", None, SHANGHAI) is None
    assert parse_date(None, None, SHANGHAI) is None


def test_missing_and_future_dates_use_fetch_time() -> None:
    from bot.sources.feed_parse import FeedDoc, FeedEntry

    src = FeedSource(FeedSourceConfig(type="feed", name="t", url="https://e.example.com/f"), Settings())
    now = datetime(2025, 3, 12, tzinfo=UTC)
    feed = "https://e.example.com/f"
    none = src._article(FeedEntry(0, title="a", content="x"), FeedDoc("rss20"), feed, "o", now)
    future = src._article(FeedEntry(1, title="b", content="y", published="2099-01-01T00:00:00Z"),
                          FeedDoc("rss20"), feed, "o", now)
    assert none.published_at == now and none.warnings == ["entry has no date; used the fetch time"]
    assert future.published_at == now and "in the future" in future.warnings[0]
    assert none.external_id.startswith("sha256:")  # no guid, no link: the content hash


# --- languages and parse edge cases -------------------------------------------------------------


@pytest.mark.parametrize(("code", "norm"), [("zh-cn", "zh-CN"), ("zh_Hans", "zh-CN"), ("en-US", "en"),
                                            ("EN", "en"), ("ja", "ja"), (None, ""), ("", "")])
def test_norm_lang(code: str | None, norm: str) -> None:
    assert language_tag(code) == norm


def test_choose_lang_lets_the_text_overrule_a_cms_default() -> None:
    assert choose_lang("en-us", "青岚汽车发布电池", "合肥工厂四季度投产，续航一千公里。") == "zh-CN"
    assert choose_lang("zh-cn", "Fabrikam outage", "The east-2 region was down for six hours.") == "en"
    assert choose_lang("ja", "タイトル", "本文") == "ja"
    assert choose_lang(None, "Hello", "world") == "en"


@pytest.mark.parametrize(
    ("body", "ctype", "reason"),
    [
        (b"", "application/rss+xml", "empty response"),
        (b"just some words", "text/plain", "not an RSS, Atom or JSON feed"),
        (b"{not json", "application/json", "malformed JSON Feed: line 1"),
        (b'{"title": "x"}', "application/json", "not a JSON Feed"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": 3}', "", "malformed JSON Feed: 'items'"),
        (b"<html><body>hi</body></html>", "text/xml", "not a feed: the server returned an HTML page"),
    ],
)
def test_not_a_feed(body: bytes, ctype: str, reason: str) -> None:
    with pytest.raises(FeedError) as exc:
        parse_feed(body, ctype)
    assert str(exc.value).startswith(reason)


def test_html_entities_in_xml_are_not_fatal() -> None:
    doc = parse_feed(b'<?xml version="1.0"?><rss version="2.0"><channel><title>A&nbsp;B&mdash;C</title>'
                     b"<item><title>x &hellip; y &amp; z</title><guid>1</guid></item></channel></rss>", "")
    assert doc.title == "A\u00a0B\u2014C"
    assert doc.entries[0].title == "x \u2026 y & z"


def test_gb2312_declared_feed_with_gbk_only_characters() -> None:
    data = ('<?xml version="1.0" encoding="gb2312"?><rss version="2.0"><channel><title>镕基</title>'
            "<item><title>朱镕基</title><guid>1</guid></item></channel></rss>").encode("gbk")
    doc = parse_feed(data, "text/xml; charset=gb2312")
    assert doc.title == "镕基" and doc.entries[0].title == "朱镕基"


def _json(items: list[Any]) -> bytes:
    import json

    return json.dumps({"version": "https://jsonfeed.org/version/1", "title": "J", "items": items}).encode()


def test_json_feed_1_0_fields() -> None:
    doc = parse_feed(_json([{"id": "a", "external_url": "https://x.example.com/1", "summary": "s",
                             "content_text": "t", "date_modified": "2025-03-10T00:00:00+08:00"}]))
    (e,) = doc.entries
    assert doc.kind == "json1" and e.link == "https://x.example.com/1" and not e.content_html
    assert parse_date(e.published, None, SHANGHAI) == datetime(2025, 3, 9, 16, 0, tzinfo=UTC)


# U+0080-U+00FF left out: feedparser deliberately "repairs" text that is all Latin-1 and reads as
# UTF-8 once re-encoded (double-encoded mojibake such as "Ã©"), so such strings do not round-trip.
_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"),
                                       exclude_characters=[chr(c) for c in range(0x80, 0x100)]), max_size=80)


@settings(max_examples=100, deadline=None)
@given(title=_TEXT, description=_TEXT, guid=st.one_of(st.none(), st.text(alphabet="abc123-_.", min_size=1)))
def test_any_rss_item_becomes_an_article_or_a_clear_rejection(title: str, description: str,
                                                              guid: str | None) -> None:
    """Whatever text an item carries, escaped into XML it parses back to the same words."""
    from bot.sources.feed import EntryRejected
    from bot.text.html import one_line, plain_text

    esc = html.escape
    item = f"<title>{esc(title)}</title><description>{esc(esc(description))}</description>"
    if guid:
        item += f"<guid>{esc(guid)}</guid>"
    xml = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title><item>{item}'
    doc = parse_feed((xml + "</item></channel></rss>").encode(), "application/rss+xml")
    src = FeedSource(FeedSourceConfig(type="feed", name="t", url="https://e.example.com/f"), Settings())
    now = datetime(2025, 3, 12, tzinfo=UTC)
    try:
        art = src._article(doc.entries[0], doc, "https://e.example.com/f", "T", now)
    except EntryRejected as exc:
        assert not one_line(plain_text(title)) and not plain_text(description).strip()
        assert "neither a title nor any text" in str(exc)
        return
    words = " ".join(plain_text(description).split())
    assert " ".join(art.body.split()) == words
    if one_line(plain_text(title)):
        assert art.title == one_line(plain_text(title))
    assert art.external_id == (guid.strip() if guid and guid.strip() else f"sha256:{art.content_hash}")
    assert art.published_at == now and art.lang in ("zh-CN", "en")


def test_rss_091_parsed() -> None:
    doc = parse_feed(b'<?xml version="1.0" encoding="ISO-8859-1"?><rss version="0.91"><channel>'
                     b"<title>Oldies</title><link>https://o.example.com/</link><language>en</language>"
                     b"<item><title>Caf\xe9 opens</title><link>https://o.example.com/1</link>"
                     b"<description>A &lt;b&gt;new&lt;/b&gt; caf\xe9.</description></item>"
                     b"</channel></rss>", "")
    assert doc.kind.startswith("rss09") and doc.title == "Oldies" and doc.lang == "en"
    src = FeedSource(FeedSourceConfig(type="feed", name="t", url="https://o.example.com/rss"), Settings())
    art = src._article(doc.entries[0], doc, "https://o.example.com/rss", "Oldies", datetime.now(UTC))
    assert art.title == "Café opens" and art.body == "A new café."
    assert art.external_id == "https://o.example.com/1"


def test_feed_served_as_text_html_is_still_a_feed() -> None:
    """Misconfigured servers send RSS as text/html; the document decides, not the header."""
    rss = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><title>x</title>'
    doc = parse_feed(rss + b"<guid>1</guid></item></channel></rss>", "text/html; charset=utf-8")
    assert doc.kind == "rss20" and doc.entries[0].title == "x"


def test_a_date_before_year_one_in_utc_falls_back() -> None:
    """0001-01-01T00:00:00+01:00 is in year 0 in UTC: not an OverflowError, the fallback."""
    fallback = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_date("0001-01-01T00:00:00+01:00", fallback, SHANGHAI) == fallback
    assert parse_date("0001-01-01T00:00:00+01:00", None, SHANGHAI) is None
    assert parse_date("0001-01-01T00:00:00", None, SHANGHAI) is None  # naive, read at +08:00

    from bot.sources.feed_parse import FeedDoc, FeedEntry

    src = FeedSource(FeedSourceConfig(type="feed", name="t", url="https://e.example.com/f"), Settings())
    now = datetime(2025, 3, 12, tzinfo=UTC)
    art = src._article(FeedEntry(0, title="a", content="x", published="0001-01-01T00:00:00+01:00"),
                       FeedDoc("rss20"), "https://e.example.com/f", "o", now)
    assert art.published_at == now and "unparseable date" in art.warnings[0]
