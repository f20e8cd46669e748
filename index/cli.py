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

from index.encoder import Encoder
from index.errors import QAError
from index.evaluate import evaluate, evaluate_conversations, parse_eval_set, read_eval_set
from index.records import SearchResult
from index.search import Searcher
from index.settings import Settings
from index.store import load_index


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", type=Path, help="index folder (default: $QA_INDEX_DIR or data/index)")
    parser.add_argument("--mode", choices=["hybrid", "dense", "lexical"], help="retrieval to use")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _open(args: argparse.Namespace) -> Searcher:
    settings = Settings(**({"index_dir": args.index} if args.index else {}))
    index = load_index(settings.index_dir)
    # The index says which model embedded it; questions must use the same one.
    settings = settings.model_copy(update={"model": index.manifest.model})
    return Searcher(index, Encoder.for_settings(settings), settings)


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


def eval_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qa-eval", description="Score retrieval on a questions file.")
    parser.add_argument(
        "questions",
        help="JSONL file, or - for standard input: question, article, must_contain, speaker?, "
        'out_of_scope?; or a conversation {"turns": [such rows]}',
    )
    parser.add_argument("--details", action="store_true", help="also list every question's outcome")
    _common(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        if args.questions == "-":
            eval_set = parse_eval_set(sys.stdin, "<stdin>")
        elif Path(args.questions).is_file():
            eval_set = read_eval_set(Path(args.questions))
        else:
            raise QAError(f"questions file {args.questions} does not exist")
        searcher = _open(args)
        scores: dict = {}
        details: list[dict] = []
        if eval_set.questions:
            scores = evaluate(searcher, eval_set.questions, mode=args.mode)
            details += scores.pop("details")
        if eval_set.conversations:
            followups = evaluate_conversations(searcher, eval_set.conversations, mode=args.mode)
            details += followups.pop("details")
            scores |= followups
        if args.json:
            print(json.dumps(scores | ({"details": details} if args.details else {})))
            return 0
        width = max(len(key) for key in scores)
        for key, value in scores.items():
            print(f"{key:{width}} {value}")
        if args.details:
            for row in details:
                print(json.dumps(row))
        return 0

    return run_cli("qa-eval", body)


def ask_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qa-ask", description="Ask the archive a question.")
    parser.add_argument("question")
    parser.add_argument("--top-k", type=int, default=3)
    _common(parser)
    args = parser.parse_args(argv)

    def body() -> int:
        result = _open(args).search(args.question, top_k=args.top_k, mode=args.mode)
        print(json.dumps(result_json(result), ensure_ascii=False) if args.json else format_result(result))
        return 0

    return run_cli("qa-ask", body)


def result_json(result: SearchResult) -> dict:
    return {
        "question": result.question,
        "abstained": result.abstained,
        "confidence": result.confidence,
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
    }


def format_result(result: SearchResult) -> str:
    if result.abstained:
        return "Nothing in the archive answers that."
    lines = []
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
