"""Follow-ups searched as asked (the search resolves them against the history) and rewritten
first by the language model into a standalone question (`QA_LLM_REWRITE_FOLLOWUPS`).

    python -m bench followups --index IDX tune report ../shared/eval/conversations.jsonl [--publish]
    python -m bench.eval_split --half tune | python -m bench followups --index IDX -

Each SET is read as `python -m bench composed` reads it (a JSONL file, `-`, `tune` or `report`,
`A+B`); its conversations' follow-ups are searched. Starts `qa-llm`'s server unless --llm-url is
given. Prints each rewrite and hit@3 and speaker accuracy both ways, then the table (a row per
SET); with --publish the table is written into its block of docs/quality.md (`followups`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from bench.composed import read_sets, set_label, set_row
from bench.publish import Table, add_publish_arguments, markdown_table, print_and_publish
from index.encoder import Encoder
from index.evaluate import EvalConversation, hit_rank
from index.search import Searcher
from index.store import load_index
from qa_service.llm import ChatModel, GenerationError
from qa_service.local_llm import LocalModelServer, bundled_model_path
from qa_service.rewrite import FollowupRewriter, archive_turns
from qa_service.settings import ServiceSettings

WAYS = ("as asked", "rewritten")


def measure_set(searcher: Searcher, rewriter: FollowupRewriter, conversations: list[EvalConversation]) -> dict:
    """Each follow-up searched as asked and as rewritten: hits at 3, right speakers, rewrites
    not usable, and the seconds each rewrite and each search as asked took."""
    totals = {way: {"hits": 0, "turns": 0, "speaker_right": 0, "speakers": 0} for way in WAYS}
    failed, rewrite_s, search_s = 0, [], []
    for conversation in conversations:
        asked = [turn.question for turn in conversation.turns]
        for position, turn in enumerate(conversation.turns[1:], start=1):
            history = asked[:position]
            started = time.perf_counter()
            try:
                rewritten = rewriter.rewrite(turn.question, archive_turns(searcher, history))
            except GenerationError:
                rewritten, failed = turn.question, failed + 1
            rewrite_s.append(time.perf_counter() - started)
            print(f"{turn.question!r} -> {rewritten!r}")
            for way, question in zip(WAYS, (turn.question, rewritten)):
                started = time.perf_counter()
                result = searcher.search(question, top_k=10, history=history)
                if way == "as asked":
                    search_s.append(time.perf_counter() - started)
                rank = hit_rank(turn, result)
                tally = totals[way]
                tally["hits"] += rank is not None and rank <= 3
                tally["turns"] += 1
                if turn.speaker:
                    tally["speakers"] += 1
                    tally["speaker_right"] += bool(
                        rank and rank <= 3 and result.passages[rank - 1].chunk.speaker == turn.speaker)
    return {"turns": totals["as asked"]["turns"], **totals, "not_usable": failed,
            "rewrite_s": [round(s, 3) for s in rewrite_s], "search_s": [round(s, 3) for s in search_s]}


def _scores(tally: dict) -> str:
    hit = f"{tally['hits'] / tally['turns']:.3f}" if tally["turns"] else "–"
    speaker = f"{tally['speaker_right'] / tally['speakers']:.3f}" if tally["speakers"] else "n/a"
    return f"{hit} / {speaker}"


def table(results: list[dict]) -> str:
    """The run as the `followups` block: a row per SET (the report half in bold), hit@3 / speaker
    accuracy as asked and rewritten, and the rewrites not usable; under it what a rewrite costs."""
    headers = ["follow-up turns", "as asked: hit@3 / speaker",
               "rewritten (`QA_LLM_REWRITE_FOLLOWUPS`): hit@3 / speaker", "rewrites not usable (searched as asked)"]
    rows = markdown_table(headers, [
        set_row(figures["set"], [f"{set_label(figures['set'])} ({figures['turns']})", _scores(figures["as asked"]),
                                 _scores(figures["rewritten"]), str(figures["not_usable"])])
        for figures in results])
    rewrite_s = [s for figures in results for s in figures["rewrite_s"]]
    search_s = [s for figures in results for s in figures["search_s"]]
    if not rewrite_s:
        return rows
    return rows + (
        f"\n\nA follow-up's rewrite took {statistics.median(rewrite_s):.2f} s at p50 (the model, with the "
        f"searches of its history), a search as asked {statistics.median(search_s):.2f} s "
        f"({len(rewrite_s)} follow-ups, in process).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench followups", description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", metavar="SET",
                        help="evaluation JSONL, - for standard input, tune or report (bench.eval_split), A+B")
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--llm-url")
    add_publish_arguments(parser, "followups")
    args = parser.parse_args(argv)
    settings = ServiceSettings(index_dir=args.index)
    sets = read_sets(args.sets)
    server = None if args.llm_url else LocalModelServer(bundled_model_path(), port=8098)
    model = ChatModel(args.llm_url or server.url, settings.llm_model, None, settings.llm_timeout_s, 48)
    rewriter = FollowupRewriter(model)
    searcher = Searcher(load_index(args.index), Encoder(settings.model), settings)
    results = []
    try:
        for spec, eval_set in sets:
            print(f"== {spec}")
            figures = {"set": spec, **measure_set(searcher, rewriter, eval_set.conversations)}
            for way in WAYS:
                hit, speaker = _scores(figures[way]).split(" / ")
                print(f"{way:9s} follow-up hit@3 {hit} ({figures[way]['hits']}/{figures[way]['turns']}), "
                      f"speaker {speaker}")
            print(f"rewrites not usable (searched as asked): {figures['not_usable']}")
            results.append(figures)
    finally:
        if server is not None:
            server.close()
    print_and_publish(args, "followups", argv,
                      [Table("followups", table(results), "## Follow-ups rewritten by the model")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
