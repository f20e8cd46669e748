"""The quality benchmark's scoring on a tiny BEIR-format corpus, through the real pipeline and
model, so a change that breaks `bench/quality.py` (or `Searcher.rank`) fails in CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.quality import (
    BEIR_CHUNK_DEPTH,
    CachingEncoder,
    documents,
    evaluate_benchmark,
    ndcg_at,
    prepare,
    recall_at,
)
from bench.quality_data import load_beir
from index.encoder import Encoder

DOCS = [
    (
        "d1",
        "Vitamin D and bone health",
        (
            "Vitamin D supplements improve bone mineral density "
            "in older adults and reduce the risk of fractures."
        ),
    ),
    (
        "d2",
        "Coffee and sleep",
        (
            "Caffeine taken in the evening delays sleep onset and shortens "
            "deep sleep in healthy volunteers."
        ),
    ),
    (
        "d3",
        "Statins and cholesterol",
        (
            "Statin therapy lowers LDL cholesterol and cuts the "
            "rate of heart attacks in patients at high risk."
        ),
    ),
    (
        "d4",
        "Exercise and mood",
        (
            "Regular aerobic exercise reduces symptoms of depression "
            "about as much as antidepressant drugs in mild cases."
        ),
    ),
    (
        "d5",
        "Salt and blood pressure",
        (
            "Eating less salt lowers blood pressure, most of all "
            "in people who already have hypertension."
        ),
    ),
]
QUERIES = [
    ("q1", "Does caffeine make it harder to fall asleep?", {"d2": 1}),
    ("q2", "statins reduce heart attacks", {"d3": 2}),
    ("q3", "Can physical activity help with depression?", {"d4": 1, "d1": 1}),
]


def _write_beir(folder: Path) -> None:
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as out:
        for doc_id, title, text in DOCS:
            out.write(
                json.dumps({"_id": doc_id, "title": title, "text": text, "metadata": {}}) + "\n"
            )
    with (folder / "queries.jsonl").open("w") as out:
        for query_id, text, _ in QUERIES:
            out.write(json.dumps({"_id": query_id, "text": text, "metadata": {}}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"{q}\t{d}\t{g}" for q, _, rel in QUERIES for d, g in rel.items()]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")


def test_metrics_by_hand() -> None:
    assert ndcg_at(["a", "b"], {"a": 1}) == 1.0
    assert ndcg_at(["b", "a"], {"a": 1}) == pytest.approx(1 / 1.5849625, rel=1e-6)
    assert ndcg_at(["x"], {"a": 2}) == 0.0
    assert recall_at(["a", "x", "b"], {"a": 1, "b": 1, "c": 1}, k=2) == pytest.approx(1 / 3)


@pytest.mark.slow
def test_quality_scoring_on_a_tiny_beir_corpus(tmp_path: Path, encoder: Encoder) -> None:
    folder = tmp_path / "tiny"
    _write_beir(folder)
    benchmark = load_beir(folder, name="tiny")
    assert len(benchmark.articles) == 5 and len(benchmark.queries) == 3
    assert benchmark.articles[0]["text"].startswith("Vitamin D and bone health\n\n")

    caching = CachingEncoder(encoder)
    loaded = prepare(benchmark, tmp_path / "work", caching, in_process=encoder)
    assert loaded.ingest_report["added"] == 5

    results = evaluate_benchmark(loaded, ["bm25", "dense", "hybrid"], caching)
    # Each system's score is that of the ranking its mode gives, document by best passage.
    for system, mode in (("bm25", "lexical"), ("dense", "dense"), ("hybrid", "hybrid")):
        by_hand = [ndcg_at(documents(loaded.searcher.rank(text, depth=BEIR_CHUNK_DEPTH, mode=mode),
                                     loaded.index, 100), relevant) for _, text, relevant in QUERIES]
        assert results[system]["queries"] == 3
        assert results[system]["ndcg_at_10"] == pytest.approx(sum(by_hand) / len(by_hand), abs=1e-4), system
    # Every document is reachable by meaning: dense and hybrid rank all five for each query.
    assert results["dense"]["recall_at_100"] == results["hybrid"]["recall_at_100"] == 1.0

    # The ranking behind the scores: documents by best passage, no per-article cap.
    ranked = loaded.searcher.rank("statins reduce heart attacks", depth=10)
    assert documents(ranked, loaded.index, 3)[0] == "d3"
    assert [score for _, score in ranked] == sorted((score for _, score in ranked), reverse=True)
