"""Follow-ups searched as asked (the search resolves them against the history) and rewritten
first by the language model into a standalone question (`QA_LLM_REWRITE_FOLLOWUPS`).

    python -m bench.eval_split --half tune | python -m bench followups --index IDX -

Starts `qa-llm`'s server unless --llm-url is given. Prints hit@3 and speaker accuracy both
ways and each rewrite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from index.encoder import Encoder
from index.evaluate import hit_rank, parse_eval_set
from index.search import Searcher
from index.store import load_index
from qa_service.llm import ChatModel, GenerationError
from qa_service.local_llm import LocalModelServer, bundled_model_path
from qa_service.rewrite import FollowupRewriter, archive_turns
from qa_service.settings import ServiceSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench followups", description=__doc__.split("\n\n")[0])
    parser.add_argument("conversations", help="evaluation JSONL, or - for standard input")
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--llm-url")
    args = parser.parse_args(argv)
    settings = ServiceSettings(index_dir=args.index)
    lines = sys.stdin if args.conversations == "-" else open(args.conversations, encoding="utf-8")
    conversations = parse_eval_set(lines, args.conversations).conversations
    server = None if args.llm_url else LocalModelServer(bundled_model_path(), port=8098)
    model = ChatModel(args.llm_url or server.url, settings.llm_model, None, settings.llm_timeout_s, 48)
    rewriter = FollowupRewriter(model)
    searcher = Searcher(load_index(args.index), Encoder(settings.model), settings)

    totals = {"as asked": [0, 0, 0, 0], "rewritten": [0, 0, 0, 0]}  # hits, turns, speaker ok, speaker asked
    failed = 0
    for conversation in conversations:
        asked = [turn.question for turn in conversation.turns]
        for position, turn in enumerate(conversation.turns[1:], start=1):
            history = asked[:position]
            try:
                rewritten = rewriter.rewrite(turn.question, archive_turns(searcher, history))
            except GenerationError:
                rewritten, failed = turn.question, failed + 1
            print(f"{turn.question!r} -> {rewritten!r}")
            for name, question in (("as asked", turn.question), ("rewritten", rewritten)):
                result = searcher.search(question, top_k=10, history=history)
                rank = hit_rank(turn, result)
                tally = totals[name]
                tally[0] += rank is not None and rank <= 3
                tally[1] += 1
                if turn.speaker:
                    tally[3] += 1
                    tally[2] += bool(rank and rank <= 3 and result.passages[rank - 1].chunk.speaker == turn.speaker)
    if server is not None:
        server.close()
    for name, (hits, turns, speaker_ok, speakers) in totals.items():
        speaker = f"{speaker_ok / speakers:.3f}" if speakers else "n/a"
        print(f"{name:9s} follow-up hit@3 {hits / max(turns, 1):.3f} ({hits}/{turns}), speaker {speaker}")
    print(f"rewrites not usable (searched as asked): {failed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
