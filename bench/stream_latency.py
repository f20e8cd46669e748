"""Time to the first streamed word and to the checked answer, as a client of `POST /ask/stream`
sees them, over an evaluation file's questions (top_k 3).

    qa-llm --port 8090 &
    QA_LLM_URL=http://127.0.0.1:8090/v1 qa-serve --index IDX --port 8000 &
    python -m bench stream --api http://127.0.0.1:8000 ../shared/eval/questions.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import httpx

from bench.common import percentile


def ask(client: httpx.Client, question: str) -> tuple[float, float | None, float, str]:
    """(seconds to the passages, to the first delta or None, to the end, the last event)."""
    started = time.perf_counter()
    passages = first = None
    last = ""
    with client.stream("POST", "/ask/stream", json={"question": question, "top_k": 3}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("event:"):
                continue
            last = line.split(":", 1)[1].strip()
            now = time.perf_counter() - started
            if last == "passages":
                passages = now
            elif last == "delta" and first is None:
                first = now
    return passages or 0.0, first, time.perf_counter() - started, last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench stream", description=__doc__.split("\n\n")[0])
    parser.add_argument("questions")
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in open(args.questions, encoding="utf-8") if line.strip()]
    questions = [row["question"] for row in rows if "question" in row]
    passages, firsts, composed = [], [], []
    with httpx.Client(base_url=args.api, timeout=60) as client:
        ask(client, "warm-up: who argues against means-testing?")  # the model's prompt cache
        for question in questions:
            to_passages, first, whole, last = ask(client, question)
            passages.append(to_passages)
            if first is not None:
                firsts.append(first)
                composed.append(whole)
            print(f"{to_passages:6.2f} {first or 0:6.2f} {whole:6.2f} {last:8s} {question}", flush=True)
    print(f"questions {len(questions)}, composed {len(firsts)}")
    print(f"passages event s: p50 {statistics.median(passages):.2f}, p90 {percentile(passages, 90):.2f}")
    if firsts:
        print(f"first delta s: p50 {statistics.median(firsts):.2f}, p90 {percentile(firsts, 90):.2f}, "
              f"max {max(firsts):.2f}")
        print(f"whole checked answer s: p50 {statistics.median(composed):.2f}, "
              f"p90 {percentile(composed, 90):.2f}, max {max(composed):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
