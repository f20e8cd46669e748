"""The candidates stage: each retriever's best rows for a question, within the rows allowed,
fused into one ranking (index/fusion.py).

Dense: FAISS over the version's segments. Lexical: BM25 over the same segments, scored with
the whole collection's statistics. BM25 needs no vector, so it runs on a second thread while
the question is embedded (`parallel`, QA_PARALLEL_LEXICAL)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from index.fusion import Fused, fuse
from index.lexical import RowScores
from index.row_groups import RowBonus, intersect
from index.settings import SearchMode
from index.version import IndexVersion

LEXICAL_THREADS = 2  # BM25 jobs of concurrent questions run at once


class Candidates:
    """Finds and fuses candidates in one index version. `query_vector` embeds a question (the
    searcher's cached encoder); the BM25 threads end when this object is dropped."""

    def __init__(self, index: IndexVersion, query_vector: Callable[[str], np.ndarray], parallel: bool) -> None:
        self.index = index
        self._query_vector = query_vector
        self._pool = ThreadPoolExecutor(max_workers=LEXICAL_THREADS, thread_name_prefix="bm25") if parallel else None

    def fused(
        self,
        question: str,
        allowed: np.ndarray | None,
        mode: SearchMode,
        n: int,
        dense_weight: float,
        bonus: RowBonus | None = None,
        also_lexical: tuple[str, float] | None = None,
    ) -> Fused:
        """The union of each retriever's top `n` rows within `allowed`, fused. `mode` picks the
        retrievers ("dense" and "lexical" weigh one alone). `bonus` (the person a follow-up
        refers to, reader comments for a question about them) adds the favoured rows' own best
        candidates and is added to their scores. `also_lexical` (text, weight) adds that text's
        BM25 scores, times the weight, to the question's."""
        favoured = None if bonus is None else intersect(bonus.rows, allowed)
        lexical_job = None
        if mode in ("hybrid", "lexical") and self._pool is not None:
            lexical_job = self._pool.submit(self._lexical, question, allowed, favoured, n, also_lexical)
        found = []
        query_vector = None
        if mode in ("hybrid", "dense"):
            query_vector = self._query_vector(question)
            found.append(self.index.dense.search(query_vector, n, allowed)[0])
            if favoured is not None:
                found.append(self.index.dense.search(query_vector, n, favoured)[0])
        lexical = None
        if mode in ("hybrid", "lexical"):
            if lexical_job is not None:
                lexical, lexical_found = lexical_job.result()
            else:
                lexical, lexical_found = self._lexical(question, allowed, favoured, n, also_lexical)
            found += lexical_found
        rows = np.unique(np.concatenate(found)).astype(np.int64)
        weight = {"dense": 1.0, "lexical": 0.0}.get(mode, dense_weight)
        return fuse(
            rows,
            None if query_vector is None else self.index.vectors[rows] @ query_vector,
            None if lexical is None else lexical.at(rows),
            weight,
            None if bonus is None else bonus.at(rows),
            None if bonus is None else bonus.largest,
        )

    def _lexical(
        self,
        question: str,
        allowed: np.ndarray | None,
        favoured: np.ndarray | None,
        n: int,
        also: tuple[str, float] | None,
    ) -> tuple[RowScores, list[np.ndarray]]:
        """The question's BM25 scores and its top `n` rows (and the favoured rows' own)."""
        scores = self.index.lexical.score(self.index.lexical.query(question, also=also), allowed)
        top = [scores.top(n)] + ([scores.top(n, among=favoured)] if favoured is not None else [])
        return scores, top
