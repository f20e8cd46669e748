"""The sync fetches only the public internet (ingest/fetch_guard.py).

A real HTTP server on 127.0.0.1 is the one reachable "internal" host. The test's network gives
the sync a public site too: `news.example` resolves to a public address, and a connection to
that address is carried to the local server. Every other connection is recorded, and unless it
is to loopback it is refused on the spot, so nothing here ever leaves the machine. A feed, a
sitemap, sitemap indexes and redirects list an internal address of every class; the target is
0 of them fetched (no request reaches the server's /internal/ paths) and 0 connections tried
(each is refused before connecting).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ingest.fetch_guard import AddressRefused, non_public_class, vetted
from ingest.sync import SyncOptions, sync

PUBLIC = "93.184.215.14"  # a public address, never contacted: the test's network sends it to the local server
SITE = "news.example"  # resolves to PUBLIC
INTERNAL = [  # (host as a URL writes it, the class the refusal names)
    ("127.0.0.1", "loopback"), ("localhost", "loopback"), ("127.1", "loopback"),
    ("2130706433", "loopback"), ("0x7f.1", "loopback"), ("017700000001", "loopback"),
    ("[::1]", "loopback"), ("[::ffff:127.0.0.1]", "loopback"), ("[2002:7f00:1::]", "loopback"),
    ("10.0.0.1", "private"), ("192.168.1.1", "private"), ("172.16.0.1", "private"),
    ("[fc00::1]", "private"), ("[::ffff:10.0.0.1]", "private"), ("[64:ff9b::a00:1]", "private"),
    ("169.254.169.254", "link-local"), ("[fe80::1]", "link-local"),
    ("0.0.0.0", "unspecified"), ("[::]", "unspecified"),
    ("224.0.0.1", "multicast"), ("[ff02::1]", "multicast"),
    ("240.0.0.1", "reserved"), ("100.64.0.1", "non-public"),
]
ARTICLE = ("<html><head><title>Inside</title></head><body><article><h1>Inside</h1>"
           + "<p>What only the newsroom's network should see, a paragraph long enough to be an article.</p>" * 8
           + "</article></body></html>")


class Network:
    """The local server, and the test's view of the network around it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.files: dict[str, str] = {}
        self.redirects: dict[str, str] = {}
        self.received: list[str] = []  # paths the server was asked for
        self.tried: list[str] = []  # connections to anything but PUBLIC: the address tried
        self.lookups: dict[str, int] = {}
        network = self

        class Handler(BaseHTTPRequestHandler):  # HTTP/1.0: a connection per request
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                network.received.append(self.path)
                if self.path in network.redirects:
                    self.send_response(302)
                    self.send_header("Location", network.redirects[self.path])
                    self.end_headers()
                    return
                body = network.files.get(self.path, ARTICLE if self.path.startswith("/internal/") else None)
                if body is None:
                    self.send_error(404)
                    return
                kind = "application/xml" if self.path.endswith((".xml", ".rss")) else "text/html"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.end_headers()
                self.wfile.write(body.encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self._real_lookup, self._real_connect = socket.getaddrinfo, socket.create_connection
        self.answers: dict[str, list[str]] = {SITE: [PUBLIC]}  # a name's answers, one per lookup (the last repeats)
        monkeypatch.setattr(socket, "getaddrinfo", self._lookup)
        monkeypatch.setattr(socket, "create_connection", self._connect)

    def _lookup(self, host, port, *args, **kwargs):
        if host not in self.answers:
            return self._real_lookup(host, port, *args, **kwargs)
        count = self.lookups[host] = self.lookups.get(host, 0) + 1
        answer = self.answers[host][min(count, len(self.answers[host])) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (answer, port))]

    def _connect(self, address, *args, **kwargs):
        host, port = address[0], address[1]
        ip = ipaddress.ip_address(self._lookup(host, port, type=socket.SOCK_STREAM)[0][4][0])
        if str(ip) == PUBLIC:
            return self._real_connect(("127.0.0.1", port), *args, **kwargs)
        self.tried.append(str(ip))
        if (getattr(ip, "ipv4_mapped", None) or ip).is_loopback:
            return self._real_connect((str(ip), port), *args, **kwargs)
        raise ConnectionRefusedError(f"the test's network does not reach {ip}")

    def url(self, path: str, host: str = SITE) -> str:
        return f"http://{host}:{self.port}{path}"

    def internal(self, kind: str) -> list[str]:
        return [self.url(f"/internal/{kind}/{number}", host) for number, (host, _) in enumerate(INTERNAL)]

    def fetched_inside(self) -> list[str]:
        return [path for path in self.received if path.startswith("/internal/")]


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> Iterator[Network]:
    served = Network(monkeypatch)
    yield served
    served.server.shutdown()


