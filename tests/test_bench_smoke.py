"""Every performance benchmark runs end to end at a tiny size (figures are not checked: speed
targets are for bench/run.py, not for unit tests), and publishes into a copy of
docs/benchmarks.md, never the repository's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.publish import read_blocks

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("langchain_community")
pytest.importorskip("matplotlib")


def write_tiny_beir(folder: Path) -> Path:
    """A BEIR-shaped stand-in for SciFact made of the sample articles' paragraphs, so the smoke
    test needs nothing outside the repository (the full run reads ../shared/bench/scifact)."""
    paragraphs = [
        p.strip()
        for f in sorted((ROOT / "data" / "articles").glob("*.txt"))
        for p in f.read_text(encoding="utf-8").split("\n")
        if len(p.split()) > 25
    ]
    folder.mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as corpus:
        for i, paragraph in enumerate(paragraphs):
            corpus.write(json.dumps({"_id": str(i), "title": " ".join(paragraph.split()[:6]), "text": paragraph}) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as queries:
        for i, paragraph in enumerate(paragraphs[::3]):
            queries.write(json.dumps({"_id": f"q{i}", "text": " ".join(paragraph.split()[2:12])}) + "\n")
    return folder


def outside_blocks(text: str) -> str:
    """The document without its published blocks: what a run must leave as it was."""
    return re.sub(r"<!-- table: ([a-z0-9-]+) -->\n.*?<!-- /table: \1 -->", "", text, flags=re.S)


@pytest.mark.slow
def test_bench_quick_run_publishes_its_blocks(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    original = ROOT / "docs" / "benchmarks.md"
    before = original.read_text(encoding="utf-8") if original.exists() else "# Benchmarks\n\nProse by hand.\n"
    doc.write_text(before, encoding="utf-8")
    env = {**os.environ, "QA_BENCH_CACHE": str(tmp_path / "cache"), "QA_BENCH_SEEDS": "40", "HF_HUB_OFFLINE": "1",
           "QA_BENCH_SCIFACT": str(write_tiny_beir(tmp_path / "scifact"))}
    # One index size, so that each system's server starts once per client count.
    subprocess.run([sys.executable, "-m", "bench", "perf", "--quick", "--sizes", "300", "--publish", "--doc", str(doc)],
                   cwd=ROOT, env=env, check=True, timeout=900)
    results = json.loads((tmp_path / "cache" / "results-quick.json").read_text())
    assert results["ingest"]["chunks"] > 0 and results["ingest"]["ratio"] > 0
    assert [r["articles"] for r in results["incremental"]] == [20, 60]
    assert all(r["chunks_embedded"] > 0 for r in results["incremental"])
    assert {r["chunks"] for r in results["recall"]} == {300}
    # 300 chunks are searched exactly (a flat index below 50,000): the same ten as brute force.
    assert all(r["dense"] == "flat" and r["recall_at_10"] == 1.0 for r in results["recall"])
    systems = {(r["system"], r["chunks"]) for r in results["latency"]}
    assert systems == {("ours", 300), ("langchain", 300)}
    assert all(r["errors"] == 0 and r["rss_mb"] > 0 for r in results["latency"])
    assert {r["clients"] for r in results["latency"]} == {1, 4}
    assert set(results["query_embedding_ms"]) == {"onnx_1", "onnx_2", "torch_1", "torch_2"}
    text = doc.read_text()
    blocks = read_blocks(text)
    assert {"ingest-throughput", "incremental-add", "ann-recall", "latency", "langchain"} <= set(blocks)
    assert blocks["latency"].command == "python -m bench latency --quick --sizes 300"
    assert blocks["ann-recall"].body.startswith("| chunks | dense index |")
    assert outside_blocks(text).startswith(outside_blocks(before))  # only blocks changed or were added
    assert (tmp_path / "benchmarks-latency.png").stat().st_size > 1000


@pytest.mark.slow
def test_serving_memory_profile_runs(tmp_path: Path, sample_index: Path) -> None:
    out = tmp_path / "memory.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QA_BENCH_SCIFACT": str(write_tiny_beir(tmp_path / "scifact"))}
    subprocess.run([sys.executable, "-m", "bench", "serving-memory", "--index", str(sample_index), "--queries", "5",
                    "--json", str(out)], cwd=ROOT, env=env, check=True, timeout=300)
    profile = json.loads(out.read_text())
    assert [s["stage"] for s in profile["stages"]][-1] == "after 5 questions"
    assert all(s["rss_mb"] > 0 for s in profile["stages"]) and profile["largest_mappings"]


@pytest.mark.slow
def test_query_quantization_compares_every_copy_with_the_served_model() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "bench.experiments.query_quantization", "--questions", "3"],
                          cwd=ROOT, env=env, check=True, timeout=300, capture_output=True, text=True)
    figures = json.loads(done.stdout)
    copies = [label for label in figures if label.startswith("int8")]
    assert figures["questions"] == 3 and len(copies) == 3
    for label in copies:
        assert 0.5 < figures[label]["cosine_to_float32_min"] <= 1.0001
        assert figures[label]["file_mb"] < figures["float32"]["file_mb"]
