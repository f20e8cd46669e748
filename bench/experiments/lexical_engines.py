"""Lexical engines for a segmented index (issue 15), on the same terms: our postings scored
with collection statistics (`index/lexical.py`) against tantivy, an engine built on segments.

    .venv/bin/python -m bench.experiments.lexical_engines [--bench ../shared/bench]
        [--synthetic 100000] [--json results.json]

Both index exactly the same terms: each text is analysed once by `index.lexical.analyse`
(stopwords, stemming) and tantivy gets those terms joined by spaces under its whitespace
tokenizer. What differs is the engine: tantivy's BM25 has k1 1.2 and b 0.75 fixed and
stores each document's length in one byte (Lucene's lossy field norms); ours uses k1 1.2,
b 0.5 and exact lengths.

- SciFact and NFCorpus (BEIR test queries, each document its title and text): BM25 alone,
  nDCG@10 and Recall@100, build seconds, query milliseconds (top 100).
- Synthetic passages (`bench/common.synthetic_articles`, real SciFact sentences) at
  `--synthetic` articles of three passages: build seconds, query milliseconds, and the
  seconds from one new passage to a searcher that finds it (ours: a one-passage segment and
  the collection's statistics; tantivy: add, commit, reload). Ours is also timed over 16
  segments, to see what a segmented layout costs a question. Query times there are the
  medians of three alternating rounds of the 300 SciFact claims.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tantivy

from bench.common import Machine, percentile, scifact_queries, synthetic_articles
from bench.quality import ndcg_at, recall_at
from bench.quality_data import load_beir
from index.lexical import LexicalIndex, LexicalSegment, analyse

Ranker = Callable[[str, int], list[int]]  # question, depth -> row numbers, best first


class Ours:
    def __init__(self, texts: list[str], segments: int = 1) -> None:
        self.segments = [
            LexicalSegment.build([texts[i] for i in part])
            for part in np.array_split(np.arange(len(texts)), segments)
        ]
        self.index = LexicalIndex(self.segments)

    def rank(self, question: str, depth: int) -> list[int]:
        scores = self.index.scores(question)
        top = np.argpartition(-scores, min(depth, len(scores) - 1))[:depth]
        top = top[scores[top] > 0]
        return top[np.argsort(-scores[top], kind="stable")].tolist()

    def add(self, text: str) -> None:
        self.segments.append(LexicalSegment.build([text]))
        self.index = LexicalIndex(self.segments)


class Tantivy:
    def __init__(self, texts: list[str], directory: Path) -> None:
        builder = tantivy.SchemaBuilder()
        builder.add_integer_field("row", stored=True)
        builder.add_text_field("text", tokenizer_name="whitespace", index_option="freq")
        self.schema = builder.build()
        directory.mkdir(parents=True)
        self.index = tantivy.Index(self.schema, path=str(directory))
        self.writer = self.index.writer(heap_size=256_000_000, num_threads=1)
        self.rows = 0
        for text in texts:
            self._write(text)
        self.writer.commit()
        self.writer.wait_merging_threads()
        self.writer = self.index.writer(heap_size=256_000_000, num_threads=1)
        self.index.reload()
        self.searcher = self.index.searcher()

    def _write(self, text: str) -> None:
        terms = " ".join(analyse([text])[0])
        self.writer.add_document(tantivy.Document(row=self.rows, text=terms))
        self.rows += 1

    def search(self, question: str, depth: int) -> list:
        """The top hits as tantivy addresses: what is timed, since mapping an address back to
        our row (a stored-field read per hit) is a cost of this bench, not of the engine."""
        terms = analyse([question])[0]
        if not terms:
            return []
        query = tantivy.Query.boolean_query([
            (tantivy.Occur.Should, tantivy.Query.term_query(self.schema, "text", t)) for t in terms
        ])
        return self.searcher.search(query, depth).hits

    def rank(self, question: str, depth: int) -> list[int]:
        return [self.searcher.doc(address)["row"][0] for _, address in self.search(question, depth)]

    def add(self, text: str) -> None:
        self._write(text)
        self.writer.commit()
        self.index.reload()
        self.searcher = self.index.searcher()


def _timed(make: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    made = make()
    return made, time.perf_counter() - started


def _latency(rank: Ranker, questions: list[str], depth: int = 100) -> dict[str, float]:
    for question in questions[:20]:
        rank(question, depth)  # warm caches
    times = []
    for question in questions:
        started = time.perf_counter()
        rank(question, depth)
        times.append((time.perf_counter() - started) * 1000)
    return {"query_ms_p50": round(percentile(times, 50), 3), "query_ms_p90": round(percentile(times, 90), 3)}


def beir(folder: Path, work: Path) -> dict[str, dict]:
    benchmark = load_beir(folder)
    texts = [a["text"] for a in benchmark.articles]
    ids = [a["id"] for a in benchmark.articles]
    questions = [q.text for q in benchmark.queries]
    engines: dict[str, dict] = {}
    for name, make in (("ours", lambda: Ours(texts)), ("tantivy", lambda: Tantivy(texts, work / benchmark.name))):
        engine, seconds = _timed(make)
        ranked = [[ids[row] for row in engine.rank(q.text, 100)] for q in benchmark.queries]
        engines[name] = {
            "ndcg_at_10": round(float(np.mean([ndcg_at(r, q.relevant) for r, q in zip(ranked, benchmark.queries)])), 4),
            "recall_at_100": round(float(np.mean([recall_at(r, q.relevant) for r, q in zip(ranked, benchmark.queries)])), 4),
            "build_s": round(seconds, 2),
        } | _latency(getattr(engine, "search", engine.rank), questions)
    return engines


def synthetic(n_articles: int, work: Path) -> dict[str, dict]:
    texts = [
        text[start:end]
        for _, _, text, offsets in synthetic_articles(n_articles)
        for start, end in offsets
    ]
    questions = scifact_queries(300)
    fresh = "Zanzibar hospital porters trialled a rota for night-shift cover."
    makers = (
        ("ours", lambda: Ours(texts)),
        ("ours, 16 segments", lambda: Ours(texts, 16)),
        ("tantivy", lambda: Tantivy(texts, work / "synthetic")),
    )
    engines, out = {}, {}
    for name, make in makers:
        engines[name], seconds = _timed(make)
        out[name] = {"passages": len(texts), "build_s": round(seconds, 1)}
    # Latency in alternating rounds, medians of the rounds: one pass each was at the mercy of
    # whatever else the two cores did at that moment.
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in engines}
    for _ in range(3):
        for name, engine in engines.items():
            rounds[name].append(_latency(getattr(engine, "search", engine.rank), questions))
    for name, engine in engines.items():
        for key in ("query_ms_p50", "query_ms_p90"):
            out[name][key] = float(np.median([r[key] for r in rounds[name]]))
        _, add_seconds = _timed(lambda: engine.add(fresh))
        assert engine.rank("zanzibar porters", 1) == [len(texts)], name
        out[name]["add_one_s"] = round(add_seconds, 4)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "bench")
    parser.add_argument("--synthetic", type=int, default=100_000, help="synthetic articles (0: none)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="qa-lexical-engines-"))
    try:
        results: dict[str, object] = {"machine": vars(Machine.describe()), "tantivy": tantivy.__version__.split(",")[0]}
        for name in ("scifact", "nfcorpus"):
            print(f"{name} ...", flush=True)
            results[name] = beir(args.bench / name, work)
            print(json.dumps(results[name], indent=1), flush=True)
        if args.synthetic:
            print(f"synthetic, {args.synthetic:,} articles ...", flush=True)
            results["synthetic"] = synthetic(args.synthetic, work)
            print(json.dumps(results["synthetic"], indent=1), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
