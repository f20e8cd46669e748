"""Keep a folder of articles in step with a site: its RSS/Atom feeds and sitemaps list the
pages, each page is fetched (conditionally, when it was fetched before) and written as
`<id>.html` with a `<id>.meta.json` beside it, which `qa-ingest` reads like any other article.

What was fetched is remembered in `<folder>/.qa-sync.json` (each URL's id, ETag,
Last-Modified and content hash), so a second sync of an unchanged site sends only
conditional requests and rewrites nothing. A page that fails keeps its earlier copy. Pages no
longer listed are removed only when asked (`prune`), and never after a source could not be
read: a feed that is down must not empty the archive.

Every connection goes through `ingest.fetch_guard`: a URL (source, page, sitemap or redirect
hop) whose host resolves to an address outside the public internet is refused, and reported
as a failure with the reason, unless `allow_private` (QA_SYNC_ALLOW_PRIVATE) allows it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from index.errors import IngestError
from index.files import write_atomic
from ingest.fetch_guard import AddressRefused, GuardedTransport
from ingest.load import META_SUFFIX

STATE_FILE = ".qa-sync.json"
USER_AGENT = "article-qa-sync/0.1 (article-qa: question answering over this site's articles)"
HTML_TYPES = ("text/html", "application/xhtml+xml")
MAX_SITEMAPS = 1000  # sitemaps read from one source, its sitemap indexes followed


@dataclass(frozen=True)
class SyncOptions:
    timeout_s: float = 10.0  # per request: connecting, and each wait for data
    max_bytes: int = 5_000_000  # a page larger than this fails
    max_source_bytes: int = 50_000_000  # a feed or sitemap (the sitemap protocol's own limit)
    rate_per_s: float = 30.0  # requests per second to one host
    concurrency: int = 4
    max_redirects: int = 5  # followed only within the same host
    prune: bool = False
    allow_private: bool = False  # fetch loopback, private, link-local... addresses too (an intranet site)


@dataclass
class PageState:
    id: str
    sha256: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Failure:
    url: str
    reason: str


@dataclass
class SyncReport:
    new: list[str] = field(default_factory=list)  # ids
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)  # no longer listed, kept (no prune)
    sources_failed: list[Failure] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "new": len(self.new),
            "changed": len(self.changed),
            "unchanged": len(self.unchanged),
            "failed": len(self.failed),
            "pruned": len(self.pruned),
            "unlisted": len(self.unlisted),
            "failures": [asdict(f) for f in self.sources_failed + self.failed],
        }


class FetchError(Exception):
    """A page or source that could not be fetched; the message is the reason."""


def is_source_url(url: str) -> bool:
    """Whether `url` can be a feed or sitemap to sync from: absolute http(s)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def article_id(url: str) -> str:
    """A stable id for a page: its host and path as a slug, and a short hash of the whole URL
    (two URLs never share an id; the same URL always gets the same one)."""
    parts = urlsplit(url)
    slug = re.sub(r"[^a-z0-9]+", "-", f"{parts.hostname or ''}{parts.path}".lower()).strip("-")
    return f"{slug[:80].rstrip('-') or 'page'}-{hashlib.sha256(url.encode()).hexdigest()[:10]}"


