"""The tune / report split of the sample evaluation set (`../shared/eval/`).

Settings are chosen on the tune half; the report half is only ever reported. The split
depends on each row's text, not on its position in the file (docs/history/quality-2026-11-to-12.md lists the counts
of each half):

- single questions are grouped by the article they expect (out-of-scope questions form their
  own group), each group is ordered by a SHA-256 of the question, and alternate rows go to
  tune and report, so both halves hold every article and some out-of-scope questions;
- conversations are ordered by the hash of their first question and alternated the same way.

`--squad` splits SQuAD v1.1 dev instead: its questions sorted by id, shuffled by
`random.Random(31)`, the first half to tune (the shipped calibration's `--also` examples), the
rest to report; each row's `must_contain_any` its gold answers, its article as
`bench.quality_data.load_squad` numbers them (the index: `qa-ingest` of `write_articles`).

    .venv/bin/python -m bench.eval_split --half report | .venv/bin/qa-eval - --index IDX
    .venv/bin/python -m bench.eval_split --half tune --out /tmp/tune.jsonl
    .venv/bin/python -m bench.eval_split --half tune --squad --out /tmp/squad-fit.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from bench.common import read_jsonl

Half = Literal["tune", "report"]
EVAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "eval"
SQUAD_DEV = EVAL_DIR.parent / "bench" / "squad-v1.1-dev" / "dev-v1.1.json"
SQUAD_SEED = 31
FILES = ("questions.jsonl", "conversations.jsonl")


def _key(row: dict[str, Any]) -> str:
    question = row["turns"][0]["question"] if "turns" in row else row["question"]
    return hashlib.sha256(question.encode("utf-8")).hexdigest()


def _stratum(row: dict[str, Any]) -> str:
    if "turns" in row:
        return "conversation"
    return "out of scope" if row.get("out_of_scope") else str(row.get("article"))


def split_rows(rows: list[dict[str, Any]]) -> dict[Half, list[dict[str, Any]]]:
    """Rows divided into the two halves, each half in the rows' original order."""
    strata: dict[str, list[int]] = defaultdict(list)
    for position, row in enumerate(rows):
        strata[_stratum(row)].append(position)
    half_of: dict[int, Half] = {}
    for positions in strata.values():
        for rank, position in enumerate(sorted(positions, key=lambda p: _key(rows[p]))):
            half_of[position] = "tune" if rank % 2 == 0 else "report"
    halves: dict[Half, list[dict[str, Any]]] = {"tune": [], "report": []}
    for position, row in enumerate(rows):
        halves[half_of[position]].append(row)
    return halves


def read_rows(folder: Path) -> list[dict[str, Any]]:
    rows = []
    for name in FILES:
        path = folder / name
        if path.exists():
            rows += read_jsonl(path)
    return rows


def squad_halves(path: Path = SQUAD_DEV) -> dict[Half, list[dict[str, Any]]]:
    """SQuAD v1.1 dev's questions as qa-eval rows, in the two halves described above."""
    import random

    from bench.quality_data import load_squad

    queries = sorted(load_squad(path, sample=None).queries, key=lambda q: q.id)
    random.Random(SQUAD_SEED).shuffle(queries)
    rows = [{"question": q.text, "article": next(iter(q.relevant)), "must_contain_any": q.answers}
            for q in queries]
    return {"tune": rows[: len(rows) // 2], "report": rows[len(rows) // 2:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.eval_split", description=__doc__.split("\n\n")[0])
    parser.add_argument("--half", choices=["tune", "report"], required=True)
    parser.add_argument("--eval", type=Path, default=EVAL_DIR, help="folder of the eval files")
    parser.add_argument("--squad", action="store_true", help="split SQuAD v1.1 dev instead")
    parser.add_argument("--out", type=Path, help="write here instead of standard output")
    args = parser.parse_args(argv)
    if args.squad:
        half = squad_halves()[args.half]
    else:
        rows = read_rows(args.eval)
        if not rows:
            parser.error(f"no evaluation rows in {args.eval}")
        half = split_rows(rows)[args.half]
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in half)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
