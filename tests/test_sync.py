"""qa-sync against a real HTTP server on 127.0.0.1 serving files this test writes: an RSS feed,
an Atom feed, a sitemap index, article pages, and hostile pages (missing, huge, not HTML, a
redirect to another host, too slow).

The server is on loopback, which the sync refuses by default (tests/test_sync_guard.py), so
every sync here allows private addresses explicitly: `LOCAL`, QA_SYNC_ALLOW_PRIVATE."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ingest.load import load_folder
from ingest.sync import STATE_FILE, SyncOptions, article_id, sync

ARTICLES = Path(__file__).resolve().parent.parent / "data" / "articles"
LOCAL = SyncOptions(allow_private=True)  # the test site is on 127.0.0.1
TYPES = {".html": "text/html; charset=utf-8", ".xml": "application/xml", ".rss": "application/rss+xml",
         ".atom": "application/atom+xml", ".pdf": "application/pdf"}


class Site:
    """Files under `root` served at http://127.0.0.1:port/, with ETag and Last-Modified (and
    304 for a matching conditional request); every request is recorded."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[tuple[str, bool]] = []  # (path, conditional)
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                conditional = "If-None-Match" in self.headers or "If-Modified-Since" in self.headers
                site.requests.append((self.path, conditional))
                if self.path == "/away.html":  # the same port, another host name
                    self.send_response(302)
                    self.send_header("Location", f"http://localhost:{site.port}/a.html")
                    self.end_headers()
                    return
                if self.path == "/slow.html":
                    time.sleep(3)
                path = site.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", TYPES.get(path.suffix, "application/octet-stream"))
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", formatdate(path.stat().st_mtime, usegmt=True))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def write(self, name: str, text: str | bytes) -> None:
        path = self.root / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "site"
    root.mkdir()
    served = Site(root)
    yield served
    served.server.shutdown()


def page(title: str, author: str, source: Path) -> str:
    paragraphs = [p for p in source.read_text(encoding="utf-8").split("\n\n") if p.strip()][:12]
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<html><head><title>{title}</title><meta name='author' content='{author}'></head>"
            f"<body><nav>Home | News</nav><article><h1>{title}</h1>{body}</article></body></html>")


def rss(site: Site, names: list[str]) -> str:
    items = "".join(f"<item><title>{n}</title><link>{site.url(n)}</link></item>" for n in names)
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>News</title>{items}</channel></rss>"


def sitemap(site: Site, names: list[str]) -> str:
    urls = "".join(f"<url><loc>{site.url(n)}</loc></url>" for n in names)
    return f"<?xml version='1.0'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{urls}</urlset>"


def sources() -> list[Path]:
    found = sorted(ARTICLES.glob("*.txt"))
    assert len(found) >= 3
    return found