def rss(urls: list[str]) -> str:
    items = "".join(f"<item><title>t</title><link>{url}</link></item>" for url in urls)
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>News</title>{items}</channel></rss>"


def urlset(urls: list[str]) -> str:
    entries = "".join(f"<url><loc>{url}</loc></url>" for url in urls)
    return f"<?xml version='1.0'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{entries}</urlset>"


def sitemap_index(urls: list[str]) -> str:
    entries = "".join(f"<sitemap><loc>{url}</loc></sitemap>" for url in urls)
    return (f"<?xml version='1.0'?><sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>"
            f"{entries}</sitemapindex>")


def publish_everything(network: Network) -> list[str]:
    """Every internal address in a feed, a sitemap, a sitemap index each (an index stops at
    its first failing sitemap) and behind a redirect; the sources to sync."""
    network.files["/feed.rss"] = rss(network.internal("feed"))
    network.files["/sitemap.xml"] = urlset(network.internal("sitemap"))
    sources = [network.url("/feed.rss"), network.url("/sitemap.xml")]
    for number, url in enumerate(network.internal("index")):
        network.files[f"/index-{number}.xml"] = sitemap_index([url.replace("/internal/", "/internal/sitemap-")])
        sources.append(network.url(f"/index-{number}.xml"))
    hops = []
    for number, url in enumerate(network.internal("redirect")):
        network.redirects[f"/hop/{number}"] = url
        hops.append(network.url(f"/hop/{number}"))
    network.files["/hops.rss"] = rss(hops)
    return sources + [network.url("/hops.rss")]


def failures_of(report) -> dict[str, str]:
    return {f.url: f.reason for f in report.failed + report.sources_failed}


@pytest.mark.parametrize(("address", "expected"), [
    ("127.0.0.1", "loopback"), ("127.255.255.254", "loopback"), ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"), ("2002:7f00:1::", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"),
    ("192.168.0.10", "private"), ("fc00::1", "private"), ("fd12:3456::1", "private"),
    ("::ffff:192.168.1.1", "private"), ("64:ff9b::a00:1", "private"), ("192.0.2.1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("fe80::1%1", "link-local"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"), ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"), ("::7f00:1", "reserved"),
    ("fec0::1", "site-local"), ("100.64.0.1", "non-public"),
    ("8.8.8.8", None), ("93.184.215.14", None), ("2606:4700:4700::1111", None),
    ("::ffff:8.8.8.8", None), ("64:ff9b::808:808", None),
])
def test_address_classes(address: str, expected: str | None) -> None:
    assert non_public_class(ipaddress.ip_address(address)) == expected


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f.1", "017700000001", "0177.0.0.1", "localhost",
                                  "::ffff:127.0.0.1"])
def test_numeric_and_named_forms_of_loopback_are_refused_after_resolving(host: str) -> None:
    with pytest.raises(AddressRefused, match=r"^refused: .*loopback.*QA_SYNC_ALLOW_PRIVATE"):
        vetted(host, 80)
    assert {non_public_class(address) for address in vetted(host, 80, allow_private=True)} == {"loopback"}


@pytest.mark.slow
def test_no_internal_address_is_fetched(network: Network, tmp_path: Path) -> None:
    sources = publish_everything(network)
    report = sync(sources, tmp_path / "articles", SyncOptions(timeout_s=5))

    assert network.fetched_inside() == [] and network.tried == []
    assert report.new == [] and report.changed == []
    failures = failures_of(report)
    for kind in ("feed", "sitemap"):
        for url, (_, expected) in zip(network.internal(kind), INTERNAL):
            assert failures[url].startswith("refused: ") and expected in failures[url], failures[url]
            assert failures[url].endswith("QA_SYNC_ALLOW_PRIVATE=1 allows internal sites")
    for number, (_, expected) in enumerate(INTERNAL):
        reason = failures[network.url(f"/index-{number}.xml")]
        assert reason.startswith("sitemap http://") and ": refused: " in reason and expected in reason
        assert failures[network.url(f"/hop/{number}")].startswith("redirects to another host")
    # The feeds themselves came from the public site.
    assert {"/feed.rss", "/sitemap.xml", "/hops.rss"} <= set(network.received)


