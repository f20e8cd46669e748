"""qa-sync of a large feed against a local site: `--pages` synthetic articles (real SciFact
sentences, bench/common.py) written as HTML pages and listed in one RSS feed, served by
Python's own static file server on 127.0.0.1 (Last-Modified, and 304 for If-Modified-Since).
A first sync into an empty folder, then a second with nothing changed; embedding is not part
of it (`qa-sync` without `--ingest`).

    python -m bench sync [--pages 1000] [--rate 30,1000] [--publish]

A first and a second sync at each `--rate` (by default qa-sync's own pace, then 1000 a second:
what the fetching, extraction and writing cost), each printed as JSON, then all as a table;
with --publish the table is written into its block of docs/benchmarks.md (`sync`).
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.common import synthetic_articles
from bench.publish import Table, add_publish_arguments, markdown_table, print_and_publish
from ingest.sync import SyncOptions, sync

HEADING = "## Sync"  # the block's, when it is new
DEFAULT_RATE = SyncOptions().rate_per_s


class _CountingHandler(SimpleHTTPRequestHandler):
    requests: list[bool]  # per request: was it conditional

    def log_message(self, *args) -> None:
        pass

    def send_head(self):
        self.requests.append("If-Modified-Since" in self.headers)
        return super().send_head()


def _write_site(root: Path, pages: int, base: str) -> None:
    items = []
    for article_id, title, text, _ in synthetic_articles(pages, seed=5):
        body = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n"))
        (root / f"{article_id}.html").write_text(
            f"<html><head><title>{html.escape(title)}</title></head><body><article>{body}</article></body></html>",
            encoding="utf-8",
        )
        items.append(f"<item><title>{html.escape(title)}</title><link>{base}/{article_id}.html</link></item>")
    (root / "feed.rss").write_text(
        f"<?xml version='1.0'?><rss version='2.0'><channel><title>bench</title>{''.join(items)}</channel></rss>",
        encoding="utf-8",
    )


def measure(pages: int, rate: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="qa-sync-bench-") as work:
        root, folder = Path(work) / "site", Path(work) / "articles"
        root.mkdir()
        requests: list[bool] = []
        handler = type("Handler", (_CountingHandler,), {"requests": requests})
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        _write_site(root, pages, base)
        time.sleep(1.1)  # Last-Modified has whole seconds: let the files be older than the first sync
        options = SyncOptions(rate_per_s=rate, allow_private=True)  # the site is on 127.0.0.1
        figures = {"pages": pages, "rate_per_s": rate}
        for run in ("first", "second"):
            requests.clear()
            started = time.perf_counter()
            report = sync([f"{base}/feed.rss"], folder, options)
            figures[run] = {
                "seconds": round(time.perf_counter() - started, 1),
                **{k: v for k, v in report.to_json().items() if k != "failures"},
                "requests": len(requests),
                "conditional_requests": sum(requests),
            }
        server.shutdown()
    return figures


def _labels(rate: float) -> tuple[str, str]:
    if rate == DEFAULT_RATE:
        return f"first, default pace ({rate:g} requests a second to the host)", "second, nothing changed"
    return f"first, `--rate {rate:g}`", f"second, `--rate {rate:g}`"


def table(results: list[dict]) -> str:
    """The runs, a first and a second sync at each pace, as the `sync` block of docs/benchmarks.md."""
    headers = [f"{results[0]['pages']:,} synthetic feed items on 127.0.0.1", "seconds", "new", "unchanged",
               "requests", "of them conditional"]
    rows = [[label, r["seconds"], *(f"{r[key]:,}" for key in ("new", "unchanged", "requests", "conditional_requests"))]
            for result in results
            for r, label in zip((result["first"], result["second"]), _labels(result["rate_per_s"]))]
    failed = sum(result[run]["failed"] for result in results for run in ("first", "second"))
    first = results[0]
    verdict = "met" if first["first"]["seconds"] < 60 else "missed"
    return (markdown_table(headers, rows) + "\n\nEmbedding is not part of it (`qa-sync` without `--ingest`); "
            f"{failed} pages failed. Target: a first sync under a minute besides embedding ({verdict}: "
            f"{first['first']['seconds']} s at {first['rate_per_s']:g} requests a second).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--rate", default=f"{DEFAULT_RATE:g},1000",
                        help="requests a second to the host, comma-separated: a first and a second sync at each")
    add_publish_arguments(parser, "sync")
    args = parser.parse_args(argv)
    results = []
    for rate in [float(x) for x in args.rate.split(",")]:
        results.append(measure(args.pages, rate))
        print(json.dumps(results[-1], indent=2), flush=True)
    print_and_publish(args, "sync", argv, [Table("sync", table(results), HEADING)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
