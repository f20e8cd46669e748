"""Fetch only the public internet: the sync's HTTP transport.

Every connection the sync opens resolves its host name once, refuses it when any address the
name resolves to is not public (loopback, private, link-local, multicast, reserved,
unspecified, shared or otherwise not globally routable; an IPv4 address inside IPv6 is judged
as IPv4), and then connects to one of exactly the addresses it checked. Nothing resolves the
name a second time, so a DNS answer that changes between the check and the connection cannot
lead anywhere else. TLS still verifies the certificate for the URL's host name, and the Host
header is the URL's.

`allow_private=True` (QA_SYNC_ALLOW_PRIVATE) turns the refusal off for a newsroom's own
intranet site. Environment proxies are not used: a proxy would resolve the name itself.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpcore
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOW_HINT = "the sync fetches only the public internet; QA_SYNC_ALLOW_PRIVATE=1 allows internal sites"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv4 addresses translated by a NAT64 gateway
# The classes a refusal names, in the order they are tested (169.254.169.254 is link-local
# before it is private).
_CLASSES = (
    ("loopback", "is_loopback"),
    ("unspecified", "is_unspecified"),
    ("link-local", "is_link_local"),
    ("multicast", "is_multicast"),
    ("reserved", "is_reserved"),
    ("private", "is_private"),
)


class AddressRefused(Exception):
    """A host that resolves to an address outside the public internet; the message says which."""


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, 6to4 or NAT64), if any."""
    if address.version != 6:
        return None
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.ipv4_mapped or address.sixtofour


def non_public_class(address: Address) -> str | None:
    """Why `address` is not on the public internet ("loopback", "private", ...), or None when
    it is."""
    inner = embedded_ipv4(address)
    if inner is not None:
        return non_public_class(inner)
    for name, attribute in _CLASSES:
        if getattr(address, attribute):
            return name
    if address.version == 6 and address.is_site_local:
        return "site-local"
    return None if address.is_global else "non-public"


def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` resolves to (numeric forms such as 127.1 or 2130706433 included)."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    addresses: list[Address] = []
    for *_, sockaddr in answers:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def vetted(host: str, port: int, allow_private: bool = False) -> list[Address]:
    """The addresses to connect to for `host`; AddressRefused when any of them is not public
    (unless `allow_private`)."""
    addresses = resolve(host, port)
    if allow_private:
        return addresses
    for address in addresses:
        kind = non_public_class(address)
        if kind is not None:
            what = f"{address} is {kind}" if _is_literal(host, address) else f"{host} resolves to {address} ({kind})"
            raise AddressRefused(f"refused: {what}; {ALLOW_HINT}")
    return addresses


def _is_literal(host: str, address: Address) -> bool:
    try:
        return ipaddress.ip_address(host) == address
    except ValueError:
        return False


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, connecting only to addresses `vetted` returned."""

    def __init__(self, allow_private: bool = False) -> None:
        self._allow_private = allow_private

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options=None) -> httpcore.NetworkStream:
        failure: Exception | None = None
        for address in vetted(host, port, self._allow_private):
            try:  # a numeric address: create_connection does not look up a name
                return super().connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"{host} resolves to no address")


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport over httpcore's connection pool with `GuardedBackend`."""

    def __init__(self, allow_private: bool = False, limits: httpx.Limits = httpx.Limits(
        max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)  # httpx's defaults
    ) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(allow_private),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        core_request = httpcore.Request(
            request.method,
            httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors():
            response = self._pool.handle_request(core_request)
        return httpx.Response(
            response.status, headers=response.headers, stream=_Body(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class _Body(httpx.SyncByteStream):
    def __init__(self, stream) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors():
            yield from self._stream

    def close(self) -> None:
        self._stream.close()


# httpcore's errors as httpx's, most specific first (what httpx's own transport does).
_ERRORS = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except tuple(core for core, _ in _ERRORS) as exc:
        mapped = next(ours for core, ours in _ERRORS if isinstance(exc, core))
        raise mapped(str(exc)) from exc
