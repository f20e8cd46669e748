"""Issue 34's loop, end to end on the sample: readers' questions asked through /ask (so they
are logged), the tune half judged through the admin API from their labels as an editor would
(the span found in the article, or "not in the archive"), exported, fitted by `qa-calibrate`,
and the calibration judged by `qa-eval` on the report half, which nothing was fitted on.

    python -m bench judged --index data/index [--also Q.jsonl=INDEX] [--json OUT] [--publish]

The index is copied first: `qa-calibrate` writes its calibration into the copy. The split is
bench.eval_split's (by each question's text), so the halves are those docs/quality.md reports.
Prints qa-calibrate's output, the figures as JSON and the table; with --publish the table is
written into its block of docs/quality.md (`judged`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import read_jsonl
from bench.eval_split import EVAL_DIR, split_rows
from bench.publish import Table, add_publish_arguments, markdown_table, print_and_publish
from index.evaluate import QUOTES

TOKEN = "bench-editor-token"
READERS = EVAL_DIR / "readers" / "questions.jsonl"


def span_offsets(text: str, spans: list[str]) -> tuple[int, int] | None:
    """Where in the article the first findable span is, as an editor selecting it would mark
    it: an exact match, else one with curly quotes folded (a one-for-one fold: offsets hold)."""
    for fold in (lambda s: s, lambda s: s.translate(QUOTES)):
        for span in spans:
            at = fold(text).find(fold(span))
            if at >= 0:
                return at, at + len(span)
    return None


def ask_and_judge(index: Path, log: Path, rows: list[dict[str, Any]], judged: set[str]) -> tuple[str, dict]:
    """Every row asked through /ask; the rows whose question is in `judged` judged from their
    labels through the admin API. The export's JSONL text and what happened."""
    from fastapi.testclient import TestClient

    from index.encoder import Encoder
    from qa_service.app import create_app
    from qa_service.settings import ServiceSettings

    settings = ServiceSettings(index_dir=index, admin_token=TOKEN, question_log_path=log,
                               ask_rate_per_minute=0)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    counts = {"asked": 0, "judged_answers": 0, "judged_not_in_archive": 0, "span_not_found": 0}
    with TestClient(create_app(settings, encoder=Encoder(settings.model))) as client:
        texts: dict[str, str] = {}
        for row in rows:
            asked = client.post("/ask", json={"question": row["question"]})
            asked.raise_for_status()
            counts["asked"] += 1
            if row["question"] not in judged:
                continue
            body: dict[str, Any] = {"question_id": asked.json()["answer_id"], "judge": "bench"}
            if row.get("out_of_scope"):
                body["verdict"] = "not_in_archive"
            else:
                article = row["article"]
                if article not in texts:
                    texts[article] = client.get(f"/articles/{article}").json()["text"]
                found = span_offsets(texts[article], row["must_contain_any"])
                if found is None:
                    counts["span_not_found"] += 1
                    continue
                body |= {"verdict": "answers", "article_id": article, "start": found[0], "end": found[1]}
            client.post("/admin/judgments", json=body, headers=auth).raise_for_status()
            counts["judged_answers" if body["verdict"] == "answers" else "judged_not_in_archive"] += 1
        exported = client.get("/admin/judgments/export", headers=auth)
        exported.raise_for_status()
        counts["summary"] = client.get("/admin/judgments/summary", headers=auth).json()
    return exported.text, counts


def _tool(name: str, *args: str) -> str:
    done = subprocess.run([str(Path(sys.executable).parent / name), *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{name} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def measure(index_dir: Path, questions: Path, also: list[str]) -> tuple[str, dict[str, Any]]:
    """qa-calibrate's output and the run's figures (the index copied first: it is not changed)."""
    rows = read_jsonl(questions)
    halves = split_rows(rows)
    with tempfile.TemporaryDirectory(prefix="judged-") as work_dir:
        work = Path(work_dir)
        index = work / "index"
        shutil.copytree(index_dir, index)
        exported, counts = ask_and_judge(index, work / "questions.sqlite", rows,
                                         {row["question"] for row in halves["tune"]})
        (work / "judged.jsonl").write_text(exported, encoding="utf-8")
        cli_export = _tool("qa-judgments", "export", "--log", str(work / "questions.sqlite"), "--out", "-")
        report = work / "report.jsonl"
        report.write_text("".join(json.dumps(r) + "\n" for r in halves["report"]), encoding="utf-8")
        fit = _tool("qa-calibrate", str(work / "judged.jsonl"), "--index", str(index),
                    *[a for item in also for a in ("--also", item)])
        scores = json.loads(_tool("qa-eval", str(report), "--index", str(index), "--json"))
    return fit, {
        "questions": len(rows), "judged_half": len(halves["tune"]), "report_half": len(halves["report"]),
        **{k: v for k, v in counts.items() if k != "summary"},
        "exported_rows": len(exported.splitlines()), "cli_export_same": cli_export == exported,
        "judged_summary": counts["summary"], "report": scores,
    }


def table(figures: dict[str, Any]) -> str:
    """The run as the `judged` block: what was judged and exported, and the fitted calibration's
    confident answers on the report half; under it the admin summary of the judged half."""
    report = figures["report"]
    answerable = sum(report["confidence"]["answerable"].values())
    out_of_scope = sum(report["confidence"]["out_of_scope"].values())
    judged = figures["judged_answers"] + figures["judged_not_in_archive"]
    precision = "–" if report["precision"] is None else f"**{report['precision']:.2f}**"
    coverage = "–" if report["coverage"] is None else f"{report['coverage']:.3f}"
    headers = ["", "judged", "exported rows", "confident on the report half", "right", "precision",
               f"coverage (of {answerable} answerable)", "out of scope answered"]
    row = [f"calibration from {judged} judged questions",
           f"{figures['judged_answers']} answers + {figures['judged_not_in_archive']} not in the archive",
           figures["exported_rows"], report["confident"], report["confident_right"], precision, coverage,
           f"{report['out_of_scope_answered']} of {out_of_scope}"]
    weeks = figures["judged_summary"]["weeks"]
    confident = sum(week["confident_judged"] for week in weeks)
    right = sum(week["confident_right"] for week in weeks)
    share = f" ({right / confident:.3f})" if confident else ""
    note = (f"The admin summary of the judged half with the shipped calibration: {confident} confident, "
            f"{right} right{share}.")
    if figures["span_not_found"]:
        note += f" Not judged (the span not found in its article): {figures['span_not_found']}."
    if not figures["cli_export_same"]:
        note += " `qa-judgments export` did not give the same rows as the admin API."
    return markdown_table(headers, [row]) + "\n\n" + note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench judged", description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True, help="an index of the sample corpus (not changed)")
    parser.add_argument("--questions", type=Path, default=READERS)
    parser.add_argument("--also", action="append", default=[], help="passed to qa-calibrate")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    add_publish_arguments(parser, "judged")
    args = parser.parse_args(argv)
    fit, figures = measure(args.index, args.questions, args.also)
    print(fit.strip())
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print_and_publish(args, "judged", argv, [Table("judged", table(figures), "## Judged questions")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
