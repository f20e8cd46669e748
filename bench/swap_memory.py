"""The serving process's memory while a new version swaps in, and question latency meanwhile.

`qa-serve` runs on a synthetic index (bench/incremental.py's base: N articles of three
passages) and answers questions from one client all along. Beside it, as `qa-ingest FILE`
would, this process adds one real article by name (`run_update`), then removes it; the service
notices the new version (QA_RELOAD_INTERVAL_S), loads it reusing the segments it shares with
the served one, and swaps. The service's resident memory is sampled every 10 ms from /proc:
steady (before any change) against the peak while each swap happens.

    python -m bench swap [--articles 100000,1000000] [--swaps 4] [--json OUT] [--publish]

Each size's figures are printed as a JSON line, then all as a table; with --publish the table
is written into its block of docs/benchmarks.md (`swap`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

from bench.common import median, percentile, rss_mb, scifact_queries
from bench.incremental import ROOT, back_to_base, base_index, unique_article
from bench.publish import Table, add_publish_arguments, markdown_table, print_and_publish
from bench.query_latency import free_port, wait_ready

HEADING = "## Memory while a new version swaps in"  # the block's, when it is new


@dataclass
class SwapMemory:
    articles: int
    chunks: int
    steady_rss_mb: float  # the highest sample over the steady period
    swaps: int
    peak_rss_mb: list[float]  # per swap: the highest sample from the publish to 2 s after the swap
    peak_over_steady: float  # the largest peak / steady - 1
    after_rss_mb: float  # once the last swap settled
    steady_p50_ms: float
    steady_max_ms: float
    swap_p50_ms: float  # questions answered while swaps were under way
    swap_max_ms: float
    errors: int


class Sampler(threading.Thread):
    """Resident memory of `pid` every 10 ms, with the time of each sample."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.samples, self.running = pid, [], True

    def run(self) -> None:
        while self.running:
            self.samples.append((time.monotonic(), rss_mb(self.pid)["VmRSS"]))
            time.sleep(0.01)

    def peak(self, start: float, end: float) -> float:
        return max(rss for t, rss in self.samples if start <= t <= end)


class Asker(threading.Thread):
    """One client asking questions in a loop: (time, latency ms, status) of each."""

    def __init__(self, base: str, queries: list[str]) -> None:
        super().__init__(daemon=True)
        self.base, self.queries, self.answers, self.running = base, queries, [], True

    def run(self) -> None:
        import httpx

        with httpx.Client(base_url=self.base, timeout=60) as client:
            i = 0
            while self.running:
                started = time.perf_counter()
                response = client.get("/ask?q=" + quote(self.queries[i % len(self.queries)]))
                self.answers.append((time.monotonic(), (time.perf_counter() - started) * 1000, response.status_code))
                i += 1

    def latencies(self, start: float, end: float) -> list[float]:
        return [ms for t, ms, _ in self.answers if start <= t <= end]


def _version(base: str) -> str:
    import httpx

    return httpx.get(base + "/readyz", timeout=10).json()["index_version"]


def _serve(index_dir: Path, articles_dir: Path) -> tuple[subprocess.Popen, str]:
    """`qa-serve` on the index, noticing a new version within half a second: (process, base URL)."""
    port = free_port()
    env = {**os.environ, "QA_ASK_RATE_PER_MINUTE": "0", "HF_HUB_OFFLINE": "1", "QA_RELOAD_INTERVAL_S": "0.5"}
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "qa-serve"), "--index", str(index_dir), "--articles", str(articles_dir),
         "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )
    return process, f"http://127.0.0.1:{port}"


def _warm_up(base: str, process: subprocess.Popen, threads: list) -> tuple[Asker, Sampler]:
    """Once the service is ready: a client asking all along, and, once first-call costs are
    paid and memory settled, the memory sampler (both added to `threads`)."""
    wait_ready(base + "/readyz", process)
    asker = Asker(base, scifact_queries(300))
    threads.append(asker)
    asker.start()
    while len(asker.answers) < 200:  # first-call costs, and memory settling after them
        time.sleep(0.2)
    time.sleep(5)
    sampler = Sampler(process.pid)
    threads.append(sampler)
    sampler.start()
    return asker, sampler


