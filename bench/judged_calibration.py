"""Issue 34's loop, end to end on the sample: readers' questions asked through /ask (so they
are logged), the tune half judged through the admin API from their labels as an editor would
(the span found in the article, or "not in the archive"), exported, fitted by `qa-calibrate`,
and the calibration judged by `qa-eval` on the report half, which nothing was fitted on.

    python -m bench judged --index data/index [--also Q.jsonl=INDEX] [--json OUT]

The index is copied first: `qa-calibrate` writes its calibration into the copy. The split is
bench.eval_split's (by each question's text), so the halves are those docs/quality.md reports.
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

from bench.eval_split import EVAL_DIR, split_rows
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench judged", description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True, help="an index of the sample corpus (not changed)")
    parser.add_argument("--questions", type=Path, default=READERS)
    parser.add_argument("--also", action="append", default=[], help="passed to qa-calibrate")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    halves = split_rows(rows)
    with tempfile.TemporaryDirectory(prefix="judged-") as work_dir:
        work = Path(work_dir)
        index = work / "index"
        shutil.copytree(args.index, index)
        exported, counts = ask_and_judge(index, work / "questions.sqlite", rows,
                                         {row["question"] for row in halves["tune"]})
        (work / "judged.jsonl").write_text(exported, encoding="utf-8")
        cli_export = _tool("qa-judgments", "export", "--log", str(work / "questions.sqlite"), "--out", "-")
        report = work / "report.jsonl"
        report.write_text("".join(json.dumps(r) + "\n" for r in halves["report"]), encoding="utf-8")
        fit = _tool("qa-calibrate", str(work / "judged.jsonl"), "--index", str(index),
                    *[a for also in args.also for a in ("--also", also)])
        scores = json.loads(_tool("qa-eval", str(report), "--index", str(index), "--json"))
    figures = {
        "questions": len(rows), "judged_half": len(halves["tune"]), "report_half": len(halves["report"]),
        **{k: v for k, v in counts.items() if k != "summary"},
        "exported_rows": len(exported.splitlines()), "cli_export_same": cli_export == exported,
        "judged_summary": counts["summary"], "report": scores,
    }
    print(fit.strip())
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
