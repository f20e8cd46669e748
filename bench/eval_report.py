"""What `confidence: high` promises, on the sample's reported question sets: hit@1 and hit@3,
confident answers (precision, coverage, speakers), the reliability of each confidence level
and the precision/coverage curve of the calibrated probability.

The sets are those nothing was fitted or tuned on: the report halves of
`../shared/eval/readers/` and `../shared/eval/` (bench.eval_split) and `eval/fresh.jsonl`. A
conversation's first turn is scored with the single questions, as `qa-eval` does.

    python -m bench eval                      # builds the sample index in a temporary folder
    python -m bench eval --index IDX          # an index of data/articles built with the model to judge
    python -m bench eval --publish            # writes the blocks into docs/quality.md, the headline into README.md
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import read_jsonl
from bench.eval_split import EVAL_DIR, read_rows, split_rows
from bench.publish import Table, add_publish_arguments, command, markdown_table, publish

ROOT = Path(__file__).resolve().parents[1]
# The curve's rows; the thresholds the served calibration sets for `high` are added to them.
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


@dataclass(frozen=True)
class ScoredSet:
    """One reported set's scores: `alone` for single questions and first turns, `followups`
    for later turns (qa-eval's figures without the prefix), None where the set has none."""

    name: str
    alone: dict[str, Any]
    followups: dict[str, Any] | None


def reported_sets() -> dict[str, list[dict[str, Any]]]:
    """The reported sets' rows (qa-eval's format), by the name the tables show."""
    return {
        "readers, report half": split_rows(read_rows(EVAL_DIR / "readers"))["report"],
        "`../shared/eval/`, report half": split_rows(read_rows(EVAL_DIR))["report"],
        "`eval/fresh.jsonl`": read_jsonl(ROOT / "eval" / "fresh.jsonl"),
    }


def score_set(searcher, name: str, rows: list[dict[str, Any]]) -> ScoredSet:
    """`qa-eval`'s scores of one set, searched as served."""
    from index.evaluate import evaluate, evaluate_conversations, parse_eval_set

    eval_set = parse_eval_set((json.dumps(row) for row in rows), name)
    alone = evaluate(searcher, eval_set.asked_alone)
    followups = None
    if eval_set.conversations:
        scores = evaluate_conversations(searcher, eval_set.conversations)
        followups = {key.removeprefix("followup_"): value for key, value in scores.items()}
    return ScoredSet(name, alone, followups)


def _pairs(scores: dict[str, Any]) -> list[tuple[float, bool]]:
    """(probability, first passage right) of each search that has a probability."""
    return [(d["probability"], d["first_passage_right"]) for d in scores["details"] if d["probability"] is not None]


def _parts(scored: ScoredSet) -> list[tuple[str, dict[str, Any]]]:
    parts = [(f"{scored.name}: questions and first turns", scored.alone)]
    if scored.followups:
        parts.append((f"{scored.name}: follow-ups", scored.followups))
    return parts


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _answerable(scores: dict[str, Any]) -> int:
    return sum(scores["confidence"]["answerable"].values())


def all_parts(scored: list[ScoredSet]) -> list[tuple[str, dict[str, Any]]]:
    return [part for one in scored for part in _parts(one)]


def sets_table(scored: list[ScoredSet]) -> str:
    headers = ["set", "answerable / out of scope", "hit@1", "hit@3", "confident", "right", "precision", "coverage",
               "out of scope answered", "speaker right / checked (shown where the row names none)"]
    rows = [[part, f"{_answerable(s)} / {sum(s['confidence']['out_of_scope'].values())}", f"{s['hit_at_1']:.3f}",
             f"{s['hit_at_3']:.3f}", s["confident"], s["confident_right"], f"**{_ratio(s['precision'])}**",
             _ratio(s["coverage"]), _out_of_scope(s),
             f"{s['speaker_right']} / {s['speaker_checked']} ({s['speaker_unlabelled']})"]
            for part, s in all_parts(scored)]
    confident = sum(s["confident"] for _, s in all_parts(scored))
    right = sum(s["confident_right"] for _, s in all_parts(scored))
    rows.append(["all of them", "", "", "", confident, right, f"**{_ratio(right / confident if confident else None)}**",
                 "", "", ""])
    return markdown_table(headers, rows)


def reliability_table(scored: list[ScoredSet]) -> str:
    return markdown_table(
        ["set", "high", "low", "none", "calibration error (ECE)"],
        [[part, *(f"{r['first_passage_right']} / {r['results']}" for r in s["reliability"].values()),
          _ratio(s["expected_calibration_error"])] for part, s in all_parts(scored)])


def _curve_cell(scores: dict[str, Any], threshold: float) -> str:
    from index.reliability import curve_point

    point = curve_point(_pairs(scores), threshold, _answerable(scores))
    if not point.answered:
        return "0"
    return f"{point.answered}, {point.right} ({_ratio(point.coverage)})"


def curve_table(scored: list[ScoredSet], served: tuple[float, ...] = ()) -> str:
    """Precision and coverage at THRESHOLDS and at the `served` thresholds of `high`."""
    parts = all_parts(scored)
    return markdown_table(["probability at least", *(part for part, _ in parts)],
                          [[threshold, *(_curve_cell(s, threshold) for _, s in parts)]
                           for threshold in sorted(set(THRESHOLDS) | set(served))])


def headline_table(scored: list[ScoredSet]) -> str:
    return markdown_table(
        ["reported set (never fitted on)", "hit@3", "confident answers right", "coverage", "out of scope answered"],
        [[part, f"{s['hit_at_3']:.2f}", f"{s['confident_right']} of {s['confident']}", _ratio(s["coverage"]),
          _out_of_scope(s)] for part, s in all_parts(scored)])


def _out_of_scope(scores: dict[str, Any]) -> str:
    asked = sum(scores["confidence"]["out_of_scope"].values())
    return f"{scores['out_of_scope_answered']} of {asked}" if asked else "–"


def tables(scored: list[ScoredSet], served: tuple[float, ...] = ()) -> list[Table]:
    """The blocks of docs/quality.md, in the order the page shows them (`served`: the
    thresholds the searcher's calibration sets for `high`)."""
    return [
        Table("eval-sets", sets_table(scored) + SETS_NOTE, "## Reported sets"),
        Table("eval-reliability", reliability_table(scored), "## Reliability by level"),
        Table("eval-curve", curve_table(scored, served) + CURVE_NOTE, "## Precision and coverage by probability"),
    ]


SETS_NOTE = (
    "\n\nRight: the cited passage is in the expected article and holds one of the row's spans. "
    "Speaker: the right confident answers that show a speaker or whose row names one; right when "
    "the two are the same; in brackets, those that show a speaker where the row names none."
)
CURVE_NOTE = (
    "\n\nEach cell: searches answered at that probability or above, how many of them had the "
    "right first passage, and (in brackets) the share of answerable questions that makes. A served "
    "`high` also needs a sentence that answers."
)


def squad_table(scores: dict[str, Any]) -> str:
    """SQuAD's report half in one row: the reliability of each level, ECE, and the confident
    answers' precision and coverage."""
    cells = [f"{r['first_passage_right']:,} / {r['results']:,}" for r in scores["reliability"].values()]
    return markdown_table(
        ["set", "high: first passage right / results", "low", "none", "calibration error (ECE)",
         "precision of `high`", "coverage (confident and right / answerable)"],
        [[f"SQuAD v1.1 dev, the half not fitted on ({scores['questions']:,} questions)", *cells,
          _ratio(scores["expected_calibration_error"]), f"**{_ratio(scores['precision'])}**",
          _ratio(scores["coverage"])]],
    ) + SQUAD_NOTE


SQUAD_NOTE = (
    "\n\nThe half of SQuAD v1.1 dev the shipped calibration did not see "
    "(`python -m bench.eval_split --half report --squad`), on an index of its 48 articles "
    "(`bench.quality_data.write_articles`, then `qa-ingest`)."
)


def _searcher(index: Path | None, work: Path):
    """The index to judge: `index`, or the sample articles ingested into `work` with the
    configured model."""
    from index.cli import open_searcher

    if index is None:
        from index.settings import Settings
        from ingest.pipeline import run_ingest

        index = work / "index"
        run_ingest(ROOT / "data" / "articles", Settings(index_dir=index), progress=False)
    return open_searcher(index)


def served_thresholds(searcher) -> tuple[float, ...]:
    """The probabilities `high` needs from `searcher`'s calibration, for single questions and
    follow-ups (none without a calibration)."""
    calibration, target = searcher.calibration.calibration, searcher.policy.confidence.target_precision
    if calibration is None:
        return ()
    return tuple(calibration.threshold(target, followup) for followup in (False, True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, help="an index of data/articles (default: build one in a temporary folder)")
    parser.add_argument("--squad-index", type=Path, help="also SQuAD dev's report half, on this index of its articles")
    add_publish_arguments(parser, "eval")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="qa-bench-eval-") as work:
        searcher = _searcher(args.index, Path(work))
        scored = [score_set(searcher, name, rows) for name, rows in reported_sets().items()]
    quality, headline = tables(scored, served_thresholds(searcher)), Table("quality-headline", headline_table(scored), "## Quality")
    if args.squad_index:
        from bench.eval_split import squad_halves
        from index.cli import open_searcher

        squad = score_set(open_searcher(args.squad_index), "SQuAD", squad_halves()["report"])
        quality.append(Table("squad-half", squad_table(squad.alone), "## SQuAD v1.1 dev, the half not fitted on"))
    if args.publish:
        publish(args.doc, quality, command("eval", argv))
        publish(ROOT / "README.md", [headline], command("eval", argv))
    for table in [*quality, headline]:
        print(f"{table.heading}\n\n{table.body}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
