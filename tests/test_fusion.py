"""Fusion and the rerank stage on fixed scores (no index)."""

from __future__ import annotations

import numpy as np
import pytest

from index.fusion import fuse
from index.errors import RerankError
from index.rerank import RerankRun, passage_text, rerank

ROWS = np.array([10, 11, 12, 13])
DENSE = np.array([0.50, 0.70, 0.60, 0.30], dtype=np.float32)
LEXICAL = np.array([9.0, 0.0, 3.0, 6.0], dtype=np.float32)


def test_fusion_is_a_convex_combination_of_normalised_scores() -> None:
    fused = fuse(ROWS, DENSE, LEXICAL, dense_weight=0.6)
    # dense min-max: 0.5, 1, 0.75, 0; BM25 over its max: 1, 0, 1/3, 2/3
    expected = {10: 0.6 * 0.5 + 0.4, 11: 0.6, 12: 0.6 * 0.75 + 0.4 / 3, 13: 0.4 * 2 / 3}
    assert fused.rows.tolist() == [10, 11, 12, 13]
    assert fused.scores.tolist() == pytest.approx([expected[r] for r in fused.rows.tolist()])
    # Each retriever's own scores come along in the fused order, for the confidence stage.
    assert fused.dense.tolist() == pytest.approx([0.5, 0.7, 0.6, 0.3])
    assert fused.retriever_rank(0, dense=True) == 3 and fused.retriever_rank(0, dense=False) == 1
    assert fused.retriever_rank(1, dense=False) is None  # BM25 found none of its words


def test_one_retriever_alone_and_a_bonus() -> None:
    dense_only = fuse(ROWS, DENSE, None, dense_weight=1.0)
    assert dense_only.rows.tolist() == [11, 12, 10, 13] and dense_only.lexical is None
    assert dense_only.retriever_rank(0, dense=False) is None

    bonus = np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32)
    lifted = fuse(ROWS, DENSE, LEXICAL, dense_weight=0.6, bonus=bonus, bonus_largest=1.0)
    assert lifted.rows[0] == 13 and float(lifted.scores.max()) <= 1.0


def test_no_candidates() -> None:
    fused = fuse(np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0), 0.6)
    assert fused.pairs() == []


class Reverse:
    """Scores the later passages higher."""

    def scores(self, question, texts):
        return [float(i) for i in range(len(texts))]


class Short:
    """One score too few."""

    def scores(self, question, texts):
        return [1.0] * (len(texts) - 1)


class NotNumbers:
    def scores(self, question, texts):
        return [float("nan")] + [1.0] * (len(texts) - 1)


def test_rerank_reorders_the_head_and_keeps_the_tail() -> None:
    ranked = [(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6)]
    assert rerank(Reverse(), "q", ranked, str, depth=3) == [(3, 0.7), (2, 0.8), (1, 0.9), (4, 0.6)]
    assert rerank(Reverse(), "q", ranked, str, depth=1) is ranked  # nothing to reorder: no call
    with pytest.raises(RerankError, match="gave 1 scores for 2 passages"):
        rerank(Short(), "q", ranked, str, depth=2)
    with pytest.raises(RerankError, match="not a finite number"):
        rerank(NotNumbers(), "q", ranked, str, depth=2)


def test_equal_scores_keep_the_fused_order() -> None:
    class Flat:
        def scores(self, question, texts):
            return [0.5, 0.5, 0.9, 0.5]

    ranked = [(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6)]
    assert [row for row, _ in rerank(Flat(), "q", ranked, str, depth=4)] == [3, 1, 2, 4]


def test_a_failed_rerank_keeps_the_fused_order_for_the_rest_of_the_search() -> None:
    class Failing:
        calls = 0

        def scores(self, question, texts):
            self.calls += 1
            raise ConnectionError("refused")

    ranked = [(1, 0.9), (2, 0.8), (3, 0.7)]
    failing = Failing()
    run = RerankRun(failing)
    assert run.apply("q", ranked, str, 3) == ranked
    assert run.error == "the reranker failed: ConnectionError: refused"
    assert run.apply("q2", ranked, str, 3) == ranked and failing.calls == 1
    assert RerankRun(None).apply("q", ranked, str, 3) == ranked


def test_the_reranker_reads_title_and_speaker_before_the_passage() -> None:
    assert passage_text("Care at home", "Simon Duffy", "We must stop.") == "Care at home\nSimon Duffy: We must stop."
    assert passage_text(None, "Simon Duffy", "We must stop.") == "Simon Duffy: We must stop."
    assert passage_text("Care at home", None, "We must stop.") == "Care at home\nWe must stop."
    assert passage_text(None, None, "We must stop.") == "We must stop."
