"""Address guard for outgoing fetches: no private, loopback, link-local or reserved targets.

A feed URL comes from configuration, but it redirects wherever its server likes, and a
host name can resolve anywhere. So every hop is checked (every address the name resolves
to, not only the first), and the transport we build ourselves checks again at connect time
and connects to the address it checked, so a name that changes its answer between the
check and the connection (DNS rebinding) gets nowhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Checked in this order so the reason names the most specific class (127.0.0.1 is also "private").
_CLASSES = (
    ("is_unspecified", "unspecified"),
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_reserved", "reserved"),
    ("is_private", "private"),
)


class AddressRefused(Exception):
    """The target resolves to an address that fetches may not reach."""


class ResolveError(Exception):
    """The host name could not be resolved."""


def refusal_reason(address: str | IPAddress) -> str | None:
    """Why ``address`` may not be fetched from (e.g. 'loopback'), or None when it is public."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        # ::ffff:127.0.0.1 and 64:ff9b::7f00:1 reach IPv4 hosts: judge the IPv4 address.
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    for attr, label in _CLASSES:
        if getattr(ip, attr):
            return label
    if not ip.is_global:  # e.g. 100.64.0.0/10 (carrier-grade NAT)
        return "not globally routable"
    return None


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IP literals resolve to themselves)."""
    literal = host.strip("[]")
    try:
        return [str(ipaddress.ip_address(literal))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(literal, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ResolveError(f"cannot resolve host {host!r}: {exc}") from None
    out: list[str] = []
    for info in infos:
        addr = str(info[4][0])
        if addr not in out:
            out.append(addr)
    if not out:
        raise ResolveError(f"cannot resolve host {host!r}: no addresses")
    return out


def check_addresses(host: str, addresses: Iterable[str]) -> None:
    for addr in addresses:
        reason = refusal_reason(addr)
        if reason:
            raise AddressRefused(
                f"{host} resolves to {addr} ({reason}); set allow_private_addresses: true to fetch it"
            )


async def check_host(host: str, port: int) -> list[str]:
    """The addresses of ``host``, after checking that every one of them is public."""
    addresses = await resolve(host, port)
    check_addresses(host, addresses)
    return addresses


async def check_url(url: str, *, allow_private: bool) -> None:
    """Raise AddressRefused / ResolveError / ValueError unless ``url`` may be fetched."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url}")
    if allow_private:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    await check_host(parts.hostname, port)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks and connects to the checked address: the connect-time half of the guard."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await check_host(host, port)
        except (AddressRefused, ResolveError) as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        last: Exception | None = None
        for addr in addresses:
            try:
                return await self._inner.connect_tcp(addr, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:  # try the next address
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not fetched from")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the connect-time address check (no proxy support by design)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # httpx offers no way to pass a network backend to its pool; set the pool's own slot.
        self._pool._network_backend = _GuardedBackend()  # type: ignore[union-attr]