class _HostPacer:
    """At most `rate` requests a second to each host, across threads."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, url: str) -> None:
        host = urlsplit(url).netloc
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + self._interval
        if slot > now:
            time.sleep(slot - now)


@dataclass(frozen=True)
class _Response:
    url: str  # after redirects
    status: int
    headers: httpx.Headers
    body: bytes


class _Fetcher:
    def __init__(self, client: httpx.Client, options: SyncOptions) -> None:
        self._client = client
        self._options = options
        self._pacer = _HostPacer(options.rate_per_s)

    def get(self, url: str, headers: dict[str, str] | None = None, source: bool = False) -> _Response:
        """GET with redirects followed only within the URL's host, the body cut off (a
        failure) past `max_bytes` (`max_source_bytes` for a feed or sitemap)."""
        limit = self._options.max_source_bytes if source else self._options.max_bytes
        host = urlsplit(url).netloc
        for _ in range(self._options.max_redirects + 1):
            self._pacer.wait(url)
            try:
                with self._client.stream("GET", url, headers=headers or {}) as response:
                    if response.has_redirect_location:
                        target = urljoin(url, response.headers.get("location", ""))
                        if urlsplit(target).netloc != host:
                            raise FetchError(f"redirects to another host ({target})")
                        url = target
                        continue
                    return _Response(url, response.status_code, response.headers, _read(response, limit))
            except AddressRefused as exc:
                raise FetchError(str(exc)) from exc
            except httpx.TimeoutException as exc:
                raise FetchError(f"timed out after {self._options.timeout_s:g} s") from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"request failed: {exc}") from exc
        raise FetchError(f"more than {self._options.max_redirects} redirects")



def _read(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise FetchError(f"larger than {limit:,} bytes ({int(declared):,})")
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise FetchError(f"larger than {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def discover(fetcher: _Fetcher, source: str) -> list[str]:
    """The page URLs a feed (RSS or Atom) or a sitemap (or sitemap index) lists, in order."""
    response = fetcher.get(source, source=True)
    if response.status != 200:
        raise FetchError(f"HTTP {response.status}")
    root = _xml_root(response.body)
    if root in ("urlset", "sitemapindex"):
        return _sitemap_pages(fetcher, response.body, root)
    import feedparser

    feed = feedparser.parse(response.body)
    if not feed.get("version"):  # feedparser recognised no RSS or Atom in it
        kind = response.headers.get("content-type", "no content-type")
        raise FetchError(f"neither a feed nor a sitemap ({kind})")
    links = [entry.get("link") for entry in feed.entries]
    return [urljoin(response.url, link) for link in links if link]


def _xml_root(body: bytes) -> str | None:
    from lxml import etree

    try:
        element = etree.fromstring(body, parser=_xml_parser())
    except etree.XMLSyntaxError:
        return None
    return etree.QName(element).localname


def _xml_parser():
    from lxml import etree

    # No entities, no DTDs fetched, no huge trees: a sitemap is data, not a program.
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


def _sitemap_pages(fetcher: _Fetcher, body: bytes, root: str) -> list[str]:
    from lxml import etree

    pages: list[str] = []
    pending, read = [(body, root)], 0
    while pending:
        body, root = pending.pop(0)
        read += 1
        element = etree.fromstring(body, parser=_xml_parser())
        locations = [loc.text.strip() for loc in element.iter("{*}loc") if loc.text and loc.text.strip()]
        if root == "urlset":
            pages += locations
            continue
        for location in locations:  # a sitemap index: its sitemaps, in order
            if read + len(pending) >= MAX_SITEMAPS:
                raise FetchError(f"more than {MAX_SITEMAPS} sitemaps")
            try:
                response = fetcher.get(location, source=True)
            except FetchError as exc:
                raise FetchError(f"sitemap {location}: {exc}") from exc
            if response.status != 200:
                raise FetchError(f"sitemap {location}: HTTP {response.status}")
            child = _xml_root(response.body)
            if child not in ("urlset", "sitemapindex"):
                raise FetchError(f"sitemap {location}: not a sitemap")
            pending.append((response.body, child))
    return pages


def _metadata(html: str, url: str) -> dict[str, str | None]:
    """What trafilatura finds in the page (title, author, date), with the page's URL; a page
    with no article text fails."""
    import trafilatura

    document = trafilatura.bare_extraction(
        html, url=url, with_metadata=True, include_comments=True, favor_recall=True, output_format="python"
    )
    data = {} if document is None else (document if isinstance(document, dict) else document.as_dict())
    if not (data.get("text") or "").strip():
        raise FetchError("no article text found in the page")
    return {"url": url, "title": data.get("title"), "author": data.get("author"),
            "date": data.get("date"), "source": data.get("sitename")}


def _fetch_page(fetcher: _Fetcher, url: str, known: PageState | None) -> tuple[str, PageState, str | None, dict | None]:
    """('new' | 'changed' | 'unchanged', the page's state, its HTML and metadata when they
    must be written)."""
    headers = {}
    if known and known.etag:
        headers["If-None-Match"] = known.etag
    if known and known.last_modified:
        headers["If-Modified-Since"] = known.last_modified
    response = fetcher.get(url, headers)
    if response.status == 304 and known:
        return "unchanged", known, None, None
    if response.status != 200:
        raise FetchError(f"HTTP {response.status}")
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in HTML_TYPES:
        raise FetchError(f"not HTML (content-type {kind or 'missing'})")
    if b"\x00" in response.body[:8192]:
        raise FetchError("not HTML (binary content)")
    state = PageState(
        id=known.id if known else article_id(url),
        sha256=hashlib.sha256(response.body).hexdigest(),
        etag=response.headers.get("etag"),
        last_modified=response.headers.get("last-modified"),
    )
    if known and known.sha256 == state.sha256:
        return "unchanged", state, None, None
    html = response.body.decode(_charset(response.headers), errors="replace")
    return ("changed" if known else "new"), state, html, _metadata(html, url)


def _charset(headers: httpx.Headers) -> str:
    match = re.search(r"charset=([\w.-]+)", headers.get("content-type", ""), re.IGNORECASE)
    if match:
        try:
            "".encode(match.group(1))
            return match.group(1)
        except LookupError:
            pass
    return "utf-8"


def sync(
    sources: Iterable[str],
    folder: Path,
    options: SyncOptions = SyncOptions(),
    progress: Callable[[int, int], None] | None = None,
) -> SyncReport:
    """Bring `folder` in line with the pages `sources` list; see the module docstring."""
    sources = list(sources)
    for source in sources:
        if not is_source_url(source):
            raise IngestError(f"{source!r} is not an http(s) URL of a feed or sitemap")
    folder.mkdir(parents=True, exist_ok=True)
    state = _load_state(folder)
    report = SyncReport()
    timeout = httpx.Timeout(options.timeout_s)
    transport = GuardedTransport(allow_private=options.allow_private)
    with httpx.Client(transport=transport, timeout=timeout, headers={"User-Agent": USER_AGENT},
                      follow_redirects=False) as client:
        fetcher = _Fetcher(client, options)
        listed: dict[str, None] = {}
        for source in sources:
            try:
                listed.update(dict.fromkeys(discover(fetcher, source)))
            except FetchError as exc:
                report.sources_failed.append(Failure(source, str(exc)))
        pages = [url for url in listed if urlsplit(url).scheme in ("http", "https")]
        report.failed += [Failure(url, "not an http(s) URL") for url in listed if url not in pages]
        lock = threading.Lock()
        done = [0]

        def one(url: str) -> None:
            try:
                outcome, page, html, meta = _fetch_page(fetcher, url, state.get(url))
                if html is not None:
                    _write_article(folder, page.id, html, meta)
            except FetchError as exc:
                with lock:
                    report.failed.append(Failure(url, str(exc)))
            else:
                with lock:
                    state[url] = page
                    getattr(report, outcome).append(page.id)
            with lock:
                done[0] += 1
                if progress:
                    progress(done[0], len(pages))

        with ThreadPoolExecutor(max_workers=max(1, options.concurrency)) as pool:
            list(pool.map(one, pages))
    for url in [u for u in state if u not in listed]:
        if options.prune and not report.sources_failed:
            _remove_article(folder, state.pop(url).id)
            report.pruned.append(url)
        else:
            report.unlisted.append(url)
    _save_state(folder, state)
    return report


def _write_article(folder: Path, article_id: str, html: str, meta: dict) -> None:
    # The metadata first: a crash between the two leaves the old page with new metadata at
    # worst, and the next sync (its state not yet saved) fetches the page again.
    write_atomic(folder / f"{article_id}{META_SUFFIX}", json.dumps(meta, ensure_ascii=False, indent=1))
    write_atomic(folder / f"{article_id}.html", html)


def _remove_article(folder: Path, article_id: str) -> None:
    for name in (f"{article_id}.html", f"{article_id}{META_SUFFIX}"):
        (folder / name).unlink(missing_ok=True)


def _load_state(folder: Path) -> dict[str, PageState]:
    path = folder / STATE_FILE
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {url: PageState(**entry) for url, entry in raw["pages"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise IngestError(f"{path} is not a sync state file ({exc}); move it away to start afresh") from exc


def _save_state(folder: Path, state: dict[str, PageState]) -> None:
    pages = {url: asdict(page) for url, page in sorted(state.items())}
    write_atomic(folder / STATE_FILE, json.dumps({"version": 1, "pages": pages}, indent=1))
