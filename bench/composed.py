"""Composed answers with the local model over an evaluation file: how often an answer keeps a
supported sentence, how many sentences are dropped and why, and how fast the first words and the
whole checked answer come. Every sentence that passes the citation rules is written out with
its similarity and the cited passages, for reading and for calibrating `QA_LLM_MIN_SUPPORT`.

    python -m bench composed --index IDX ../shared/eval/questions.jsonl [--out F.jsonl]
    python -m bench composed --index IDX tune+eval/extra.jsonl report ../shared/eval/questions.jsonl
    python -m bench.eval_split --half tune | python -m bench composed --index IDX -

Each SET is an evaluation JSONL file, `-` for standard input, or `tune` / `report` for
bench.eval_split's half of ../shared/eval; `A+B` joins sets into one. The questions are asked
as the service asks them (top_k 3; only confident searches are composed). Starts `qa-llm`'s
server itself unless --llm-url is given. Prints each set's figures, then the table (a row per
SET); with --publish the table is written into its block of docs/quality.md (`composed`).
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
from bench.publish import Table, add_publish_arguments, markdown_table, print_and_publish
from index.encoder import Encoder
from index.evaluate import EvalSet, parse_eval_set
from index.search import Searcher
from index.store import load_index
from qa_service.citations import CitationChecker
from qa_service.compose import Composer
from qa_service.llm import ChatModel, GenerationError
from qa_service.local_llm import LocalModelServer, bundled_model_path
from qa_service.settings import ServiceSettings


HALVES = {"tune": "tune half", "report": "report half"}  # bench.eval_split's, by name


def _set_lines(part: str) -> list[str]:
    if part in HALVES:
        from bench.eval_split import EVAL_DIR, read_rows, split_rows

        return [json.dumps(row, ensure_ascii=False) for row in split_rows(read_rows(EVAL_DIR))[part]]
    if part == "-":
        return sys.stdin.read().splitlines()
    return Path(part).read_text(encoding="utf-8").splitlines()


def read_sets(specs: list[str]) -> list[tuple[str, EvalSet]]:
    """Each SET (a JSONL file, `-`, `tune` or `report`, or several joined by `+`) and its rows."""
    return [(spec, parse_eval_set([line for part in spec.split("+") for line in _set_lines(part)], spec))
            for spec in specs]


def set_label(spec: str) -> str:
    """How a table names a SET: a file in backticks, a half by name."""
    names = {**HALVES, "-": "standard input"}
    return " + ".join(names.get(part, f"`{part}`") for part in spec.split("+"))


def set_row(spec: str, cells: list[str]) -> list[str]:
    """A table's row for SET `spec`: its cells, in bold for the report half (the figures reported)."""
    return [f"**{cell}**" for cell in cells] if spec == "report" else cells


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


def summary(spec: str, tally: Tally, questions: int) -> dict:
    """One SET's figures, as the table reads them."""
    sentences = sum(len(r["sentences"]) for r in tally.rows)
    kept = sum(s["supported"] for r in tally.rows for s in r["sentences"])
    errors = sum(count for reason, count in tally.reasons.items() if reason.startswith("error: "))
    return {
        "set": spec, "questions": questions, "composed": len(tally.rows), "skipped": dict(tally.skipped),
        "with_support": sum(bool(r["kept"]) for r in tally.rows), "sentences": sentences,
        "dropped": sentences - kept, "model_errors": errors,
        "dropped_by_reason": {reason: count for reason, count in tally.reasons.most_common()
                              if reason != "kept" and not reason.startswith("error: ")},
        "first_delta_p50_s": round(statistics.median(tally.first_delta), 2) if tally.first_delta else None,
        "whole_p50_s": round(statistics.median(tally.whole), 2) if tally.whole else None,
    }


def _set_note(figures: dict) -> str:
    reasons = ", ".join(f"{reason} {count}" for reason, count in figures["dropped_by_reason"].items())
    errors = f"; model errors {figures['model_errors']}" if figures["model_errors"] else ""
    timing = ("" if figures["whole_p50_s"] is None else
              f"; p50 {figures['first_delta_p50_s']:.2f} s to the first words, {figures['whole_p50_s']:.2f} s "
              "to the checked answer")
    return (f"{set_label(figures['set'])}: {figures['composed']} of {figures['questions']} composed; "
            f"dropped: {reasons or 'none'}{errors}{timing}")


def table(results: dict) -> str:
    """The run as the `composed` block: a row per SET (the report half in bold), answers that
    kept a supported sentence and sentences dropped; under it why, and how fast."""
    headers = ["set", "answers with a supported sentence", "sentences dropped"]
    rows = []
    for figures in results["sets"]:
        asked = figures["questions"]
        rows.append(set_row(figures["set"], [
            f"{set_label(figures['set'])} ({asked} question{'' if asked == 1 else 's'})",
            f"{figures['with_support']} of {figures['composed']}", f"{figures['dropped']} of {figures['sentences']}"]))
    notes = " ".join(f"{_set_note(figures)}." for figures in results["sets"])
    return markdown_table(headers, rows) + (
        f"\n\nComposed where the search was confident (top_k 3); QA_LLM_MIN_SUPPORT {results['min_support']}, "
        f"min_new_terms {results['min_new_terms']}. {notes}")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench composed", description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", metavar="SET",
                        help="evaluation JSONL, - for standard input, tune or report (bench.eval_split), A+B")
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--llm-url", help="an OpenAI-compatible endpoint (default: start qa-llm's)")
    parser.add_argument("--min-support", type=float, help="default: the service's setting")
    parser.add_argument("--min-new-terms", type=float, default=0.75,
                        help="share of an answer's words beyond the question's found in its passages")
    parser.add_argument("--out", type=Path, help="write one JSON row per composed answer")
    add_publish_arguments(parser, "composed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    settings = ServiceSettings(index_dir=args.index)
    min_support = settings.llm_min_support if args.min_support is None else args.min_support
    sets = read_sets(args.sets)
    server = None if args.llm_url else LocalModelServer(bundled_model_path(), port=8097)
    url = args.llm_url or server.url
    encoder = Encoder(settings.model)
    searcher = Searcher(load_index(args.index), encoder, settings)
    model = ChatModel(url, settings.llm_model, None, settings.llm_timeout_s, settings.llm_max_tokens)
    composer = Composer(model, CitationChecker(encoder, min_support, args.min_new_terms), settings.llm_passage_chars,
                        settings.llm_passages)
    results, rows = {"min_support": min_support, "min_new_terms": args.min_new_terms, "sets": []}, []
    try:
        for spec, eval_set in sets:
            tally = compose_all(searcher, composer, eval_set.questions)
            print(f"== {spec}")
            report(tally, len(eval_set.questions), min_support, args.min_new_terms)
            results["sets"].append(summary(spec, tally, len(eval_set.questions)))
            rows += [{"set": spec, **row} for row in tally.rows]
    finally:
        if server is not None:
            server.close()
    if args.out:
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print_and_publish(args, "composed", argv, [Table("composed", table(results), "## Composed answers")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
