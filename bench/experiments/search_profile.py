"""Where one question's time goes, in-process, on a large index: the question's embedding,
the dense search, BM25's top candidates and the BM25 scores of the dense candidates, and the
whole `Searcher.search`, on one thread as `qa-serve` answers a question. Then `search` from
1 and 4 threads at once on other questions (latency and questions a second).

    .venv/bin/python -m bench.experiments.search_profile --index IDX [--queries 300] [--json OUT]

IDX: for example the synthetic million-chunk index `bench.query_latency` builds (under
$QA_BENCH_CACHE/index-1000000-auto/index). Runs against older code too (PYTHONPATH=OLD):
then only the BM25 row that code has is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

from bench.common import median, percentile, rss_mb, scifact_queries


def _ms(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(median(times), 3), "p99_ms": round(percentile(times, 99), 3)}


def _bm25_before(lexical, question: str, n: int) -> np.ndarray:
    """The BM25 candidates as the search took them before issue 17: every row scored, then
    torch.topk."""
    import torch

    scores = lexical.scores(question)
    values, rows = torch.topk(torch.from_numpy(scores), min(n, len(scores)))
    return rows.numpy()[values.numpy() > 0]


def _concurrent(searcher, questions: list[str], threads: int) -> dict[str, float]:
    """`searcher.search` on `questions` from `threads` threads sharing them out."""
    pending, times, lock = iter(questions), [], threading.Lock()

    def work() -> None:
        while True:
            with lock:
                question = next(pending, None)
            if question is None:
                return
            started = time.perf_counter()
            searcher.search(question)
            with lock:
                times.append((time.perf_counter() - started) * 1000)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {**_ms(times), "questions_per_s": round(len(times) / (time.perf_counter() - started), 1)}


def profile(index_dir: Path, n_queries: int) -> dict:
    from index.dense import set_query_threads
    from index.encoder import Encoder
    from index.search import Searcher
    from index.settings import Settings
    from index.store import load_index

    set_query_threads(1)
    started = time.perf_counter()
    version = load_index(index_dir)
    settings = Settings(index_dir=index_dir)
    searcher = Searcher(version, Encoder(threads=1), settings)
    load_s = time.perf_counter() - started
    queries = scifact_queries()[: n_queries + 20]
    warm, queries = queries[:20], queries[20:]
    for question in warm:
        searcher.search(question)
    lexical = version.lexical
    served = hasattr(lexical, "score")  # issue 17's interface
    n = settings.candidates
    stages: dict[str, list[float]] = {
        name: [] for name in ("embedding", "dense", "bm25 scores + top-k", "bm25 of the dense candidates",
                              "search, whole")
    }
    for question in queries:
        t0 = time.perf_counter()
        vector = searcher.encoder.encode_query(question)
        t1 = time.perf_counter()
        dense_rows = version.dense.search(vector, n)[0]
        t2 = time.perf_counter()
        if served:
            scored = lexical.score(lexical.query(question))
            scored.top(n)
            t3 = time.perf_counter()
            scored.at(dense_rows)
            stages["bm25 of the dense candidates"].append((time.perf_counter() - t3) * 1000)
        else:
            _bm25_before(lexical, question, n)
            t3 = time.perf_counter()
        stages["embedding"].append((t1 - t0) * 1000)
        stages["dense"].append((t2 - t1) * 1000)
        stages["bm25 scores + top-k"].append((t3 - t2) * 1000)
        t4 = time.perf_counter()
        searcher.search(question)
        stages["search, whole"].append((time.perf_counter() - t4) * 1000)
    concurrent = {f"{n} threads": _concurrent(searcher, scifact_queries()[n_queries + 20 :][:400], n) for n in (1, 4)}
    memory = rss_mb(os.getpid())
    return {
        "index": str(index_dir),
        "chunks": version.live_chunks,
        "queries": len(queries),
        "candidates": n,
        "load_s": round(load_s, 1),
        "stages": {name: _ms(times) for name, times in stages.items() if times},
        "search_concurrently": concurrent,
        "rss_mb": round(memory["VmRSS"], 1),
        "rss_anon_mb": round(memory.get("RssAnon", 0), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    figures = profile(args.index, args.queries)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
