"""Retrieval quality on public benchmarks: SciFact and NFCorpus (BEIR), SQuAD v1.1 dev, and
abstention across benchmarks; BM25 only, dense only, our hybrid and txtai's hybrid side by side
on the same chunks.

    python -m bench quality [--bench ../shared/bench] [--work /tmp/qa-quality]
                            [--systems bm25,dense,hybrid,txtai] [--squad-sample 2000]
                            [--json results.json] [--model NAME] [--publish]

Each benchmark is written as one `.jsonl` of articles (`bench/quality_data.py`) and ingested by
`qa-ingest` into `WORK/<name>/index` (the real pipeline: cleaning, segmentation, our chunking,
the vector cache, so a re-run embeds nothing). The systems then rank the same chunks:

- bm25, dense, hybrid: `Searcher.rank` in lexical, dense and hybrid mode (the ranking `search`
  cuts its answers from, without the per-article cap);
- txtai: a txtai `Embeddings` index with `hybrid: True` (its BM25 and its convex fusion) built
  over the same chunk texts with the same all-MiniLM-L6-v2 vectors (passed in as external
  vectors, so nothing is embedded twice; questions are encoded by the same model), exact search.

Scores: BEIR nDCG@10 (graded gains, trec_eval's linear form) and Recall@100 on documents,
each document ranked by its best passage. SQuAD: answer recall@1/5/20 (a passage in the top k
contains a gold answer string, normalised) and article accuracy (the top passage, or one of the
top 5, comes from the question's article). "hybrid (served)" is what `search` shows, as `/ask`
does with `top_k` 20 (per-article cap; at confidence "none" nothing is shown, which scores 0).
Confidence: how often `search` answers ("high"), shows possibly related passages ("low") or
finds nothing ("none"), for every test question against its own index (it should show passages)
and against a different-domain index (SciFact/NFCorpus <-> SQuAD: it should not answer).

The tables are printed; with --publish they are written into their blocks of docs/quality.md
(quality-beir, quality-squad, quality-confidence: bench/quality_tables.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.publish import add_publish_arguments, print_and_publish
from bench.quality_data import Benchmark, Query, load_beir, load_squad, write_articles
from bench.quality_systems import TxtaiPeer, ranker, served_rank
from bench.quality_tables import tables
from index.encoder import Encoder
from index.evaluate import normalise
from index.records import CONFIDENCE_LEVELS
from index.search import Searcher
from index.settings import Settings
from index.store import load_index
from index.version import IndexVersion

SYSTEMS = ("bm25", "dense", "hybrid", "txtai")
BEIR_CHUNK_DEPTH = 400  # passages ranked per query: enough for 100 distinct documents
SQUAD_DEPTH = 20
# Cross-benchmark pairs for abstention: questions of one domain asked of the other's index.
# SciFact and NFCorpus are both biomedical, so they are not asked of each other.
CROSS_PAIRS = (
    ("scifact", "squad"),
    ("nfcorpus", "squad"),
    ("squad", "scifact"),
    ("squad", "nfcorpus"),
)


class CachingEncoder:
    """The encoder, remembering question vectors: every system and configuration asks the same
    questions, and the model call is most of a query's time."""

    def __init__(self, encoder: Encoder) -> None:
        self._encoder = encoder
        self._cache: dict[str, np.ndarray] = {}
        self.model_name = encoder.model_name
        self.dim = encoder.dim

    def encode_query(self, text: str) -> np.ndarray:
        vector = self._cache.get(text)
        if vector is None:
            vector = self._cache[text] = self._encoder.encode_query(text)
        return vector

    def warm(self, texts: Sequence[str]) -> None:
        """Encode many questions in batches (much faster than one by one)."""
        missing = sorted({t for t in texts if t not in self._cache})
        for text, vector in zip(missing, self._encoder.encode(missing)):
            self._cache[text] = vector

    def load(self, path: Path) -> None:
        """Question vectors saved by an earlier run with the same model, if any."""
        if path.exists():
            with np.load(path, allow_pickle=False) as saved:
                if str(saved["model"]) == self.model_name:
                    self._cache.update(zip(saved["texts"].tolist(), saved["vectors"]))

    def save(self, path: Path) -> None:
        if self._cache:
            texts = list(self._cache)
            np.savez(
                path,
                model=self.model_name,
                texts=np.array(texts),
                vectors=np.stack([self._cache[t] for t in texts]),
            )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)


# ---------------------------------------------------------------- ingest


