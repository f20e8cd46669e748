"""Is this copy of an embedding model the published one? Dense search alone over whole BEIR
documents, as MTEB scores it, to compare with the published figures
(../shared/bench/REFERENCE_NUMBERS.md: all-mpnet-base-v2 SciFact nDCG@10 0.6557, NFCorpus
0.3329; all-MiniLM-L6-v2 0.6451, 0.3159).

    python -m bench models --model all-mpnet-base-v2 [--benchmark scifact]

Each document is its title and text (truncated by the model to what it reads), each test
query is embedded as is, and documents are ranked by exact cosine; nDCG@10 (graded, trec_eval's
linear form) and Recall@100 as `bench.quality` computes them. No chunking, fusion or prefixes:
this checks the model, not the service. On 2 CPU cores mpnet embeds SciFact's 5,183 documents
in about an hour."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.quality import ndcg_at, recall_at
from bench.quality_data import load_beir
from index.encoder import Encoder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench models", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--benchmark", default="scifact", choices=["scifact", "nfcorpus"])
    parser.add_argument("--bench", type=Path, default=Path("../shared/bench"))
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args(argv)

    benchmark = load_beir(args.bench / args.benchmark)
    encoder = Encoder(args.model, args.batch, query_backend="torch")
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
    print(json.dumps({
        "model": args.model, "benchmark": args.benchmark, "documents": len(ids),
        "queries": len(benchmark.queries), "ndcg_at_10": round(float(np.mean(ndcg)), 4),
        "recall_at_100": round(float(np.mean(recall)), 4), "embed_s": round(embedded_s),
        "documents_per_s": round(len(ids) / embedded_s, 1),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