@pytest.mark.slow
def test_feed_sync_new_changed_unchanged_and_failed(site: Site, tmp_path: Path) -> None:
    texts = sources()
    site.write("a.html", page("Means-testing social care", "Simon Duffy", texts[0]))
    site.write("b.html", page("Co-operatives in health", "Ed Mayo", texts[1]))
    site.write("huge.html", "<html><body><p>" + "word " * 400_000 + "</p></body></html>")
    site.write("doc.pdf", b"%PDF-1.4 binary \x00\x01\x02")
    site.write("slow.html", page("Slow", "Nobody", texts[2]))
    listed = ["a.html", "b.html", "missing.html", "huge.html", "doc.pdf", "away.html", "slow.html"]
    site.write("feed.rss", rss(site, listed))
    folder = tmp_path / "articles"
    options = SyncOptions(timeout_s=1, max_bytes=1_000_000, allow_private=True)

    first = sync([site.url("feed.rss")], folder, options)
    assert sorted(first.new) == sorted([article_id(site.url("a.html")), article_id(site.url("b.html"))])
    reasons = {f.url.rsplit("/", 1)[1]: f.reason for f in first.failed}
    assert reasons["missing.html"] == "HTTP 404"
    assert reasons["huge.html"].startswith("larger than 1,000,000 bytes")
    assert reasons["doc.pdf"] == "not HTML (content-type application/pdf)"
    assert reasons["away.html"].startswith("redirects to another host (http://localhost:")
    assert reasons["slow.html"] == "timed out after 1 s"
    assert first.to_json()["failed"] == 5 and len(first.to_json()["failures"]) == 5

    # What qa-ingest will read: the page's text, its metadata, the URL the feed gave.
    loaded = {a.id: a for a in load_folder(folder).articles}
    a = loaded[article_id(site.url("a.html"))]
    assert a.title == "Means-testing social care" and a.author == "Simon Duffy"
    assert a.url == site.url("a.html") and "means" in a.text.lower() and "Home | News" not in a.text

    # b changes, a does not: a is asked for conditionally and not rewritten.
    written = (folder / f"{a.id}.html").stat().st_mtime_ns
    site.write("b.html", page("Co-operatives in health, updated", "Ed Mayo", texts[1]))
    site.requests.clear()
    second = sync([site.url("feed.rss")], folder, options)
    assert (second.new, second.changed) == ([], [article_id(site.url("b.html"))])
    assert second.unchanged == [a.id]
    assert ("/a.html", True) in site.requests
    assert (folder / f"{a.id}.html").stat().st_mtime_ns == written
    assert "updated" in (folder / f"{article_id(site.url('b.html'))}.html").read_text()
    assert len(second.failed) == 5  # still failing, still reported


@pytest.mark.slow
def test_sitemap_index_unlisted_pages_are_kept_unless_pruned(site: Site, tmp_path: Path) -> None:
    texts = sources()
    for number, name in enumerate(["one.html", "two.html", "three.html"]):
        site.write(name, page(f"Page {name}", "Morag Flett", texts[number]))
    site.write("news.xml", sitemap(site, ["one.html", "two.html"]))
    site.write("old.xml", sitemap(site, ["three.html"]))
    index = "".join(f"<sitemap><loc>{site.url(n)}</loc></sitemap>" for n in ["news.xml", "old.xml"])
    site.write("sitemap.xml", f"<?xml version='1.0'?><sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{index}</sitemapindex>")
    folder = tmp_path / "articles"

    assert len(sync([site.url("sitemap.xml")], folder, LOCAL).new) == 3
    three = article_id(site.url("three.html"))
    site.write("old.xml", sitemap(site, []))  # three.html is no longer listed

    kept = sync([site.url("sitemap.xml")], folder, LOCAL)
    assert kept.unlisted == [site.url("three.html")] and (folder / f"{three}.html").exists()

    # A source that cannot be read never prunes: the archive is not emptied by an outage.
    broken = sync([site.url("sitemap.xml"), site.url("gone.xml")], folder, SyncOptions(prune=True, allow_private=True))
    assert broken.sources_failed[0].reason == "HTTP 404" and broken.pruned == []
    assert (folder / f"{three}.html").exists()

    pruned = sync([site.url("sitemap.xml")], folder, SyncOptions(prune=True, allow_private=True))
    assert pruned.pruned == [site.url("three.html")]
    assert not (folder / f"{three}.html").exists() and not (folder / f"{three}.meta.json").exists()
    assert site.url("three.html") not in json.loads((folder / STATE_FILE).read_text())["pages"]


def test_atom_feed_and_what_is_not_a_feed(site: Site, tmp_path: Path) -> None:
    site.write("a.html", page("An Atom entry", "Simon Duffy", sources()[0]))
    site.write("feed.atom", f"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'><title>t</title>"
                            f"<entry><title>a</title><link href='{site.url('a.html')}'/></entry></feed>")
    site.write("page.html", "<html><body><p>Just a page</p></body></html>")
    report = sync([site.url("feed.atom"), site.url("page.html")], tmp_path / "articles", LOCAL)
    assert len(report.new) == 1
    assert report.sources_failed[0].url == site.url("page.html")
    assert report.sources_failed[0].reason.startswith("neither a feed nor a sitemap")


