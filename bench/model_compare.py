"""Embedding models side by side on the sample, each as a user would run it: `qa-ingest` of
data/articles with `QA_MODEL`, `qa-calibrate` on the tune questions, the reported sets scored as
`qa-eval` scores them, and `/ask` over HTTP against a real `qa-serve` of that index.

    python -m bench compare-models [--models all-MiniLM-L6-v2,all-mpnet-base-v2] [--at 100000] [--publish]

Every model is calibrated on the same tune searches (the tune halves of `../shared/eval/` and
its readers, and eval/extra.jsonl); the default model is also scored with its shipped calibration
(which had SQuAD's fit half too), since that is what a new index of it gets. The costs: passage
embedding as `qa-ingest` reports it (85 chunks, torch), `/ask` p50 / p95 from one client asking
each reported question once after 30 tune questions to warm up (the search cache off; a searcher
keeps the vectors of questions it has seen, so none is asked twice), and the serving process's
resident memory after them.

With `--at N`, also each model's serving costs at N chunks (`models-100k`): `bench latency` on a
synthetic index of real SciFact sentences whose vectors are mixed from that model's own
embeddings of SciFact passages (bench/common.py), one client.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import read_jsonl
from bench.eval_report import ScoredSet, all_parts, reported_sets, score_set
from bench.eval_split import EVAL_DIR, read_rows, split_rows
from bench.publish import Table, add_publish_arguments, markdown_table, print_and_publish
from index.settings import is_default_model

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = "all-MiniLM-L6-v2,all-mpnet-base-v2"
HEADING = "## Models side by side"


@dataclass
class Column:
    """One configuration's figures: the reported sets, and the costs (None: the column before's)."""

    label: str
    scored: list[ScoredSet]
    costs: dict[str, float] | None


def _tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _run(command: list[str], model: str) -> str:
    env = {**os.environ, "QA_MODEL": model, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"compare-models: {' '.join(command[:2])} failed for {model}:\n{done.stderr.strip()}")
    return done.stdout


def write_tune_set(path: Path) -> Path:
    """The tune halves of `../shared/eval/` and its readers in one file (qa-eval's format)."""
    rows = split_rows(read_rows(EVAL_DIR))["tune"] + split_rows(read_rows(EVAL_DIR / "readers"))["tune"]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def score(index: Path) -> list[ScoredSet]:
    from index.cli import open_searcher

    searcher = open_searcher(index)  # the index's own model, its calibration.json or the shipped one
    return [score_set(searcher, name, rows) for name, rows in reported_sets().items()]


def serving_costs(index: Path, model: str, tune: Path) -> dict[str, float]:
    from bench.query_latency import serve_and_measure

    asked = list(dict.fromkeys(row["question"] for rows in reported_sets().values() for row in rows
                               if "question" in row))
    warm = [row["question"] for row in read_jsonl(tune) if "question" in row and row["question"] not in asked][:30]
    command = [_tool("qa-serve"), "--index", str(index), "--articles", str(ROOT / "data" / "articles")]
    # The search cache off: the questions repeat, and a cached answer costs no model call.
    env = {"QA_MODEL": model, "QA_ASK_RATE_PER_MINUTE": "0", "QA_SEARCH_CACHE_SIZE": "0", "HF_HUB_OFFLINE": "1"}
    # The warm-up asks the list's last 30 backwards: the tune questions, never measured.
    served = serve_and_measure("ours", command, env, 0, "", asked + warm[::-1], len(asked), 1)
    return {"p50_ms": served.p50_ms, "p95_ms": served.p95_ms, "rss_mb": served.rss_mb, "questions": len(asked)}


def measure(model: str, work: Path, tune: Path) -> list[Column]:
    """The columns of one model: shipped calibration (the default model only), then its own."""
    index = work / model.replace("/", "_") / "index"
    print(f"{model}: qa-ingest", flush=True)
    report = json.loads(_run([_tool("qa-ingest"), str(ROOT / "data" / "articles"), "--index", str(index),
                              "--json", "--quiet"], model))
    costs = {"chunks": report["chunks_embedded"],
             "chunks_per_s": report["chunks_embedded"] / report["timings"]["embed"]}
    shipped = None
    if is_default_model(model):
        print(f"{model}: the reported sets, shipped calibration", flush=True)
        shipped = score(index)
    print(f"{model}: qa-calibrate on the tune questions", flush=True)
    _run([_tool("qa-calibrate"), str(tune), str(ROOT / "eval" / "extra.jsonl"), "--index", str(index)], model)
    print(f"{model}: the reported sets, its own calibration", flush=True)
    scored = score(index)
    print(f"{model}: /ask over HTTP", flush=True)
    costs |= serving_costs(index, model, tune)
    own = f"{model}, tune questions only"
    if shipped is None:
        return [Column(own, scored, costs)]
    return [Column(f"{model}, shipped calibration", shipped, costs), Column(own, scored, None)]


def at_scale(model: str, chunks: int, requests: int, work: Path) -> dict[str, Any]:
    """`python -m bench latency` with `model` at `chunks`, one client: its row and the question
    embedding's own time (ONNX, one and two threads)."""
    results = work / f"latency-{model.replace('/', '_')}.json"
    print(f"{model}: bench latency at {chunks:,} chunks", flush=True)
    _run([sys.executable, "-m", "bench", "latency", "--sizes", str(chunks), "--clients", "1",
          "--requests", str(requests), "--results", str(results)], model)
    measured = json.loads(results.read_text())
    [row] = [r for r in measured["latency"] if r["system"] == "ours"]
    return {**row, "onnx_ms": [measured["query_embedding_ms"][f"onnx_{n}"] for n in (1, 2)]}


def scale_table(rows: dict[str, dict[str, Any]]) -> str:
    body = [[f"{model} (default)" if is_default_model(model) else model,
             f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f} / {r['p99_ms']:.1f}", f"{r['requests_per_s']:.1f}",
             f"{r['rss_mb']:.0f}", f"{r['bytes_per_chunk']:,.0f}", " / ".join(f"{ms:.1f}" for ms in r["onnx_ms"])]
            for model, r in rows.items()]
    first = next(iter(rows.values()))
    chunks, requests = first["chunks"], first["requests"]
    return markdown_table(["`QA_MODEL`", "`/ask` p50 / p95 / p99 ms", "questions/s", "serving RSS MB", "bytes per chunk",
                           "question embedding alone, ONNX, 1 / 2 threads, ms"], body) + (
        f"\n\n{chunks:,} chunks, one client, {requests} SciFact claims: each row "
        f"`QA_MODEL=… python -m bench latency --sizes {chunks} --clients 1 --requests {requests}`."
    )


