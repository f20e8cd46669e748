"""Fusion: one score per candidate passage from the dense and the lexical retriever's scores.

A convex combination of min-max normalised cosine and max-normalised BM25 (it beat reciprocal
rank fusion on our evaluation: RRF lets a passage ranked 25th by one retriever count nearly
as much as the 1st; docs/ARCHITECTURE.md, "Fusion"). Pure: the candidates and their raw
scores come in; the ranking goes out with the raw scores, for the confidence stage to read
where each retriever alone put the first passage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fused:
    """Candidates best first, with their fused scores in [0, 1] and each retriever's own
    scores (cosine, BM25; None when that retriever did not run), in the same order."""

    rows: np.ndarray
    scores: np.ndarray
    dense: np.ndarray | None
    lexical: np.ndarray | None

    def pairs(self) -> list[tuple[int, float]]:
        return list(zip(self.rows.tolist(), self.scores.tolist()))

    def retriever_rank(self, position: int, dense: bool) -> int | None:
        """The rank (1 = first) that the dense (or the lexical) retriever alone gives the
        candidate at `position`, among these candidates; None when it did not run or did not
        score it."""
        scores = self.dense if dense else self.lexical
        if scores is None or (not dense and scores[position] <= 0):
            return None
        return 1 + int(np.count_nonzero(scores > scores[position]))


def fuse(
    rows: np.ndarray,
    dense: np.ndarray | None,
    lexical: np.ndarray | None,
    dense_weight: float,
    bonus: np.ndarray | None = None,
    bonus_largest: float | None = None,
) -> Fused:
    """Rank `rows` by `dense_weight` x normalised `dense` + (1 - `dense_weight`) x normalised
    `lexical` (either may be None: that retriever did not run). `bonus` (per row, e.g. the
    person a follow-up refers to) is added and the sum divided by 1 + `bonus_largest` (the
    largest bonus given to any row; by default the largest of these) to stay in [0, 1]. Ties
    keep the candidates' order."""
    scores = np.zeros(len(rows), dtype=np.float32)
    if dense is not None and dense_weight > 0 and len(rows):
        span = float(dense.max() - dense.min())
        scores += dense_weight * ((dense - dense.min()) / span if span > 0 else np.ones_like(dense))
    if lexical is not None and dense_weight < 1 and len(rows):
        top = float(lexical.max())
        if top > 0:
            scores += (1 - dense_weight) * lexical / top
    if bonus is not None and len(rows):
        largest = float(bonus.max(initial=0.0)) if bonus_largest is None else bonus_largest
        scores = (scores + bonus) / (1.0 + largest)
    order = np.argsort(-scores, kind="stable")
    return Fused(
        rows=np.asarray(rows, dtype=np.int64)[order],
        scores=scores[order],
        dense=None if dense is None else dense[order],
        lexical=None if lexical is None else lexical[order],
    )
