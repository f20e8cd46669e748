"""Repeated questions: `/ask` on the sample index through the real app (TestClient), every
question of ../shared/eval/questions.jsonl asked once to warm up and then `--rounds` times,
with the search cache on (QA_SEARCH_CACHE_SIZE, default) and off (0), side by side. Also each
question's first asking with the cache off (nothing kept: its vector is computed then), beside
the floor of that: the same questions embedded alone on the same question path.

    python -m bench search-cache --index IDX [--rounds 5] [--runs 2] [--publish]

The whole measure is made `--runs` times, each run printed as a JSON line, then all as a
table, a column per run; with --publish the table is written into its block of
docs/benchmarks.md (`search-cache`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.common import median, percentile
from bench.publish import Table, add_publish_arguments, markdown_table, print_and_publish

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval" / "questions.jsonl"
HEADING = "## Latency on the sample index"  # the block's, when it is new
FLOOR = "question embedding alone (the floor)"
FIRST = "first asking, cache off"
LABELS = {  # measure's labels: the table's rows
    FLOOR: "question embedding alone (the floor)",
    FIRST: "first asking, search cache off",
    "cache off": "repeated, cache off (vector kept)",
    "cache on": "repeated, cache on",
}


def measure(index: Path, rounds: int, encoder=None) -> dict:
    """One run: p50 and p99 ms of each asking, by label (LABELS), and the rounds."""
    from fastapi.testclient import TestClient

    from index.encoder import Encoder
    from qa_service.app import create_app
    from qa_service.settings import ServiceSettings

    questions = [json.loads(line)["question"] for line in EVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    encoder = encoder or Encoder(threads=1)  # as qa-serve (QA_QUERY_THREADS)
    figures: dict = {"rounds": rounds}
    for label, size in (("cache on", 1000), ("cache off", 0)):
        settings = ServiceSettings(index_dir=index, ask_rate_per_minute=0, search_cache_size=size)
        with TestClient(create_app(settings, encoder=encoder)) as client:
            first = []
            for question in questions:  # warm-up (and, with the cache on, the first asking)
                started = time.perf_counter()
                client.post("/ask", json={"question": question})
                first.append((time.perf_counter() - started) * 1000)
            if size == 0:
                figures[FIRST] = {"requests": len(first), "p50_ms": round(median(first), 2),
                                  "p99_ms": round(percentile(first, 99), 2)}
            times = []
            for _ in range(rounds):
                for question in questions:
                    started = time.perf_counter()
                    assert client.post("/ask", json={"question": question}).status_code == 200
                    times.append((time.perf_counter() - started) * 1000)
        figures[label] = {"requests": len(times), "p50_ms": round(median(times), 2),
                          "p99_ms": round(percentile(times, 99), 2)}
    floor = []  # the encoder keeps no vectors (the searchers do), so each is computed again
    for question in questions:
        started = time.perf_counter()
        encoder.encode_query(question)
        floor.append((time.perf_counter() - started) * 1000)
    figures[FLOOR] = {"p50_ms": round(median(floor), 2)}
    return figures


def table(runs: list[dict]) -> str:
    """The runs (one column each) as the `search-cache` block of docs/benchmarks.md."""
    headers = ["`/ask`, sample index", *(f"run {i} p50" for i in range(1, len(runs) + 1))]
    rows = []
    for label, row in LABELS.items():
        cells = [row]
        for i, run in enumerate(runs):
            cell = f"{run[label]['p50_ms']:.2f} ms"
            if label == FIRST:
                ratio = run[FIRST]["p50_ms"] / run[FLOOR]["p50_ms"]
                cell += f" ({ratio:.2f}× the floor)" if i == 0 else f" ({ratio:.2f}×)"
            cells.append(cell)
        rows.append(cells)
    worst = max(run[FIRST]["p50_ms"] / run[FLOOR]["p50_ms"] for run in runs)
    first = runs[0]
    return (markdown_table(headers, rows) + f"\n\nEach of the {first[FIRST]['requests']} questions asked once, then "
            f"{first['rounds']} rounds ({first['cache on']['requests']} requests) with the search cache on and "
            f"off. Target: p50 at most twice the floor ({'met' if worst <= 2 else 'missed'}).")


def main(argv: list[str] | None = None) -> int:
    from index.encoder import Encoder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=2, help="the whole measure, again: one column each")
    add_publish_arguments(parser, "search-cache")
    args = parser.parse_args(argv)
    encoder = Encoder(threads=1)  # as qa-serve (QA_QUERY_THREADS)
    runs = []
    for _ in range(args.runs):
        runs.append(measure(args.index, args.rounds, encoder))
        print(json.dumps(runs[-1]), flush=True)
    print_and_publish(args, "search-cache", argv, [Table("search-cache", table(runs), HEADING)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
