"""What the question log costs `/ask`: the real app through TestClient on an index, the 39
questions of ../shared/eval/questions.jsonl asked once to warm up and then `--rounds` times,
with the log on and off, alternated `--repeats` times. The search cache stays on, so most of
a request is the route itself and the log's insert is as visible as it can be.

    python -m bench log-cost --index IDX [--rounds 5] [--repeats 2] [--publish]

The figures are printed as JSON, then as a table; with --publish the table is written into its
block of docs/benchmarks.md (`log-cost`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.common import median, percentile
from bench.publish import Table, add_publish_arguments, markdown_table, print_and_publish

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval" / "questions.jsonl"
HEADING = "## What the question log costs"  # the block's, when it is new
LOG_DAYS = 30  # QA_QUESTION_LOG_DAYS with the log on
TARGET_MS = 1  # the log's cost at p50


def _run(index: Path, log_days: int, rounds: int, encoder, folder: Path) -> list[float]:
    from fastapi.testclient import TestClient

    from qa_service.app import create_app
    from qa_service.settings import ServiceSettings

    questions = [json.loads(line)["question"] for line in EVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    settings = ServiceSettings(index_dir=index, ask_rate_per_minute=0, question_log_days=log_days,
                               question_log_path=folder / "questions.sqlite")
    times = []
    with TestClient(create_app(settings, encoder=encoder)) as client:
        for question in questions:
            client.post("/ask", json={"question": question})
        for _ in range(rounds):
            for question in questions:
                started = time.perf_counter()
                assert client.post("/ask", json={"question": question}).status_code == 200
                times.append((time.perf_counter() - started) * 1000)
    return times


def measure(index: Path, rounds: int, repeats: int, encoder=None) -> dict:
    """p50 and p99 ms with the log on and off, and the p50 difference."""
    from index.encoder import Encoder

    encoder = encoder or Encoder()
    runs: dict[str, list[float]] = {"log on": [], "log off": []}
    with tempfile.TemporaryDirectory(prefix="qa-log-bench-") as folder:
        for _ in range(repeats):
            runs["log on"] += _run(index, LOG_DAYS, rounds, encoder, Path(folder))
            runs["log off"] += _run(index, 0, rounds, encoder, Path(folder))
    figures = {label: {"requests": len(t), "p50_ms": round(median(t), 3), "p99_ms": round(percentile(t, 99), 3)}
               for label, t in runs.items()}
    figures["p50 difference ms"] = round(figures["log on"]["p50_ms"] - figures["log off"]["p50_ms"], 3)
    return figures


def table(figures: dict) -> str:
    """The figures as the `log-cost` block of docs/benchmarks.md."""
    on, off = figures["log on"], figures["log off"]
    each = (f"{on['requests']} requests each" if on["requests"] == off["requests"]
            else f"{on['requests']} and {off['requests']} requests")
    rows = [(f"question log on (`QA_QUESTION_LOG_DAYS={LOG_DAYS}`)", on), ("question log off (`0`)", off)]
    difference = figures["p50 difference ms"]
    verdict = "met" if difference < TARGET_MS else "missed"
    return (markdown_table([f"`/ask`, sample index, {each}", "p50", "p99"],
                           [[label, f"{r['p50_ms']} ms", f"{r['p99_ms']} ms"] for label, r in rows])
            + "\n\nThe search cache stays on, so the insert is as visible as it gets; the log on "
            f"and off alternated. Target: under {TARGET_MS} ms at p50 ({difference} ms, {verdict}).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    add_publish_arguments(parser, "log-cost")
    args = parser.parse_args(argv)
    figures = measure(args.index, args.rounds, args.repeats)
    print(json.dumps(figures, indent=2))
    print_and_publish(args, "log-cost", argv, [Table("log-cost", table(figures), HEADING)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
