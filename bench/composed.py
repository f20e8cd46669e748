"""Composed answers with the local model over an evaluation file: how often an answer keeps a
supported sentence, how many sentences are dropped and why, and how fast the first words and the
whole checked answer come. Every sentence that passes the citation rules is written out with
its similarity and the cited passages, for reading and for calibrating `QA_LLM_MIN_SUPPORT`.

    python -m bench composed --index IDX ../shared/eval/questions.jsonl [--out F.jsonl]
    python -m bench.eval_split --half tune | python -m bench composed --index IDX -

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
from dataclasses import dataclass, field
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


@dataclass
class Tally:
    """What composing the questions gave: a row per composed answer, seconds to the first delta
    and to the whole checked answer, each sentence's verdict, and the searches not composed by
    confidence."""

    rows: list[dict] = field(default_factory=list)
    first_delta: list[float] = field(default_factory=list)
    whole: list[float] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)


def compose_all(searcher: Searcher, composer: Composer, questions) -> Tally:
    """Each question searched as the service does (top_k 3) and composed when confident."""
    tally = Tally()
    for question in questions:
        result = searcher.search(question.question, top_k=3)
        if not composer.wants(result):
            tally.skipped[result.confidence] += 1
            continue
        compose_one(composer, question, result, tally)
    return tally


def compose_one(composer: Composer, question, result, tally: Tally) -> None:
    """Stream one answer, check it, and add it to `tally` (a model error is counted as a verdict)."""
    started = time.perf_counter()
    written, first = [], None
    try:
        for delta in composer.stream(result):
            first = first or time.perf_counter() - started
            written.append(delta)
        composed = composer.check(result, "".join(written), started)
    except GenerationError as exc:
        tally.reasons[f"error: {exc}"] += 1
        return
    tally.whole.append(time.perf_counter() - started)
    tally.first_delta.append(first or tally.whole[-1])
    for sentence in composed.sentences:
        tally.reasons[(sentence.reason or "kept").split(" (")[0]] += 1
    shown = result.passages[: composer.passages]
    tally.rows.append({
        "question": question.question,
        "out_of_scope": question.out_of_scope,
        "text": "".join(written),
        "kept": composed.text,
        "first_delta_s": round(tally.first_delta[-1], 3),
        "seconds": round(tally.whole[-1], 3),
        "sentences": [
            {"text": s.text, "citations": s.citations, "supported": s.supported,
             "reason": s.reason, "similarity": s.similarity,
             "cited": [shown[n - 1].chunk.text for n in s.citations if 1 <= n <= len(shown)]}
            for s in composed.sentences
        ],
    })


def report(tally: Tally, questions: int, min_support: float, min_new_terms: float) -> None:
    rows, first_delta, whole = tally.rows, tally.first_delta, tally.whole
    answered = len(rows)
    sentences = sum(len(r["sentences"]) for r in rows)
    kept = sum(s["supported"] for r in rows for s in r["sentences"])
    print(f"questions {questions}; composed {answered}; not composed (search "
          f"not confident): {dict(tally.skipped)}; min_support {min_support}, min_new_terms "
          f"{min_new_terms}")
    if answered:
        with_support = sum(bool(r["kept"]) for r in rows)
        print(f"answers with at least one supported sentence: {with_support}/{answered} "
              f"({with_support / answered:.2f})")
        print(f"sentences: {sentences}, dropped {sentences - kept} "
              f"({(sentences - kept) / max(sentences, 1):.2f})")
        print("verdicts: " + ", ".join(f"{k} {v}" for k, v in tally.reasons.most_common()))
        print(f"first delta s: p50 {statistics.median(first_delta):.2f}, "
              f"p90 {percentile(first_delta, 90):.2f}; whole checked answer s: p50 "
              f"{statistics.median(whole):.2f}, p90 {percentile(whole, 90):.2f}, max {max(whole):.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench composed", description=__doc__.split("\n\n")[0])
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
    tally = compose_all(searcher, composer, eval_set.questions)
    if server is not None:
        server.close()
    report(tally, len(eval_set.questions), min_support, args.min_new_terms)
    if args.out:
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in tally.rows), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