@pytest.mark.slow
def test_cli_syncs_and_ingests_and_a_second_run_embeds_nothing(site: Site, tmp_path: Path) -> None:
    texts = sources()
    site.write("a.html", page("Means-testing social care", "Simon Duffy", texts[0]))
    site.write("b.html", page("Co-operatives in health", "Ed Mayo", texts[1]))
    site.write("feed.rss", rss(site, ["a.html", "b.html", "missing.html"]))
    qa_sync = str(Path(sys.executable).parent / "qa-sync")
    command = [qa_sync, site.url("feed.rss"), "--articles", str(tmp_path / "articles"), "--ingest",
               "--index", str(tmp_path / "index"), "--json"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QA_SYNC_ALLOW_PRIVATE": "1"}
    first = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    synced, ingested = (json.loads(line) for line in first.stdout.splitlines())
    assert (synced["new"], synced["failed"]) == (2, 1)
    assert synced["failures"][0]["reason"] == "HTTP 404"
    assert ingested["ingest"]["chunks_embedded"] > 0

    site.requests.clear()
    second = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stderr
    synced, ingested = (json.loads(line) for line in second.stdout.splitlines())
    assert (synced["new"], synced["changed"], synced["unchanged"]) == (0, 0, 2)
    assert ingested["ingest"]["chunks_embedded"] == 0
    pages = [(path, conditional) for path, conditional in site.requests if path.endswith(("a.html", "b.html"))]
    assert len(pages) == 2 and all(conditional for _, conditional in pages)

    bad = subprocess.run([qa_sync, "ftp://example.org/feed", "--articles", str(tmp_path / "x")],
                         check=False, capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1 and "is not an http(s) URL" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_service_syncs_on_post_admin_sync_and_on_its_timer(site: Site, tmp_path: Path, encoder) -> None:
    from fastapi.testclient import TestClient

    from qa_service.app import create_app
    from qa_service.settings import ServiceSettings
    from tests.test_service import AUTH, TOKEN, wait_for_job

    texts = sources()
    site.write("a.html", page("Means-testing social care", "Simon Duffy", texts[0]))
    site.write("b.html", page("Co-operatives in health", "Ed Mayo", texts[1]))
    site.write("feed.rss", rss(site, ["a.html", "b.html", "missing.html"]))
    common = {"ask_rate_per_minute": 0, "admin_token": TOKEN, "sync_allow_private": True}

    on_request = ServiceSettings(index_dir=tmp_path / "one" / "index", articles_dir=tmp_path / "one" / "articles",
                                 sync_urls=[site.url("feed.rss")], **common)
    with TestClient(create_app(on_request, encoder=encoder)) as client:
        assert client.post("/admin/sync").status_code == 401
        accepted = client.post("/admin/sync", headers=AUTH)
        assert accepted.status_code == 202
        job = wait_for_job(client, accepted.json()["job_id"])
        assert job["status"] == "succeeded", job
        assert (job["result"]["sync"]["new"], job["result"]["sync"]["failed"]) == (2, 1)
        assert job["result"]["chunks_embedded"] > 0
        answer = client.post("/ask", json={"question": "Who argues against means-testing?"}).json()
        assert answer["passages"][0]["article_id"] == article_id(site.url("a.html"))

    unset = ServiceSettings(index_dir=tmp_path / "two" / "index", articles_dir=tmp_path / "two" / "articles", **common)
    with TestClient(create_app(unset, encoder=encoder)) as client:
        refused = client.post("/admin/sync", headers=AUTH)
        assert refused.status_code == 409 and "QA_SYNC_URLS" in refused.json()["detail"]

    # On a timer, from an empty index: the first sync runs at start.
    timed = ServiceSettings(index_dir=tmp_path / "three" / "index", articles_dir=tmp_path / "three" / "articles",
                            sync_urls=[site.url("feed.rss")], sync_interval_s=0.5, **common)
    with TestClient(create_app(timed, encoder=encoder)) as client:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and client.get("/readyz").status_code != 200:
            time.sleep(0.2)
        assert client.get("/articles").json()["total"] == 2
        time.sleep(1.5)  # more turns: conditional requests, nothing new to publish
        assert any(conditional for path, conditional in site.requests if path == "/a.html")
