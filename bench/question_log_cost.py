"""What the question log costs `/ask`: the real app through TestClient on an index, the 39
questions of ../shared/eval/questions.jsonl asked once to warm up and then `--rounds` times,
with the log on and off, alternated `--repeats` times. The search cache stays on, so most of
a request is the route itself and the log's insert is as visible as it can be.

    python -m bench log-cost --index IDX
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.common import median, percentile

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval" / "questions.jsonl"


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


def measure(index: Path, rounds: int, repeats: int) -> dict:
    from index.encoder import Encoder

    encoder = Encoder()
    runs: dict[str, list[float]] = {"log on": [], "log off": []}
    with tempfile.TemporaryDirectory(prefix="qa-log-bench-") as folder:
        for _ in range(repeats):
            runs["log on"] += _run(index, 30, rounds, encoder, Path(folder))
            runs["log off"] += _run(index, 0, rounds, encoder, Path(folder))
    figures = {label: {"requests": len(t), "p50_ms": round(median(t), 3), "p99_ms": round(percentile(t, 99), 3)}
               for label, t in runs.items()}
    figures["p50 difference ms"] = round(figures["log on"]["p50_ms"] - figures["log off"]["p50_ms"], 3)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.index, args.rounds, args.repeats), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
