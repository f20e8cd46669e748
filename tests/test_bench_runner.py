"""The runner (`python -m bench`), the registry of scenarios, and bench.run's and bench.quality's
tables published block by block (the size rules are tests/test_house.py's)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

import bench.__main__ as runner
from bench.publish import read_blocks
from bench.scenarios import SCENARIOS, Scenario

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
CALLS: list[list[str]] = []


def main(argv: list[str] | None = None) -> int:
    """A stand-in scenario's main."""
    CALLS.append(list(argv or []))
    return 3


def test_python_m_bench_lists_every_scenario() -> None:
    done = subprocess.run([sys.executable, "-m", "bench"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for name, scenario in SCENARIOS.items():
        assert f"  {name} " in done.stdout and scenario.about in done.stdout


def test_an_unknown_scenario_is_a_message_and_exit_2() -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "no-such"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "no scenario 'no-such'" in done.stderr and "Traceback" not in done.stderr


def test_the_runner_calls_main_with_the_scenario_args_then_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SCENARIOS, "stand-in", Scenario(__name__, "docs/benchmarks.md", "a test", ("--only", "x")))
    CALLS.clear()
    assert runner.main(["stand-in", "--sizes", "300"]) == 3
    assert CALLS == [["--only", "x", "--sizes", "300"]]


def _main_takes_argv(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
    return len(mains) == 1 and [a.arg for a in mains[0].args.args] == ["argv"]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_scenario_is_a_bench_module_with_main_argv_and_a_document(name: str) -> None:
    scenario = SCENARIOS[name]
    assert scenario.module.startswith("bench.") and not scenario.module.startswith("bench.experiments")
    path = ROOT / (scenario.module.replace(".", "/") + ".py")
    assert path.is_file() and _main_takes_argv(path)
    assert scenario.doc in ("README.md", "docs/benchmarks.md", "docs/quality.md", "docs/reliability.md")


def test_experiments_still_run_as_modules() -> None:
    for name in ("quality_tune", "lexical_engines", "query_quantization", "search_profile"):
        assert find_spec(f"bench.experiments.{name}") is not None
        assert _main_takes_argv(BENCH / "experiments" / f"{name}.py")


def _results() -> dict:
    """bench.run's results, as a quick run saves them (figures made up)."""
    machine = {"cpus": 2, "memory_gb": 23.5, "cpu_model": "AMD EPYC", "python": "3.11.7", "load_at_start": "0.1 0.2 0.3"}
    latency = [{"system": system, "chunks": 300, "dense": "flat", "requests": 20, "clients": 1, "errors": 0,
                "p50_ms": p50, "p95_ms": 9.0, "p99_ms": 12.0, "requests_per_s": 90.0, "rss_mb": 400.0,
                "rss_anon_mb": 300.0, "rss_peak_mb": 420.0, "bytes_per_chunk": 1500, "load_s": 2.0}
               for system, p50 in (("ours", 6.0), ("langchain", 12.0))]
    measured = {name: {"command": f"python -m bench {name} --quick", "commit": "1234567", "day": "2026-12-01",
                       "machine": machine} for name in ("ingest", "latency", "langchain")}
    return {
        "machine": machine, "measured": measured, "latency": latency,
        "ingest": {"documents": 8, "chunks": 40, "ingest_chunks_per_s": 50.0, "encode_chunks_per_s": 48.0,
                   "ratio": 1.04, "ingest_runs_s": [0.8], "encode_runs_s": [0.83]},
        "query_embedding_ms": {"onnx_1": 5.0, "onnx_2": 4.0, "torch_1": 9.0, "torch_2": 7.0},
        "langchain_ingest": {"chunks_per_s": 40.0},
    }


def test_bench_run_publishes_each_table_into_its_own_block(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("matplotlib")
    from bench import run

    results, doc = tmp_path / "results.json", tmp_path / "benchmarks.md"
    results.write_text(json.dumps(_results()))
    prose = "# Benchmarks\n\nWritten by hand.\n"
    doc.write_text(prose)
    assert run.main(["--render-only", "--results", str(results), "--only", "ingest", "--publish", "--doc", str(doc)]) == 0
    assert "| chunks | ingest chunks/s" in capsys.readouterr().out
    text = doc.read_text()
    assert text.startswith(prose) and list(read_blocks(text)) == ["ingest-throughput"]
    # The others added after it; the ingest block, measured earlier, keeps its provenance.
    run.main(["--render-only", "--results", str(results), "--publish", "--doc", str(doc)])
    out = capsys.readouterr()
    blocks = read_blocks(doc.read_text())
    assert list(blocks) == ["ingest-throughput", "latency", "langchain"]  # no figures for the other two
    assert doc.read_text().startswith(text)
    assert (blocks["latency"].command, blocks["latency"].commit, blocks["latency"].day) == (
        "python -m bench latency --quick", "1234567", "2026-12-01")
    assert "](benchmarks-latency.png)" in blocks["latency"].body
    assert (tmp_path / "benchmarks-latency.png").stat().st_size > 1000
    assert "| p50 ms at 300 chunks, 1 client(s) | 6.0 | 12.0 | 2.00 |" in blocks["langchain"].body
    assert "published langchain" in out.out


def test_quality_tables_are_named_blocks() -> None:
    from bench.quality_tables import tables

    beir = {"ndcg_at_10": 0.7214, "recall_at_100": 0.9587, "queries": 300, "seconds": 2.4}
    squad = {"answer_recall_at_1": 0.8, "answer_recall_at_5": 0.95, "answer_recall_at_20": 0.99,
             "article_at_1": 0.96, "article_at_5": 0.99, "queries": 2000, "seconds": 1.6}
    results = {"model": "all-MiniLM-L6-v2",
               "benchmarks": {"scifact": {"hybrid": beir, "txtai": beir | {"index_seconds": 4.2}},
                              "squad": {"hybrid": squad}},
               "confidence": {"scifact on squad": {"high": 0.1, "low": 0.5, "none": 0.4},
                              "in_benchmark_abstained": 0.05, "cross_benchmark_answered": None}}
    found = {table.name: table.body for table in tables(results)}
    assert list(found) == ["quality-beir", "quality-squad", "quality-confidence"]
    assert "| SciFact (300 q) | our hybrid | 0.721 | 0.959 | 2.4 |" in found["quality-beir"]
    assert "| 2.4 (+4.2 index) |" in found["quality-beir"]
    assert "| SQuAD v1.1 dev (2000 q) | answer@1 |" in found["quality-squad"]
    assert "| SciFact questions, SQuAD v1.1 dev index | 0.100 | 0.500 | 0.400 |" in found["quality-confidence"]
    # Another model's figures go to blocks of their own, under headings that name it.
    other = tables(results | {"model": "all-mpnet-base-v2"})
    assert [table.name for table in other] == [
        "quality-beir-all-mpnet-base-v2", "quality-squad-all-mpnet-base-v2", "quality-confidence-all-mpnet-base-v2"]
    assert other[1].heading == "## SQuAD v1.1 dev (all-mpnet-base-v2)" and other[1].body == found["quality-squad"].replace(
        "all-MiniLM-L6-v2", "all-mpnet-base-v2")


def test_models_side_by_side_table_puts_each_models_costs_once() -> None:
    from bench.eval_report import ScoredSet
    from bench.model_compare import Column, table

    def scores(hit1: float, confident: int, right: int) -> dict:
        return {"hit_at_1": hit1, "hit_at_3": 0.9, "confident": confident, "confident_right": right,
                "coverage": right / 20}

    def sets(hit1: float) -> list[ScoredSet]:
        return [ScoredSet("readers", scores(hit1, 4, 3), scores(0.5, 2, 2)), ScoredSet("fresh", scores(0.4, 1, 1), None)]

    costs = {"chunks": 85, "chunks_per_s": 26.54, "p50_ms": 20.51, "p95_ms": 31.0, "rss_mb": 320.4, "questions": 108}
    body = table([Column("minilm, shipped", sets(0.6), costs), Column("minilm, tune", sets(0.6), None),
                  Column("mpnet, tune", sets(0.7), costs | {"chunks_per_s": 4.0})])
    assert "| readers, single and first turns: hit@1 / hit@3 | 0.600 / 0.900 | 0.600 / 0.900 | 0.700 / 0.900 |" in body
    assert "| readers, follow-ups: hit@1 / hit@3 | 0.500 / 0.900 |" in body and "fresh, follow-ups" not in body
    assert "| ... confident right / confident, coverage | 3 / 4, 0.150 |" in body
    assert "| all of them: confident right / confident | 6 / 7 = 0.86 |" in body  # follow-ups counted
    assert "| embedding passages (`qa-ingest`, 85 sample chunks, torch) | 26.5 chunks/s | same model | 4.0 chunks/s |" in body
    assert "each of the 108 reported questions once, search cache off | 20.5 / 31.0 ms | same model |" in body


def test_models_at_scale_table_has_a_row_per_model_from_bench_latency_rows() -> None:
    from bench.model_compare import scale_table

    def row(p50: float, rss: float, onnx: list[float]) -> dict:
        return {"system": "ours", "chunks": 100_000, "requests": 200, "p50_ms": p50, "p95_ms": p50 * 1.3,
                "p99_ms": p50 * 1.5, "requests_per_s": 1000 / p50, "rss_mb": rss,
                "bytes_per_chunk": rss * 2**20 / 100_000, "onnx_ms": onnx}

    body = scale_table({"all-MiniLM-L6-v2": row(24.0, 400.4, [15.94, 16.2]),
                        "all-mpnet-base-v2": row(95.0, 863.0, [69.1, 41.8])})
    assert "| all-MiniLM-L6-v2 (default) | 24.0 / 31.2 / 36.0 | 41.7 | 400 | 4,198 | 15.9 / 16.2 |" in body
    assert "| all-mpnet-base-v2 | 95.0 / 123.5 / 142.5 | 10.5 | 863 | 9,049 | 69.1 / 41.8 |" in body
    assert "100,000 chunks, one client, 200 SciFact claims" in body
