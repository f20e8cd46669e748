"""`qa-testset` on the sample: how long a run of --n questions takes, and how many questions
each filter dropped and kept (the issue's target: 200 in under 10 minutes with the local model).

    python -m bench testset --n 200 [--index IDX] [--llm-url URL] [--json FILE] [--publish]

Builds an index of the sample articles (data/articles) in a temporary folder unless --index
is given, and starts `qa-llm`'s server (SmolLM2-135M) unless --llm-url is given; the time to
do either is not counted. Progress goes to standard error; the figures are one JSON object on
standard output, then a line per kind of question, then the table; with --publish the table is
written into its block of docs/quality.md (`testset`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from bench.common import Machine, free_port
from bench.publish import Table, add_publish_arguments, markdown_table, print_and_publish
from qa_service.settings import ServiceSettings
from qa_service.testset import run_testset
from qa_service.testset_generate import Options

# Each filter's column, in the funnels' order: answerable's filters, then out of scope's own.
FILTER_COLUMNS = {
    "model_failed": "model failed", "malformed": "malformed", "copies_passage": "copies the passage",
    "duplicate": "duplicate", "round_trip": "round trip failed", "off_topic": "off topic",
    "answered_confidently": "answered confidently", "passage_holds_words": "passage holds its words",
}
KINDS = {"answerable": "answerable", "out_of_scope": "out of scope"}
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "articles"


def sample_index(folder: Path) -> Path:
    """An index of the sample articles in `folder`, built as the tests build theirs."""
    from index.settings import Settings
    from ingest.pipeline import run_ingest

    index_dir = folder / "index"
    run_ingest(SAMPLE, Settings(index_dir=index_dir), progress=False)
    return index_dir


def _progress(line: str) -> None:
    print(f"bench.testset: {line}", file=sys.stderr, flush=True)


def measure(index_dir: Path, llm_url: str, options: Options) -> dict:
    """One run's figures: seconds (all, the model's, the searches'), each kind's funnel."""
    settings = ServiceSettings(index_dir=index_dir, llm_url=llm_url, llm_timeout_s=120)
    report = run_testset(settings, options, _progress)
    figures = report.figures()
    asked = sum(funnel.asked for funnel in report.funnels)
    figures["seconds_a_question_asked"] = round(report.seconds / asked, 2) if asked else None
    return {"machine": asdict(Machine.describe()), "n": options.n, "seed": options.seed, **figures}


def table(figures: dict) -> str:
    """The run as the `testset` block: each kind's funnel (wanted, asked, kept, and what each
    filter dropped; blank where the filter is not one of the kind's), and where the time went."""
    headers = ["kind", "wanted", "asked", "kept", *FILTER_COLUMNS.values()]
    funnels = [(label, figures[key]) for key, label in KINDS.items() if figures.get(key) is not None]
    rows = [[label, funnel["wanted"], funnel["asked"], funnel["kept"],
             *(funnel["dropped"].get(name, "") for name in FILTER_COLUMNS)] for label, funnel in funnels]
    machine = figures.get("machine", {})
    return markdown_table(headers, rows) + (
        f"\n\n{figures.get('llm', 'The model')} on {figures.get('index', 'the index')}: "
        f"{figures['questions']} questions in {figures['seconds']} s (the model {figures['model_s']} s, "
        f"searches {figures['search_s']} s; {figures['seconds_a_question_asked']} s a question asked), "
        f"{machine.get('cpus')} CPUs, load average {machine.get('load_at_start')} at the start.")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench testset", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200,
                        help="answerable questions wanted (default 200)")
    parser.add_argument("--out-of-scope", type=int,
                        help="out-of-scope questions wanted (default n/10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--index", type=Path,
                        help="an index to use (default: the sample, built here)")
    parser.add_argument("--llm-url",
                        help="an OpenAI-compatible API (default: qa-llm's server, started here)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    add_publish_arguments(parser, "testset")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    wanted_out = args.n // 10 if args.out_of_scope is None else args.out_of_scope
    options = Options(args.n, wanted_out, args.seed)
    server, llm = None, f"The model at {args.llm_url}"
    with tempfile.TemporaryDirectory(prefix="qa-testset-bench-") as folder:
        index_dir = args.index or sample_index(Path(folder))
        if args.llm_url is None:
            from qa_service.local_llm import LocalModelServer, bundled_model_path

            server = LocalModelServer(bundled_model_path(), port=free_port())
            llm = f"The bundled {bundled_model_path().name}"
        try:
            figures = measure(index_dir, args.llm_url or server.url, options)
        finally:
            if server is not None:
                server.close()
    figures["llm"] = llm
    figures["index"] = f"the index `{args.index.name}`" if args.index else "the sample index built here"
    print(json.dumps(figures))
    for kind in ("answerable", "out_of_scope"):
        funnel = figures[kind]
        drops = ", ".join(f"{name} {count}" for name, count in funnel["dropped"].items())
        print(f"{kind}: {funnel['kept']} kept of {funnel['wanted']} wanted, "
              f"{funnel['asked']} asked ({drops}); {funnel['ending']}")
    print(f"{figures['questions']} questions in {figures['seconds']} s "
          f"(model {figures['model_s']} s, searches {figures['search_s']} s)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print_and_publish(args, "testset", argv,
                      [Table("testset", table(figures), "## An archive that tests itself (`qa-testset`)")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
