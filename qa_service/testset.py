"""`qa-testset --index IDX --n 200 [--out FILE] [--seed S] [--out-of-scope M]`: an evaluation
set written from the archive itself, in the format `qa-eval` and `qa-calibrate` read.

Passages are taken in turns over articles, then sections (body, comment), then speakers
(`passage_order`), and each gives one of its sentences that can be an answer
(`testset_rules.answer_spans`: no heading, byline, caption or list number); the configured
language model (QA_LLM_URL) writes the question a reader would type that the sentence answers.
When every sentence has been asked about, they are asked about again in another way (a
why/how, a who/what, then a yes/no question). A question is kept when it passes, in order:
1. well formed (`why_malformed`): one question of 3 to 30 words, not garbage, not about "the
   passage", with a content word to search for;
2. the copy cap (`copy_verdict`): more than 80% of its content words in the passage (counted
   from three content words), or five words in a row of it, is a copy;
3. new (`is_duplicate`): it does not ask what a kept question asks (content words 80% alike);
4. the round trip: searched as `qa-eval` searches it, its passage is among the first k
   (default 3), so no other passage answers it better as far as the retrieval can tell.
Its row holds the sentence as `must_contain_any` (an exact substring of the article), the
passage's speaker if it has one, and `"generated": true`.

Out-of-scope questions are asked for on the same topics (the model is shown a sentence and
asked for a question on its topic that it does not answer) and kept when well formed, new,
near the archive (a passage holds one of their content words), not answered by the search (no
short answer, and a probability under 0.5 that the first passage answers), and no passage
holds three quarters of their content words (in its text or its speaker's name):
`testset_rules.out_of_scope_verdict`. The rule is meant to keep only questions safely out of
scope, and drops some that are.

Each kind is asked until enough are kept, its budget of attempts (default 4 for each question
wanted) is spent, or there is nothing left to ask about; the end says which, how many each
filter dropped and the time taken. With a small local model the questions are weak: use a
real one for a test set worth reading.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from index.cli import run_cli
from index.encoder import make_encoder
from index.errors import QAError
from index.evaluate import parse_eval_set
from index.rerankers import make_reranker
from index.search import Searcher
from index.store import load_index
from qa_service.llm import ChatModel
from qa_service.settings import ServiceSettings
from qa_service.testset_generate import (
    ANSWERABLE,
    ATTEMPTS_PER_QUESTION,
    MAX_TOKENS,
    OUT_OF_SCOPE,
    Funnel,
    Generator,
    Options,
    collect,
    passage_order,
    sources,
)


@dataclass
class Report:
    """A run's rows (answerable first), each kind's funnel, and where the time went."""

    rows: list[dict]
    funnels: list[Funnel]
    seconds: float
    model_s: float
    search_s: float

    def figures(self) -> dict:
        return {"questions": len(self.rows), "seconds": round(self.seconds, 1),
                "model_s": round(self.model_s, 1), "search_s": round(self.search_s, 1),
                **{funnel.kind.replace(" ", "_"): funnel.figures() for funnel in self.funnels}}


def chat_model(settings: ServiceSettings) -> ChatModel:
    """The configured model (QA_LLM_URL, QA_LLM_MODEL, QA_LLM_API_KEY, QA_LLM_TIMEOUT_S)."""
    if settings.llm_url is None:
        raise QAError(
            "no language model is configured: set QA_LLM_URL to an OpenAI-compatible API "
            "(`qa-llm` serves a small local one at http://127.0.0.1:8090/v1; a real model writes "
            "far better questions)"
        )
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return ChatModel(settings.llm_url, settings.llm_model, key, settings.llm_timeout_s, MAX_TOKENS)


def open_searcher(settings: ServiceSettings) -> Searcher:
    """The searcher `qa-eval` scores with (index/cli.py): the index's own embedding model and
    prefixes when it was built with a local one, and the configured reranker."""
    index = load_index(settings.index_dir)
    built = index.manifest.embedding_spec
    if built.provider == "sentence-transformers" and not settings.embed_url:
        settings = settings.model_copy(update={
            "model": built.model, "query_prefix": built.query_prefix,
            "document_prefix": built.document_prefix,
        })
    return Searcher(index, make_encoder(settings), settings, None, make_reranker(settings))


def run_testset(settings: ServiceSettings, options: Options, log: Callable[[str], None]) -> Report:
    """Answerable questions, then out-of-scope ones, for the index at `settings.index_dir`."""
    started = time.perf_counter()
    model = chat_model(settings)
    log(f"loading {settings.index_dir} and its embedding model")
    gen = Generator(model, open_searcher(settings), options, log)
    index = gen.searcher.index
    log(f"asking {model.base_url} for {options.n} answerable and {options.out_of_scope} "
        "out-of-scope questions")
    order = passage_order(index, options.seed)
    given = sources(index, order, options.seed, len(ANSWERABLE.prompts))
    rows, first = collect(gen, ANSWERABLE, given, options.n)
    # The out-of-scope questions take their topics in another order, so they are not about
    # the passages the first questions were.
    other = options.seed + 1
    more, second = collect(gen, OUT_OF_SCOPE, sources(index, passage_order(index, other), other),
                           options.out_of_scope)
    seconds = time.perf_counter() - started
    return Report(rows + more, [first, second], seconds, gen.model_s, gen.search_s)


def write_rows(rows: list[dict], out: Path | None) -> None:
    """The rows as JSON lines, checked with `qa-eval`'s own reader first; to `out` (written
    whole, then renamed into place) or standard output."""
    lines = [json.dumps(row, ensure_ascii=False) + "\n" for row in rows]
    parse_eval_set(lines, "the generated questions")
    if out is None:
        sys.stdout.writelines(lines)
        sys.stdout.flush()
        return
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text("".join(lines), encoding="utf-8")
    partial.replace(out)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qa-testset",
        description="Write an evaluation set from the archive: questions the configured language "
        "model (QA_LLM_URL) writes for sampled passages, kept when they pass the filters.",
    )
    parser.add_argument("--index", type=Path,
                        help="index folder (default: $QA_INDEX_DIR or data/index)")
    parser.add_argument("--n", type=_count, default=200,
                        help="answerable questions wanted (default 200)")
    parser.add_argument("--out", type=Path, help="JSONL file to write (default: standard output)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    parser.add_argument("--out-of-scope", type=_count, metavar="M",
                        help="out-of-scope questions wanted (default: a tenth of --n)")
    parser.add_argument("--attempts", type=_positive,
                        help="questions asked of the model at most, per kind (default "
                        f"{ATTEMPTS_PER_QUESTION} for each one wanted)")
    parser.add_argument("--k", type=_positive, default=Options.k,
                        help="round trip: the passage must be among the first K searched "
                        "(default 3)")
    parser.add_argument("--overlap-cap", type=_share, default=Options.overlap_cap,
                        help="copy filter: the largest share of a question's content words "
                        f"the passage may hold (default {Options.overlap_cap})")
    parser.add_argument("--verbose", action="store_true",
                        help="show every question and why it was dropped")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    def log(message: str) -> None:
        print(f"qa-testset: {message}", file=sys.stderr, flush=True)

    def body() -> int:
        settings = ServiceSettings(**({"index_dir": args.index} if args.index else {}))
        wanted_out = args.n // 10 if args.out_of_scope is None else args.out_of_scope
        options = Options(args.n, wanted_out, args.seed, args.attempts, args.k,
                          args.overlap_cap, args.verbose)
        report = run_testset(settings, options, log)
        for funnel in report.funnels:
            log(funnel.summary())
        if not report.rows:
            raise QAError("no question was kept, so nothing was written: try a larger --attempts, "
                          "or a better language model")
        write_rows(report.rows, args.out)
        where = args.out or "standard output"
        log(f"wrote {len(report.rows)} questions to {where} in {report.seconds:.1f} s "
            f"(the model {report.model_s:.1f} s, searches {report.search_s:.1f} s)")
        return 0

    return run_cli("qa-testset", body)


if __name__ == "__main__":
    sys.exit(main())
