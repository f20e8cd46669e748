"""BM25's top rows and the scores of given rows, as the searcher asks for them (a question
with weighted terms, restricted to a few rows or many, over segments with deleted passages),
are what scoring every passage gives: the same rows with the same scores, bit for bit."""

from __future__ import annotations

import random

import numpy as np
import pytest

from index import lexical
from index.lexical import LexicalIndex, LexicalSegment
from tests.conftest import sample_paragraphs

QUESTIONS = [
    "who argues against means-testing?",
    "Which countries have co-operatives running hospitals?",
    "How much have A&E visits gone up?",
    "What does the NHS Long Term Plan say about communities and prevention?",
    "the NHS and social care",  # common words: many blocks hold them
    "care care care health",
    "Who won the 2018 FIFA World Cup?",
]


@pytest.fixture(scope="module")
def paragraphs() -> list[str]:
    texts = sample_paragraphs()
    return texts + [s for t in texts for s in t.split(". ") if len(s) > 20]  # sentences too: more rows


def _segmented(paragraphs: list[str]) -> LexicalIndex:
    """Three segments, a fifth of each segment's rows deleted."""
    rng = random.Random(3)
    segments, live = [], []
    for part in np.array_split(np.arange(len(paragraphs)), 3):
        segments.append(LexicalSegment.build([paragraphs[i] for i in part]))
        live.append(np.array([rng.random() > 0.2 for _ in part]))
    return LexicalIndex(segments, live)


def _exhaustive_top(index: LexicalIndex, question: str, n: int, allowed: np.ndarray | None):
    scores = index.scores(index.query(question))
    if allowed is not None:
        keep = np.zeros(index.size, dtype=bool)
        keep[allowed] = True
        scores = np.where(keep, scores, 0)
    rows = np.flatnonzero(scores > 0)
    rows = rows[np.lexsort((rows, -scores[rows]))][:n]
    return rows, scores[rows]


@pytest.mark.parametrize("n", [1, 10, 200])
def test_scores_as_searched_equal_every_row_scored(
    paragraphs: list[str], n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lexical, "DIRECT_ROWS", 64)  # both paths on a small collection
    index = _segmented(paragraphs)
    rng = np.random.default_rng(0)
    wide = np.sort(rng.choice(index.size, size=index.size // 2, replace=False))
    narrow = np.sort(rng.choice(index.size, size=40, replace=False))  # looked up, not scored
    assert len(narrow) <= lexical.DIRECT_ROWS < len(wide)
    for question in QUESTIONS:
        query = index.query(question)
        for allowed in (None, wide, narrow):
            scored = index.score(query, allowed)
            rows = scored.top(n)
            scores = scored.at(rows)
            expected_rows, expected_scores = _exhaustive_top(index, question, n, allowed)
            # Equal scores, bit for bit; the same rows but where the n-th score is tied
            # (equal scores in any order).
            np.testing.assert_array_equal(scores, expected_scores)
            cut = expected_scores[-1] if len(expected_scores) == n else 0
            assert set(rows[scores > cut].tolist()) == set(expected_rows[expected_scores > cut].tolist())
            np.testing.assert_array_equal(index.score_rows(query, rows), scores)
            # Any rows, allowed or not: what scoring every row gives them.
            probe = rng.choice(index.size, size=50, replace=False)
            expected = index.scores(query)[probe] * np.isin(probe, allowed if allowed is not None else probe)
            np.testing.assert_array_equal(scored.at(probe), expected)
            # The best among some of the allowed rows (the passages a bonus favours).
            among = np.sort(rng.choice(allowed if allowed is not None else index.size, size=20, replace=False))
            best = scored.top(n, among=among)
            assert set(best.tolist()) <= set(among.tolist())
            assert list(scored.at(best)) == sorted(scored.at(among)[scored.at(among) > 0], reverse=True)[:n]


def test_question_with_context_terms_scores_them_at_their_weight(paragraphs: list[str]) -> None:
    index = LexicalIndex.build(paragraphs)
    alone = index.scores(index.query("co-operatives"))
    both = index.scores(index.query("co-operatives", also=("hospitals Spain", 0.25)))
    extra = index.scores(index.query("hospitals Spain"))
    np.testing.assert_allclose(both, alone + 0.25 * extra, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [1, 7, 200])
def test_top_positive_is_the_top_of_a_full_sort(n: int) -> None:
    rng = np.random.default_rng(n)
    for size in (50, 10_000, 123_457):
        # Many zeros, many ties (rounded scores), a long tail: as a common word leaves them.
        scores = np.round(rng.exponential(size=size), 1).astype(np.float32)
        scores[rng.random(size) < 0.6] = 0
        found = lexical._top_positive(scores, n)
        expected = np.sort(scores[scores > 0])[::-1][:n]
        np.testing.assert_array_equal(scores[found], expected)
        assert len(set(found.tolist())) == len(found)
    assert len(lexical._top_positive(np.zeros(100_000, dtype=np.float32), 5)) == 0
    sparse = np.zeros(100_000, dtype=np.float32)
    sparse[[3, 99_999]] = [1.0, 2.0]  # fewer positive scores than n
    assert lexical._top_positive(sparse, 10).tolist() == [99_999, 3]


def test_frequencies_are_small_integers_and_score_as_float32_ones(paragraphs: list[str], tmp_path) -> None:
    """Counts are stored as uint8 (a quarter of float32's bytes); an index written with
    float32 counts (before) loads and scores the same, bit for bit."""
    segment = LexicalSegment.build(paragraphs)
    assert segment.frequencies.dtype == np.uint8 and segment.frequencies.min() >= 1
    segment.save(tmp_path / "small")
    loaded = LexicalSegment.load(tmp_path / "small")
    assert loaded.frequencies.dtype == np.uint8
    wide = LexicalSegment(segment.terms, segment.indptr, segment.passages,
                          segment.frequencies.astype(np.float32), segment.lengths)
    wide.save(tmp_path / "wide")
    small, before = LexicalIndex([loaded]), LexicalIndex([LexicalSegment.load(tmp_path / "wide")])
    rows = np.arange(0, small.size, 7)
    for question in QUESTIONS:
        query = small.query(question)
        np.testing.assert_array_equal(small.scores(query), before.scores(query))
        np.testing.assert_array_equal(small.score_rows(query, rows), before.score_rows(query, rows))
    # A count past 255 takes the next size up rather than wrapping round.
    assert LexicalSegment.build(["ferry " * 300]).frequencies.tolist() == [300]
