"""Two embedding models on the same articles (issue 33's "MiniLM for candidates with mpnet as a
second stage", and issue 31's search for a better judge of the first passage).

Two indexes of the same articles, built with the same chunking by two models (for example
`qa-ingest data/articles` with the default model and with `QA_MODEL=all-mpnet-base-v2`), their
passages matched by article and offsets. For each question, as served (top 20):

- each model's own ranking (hybrid: its dense search fused with BM25);
- both rankings fused by reciprocal rank (k 60, not tuned): the second model as a second stage
  over the first one's candidates costs one more question embedding, no passage embedding;
- agreement: both models put the same passage first. How often that first passage is right,
  and what share of the answerable questions it covers, is a candidate confidence signal.

Printed for the tune pool (the halves and files a calibration may be fitted on) and for the
reported sets apart; nothing here is fitted, so both are honest, and only the tune figures may
choose anything.

    python -m bench.experiments.second_model --first IDX_MINILM --second IDX_MPNET
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from bench.common import read_jsonl
from bench.eval_report import ROOT, reported_sets
from bench.eval_split import EVAL_DIR, read_rows, split_rows

TOP_K = 20
RRF_K = 60


def tune_sets() -> dict[str, list[dict]]:
    return {
        "tune pool": split_rows(read_rows(EVAL_DIR / "readers"))["tune"]
        + split_rows(read_rows(EVAL_DIR))["tune"]
        + read_jsonl(ROOT / "eval" / "extra.jsonl"),
    }


def questions(rows: list[dict]):
    """Single questions and conversations' first turns, as qa-eval scores them alone."""
    from index.evaluate import parse_eval_set

    eval_set = parse_eval_set((json.dumps(row) for row in rows), "set")
    return eval_set.asked_alone


def _key(passage) -> tuple[str, int]:
    return passage.chunk.article_id, passage.chunk.start


def fused(first, second) -> list:
    """Both rankings' passages by reciprocal rank fusion, best first."""
    score: dict[tuple[str, int], float] = defaultdict(float)
    passage = {}
    for result in (first, second):
        for rank, p in enumerate(result.passages, start=1):
            score[_key(p)] += 1 / (RRF_K + rank)
            passage.setdefault(_key(p), p)
    return [passage[key] for key in sorted(score, key=score.get, reverse=True)]


def measure(first_searcher, second_searcher, rows: list[dict]) -> dict:
    from index.evaluate import passage_answers

    asked = questions(rows)
    answerable = [q for q in asked if not q.out_of_scope]
    hits = defaultdict(int)
    agree = agree_right = agree_out = 0
    seconds = defaultdict(float)
    for q in asked:
        started = time.perf_counter()
        a = first_searcher.search(q.question, top_k=TOP_K)
        seconds["first"] += time.perf_counter() - started
        started = time.perf_counter()
        b = second_searcher.search(q.question, top_k=TOP_K)
        seconds["second"] += time.perf_counter() - started
        rankings = {"first": a.passages, "second": b.passages, "fused": fused(a, b)}
        if not q.out_of_scope:
            for name, passages in rankings.items():
                right = [passage_answers(q, p) for p in passages[:3]]
                hits[f"{name} hit@1"] += bool(right[:1] and right[0])
                hits[f"{name} hit@3"] += any(right)
        if a.passages and b.passages and _key(a.passages[0]) == _key(b.passages[0]):
            agree += 1
            agree_out += q.out_of_scope
            agree_right += (not q.out_of_scope) and passage_answers(q, a.passages[0])
    n = max(len(answerable), 1)
    return {
        "questions": len(asked), "answerable": len(answerable),
        **{name: round(count / n, 3) for name, count in sorted(hits.items())},
        "both first the same": agree, "of which right": agree_right, "of which out of scope": agree_out,
        "precision when the same": round(agree_right / agree, 3) if agree else None,
        "coverage when the same": round(agree_right / n, 3),
        "ms per question, first / second": (round(1000 * seconds["first"] / len(asked), 1),
                                             round(1000 * seconds["second"] / len(asked), 1)),
    }


def main(argv: list[str] | None = None) -> int:
    from index.cli import open_searcher

    parser = argparse.ArgumentParser(prog="python -m bench.experiments.second_model", description=__doc__.split("\n\n")[0])
    parser.add_argument("--first", type=Path, required=True, help="index of the first (candidate) model")
    parser.add_argument("--second", type=Path, required=True, help="index of the same articles by the second model")
    args = parser.parse_args(argv)
    first, second = open_searcher(args.first), open_searcher(args.second)
    for name, rows in {**tune_sets(), **reported_sets()}.items():
        print(name, json.dumps(measure(first, second, rows)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