def ingest(articles_dir: Path, index_dir: Path, encoder: Encoder | None = None) -> dict[str, Any]:
    """Ingest through the real pipeline: the `qa-ingest` command, or in-process `run_ingest`
    with an already loaded model (the same code; the tests use it to load the model once)."""
    if encoder is not None:
        from ingest.pipeline import run_ingest

        return run_ingest(
            articles_dir, Settings(index_dir=index_dir), encoder=encoder, progress=False
        ).to_json()
    command = shutil.which("qa-ingest") or str(Path(sys.executable).parent / "qa-ingest")
    done = subprocess.run(
        [command, str(articles_dir), "--index", str(index_dir), "--json", "--quiet"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout)


# ---------------------------------------------------------------- metrics


def documents(ranked: list[tuple[int, float]], index: IndexVersion, limit: int) -> list[str]:
    """Article ids in the order of their best passage."""
    seen: dict[str, None] = {}
    for row, _ in ranked:
        seen.setdefault(index.chunks[row].article_id, None)
        if len(seen) == limit:
            break
    return list(seen)


def ndcg_at(docs: list[str], relevant: dict[str, int], k: int = 10) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(docs[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(gain / math.log2(i + 2) for i, gain in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(docs: list[str], relevant: dict[str, int], k: int = 100) -> float:
    return len(set(docs[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def score_beir(rank: Callable[[str, int], list], index: IndexVersion, queries: list[Query]) -> dict:
    ndcg, recall = [], []
    for query in queries:
        docs = documents(rank(query.text, BEIR_CHUNK_DEPTH), index, 100)
        ndcg.append(ndcg_at(docs, query.relevant))
        recall.append(recall_at(docs, query.relevant))
    return {
        "ndcg_at_10": round(float(np.mean(ndcg)), 4),
        "recall_at_100": round(float(np.mean(recall)), 4),
        "queries": len(queries),
    }


def contains_answer(text: str, answers: list[str]) -> bool:
    haystack = normalise(text)
    return any(normalise(answer) in haystack for answer in answers)


def score_squad(
    rank: Callable[[str, int], list], index: IndexVersion, queries: list[Query]
) -> dict:
    found = {1: 0, 5: 0, 20: 0}
    article1 = article5 = 0
    for query in queries:
        rows = [row for row, _ in rank(query.text, SQUAD_DEPTH)]
        gold = next(iter(query.relevant))
        first = next(
            (
                i
                for i, row in enumerate(rows)
                if contains_answer(index.chunks[row].text, query.answers)
            ),
            None,
        )
        for k in found:
            found[k] += first is not None and first < k
        articles = [index.chunks[row].article_id for row in rows]
        article1 += bool(articles) and articles[0] == gold
        article5 += gold in articles[:5]
    n = max(len(queries), 1)
    return {
        "answer_recall_at_1": round(found[1] / n, 4),
        "answer_recall_at_5": round(found[5] / n, 4),
        "answer_recall_at_20": round(found[20] / n, 4),
        "article_at_1": round(article1 / n, 4),
        "article_at_5": round(article5 / n, 4),
        "queries": len(queries),
    }


def confidence_shares(searcher: Searcher, questions: list[str]) -> dict[str, float]:
    """The share of `questions` at each confidence level."""
    counts = Counter(searcher.search(q).confidence for q in questions)
    n = max(len(questions), 1)
    return {level: round(counts[level] / n, 4) for level in CONFIDENCE_LEVELS}


# ---------------------------------------------------------------- the run


@dataclass
class Loaded:
    benchmark: Benchmark
    index: IndexVersion
    searcher: Searcher
    ingest_report: dict[str, Any]
    ingest_seconds: float


def prepare(
    benchmark: Benchmark,
    work: Path,
    encoder: CachingEncoder,
    settings: Settings | None = None,
    in_process: Encoder | None = None,
) -> Loaded:
    folder = work / benchmark.name
    started = time.perf_counter()
    report = ingest(
        write_articles(benchmark, folder / "articles").parent, folder / "index", in_process
    )
    seconds = time.perf_counter() - started
    index = load_index(folder / "index")
    settings = (settings or Settings()).model_copy(update={"index_dir": folder / "index"})
    return Loaded(benchmark, index, Searcher(index, encoder, settings), report, seconds)


def evaluate_benchmark(loaded: Loaded, systems: Sequence[str], encoder: CachingEncoder) -> dict:
    """Every system's scores (and seconds) on one benchmark."""
    queries = loaded.benchmark.queries
    encoder.warm([q.text for q in queries])
    squad = bool(queries and queries[0].answers)
    results: dict[str, Any] = {}
    for system in systems:
        started = time.perf_counter()
        peer = TxtaiPeer(loaded.index, encoder) if system == "txtai" else None
        built = time.perf_counter() - started
        rank = ranker(system, loaded.searcher, peer)
        scores = (score_squad if squad else score_beir)(rank, loaded.index, queries)
        scores["seconds"] = round(time.perf_counter() - started, 1)
        if peer is not None:
            scores["index_seconds"] = round(built, 1)
        results[system] = scores
    if "hybrid" in systems:
        started = time.perf_counter()
        results["hybrid (served)"] = (score_squad if squad else score_beir)(
            served_rank(loaded.searcher), loaded.index, queries
        )
        results["hybrid (served)"]["seconds"] = round(time.perf_counter() - started, 1)
    return results


def evaluate_confidence(loaded: dict[str, Loaded], encoder: CachingEncoder) -> dict:
    """Confidence shares of `search` on each benchmark's own index (passages should be shown:
    "none" is an abstention) and across domains (no answer should be given: "high" is the
    failure), with the means of both."""
    out: dict[str, Any] = {}
    pairs = [(name, name) for name in loaded] + [
        pair for pair in CROSS_PAIRS if pair[0] in loaded and pair[1] in loaded
    ]
    for asked, index_of in pairs:
        questions = [q.text for q in loaded[asked].benchmark.queries]
        encoder.warm(questions)
        out[f"{asked} on {index_of}"] = confidence_shares(loaded[index_of].searcher, questions)
    own = [v["none"] for k, v in out.items() if k.split(" on ")[0] == k.split(" on ")[1]]
    cross = [v["high"] for k, v in out.items() if k.split(" on ")[0] != k.split(" on ")[1]]
    out["in_benchmark_abstained"] = round(float(np.mean(own)), 4) if own else None
    out["cross_benchmark_answered"] = round(float(np.mean(cross)), 4) if cross else None
    return out


def load_benchmarks(bench: Path, names: Sequence[str], squad_sample: int | None) -> list[Benchmark]:
    out = []
    for name in names:
        if name == "squad":
            out.append(load_squad(bench / "squad-v1.1-dev" / "dev-v1.1.json", sample=squad_sample))
        else:
            out.append(load_beir(bench / name, name=name))
    return out


def run(args: argparse.Namespace, systems: list[str]) -> dict[str, Any]:
    """Ingest each benchmark, rank with each system, and the confidence levels: the results."""
    started = time.perf_counter()
    settings = Settings()
    encoder = CachingEncoder(Encoder(settings.model))
    args.work.mkdir(parents=True, exist_ok=True)
    encoder.load(args.work / "question-vectors.npz")
    loaded: dict[str, Loaded] = {}
    results: dict[str, Any] = {"model": settings.model, "benchmarks": {}, "ingest": {}}
    for benchmark in load_benchmarks(
        args.bench, args.benchmarks.split(","), args.squad_sample or None
    ):
        item = loaded[benchmark.name] = prepare(benchmark, args.work, encoder, settings)
        results["ingest"][benchmark.name] = item.ingest_report | {
            "wall_seconds": round(item.ingest_seconds, 1)
        }
        results["benchmarks"][benchmark.name] = evaluate_benchmark(item, systems, encoder)
        print(json.dumps({benchmark.name: results["benchmarks"][benchmark.name]}), flush=True)
    if not args.no_confidence:
        results["confidence"] = evaluate_confidence(loaded, encoder)
    results["seconds"] = round(time.perf_counter() - started, 1)
    encoder.save(args.work / "question-vectors.npz")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench quality", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bench", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "bench"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-quality"))
    parser.add_argument("--benchmarks", default="scifact,nfcorpus,squad")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument(
        "--squad-sample", type=int, default=2000, help="seeded sample of questions; 0 = all"
    )
    parser.add_argument("--no-confidence", action="store_true", help="skip the confidence table")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--model", help="embedding model (default: QA_MODEL or the default model); "
                        "a model other than the default publishes into blocks of its own")
    add_publish_arguments(parser, "quality")
    args = parser.parse_args(argv)
    if args.model:  # read by Settings here and by the qa-ingest subprocesses
        os.environ["QA_MODEL"] = args.model
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}; choose from {SYSTEMS}")
    results = run(args, systems)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print_and_publish(args, "quality", argv, tables(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
