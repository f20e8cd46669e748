"""Time to the first streamed word and to the checked answer, as a client of `POST /ask/stream`
sees them, over an evaluation file's questions (top_k 3).

    qa-llm --port 8090 &
    QA_LLM_URL=http://127.0.0.1:8090/v1 qa-serve --index IDX --port 8000 &
    python -m bench stream --api http://127.0.0.1:8000 ../shared/eval/questions.jsonl [--publish]

Prints each question's times and the percentiles, then the table; with --publish the table is
written into its block of docs/quality.md (`stream`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import httpx

from bench.common import percentile, read_jsonl
from bench.publish import Table, add_publish_arguments, markdown_table, print_and_publish

FIRST_DELTA_TARGET_S = 1.5
DONE_TARGET_S = 10.0


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


def spread(seconds: list[float]) -> dict[str, float] | None:
    """p50, p90 and max of `seconds` (None when there are none)."""
    if not seconds:
        return None
    return {"p50": round(statistics.median(seconds), 3), "p90": round(percentile(seconds, 90), 3),
            "max": round(max(seconds), 3)}


def summarise(questions: int, passages: list[float], firsts: list[float], composed: list[float]) -> dict:
    """The run's figures: the questions asked, how many were composed, and the spread of the
    seconds to the `passages` event (all), the first `delta` and `done` (those composed)."""
    return {"questions": questions, "composed": len(firsts), "passages": spread(passages),
            "first_delta": spread(firsts), "done": spread(composed)}


def table(results: dict) -> str:
    """The run as the `stream` block: p50, p90 and max seconds to the `passages` event, the first
    `delta` and `done` (the checked answer), over the questions that were composed."""
    headers = ["`POST /ask/stream`, top_k 3", "p50", "p90", "max"]
    rows = [("the `passages` event", results["passages"]),
            (f"the first `delta` (target {FIRST_DELTA_TARGET_S:g} s)", results["first_delta"]),
            (f"`done`, the checked answer (target {DONE_TARGET_S:g} s)", results["done"])]
    cells = [[label, *(f"{figures[key]:.2f} s" if figures else None for key in ("p50", "p90", "max"))]
             for label, figures in rows]
    return markdown_table(headers, cells) + (
        f"\n\n{results['composed']} of the {results['questions']} questions composed (the `delta` and "
        "`done` rows are theirs), one warm-up question first.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench stream", description=__doc__.split("\n\n")[0])
    parser.add_argument("questions")
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    add_publish_arguments(parser, "stream")
    args = parser.parse_args(argv)
    rows = read_jsonl(args.questions)
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
    results = summarise(len(questions), passages, firsts, composed)
    print_and_publish(args, "stream", argv, [Table("stream", table(results), "### Composed answers, streamed")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