@pytest.mark.slow
def test_allow_private_lets_the_local_server_through(network: Network, tmp_path: Path) -> None:
    """With QA_SYNC_ALLOW_PRIVATE every listed address is tried, as every one was before the
    guard: the loopback forms reach the local server and its page is written."""
    sources = publish_everything(network)
    report = sync(sources, tmp_path / "articles", SyncOptions(timeout_s=5, allow_private=True))

    loopback = [n for n, (_, kind) in enumerate(INTERNAL) if kind == "loopback"]
    # [::1] and the 6to4 form are loopback too, but no server listens there.
    listening = [n for n in loopback if INTERNAL[n][0] not in ("[::1]", "[2002:7f00:1::]")]
    assert sorted(network.fetched_inside()) == sorted(
        f"/internal/{kind}/{n}" for kind in ("feed", "sitemap", "sitemap-index") for n in listening)
    assert len(report.new) == 2 * len(listening)  # an index's "sitemap" is the article page
    for n in listening:
        assert failures_of(report)[network.url(f"/index-{n}.xml")].endswith(": not a sitemap")
    # Every address in the feed, the sitemap and the indexes was tried; none was refused.
    assert len(network.tried) >= 3 * len(INTERNAL)
    assert not any("refused:" in reason for reason in failures_of(report).values())


def test_the_connection_goes_to_the_address_checked(network: Network, tmp_path: Path) -> None:
    """A name whose answer changes after the check (DNS rebinding): one lookup per connection,
    the connection to the address that lookup gave; a later hop looks up again and is refused."""
    network.answers["flip.example"] = [PUBLIC, "127.0.0.1"]
    network.answers["rebind.example"] = [PUBLIC, "127.0.0.1"]
    network.redirects["/moved"] = "/internal/rebound"  # the same host, on a new connection
    network.files["/flip.html"] = ARTICLE
    listed = [network.url("/flip.html", "flip.example"), network.url("/moved", "rebind.example")]
    network.files["/feed.rss"] = rss(listed)
    report = sync([network.url("/feed.rss")], tmp_path / "articles", SyncOptions(timeout_s=5))

    assert len(report.new) == 1 and network.lookups["flip.example"] == 1
    assert [(f.url, f.reason.split(";")[0]) for f in report.failed] == [
        (network.url("/moved", "rebind.example"), "refused: rebind.example resolves to 127.0.0.1 (loopback)")]
    assert "/moved" in network.received and network.fetched_inside() == [] and network.tried == []


@pytest.mark.slow
def test_qa_sync_reports_a_refused_source_and_allow_private_fetches_it(tmp_path: Path) -> None:
    """The CLI against the loopback server, in another process: refused with its reason and
    no traceback, then fetched with --allow-private."""
    handler = type("Quiet", (BaseHTTPRequestHandler,), {"log_message": lambda *a: None, "do_GET": _serve_feed})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        feed = f"http://127.0.0.1:{server.server_address[1]}/feed.rss"
        qa_sync = [str(Path(sys.executable).parent / "qa-sync"), feed, "--articles", str(tmp_path / "a"), "--quiet"]
        env = {k: v for k, v in os.environ.items() if k != "QA_SYNC_ALLOW_PRIVATE"}
        refused = subprocess.run(qa_sync, capture_output=True, text=True, env=env, timeout=120)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr + refused.stdout
        assert f"source failed: {feed}: refused: 127.0.0.1 is loopback" in refused.stdout
        allowed = subprocess.run(qa_sync + ["--allow-private"], capture_output=True, text=True, env=env, timeout=120)
        assert allowed.returncode == 0 and "1 new" in allowed.stdout, allowed.stdout + allowed.stderr
    finally:
        server.shutdown()


def _serve_feed(handler: BaseHTTPRequestHandler) -> None:
    port = handler.server.server_address[1]
    body = rss([f"http://127.0.0.1:{port}/page.html"]) if handler.path == "/feed.rss" else ARTICLE
    handler.send_response(200)
    handler.send_header("Content-Type", "application/rss+xml" if handler.path == "/feed.rss" else "text/html")
    handler.end_headers()
    handler.wfile.write(body.encode())
