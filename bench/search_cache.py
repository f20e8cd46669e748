"""Repeated questions: `/ask` on the sample index through the real app (TestClient), every
question of ../shared/eval/questions.jsonl asked once to warm up and then `--rounds` times,
with the search cache on (QA_SEARCH_CACHE_SIZE, default) and off (0), side by side. Also each
question's first asking with the cache off (nothing kept: its vector is computed then), beside
the floor of that: the same questions embedded alone on the same question path.

    python -m bench search-cache --index IDX
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.common import median, percentile

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval" / "questions.jsonl"


def measure(index: Path, rounds: int) -> dict:
    from fastapi.testclient import TestClient

    from index.encoder import Encoder
    from qa_service.app import create_app
    from qa_service.settings import ServiceSettings

    questions = [json.loads(line)["question"] for line in EVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    encoder = Encoder(threads=1)  # as qa-serve (QA_QUERY_THREADS)
    figures = {}
    for label, size in (("cache on", 1000), ("cache off", 0)):
        settings = ServiceSettings(index_dir=index, ask_rate_per_minute=0, search_cache_size=size)
        with TestClient(create_app(settings, encoder=encoder)) as client:
            first = []
            for question in questions:  # warm-up (and, with the cache on, the first asking)
                started = time.perf_counter()
                client.post("/ask", json={"question": question})
                first.append((time.perf_counter() - started) * 1000)
            if size == 0:
                figures["first asking, cache off"] = {"requests": len(first), "p50_ms": round(median(first), 2),
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
    figures["question embedding alone (the floor)"] = {"p50_ms": round(median(floor), 2)}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.index, args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