def _alone(scores: dict[str, Any]) -> str:
    return f"{scores['confident_right']} / {scores['confident']}, {scores['coverage'] or 0:.3f}"


def table(columns: list[Column]) -> str:
    """Rows: each reported set's hit@1 / hit@3 and confident answers, then the costs."""
    sets = [s.name for s in columns[0].scored]
    rows = []
    for i, name in enumerate(sets):
        rows.append([f"{name}, single and first turns: hit@1 / hit@3",
                     *(f"{c.scored[i].alone['hit_at_1']:.3f} / {c.scored[i].alone['hit_at_3']:.3f}" for c in columns)])
        rows.append(["... confident right / confident, coverage", *(_alone(c.scored[i].alone) for c in columns)])
        if columns[0].scored[i].followups:
            rows.append([f"{name}, follow-ups: hit@1 / hit@3",
                         *(f"{c.scored[i].followups['hit_at_1']:.3f} / {c.scored[i].followups['hit_at_3']:.3f}"
                           for c in columns)])
    totals = []
    for column in columns:
        right = sum(s["confident_right"] for _, s in all_parts(column.scored))
        confident = sum(s["confident"] for _, s in all_parts(column.scored))
        totals.append(f"{right} / {confident}" + (f" = {right / confident:.2f}" if confident else ""))
    rows.append(["all of them: confident right / confident", *totals])

    def cost(fmt) -> list[str]:
        return [fmt(c.costs) if c.costs else "same model" for c in columns]

    chunks = next(c.costs["chunks"] for c in columns if c.costs)
    rows.append([f"embedding passages (`qa-ingest`, {chunks} sample chunks, torch)",
                 *cost(lambda c: f"{c['chunks_per_s']:.1f} chunks/s")])
    asked = next(c.costs["questions"] for c in columns if c.costs)
    rows.append([f"`/ask` p50 / p95, one client, each of the {asked} reported questions once, search cache off",
                 *cost(lambda c: f"{c['p50_ms']:.1f} / {c['p95_ms']:.1f} ms")])
    rows.append(["serving process's resident memory after them", *cost(lambda c: f"{c['rss_mb']:.0f} MB")])
    return markdown_table(["", *(c.label for c in columns)], rows) + NOTE


NOTE = (
    "\n\nEach model: `QA_MODEL=… qa-ingest data/articles`, then `qa-calibrate` on the tune questions "
    "(`bench.eval_split --half tune` of `../shared/eval/` and of its readers, and eval/extra.jsonl); "
    "the sets scored as `qa-eval SET --index IDX` scores them."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench compare-models", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated QA_MODEL values")
    parser.add_argument("--at", type=int, metavar="CHUNKS", help="also each model's serving costs at this many chunks")
    parser.add_argument("--requests", type=int, default=200, help="questions asked at --at (default 200)")
    add_publish_arguments(parser, "compare-models")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="qa-compare-models-") as scratch:
        work = Path(scratch)
        tune = write_tune_set(work / "tune.jsonl")
        models = [model for model in args.models.split(",") if model]
        columns = [c for model in models for c in measure(model, work, tune)]
        tables = [Table("models", table(columns), HEADING)]
        if args.at:
            scaled = {model: at_scale(model, args.at, args.requests, work) for model in models}
            name = f"models-{args.at // 1000}k" if args.at % 1000 == 0 else f"models-{args.at}"
            tables.append(Table(name, scale_table(scaled), HEADING))
    print_and_publish(args, "compare-models", argv, tables)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
