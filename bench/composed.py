"""Composed answers with the local model over an evaluation file: how often an answer keeps a
supported sentence, how many sentences are dropped and why, and how fast the first words and the
whole checked answer come. Every sentence that passes the citation rules is written out with
its similarity and the cited passages, for reading and for calibrating `QA_LLM_MIN_SUPPORT`.

    .venv/bin/python -m bench.composed --index IDX ../shared/eval/questions.jsonl [--out F.jsonl]
    python -m bench.eval_split --half tune | .venv/bin/python -m bench.composed --index IDX -

The questions are asked as the service asks them (top_k 3; only confident searches are
composed). Starts `qa-llm`'s server itself unless --llm-url is given.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from bench.common import percentile
from index.encoder import Encoder
from index.evaluate import parse_eval_set
from index.search import Searcher
from index.store import load_index
from qa_service.citations import CitationChecker
from qa_service.compose import Composer
from qa_service.llm import ChatModel, GenerationError
from qa_service.local_llm import LocalModelServer, bundled_model_path
from qa_service.settings import ServiceSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.composed", description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", help="evaluation JSONL, or - for standard input")
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--llm-url", help="an OpenAI-compatible endpoint (default: start qa-llm's)")
    parser.add_argument("--min-support", type=float, help="default: the service's setting")
    parser.add_argument("--min-new-terms", type=float, default=0.75,
                        help="share of an answer's words beyond the question's found in its passages")
    parser.add_argument("--out", type=Path, help="write one JSON row per composed answer")
    args = parser.parse_args(argv)

    settings = ServiceSettings(index_dir=args.index)
    min_support = settings.llm_min_support if args.min_support is None else args.min_support
    lines = sys.stdin if args.questions == "-" else open(args.questions, encoding="utf-8")
    eval_set = parse_eval_set(lines, args.questions)
    server = None if args.llm_url else LocalModelServer(bundled_model_path(), port=8097)
    url = args.llm_url or server.url
    encoder = Encoder(settings.model)
    searcher = Searcher(load_index(args.index), encoder, settings)
    model = ChatModel(url, settings.llm_model, None, settings.llm_timeout_s, settings.llm_max_tokens)
    composer = Composer(model, CitationChecker(encoder, min_support, args.min_new_terms), settings.llm_passage_chars,
                        settings.llm_passages)

    rows, first_delta, whole = [], [], []
    reasons: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for question in eval_set.questions:
        result = searcher.search(question.question, top_k=3)
        if not composer.wants(result):
            skipped[result.confidence] += 1
            continue
        started = time.perf_counter()
        written, first = [], None
        try:
            for delta in composer.stream(result):
                first = first or time.perf_counter() - started
                written.append(delta)
            composed = composer.check(result, "".join(written), started)
        except GenerationError as exc:
            reasons[f"error: {exc}"] += 1
            continue
        whole.append(time.perf_counter() - started)
        first_delta.append(first or whole[-1])
        for sentence in composed.sentences:
            reasons[(sentence.reason or "kept").split(" (")[0]] += 1
        shown = result.passages[: composer.passages]
        rows.append({
            "question": question.question,
            "out_of_scope": question.out_of_scope,
            "text": "".join(written),
            "kept": composed.text,
            "first_delta_s": round(first_delta[-1], 3),
            "seconds": round(whole[-1], 3),
            "sentences": [
                {"text": s.text, "citations": s.citations, "supported": s.supported,
                 "reason": s.reason, "similarity": s.similarity,
                 "cited": [shown[n - 1].chunk.text for n in s.citations if 1 <= n <= len(shown)]}
                for s in composed.sentences
            ],
        })
    if server is not None:
        server.close()

    answered = len(rows)
    sentences = sum(len(r["sentences"]) for r in rows)
    kept = sum(s["supported"] for r in rows for s in r["sentences"])
    print(f"questions {len(eval_set.questions)}; composed {answered}; not composed (search "
          f"not confident): {dict(skipped)}; min_support {min_support}, min_new_terms "
          f"{args.min_new_terms}")
    if answered:
        with_support = sum(bool(r["kept"]) for r in rows)
        print(f"answers with at least one supported sentence: {with_support}/{answered} "
              f"({with_support / answered:.2f})")
        print(f"sentences: {sentences}, dropped {sentences - kept} "
              f"({(sentences - kept) / max(sentences, 1):.2f})")
        print("verdicts: " + ", ".join(f"{k} {v}" for k, v in reasons.most_common()))
        print(f"first delta s: p50 {statistics.median(first_delta):.2f}, "
              f"p90 {percentile(first_delta, 90):.2f}; whole checked answer s: p50 "
              f"{statistics.median(whole):.2f}, p90 {percentile(whole, 90):.2f}, max {max(whole):.2f}")
    if args.out:
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
