"""Is this copy of an embedding model the published one? Dense search alone over whole BEIR
documents, as MTEB scores it, to compare with the published figures
(../shared/bench/REFERENCE_NUMBERS.md: all-mpnet-base-v2 SciFact nDCG@10 0.6557, NFCorpus
0.3329; all-MiniLM-L6-v2 0.6451, 0.3159).

    python -m bench models --model all-mpnet-base-v2 [--benchmark scifact] [--publish]

Each document is its title and text (truncated by the model to what it reads), each test
query is embedded as is, and documents are ranked by exact cosine; nDCG@10 (graded, trec_eval's
linear form) and Recall@100 as `bench.quality` computes them. No chunking, fusion or prefixes:
this checks the model, not the service. On 2 CPU cores mpnet embeds SciFact's 5,183 documents
in about an hour.

Prints the figures as one JSON object, then the table; with --publish the table is written
into its block of docs/quality.md (`models-mteb`)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.publish import Table, add_publish_arguments, markdown_table, print_and_publish
from bench.quality import ndcg_at, recall_at
from bench.quality_data import load_beir
from index.encoder import Encoder


# MTEB's published figures (../shared/bench/REFERENCE_NUMBERS.md, sections 1, 2 and 4):
# (nDCG@10, Recall@100) of dense search alone by model and benchmark.
PUBLISHED = {
    ("all-mpnet-base-v2", "scifact"): (0.6557, 0.9417),
    ("all-mpnet-base-v2", "nfcorpus"): (0.3329, 0.3385),
    ("all-MiniLM-L6-v2", "scifact"): (0.6451, 0.9250),
    ("all-MiniLM-L6-v2", "nfcorpus"): (0.3159, 0.3115),
}
BENCHMARKS = {"scifact": "SciFact", "nfcorpus": "NFCorpus"}


def measure(model: str, benchmark_dir: Path, batch: int) -> dict:
    """Dense nDCG@10 and Recall@100 of `model` over the benchmark's whole documents."""
    benchmark = load_beir(benchmark_dir)
    encoder = Encoder(model, batch, query_backend="torch")
    started = time.perf_counter()
    # MTEB joins title and text with a space; the loader's paragraph break reads the same.
    documents = encoder.encode([a["text"].replace("\n\n", " ", 1) for a in benchmark.articles])
    embedded_s = time.perf_counter() - started
    queries = encoder.encode([q.text for q in benchmark.queries])
    ids = [a["id"] for a in benchmark.articles]
    scores = queries @ documents.T
    ndcg, recall = [], []
    for query, row in zip(benchmark.queries, scores):
        ranked = [ids[i] for i in np.argsort(-row)[:100]]
        ndcg.append(ndcg_at(ranked, query.relevant))
        recall.append(recall_at(ranked, query.relevant))
    return {
        "model": model, "benchmark": benchmark_dir.name, "documents": len(ids),
        "queries": len(benchmark.queries), "ndcg_at_10": round(float(np.mean(ndcg)), 4),
        "recall_at_100": round(float(np.mean(recall)), 4), "embed_s": round(embedded_s),
        "documents_per_s": round(len(ids) / embedded_s, 1),
    }


def table(results: dict) -> str:
    """The run as the `models-mteb` block: this copy's nDCG@10 and Recall@100, and MTEB's
    published figures for the same model and benchmark where REFERENCE_NUMBERS.md has them."""
    name = Path(results["model"]).name
    benchmark = BENCHMARKS.get(results["benchmark"], results["benchmark"])
    headers = [f"dense search alone, {benchmark}'s {results['documents']:,} whole documents, "
               f"{results['queries']} test queries, exact cosine", "nDCG@10", "Recall@100"]
    rows = [[f"{name} as loaded here", f"**{results['ndcg_at_10']:.4f}**", f"{results['recall_at_100']:.4f}"]]
    published = PUBLISHED.get((name, results["benchmark"]))
    if published:
        rows.append(["MTEB's published figures (`../shared/bench/REFERENCE_NUMBERS.md`)",
                     f"{published[0]:.4f}", f"{published[1]:.4f}"])
    return markdown_table(headers, rows) + (f"\n\nEmbedding the documents took {results['embed_s']:,} s "
                               f"({results['documents_per_s']} documents a second).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench models", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--benchmark", default="scifact", choices=["scifact", "nfcorpus"])
    parser.add_argument("--bench", type=Path, default=Path("../shared/bench"))
    parser.add_argument("--batch", type=int, default=16)
    add_publish_arguments(parser, "models")
    args = parser.parse_args(argv)
    results = measure(args.model, args.bench / args.benchmark, args.batch)
    print(json.dumps(results))
    print_and_publish(args, "models", argv,
                      [Table("models-mteb", table(results), "## An embedding model against MTEB")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
