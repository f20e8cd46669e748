"""Question latency after many single-article adds against the same articles fully merged
(issue 15: "after 1,000 single-article adds, query latency is within 10% of a fully merged
index").

    python -m bench segments [--base 10000] [--adds 1000] [--json out.json] [--publish]

A synthetic index of `--base` articles (bench/common.py: real SciFact sentences, vectors mixed
from real embeddings) is published with the real store code, then `--adds` synthetic
articles are published one at a time, each as its own version, with the merge policy run
after each (what `qa-ingest` does, without embedding, so the adds take minutes, not hours).
The index is then copied and the copy merged into one segment (`--optimize`). Both are
searched by `Searcher.search` with the 300 SciFact claims, embedded by the real model, in
three alternating rounds; medians of the rounds' p50 and p90. The figures are printed as a
table; with --publish it is written into its block of docs/benchmarks.md (`segments`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import (
    CACHE,
    Machine,
    build_synthetic_index,
    percentile,
    scifact_queries,
    seed_vectors,
    synthetic_articles,
    synthetic_vectors,
)
from bench.publish import Table, add_publish_arguments, markdown_table, print_and_publish
from index import merge, store
from index.encoder import Encoder
from index.records import Chunk
from index.search import Searcher
from index.settings import Settings
from ingest.chunk import sha256
from ingest.load import make_article
from ingest.pipeline import chunking_params, dense_options

ROUNDS = 3  # alternating rounds of the questions over both indexes
QUESTIONS = 300  # SciFact claims
HEADING = "## Latency after many small adds"  # the block's, when it is new


def add_one_at_a_time(index_dir: Path, settings: Settings, adds: int, seeds: np.ndarray) -> list[float]:
    """Publish `adds` articles, one version each, merging as the policy asks; seconds per add."""
    seconds = []
    options = dict(model=settings.model, chunking=chunking_params(settings), keep_versions=1,
                   dense=dense_options(settings))
    for i, (article_id, title, text, offsets) in enumerate(synthetic_articles(adds, seed=1)):
        article = make_article(article_id, text, {"title": title})
        chunks = [
            Chunk(id=sha256(f"{article_id}\0{start}")[:24], article_id=article_id, text=text[start:end],
                  start=start, end=end, section="body", speaker=None, text_hash=sha256(text[start:end]))
            for start, end in offsets
        ]
        vectors = synthetic_vectors(len(chunks), seeds, seed=1_000 + i)
        started = time.perf_counter()
        with store.ingest_lock(index_dir):
            base = store.open_for_update(index_dir)
            store.publish(index_dir, base=base, new=store.NewArticles([article], chunks, vectors), **options)
            merge.run_merges(index_dir, **options)
        seconds.append(time.perf_counter() - started)
    return seconds


def latency(searcher: Searcher, questions: list[str]) -> dict[str, float]:
    for question in questions[:20]:
        searcher.search(question, top_k=5)
    times = []
    for question in questions:
        started = time.perf_counter()
        searcher.search(question, top_k=5)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": percentile(times, 50), "p90_ms": percentile(times, 90)}


def measure(base: int, adds: int) -> dict:
    """`adds` single-article adds onto `base` synthetic articles against the same fully merged:
    the figures `table` renders (and --json writes)."""
    work = Path(tempfile.mkdtemp(prefix="qa-segment-latency-", dir=CACHE if CACHE.is_dir() else None))
    try:
        encoder = Encoder()
        segmented, merged = work / "segmented", work / "merged"
        settings = Settings(index_dir=segmented)
        build_synthetic_index(segmented, base * 3)
        add_seconds = add_one_at_a_time(segmented, settings, adds, seed_vectors(encoder))
        shutil.copytree(segmented, merged)
        with store.ingest_lock(merged):
            merge.run_merges(merged, model=settings.model, chunking=chunking_params(settings),
                             keep_versions=1, dense=dense_options(settings), optimize=True)
        searchers = {
            name: Searcher(store.load_index(path), encoder, Settings(index_dir=path))
            for name, path in (("segmented", segmented), ("merged", merged))
        }
        questions = scifact_queries(QUESTIONS)
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in searchers}
        for _ in range(ROUNDS):
            for name, searcher in searchers.items():
                rounds[name].append(latency(searcher, questions))
        results = {
            "machine": vars(Machine.describe()),
            "base_articles": base,
            "adds": adds,
            "questions": len(questions),
            "rounds": ROUNDS,
            "add_s_p50": round(percentile(add_seconds, 50), 4),
            "add_s_max": round(max(add_seconds), 3),
        }
        for name, searcher in searchers.items():
            results[name] = {
                "segments": len(searcher.index.segments),
                "chunks": searcher.index.live_chunks,
                **{k: round(float(np.median([r[k] for r in rounds[name]])), 2) for k in ("p50_ms", "p90_ms")},
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["p50_ratio"] = round(results["segmented"]["p50_ms"] / results["merged"]["p50_ms"], 3)
    return results


def table(results: dict) -> str:
    """The results as the `segments` block of docs/benchmarks.md: the index after the adds
    against the same merged, and the target (within 10% of the merged index's p50)."""
    rows = []
    for name, label in (("segmented", f"{results['base_articles']:,} synthetic articles, then {results['adds']:,} "
                                      "single-article adds (the merge policy after each)"),
                        ("merged", "the same, fully merged")):
        r = results[name]
        rows.append([label, r["segments"], f"{r['chunks']:,}", f"{r['p50_ms']:.2f}", f"{r['p90_ms']:.2f}"])
    over = results["p50_ratio"] - 1
    verdict = "met" if over <= 0.10 else "missed"
    return (markdown_table(["index", "segments", "chunks", "p50 ms", "p90 ms"], rows)
            + f"\n\n`Searcher.search` (top 5) with the {results['questions']} SciFact claims, "
            f"{results['rounds']} alternating rounds; medians. Each add took {results['add_s_p50']} s at the median, "
            f"{results['add_s_max']} s at most. "
            f"Target: within 10% of the merged index ({over:+.1%}, {verdict}).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=int, default=10_000, help="articles before the adds")
    parser.add_argument("--adds", type=int, default=1_000, help="single-article adds")
    parser.add_argument("--json", type=Path)
    add_publish_arguments(parser, "segments")
    args = parser.parse_args(argv)
    results = measure(args.base, args.adds)
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print_and_publish(args, "segments", argv, [Table("segments", table(results), HEADING)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
