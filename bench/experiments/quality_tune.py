"""Sweeps of fusion settings on the quality benchmarks' indexes, in numpy (every chunk's cosine
and BM25 score per question computed once), to choose what `Searcher._rank` should do.
Development aid, not the benchmark: a chosen setting is re-measured by `bench/quality.py`
through the real `Searcher`.

    .venv/bin/python -m bench.experiments.quality_tune [--work /tmp/qa-quality]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.quality import (
    BEIR_CHUNK_DEPTH,
    SQUAD_DEPTH,
    CachingEncoder,
    contains_answer,
    load_benchmarks,
    ndcg_at,
    recall_at,
)
from index.encoder import Encoder
from index.lexical import K1, TOKEN_PATTERN, B, LexicalIndex
from index.segment import lexical_text
from index.settings import Settings
from index.store import load_index

Fusion = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (cosines, bm25) -> fused scores


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    n = min(n, len(scores))
    part = np.argpartition(-scores, n - 1)[:n]
    return part[np.argsort(-scores[part], kind="stable")]


def convex(
    weight: float, n: int = 100, dense_norm: str = "minmax", bm25_norm: str = "max"
) -> Callable:
    def fuse(cos: np.ndarray, bm: np.ndarray, depth: int, *_) -> np.ndarray:
        k = max(n, depth)
        rows = np.unique(np.concatenate([_top(cos, k), _top(bm, k)[bm[_top(bm, k)] > 0]]))
        d, b = cos[rows], bm[rows]
        if dense_norm == "minmax":
            d = (d - d.min()) / max(float(d.max() - d.min()), 1e-9)
        elif dense_norm == "z":
            d = (d - d.mean()) / max(float(d.std()), 1e-9)
        elif dense_norm == "raw":
            pass
        if bm25_norm == "max":
            b = b / max(float(b.max()), 1e-9)
        elif bm25_norm == "minmax":
            b = (b - b.min()) / max(float(b.max() - b.min()), 1e-9)
        elif bm25_norm == "z":
            b = (b - b.mean()) / max(float(b.std()), 1e-9)
        score = weight * d + (1 - weight) * b
        return rows[np.argsort(-score, kind="stable")][:depth]

    return fuse


def rrf(k: int = 60, n: int = 100) -> Callable:
    def fuse(cos: np.ndarray, bm: np.ndarray, depth: int, *_) -> np.ndarray:
        m = max(n, depth)
        score: dict[int, float] = {}
        for ranking in (_top(cos, m), _top(bm, m)):
            for r, row in enumerate(ranking):
                score[int(row)] = score.get(int(row), 0.0) + 1 / (k + r + 1)
        return np.array(sorted(score, key=lambda row: -score[row])[:depth])

    return fuse


def dense_only(cos, bm, depth, *_):
    return _top(cos, depth)


def bm25_only(cos, bm, depth, *_):
    return _top(bm, depth)


def prf(fuse: Callable, m: int = 3, beta: float = 0.5, lexical: bool = False) -> Callable:
    """Dense pseudo-relevance feedback: the question vector moved towards its top `m` fused
    passages, dense scores recomputed, fused again."""

    def run(cos, bm, depth, vectors, qv):
        top = fuse(cos, bm, max(m, 10), vectors, qv)[:m]
        q2 = qv + beta * vectors[top].mean(axis=0)
        q2 /= np.linalg.norm(q2)
        return fuse(vectors @ q2, bm, depth, vectors, q2)

    return run


def bm25_variant(
    index,
    k1: float = K1,
    b: float = B,
    method: str = "lucene",
    stopwords: str = "en_plus",
    token_pattern: str = TOKEN_PATTERN,
):
    """A BM25 over the index's passages with other settings than `index.lexical`'s (bm25s's
    own defaults were k1 1.5, b 0.75, token pattern \\b\\w\\w+\\b)."""
    import bm25s

    from index.lexical import _stemmer

    texts = [lexical_text(c, index.articles[c.article_id].title) for c in index.chunks]
    retriever = bm25s.BM25(k1=k1, b=b, method=method)
    retriever.index(
        bm25s.tokenize(
            texts,
            stopwords=stopwords,
            stemmer=_stemmer(),
            token_pattern=token_pattern,
            return_ids=False,
            show_progress=False,
        ),
        show_progress=False,
    )

    class Variant:
        def scores(self, query, mask=None):
            terms = bm25s.tokenize(
                [query],
                stopwords=stopwords,
                stemmer=_stemmer(),
                token_pattern=token_pattern,
                return_ids=False,
                show_progress=False,
            )[0]
            ids = [retriever.vocab_dict[t] for t in terms if t in retriever.vocab_dict]
            if not ids:
                return np.zeros(retriever.scores["num_docs"], dtype=np.float32)
            return retriever.get_scores_from_ids(ids, weight_mask=mask)

    return Variant()


class Prepared:
    """One benchmark's questions with every chunk's cosine and BM25 score."""

    def __init__(
        self, benchmark, index, encoder: CachingEncoder, lexical: LexicalIndex | None = None
    ):
        self.benchmark, self.index = benchmark, index
        lexical = lexical or index.lexical
        texts = [q.text for q in benchmark.queries]
        encoder.warm(texts)
        self.vectors = vectors = np.asarray(index.vectors)
        self.qv = [encoder.encode_query(t) for t in texts]
        self.cos = [vectors @ q for q in self.qv]
        self.bm = [lexical.scores(t) for t in texts]
        self.article = np.array([c.article_id for c in index.chunks], dtype=object)
        self.texts = [c.text for c in index.chunks]

    def score(self, fuse: Callable) -> dict:
        queries = self.benchmark.queries
        if queries[0].answers:
            hit1 = hit5 = art1 = 0
            for q, cos, bm, qv in zip(queries, self.cos, self.bm, self.qv):
                rows = fuse(cos, bm, SQUAD_DEPTH, self.vectors, qv)
                first = next(
                    (i for i, r in enumerate(rows) if contains_answer(self.texts[r], q.answers)),
                    99,
                )
                hit1 += first < 1
                hit5 += first < 5
                art1 += self.article[rows[0]] == next(iter(q.relevant))
            n = len(queries)
            return {
                "ans@1": round(hit1 / n, 4),
                "ans@5": round(hit5 / n, 4),
                "art@1": round(art1 / n, 4),
            }
        ndcg, rec = [], []
        for q, cos, bm, qv in zip(queries, self.cos, self.bm, self.qv):
            rows = fuse(cos, bm, BEIR_CHUNK_DEPTH, self.vectors, qv)
            docs = list(dict.fromkeys(self.article[rows]))[:100]
            ndcg.append(ndcg_at(docs, q.relevant))
            rec.append(recall_at(docs, q.relevant))
        return {"ndcg@10": round(float(np.mean(ndcg)), 4), "r@100": round(float(np.mean(rec)), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.experiments.quality_tune")
    parser.add_argument(
        "--bench", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "bench"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-quality"))
    parser.add_argument("--benchmarks", default="scifact,nfcorpus,squad")
    parser.add_argument(
        "--rebuild-bm25",
        action="store_true",
        help="rebuild BM25 with the current index.lexical analysis (to try a tokeniser)",
    )
    args = parser.parse_args(argv)
    encoder = CachingEncoder(Encoder(Settings().model))
    encoder.load(args.work / "question-vectors.npz")
    prepared = {}
    for benchmark in load_benchmarks(args.bench, args.benchmarks.split(","), 2000):
        index = load_index(args.work / benchmark.name / "index")
        lexical = (
            LexicalIndex.build(
                [lexical_text(c, index.articles[c.article_id].title) for c in index.chunks]
            )
            if args.rebuild_bm25
            else None
        )
        prepared[benchmark.name] = Prepared(benchmark, index, encoder, lexical)
    encoder.save(args.work / "question-vectors.npz")

    variants: dict[str, Callable] = {"bm25": bm25_only, "dense": dense_only, "rrf60": rrf(60)}
    for w in (0.3, 0.4, 0.5, 0.6, 0.7):
        variants[f"convex w{w} minmax/max"] = convex(w)
    for dn, bn in (("minmax", "minmax"), ("z", "z"), ("raw", "max")):
        for w in (0.4, 0.5, 0.6):
            variants[f"convex w{w} {dn}/{bn}"] = convex(w, dense_norm=dn, bm25_norm=bn)
    for n in (50, 200, 400):
        variants[f"convex w0.5 n{n}"] = convex(0.5, n=n)
    for name, fuse in variants.items():
        row = {bench: p.score(fuse) for bench, p in prepared.items()}
        print(json.dumps({name: row}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