def _swap(base: str, added: str | None, swap: int, articles_dir: Path, settings, encoder) -> str | None:
    """Add an article by name (when none is `added`) or remove the added one, and wait until the
    service serves the new version; the article added now, None after a removal."""
    from ingest.pipeline import run_update

    if added is None:
        added, path = unique_article(articles_dir, swap)
        report = run_update([path], settings, encoder, progress=False)
    else:
        (articles_dir / f"{added}.txt").unlink()
        report = run_update([], settings, encoder, remove=[added], progress=False)
        added = None
    deadline = time.monotonic() + 300
    while _version(base) != report.version:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the service did not swap to {report.version}")
        time.sleep(0.05)
    return added


def _stop(process: subprocess.Popen, threads: list) -> None:
    for thread in threads:
        thread.running = False
        thread.join(timeout=60)
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def measure(n_articles: int, swaps: int = 4, steady_s: float = 10.0) -> SwapMemory:
    from index.encoder import Encoder
    from index.settings import Settings

    index_dir, articles_dir, info = base_index(n_articles)
    settings = Settings(index_dir=index_dir, keep_versions=1)
    encoder = Encoder()
    back_to_base(index_dir, articles_dir, settings, encoder)
    process, base = _serve(index_dir, articles_dir)
    threads: list = []
    try:
        asker, sampler = _warm_up(base, process, threads)
        steady_from = time.monotonic()
        time.sleep(steady_s)
        steady_to = time.monotonic()
        steady = sampler.peak(steady_from, steady_to)
        peaks, windows, added = [], [], None
        for swap in range(swaps):  # add an article, then remove it: every other swap
            start = time.monotonic()
            added = _swap(base, added, swap, articles_dir, settings, encoder)
            time.sleep(2)
            windows.append((start, time.monotonic()))
            peaks.append(round(sampler.peak(*windows[-1]), 1))
        after = sampler.samples[-1][1]
    finally:
        _stop(process, threads)
    steady_ms = asker.latencies(steady_from, steady_to)
    swap_ms = [ms for start, end in windows for ms in asker.latencies(start, end)]
    return SwapMemory(
        articles=info["articles"], chunks=info["chunks"], steady_rss_mb=round(steady, 1), swaps=swaps,
        peak_rss_mb=peaks, peak_over_steady=round(max(peaks) / steady - 1, 4), after_rss_mb=round(after, 1),
        steady_p50_ms=round(median(steady_ms), 2), steady_max_ms=round(max(steady_ms), 2),
        swap_p50_ms=round(median(swap_ms), 2), swap_max_ms=round(percentile(swap_ms, 100), 2),
        errors=sum(status != 200 for _, _, status in asker.answers),
    )


def table(results: list[SwapMemory]) -> str:
    """The results, one row per index size, as the `swap` block of docs/benchmarks.md."""
    headers = ["articles", "chunks", "steady RSS MB", "peak RSS MB per swap",
               "largest peak over steady (target ≤ 10%)", "RSS after MB", "question p50 / max ms, steady",
               "while swapping"]
    rows = [[f"{r.articles:,}", f"{r.chunks:,}", f"{r.steady_rss_mb:,.1f}",
             ", ".join(f"{peak:,.1f}" for peak in r.peak_rss_mb), f"{r.peak_over_steady:+.1%}",
             f"{r.after_rss_mb:,.1f}", f"{r.steady_p50_ms:.1f} / {r.steady_max_ms:.1f}",
             f"{r.swap_p50_ms:.1f} / {r.swap_max_ms:.1f}"] for r in sorted(results, key=lambda r: r.articles)]
    errors = sum(r.errors for r in results)
    verdict = "met" if all(r.peak_over_steady <= 0.10 for r in results) else "missed"
    return (markdown_table(headers, rows)
            + f"\n\nNamed updates, {results[0].swaps} per size (an article added, then removed), "
            "swapped in by a running `qa-serve` (`QA_RELOAD_INTERVAL_S=0.5`), one client asking throughout "
            f"({errors} errors); resident memory sampled every 10 ms. Target: the largest peak at most 10% over "
            f"steady ({verdict}).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", default="100000", help="index sizes in articles, comma-separated")
    parser.add_argument("--swaps", type=int, default=4)
    parser.add_argument("--json", type=Path)
    add_publish_arguments(parser, "swap")
    args = parser.parse_args(argv)
    results = []
    for n in [int(x) for x in args.articles.split(",")]:
        results.append(measure(n, args.swaps))
        print(json.dumps(asdict(results[-1])), flush=True)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    print_and_publish(args, "swap", argv, [Table("swap", table(results), HEADING)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
