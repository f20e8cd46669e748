"""`qa-eval QUESTIONS.jsonl --index DIR [--json]` and `qa-ask QUESTION --index DIR [--json]`.

The questions file may also hold conversations (rows with "turns"); their follow-ups are
scored with the earlier turns as history (`followup_*` figures)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from index.confidence import CalibrationChoice
from index.encoder import make_encoder
from index.errors import QAError
from index.evaluate import evaluate, evaluate_conversations, parse_eval_set, read_eval_set
from index.records import SearchResult
from index.rerankers import make_reranker
from index.search import Searcher
from index.settings import Settings
from index.store import load_index


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", type=Path, help="index folder (default: $QA_INDEX_DIR or data/index)")
    parser.add_argument("--mode", choices=["hybrid", "dense", "lexical"], help="retrieval to use")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def open_searcher(index_dir: Path | None, calibration: CalibrationChoice | None = None) -> Searcher:
    """A searcher over the index at `index_dir` (None: QA_INDEX_DIR) as the CLIs serve it."""
    settings = Settings(**({"index_dir": index_dir} if index_dir else {}))
    index = load_index(settings.index_dir)
    # The index says which local model and prefixes embedded it; questions must use the same
    # (an endpoint's URL it cannot say: QA_EMBED_URL must point at one serving its model).
    built = index.manifest.embedding_spec
    if built.provider == "sentence-transformers" and not settings.embed_url:
        settings = settings.model_copy(update={"model": built.model, "query_prefix": built.query_prefix,
                                               "document_prefix": built.document_prefix})
    # The configured reranker (QA_RERANK, QA_RERANK_URL) too: qa-eval scores what is served.
    return Searcher(index, make_encoder(settings), settings, calibration, make_reranker(settings))


def run_cli(prog: str, body: Callable[[], int]) -> int:
    """Run a command's body, turning user errors into one-line messages and exit codes."""
    try:
        return body()
    except ValidationError as exc:
        print(f"{prog}: error: invalid settings: {exc}", file=sys.stderr)
        return 2
    except QAError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, a folder without permission: the index is left as it was
        print(f"{prog}: error: {exc}; any index on disk is unchanged", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; any index on disk is unchanged", file=sys.stderr)
        return 130


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# Figures printed as tables below the one-line ones (with or without the followup_ prefix).
_TABLES = ("reliability", "precision_coverage_curve")


def _figure(value: object) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _eval_tables(scores: dict, prefix: str) -> list[str]:
    """The reliability table per confidence level and the precision/coverage curve of one
    group of scores (`prefix` "" or "followup_"), as plain-text lines."""
    title = "follow-ups: " if prefix else ""
    lines = [f"{title}first passage right, by confidence level",
             f"  {'level':<6} {'results':>7} {'right':>6} {'share':>6}"]
    for level, row in scores[f"{prefix}reliability"].items():
        lines.append(f"  {level:<6} {row['results']:>7} {row['first_passage_right']:>6} "
                     f"{_figure(row['share_right']):>6}")
    curve = scores[f"{prefix}precision_coverage_curve"]
    if curve is None:
        lines.append(f"{title}precision/coverage by probability: no result carried a probability")
        return lines
    lines += [f"{title}answering the first passage only when probability >= threshold",
              f"  {'threshold':>9} {'answered':>8} {'right':>6} {'precision':>9} {'coverage':>8}"]
    for point in curve:
        lines.append(f"  {point['threshold']:>9} {point['answered']:>8} {point['right']:>6} "
                     f"{_figure(point['precision']):>9} {_figure(point['coverage']):>8}")
    return lines


def _wrong_answers(details: list[dict]) -> list[dict]:
    """The confident answers whose cited passage does not answer, with what was expected."""
    return [
        {key: row[key] for key in ("question", "answer", "answer_speaker", "cited_article",
                                   "expected_article", "expected_spans", "expected_speaker")}
        for row in details if row["answer_right"] is False
    ]


def _print_eval(scores: dict, details: list[dict], show_details: bool) -> None:
    """Plain text: one line per figure, then the tables, then with `show_details` every
    question's outcome (one JSON line each) and the wrong confident answers, readably."""
    flat = {key: value for key, value in scores.items()
            if key.removeprefix("followup_") not in _TABLES}
    width = max(len(key) for key in flat)
    for key, value in flat.items():
        print(f"{key:{width}} {value}")
    for prefix in ("", "followup_"):
        if f"{prefix}reliability" in scores:
            print("\n" + "\n".join(_eval_tables(scores, prefix)))
    if not show_details:
        return
    print("\nevery question's outcome:")
    for row in details:
        print(json.dumps(row, ensure_ascii=False))
    wrong = _wrong_answers(details)
    print(f"\nwrong confident answers: {len(wrong)}")
    for row in wrong:
        print(f"- {row['question']}\n"
              f"  answered: {row['answer']!r} (speaker {row['answer_speaker']}, "
              f"cites {row['cited_article']})\n"
              f"  expected: {row['expected_article']} holding any of {row['expected_spans']} "
              f"(speaker {row['expected_speaker']})")


def eval_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="qa-eval",
        description="Score retrieval, and what confidence: high promises, on a questions file.",
    )
    parser.add_argument(
        "questions",
        help="JSONL file, or - for standard input: question, article, must_contain_any (a list of "
        "spans) or must_contain, speaker?, out_of_scope?; "
        'or a conversation {"turns": [such rows]}',
    )
    parser.add_argument(
        "--details", action="store_true",
        help="also list every question's outcome, and each wrong confident answer with what "
        "was expected",
    )
    served = Settings.model_fields["top_k"].default
    parser.add_argument(
        "--top-k", type=_positive_int, default=None,
        help=f"passages searched per question (default: the served default, QA_TOP_K or {served}). "
        "Until 2026-12 qa-eval searched 10: the first 3 ranks are the same either way, so hit@1 "
        "and hit@3 do not move; mrr_at_10 now counts only the ranks shown",
    )
    _common(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        if args.questions == "-":
            eval_set = parse_eval_set(sys.stdin, "<stdin>")
        elif Path(args.questions).is_file():
            eval_set = read_eval_set(Path(args.questions))
        else:
            raise QAError(f"questions file {args.questions} does not exist")
        searcher = open_searcher(args.index)
        scores: dict = {}
        details: list[dict] = []
        asked_alone = eval_set.asked_alone
        if asked_alone:
            scores = evaluate(searcher, asked_alone, mode=args.mode, top_k=args.top_k)
            details += scores.pop("details")
        if eval_set.conversations:
            followups = evaluate_conversations(
                searcher, eval_set.conversations, mode=args.mode, top_k=args.top_k
            )
            details += followups.pop("details")
            scores |= followups
        if args.json:
            shown = {"details": details, "wrong_answers": _wrong_answers(details)}
            print(json.dumps(scores | (shown if args.details else {})))
            return 0
        _print_eval(scores, details, args.details)
        return 0

    return run_cli("qa-eval", body)


def ask_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qa-ask", description="Ask the archive a question.")
    parser.add_argument("question")
    parser.add_argument("--top-k", type=_positive_int, default=None, help="passages shown (default: QA_TOP_K, 5)")
    _common(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        searcher = open_searcher(args.index)
        result = searcher.search(args.question, top_k=args.top_k, mode=args.mode)
        calibration = searcher.calibration
        if args.json:
            print(json.dumps(result_json(result, calibration.reason), ensure_ascii=False))
        else:
            print(format_result(result, None if calibration.calibration else calibration.reason))
        return 0

    return run_cli("qa-ask", body)


def result_json(result: SearchResult, calibration: str) -> dict:
    """`result` as qa-ask --json prints it; `calibration` says which calibration set its
    confidence, or why none could."""
    return {
        "question": result.question,
        "abstained": result.abstained,
        "confidence": result.confidence,
        "probability": result.probability,
        "calibration": calibration,
        "answer": None if result.answer is None else vars(result.answer),
        "passages": [
            {
                "rank": p.rank, "score": p.score, "dense_score": p.dense_score,
                "article_id": p.chunk.article_id, "title": p.article.title,
                "author": p.article.author, "url": p.article.url, "section": p.chunk.section,
                "speaker": p.chunk.speaker, "text": p.chunk.text, "start": p.chunk.start,
                "end": p.chunk.end, "highlight": vars(p.highlight),
            }
            for p in result.passages
        ],
        "index_version": result.index_version,
        "took_ms": result.took_ms,
        "rerank_error": result.rerank_error,
    }


def format_result(result: SearchResult, uncalibrated: str | None = None) -> str:
    """`result` for a reader; `uncalibrated` is why no answer can be confident, when so."""
    if result.abstained:
        return "Nothing in the archive answers that."
    lines = []
    if uncalibrated:
        lines.append(f"(No short answers: {uncalibrated}.)\n")
    if result.rerank_error:
        lines.append(f"(Not reranked: {result.rerank_error}.)\n")
    if result.confidence == "low":
        lines.append("No clear answer in the archive. These passages may be related:\n")
    if result.answer:
        who = f" — {result.answer.speaker}" if result.answer.speaker else ""
        lines.append(f"Answer: {result.answer.text}{who} [{result.answer.citation}]\n")
    for p in result.passages:
        who = p.chunk.speaker or "unattributed"
        lines.append(f"[{p.rank}] {p.article.title or p.chunk.article_id} ({p.chunk.section}, {who}; "
                     f"chars {p.chunk.start}-{p.chunk.end}; score {p.score})")
        lines.append("    " + p.chunk.text[p.highlight.start : p.highlight.end])
    return "\n".join(lines)
