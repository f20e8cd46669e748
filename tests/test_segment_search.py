"""Search over segments: the same live passages score and rank the same however they are
split into segments and whatever else was deleted, for BM25 (also against bm25s indexing them
at once) and for dense search."""

from __future__ import annotations

import random
from pathlib import Path

import bm25s
import numpy as np
import pytest

from index.dense import DenseIndex, DenseSegments
from index.encoder import Encoder
from index.lexical import K1, B, LexicalIndex, LexicalSegment, analyse, tokenize_corpus
from index.store import load_index
from tests.conftest import sample_paragraphs

QUESTIONS = [
    "who argues against means-testing?",
    "Which countries have co-operatives running hospitals?",
    "How much have A&E visits gone up?",
    "What does the NHS Long Term Plan say about communities and prevention?",
    "mutual mutual mutual",  # a term asked three times counts three times
    "Who won the 2018 FIFA World Cup?",
]


@pytest.fixture(scope="module")
def paragraphs() -> list[str]:
    return sample_paragraphs()


def _layout(n_live: int, n_removed: int, parts: int, seed: int = 7):
    """A random order of live rows (0..n_live-1) and deleted ones (-1, -2, ...) split into
    `parts` segments: per segment its members, as (index, alive)."""
    rows = [(i, True) for i in range(n_live)] + [(i, False) for i in range(n_removed)]
    random.Random(seed).shuffle(rows)
    return [[rows[i] for i in part] for part in np.array_split(np.arange(len(rows)), parts)]


def _ranking(scores: np.ndarray, ids: list[int]) -> list[tuple[float, int]]:
    # Ties broken by the passage's identity, not its row, which differs between layouts.
    return sorted(((-float(scores[row]), ids[row]) for row in np.flatnonzero(scores)))


def test_segments_with_deletes_score_as_one_fresh_index(paragraphs: list[str]) -> None:
    live = paragraphs[: len(paragraphs) * 3 // 4]
    removed = paragraphs[len(paragraphs) * 3 // 4 :]
    fresh = LexicalIndex.build(live)

    # The same live passages spread over four segments in another order, interleaved with
    # passages that were deleted later (still in their segments, marked not live).
    segments, masks, ids = [], [], []
    for members in _layout(len(live), len(removed), 4):
        segments.append(LexicalSegment.build([(live if alive else removed)[i] for i, alive in members]))
        masks.append(np.array([alive for _, alive in members]))
        ids += [i if alive else -1 - i for i, alive in members]
    segmented = LexicalIndex(segments, masks)

    assert segmented.live_count == fresh.live_count == len(live)
    for question in QUESTIONS:
        expected = fresh.scores(question)
        found = segmented.scores(question)
        deleted = np.array(ids) < 0
        assert not found[deleted].any()
        order = np.argsort(np.array(ids)[~deleted])
        np.testing.assert_allclose(found[~deleted][order], expected, rtol=0, atol=1e-5)
        assert _ranking(found, ids) == _ranking(expected, list(range(len(live))))
        terms = analyse([question])[0]
        np.testing.assert_allclose(segmented.idf(terms), fresh.idf(terms), rtol=1e-12)


def test_scores_match_bm25s_built_at_once(paragraphs: list[str]) -> None:
    # bm25s (Lucene's BM25 with precomputed scores) is the independent reference.
    reference = bm25s.BM25(k1=K1, b=B)
    reference.index(tokenize_corpus(paragraphs), show_progress=False)
    ours = LexicalIndex.build(paragraphs)
    for question in QUESTIONS:
        ids = [reference.vocab_dict[t] for t in analyse([question])[0] if t in reference.vocab_dict]
        expected = reference.get_scores_from_ids(ids) if ids else np.zeros(len(paragraphs))
        np.testing.assert_allclose(ours.scores(question), expected, rtol=0, atol=1e-5)
    assert ours.scores("who argues against means-testing?").any()
    assert not ours.scores("FIFA sourdough").any()


def test_a_term_only_deleted_passages_hold_is_unseen(paragraphs: list[str]) -> None:
    segment = LexicalSegment.build(paragraphs + ["Zanzibar zebras"])
    everything = LexicalIndex([segment])
    without = LexicalIndex([segment], [np.arange(len(segment)) < len(paragraphs)])
    assert everything.scores("zebras").any() and not without.scores("zebras").any()
    unseen = without.idf(["qwertyuiop"])[0]
    assert without.idf(["zebra"])[0] == unseen > everything.idf(["zebra"])[0]


def test_saved_segment_loads_memory_mapped_with_equal_scores(paragraphs: list[str], tmp_path: Path) -> None:
    segment = LexicalSegment.build(paragraphs)
    segment.save(tmp_path / "lexical")
    loaded = LexicalSegment.load(tmp_path / "lexical")
    assert isinstance(loaded.passages, np.memmap)
    for question in QUESTIONS:
        np.testing.assert_array_equal(
            LexicalIndex([loaded]).scores(question), LexicalIndex([segment]).scores(question)
        )


def test_allowed_rows_and_empty_input_are_handled(paragraphs: list[str]) -> None:
    index = LexicalIndex.build(paragraphs)
    scored = index.score(index.query("NHS health care"), allowed=np.arange(10))
    everywhere = scored.at(np.arange(index.size))
    assert not everywhere[10:].any() and everywhere[:10].any()
    assert not index.scores("").any() and not index.scores("the of and").any()
    empty = LexicalIndex.build(["", "the of"])  # passages with no searchable term
    assert empty.size == 2 and not empty.scores("health").any()


def test_dense_segments_with_deletes_return_what_one_index_returns(
    sample_index: Path, encoder: Encoder
) -> None:
    vectors = np.asarray(load_index(sample_index).vectors)
    live, removed = vectors[: len(vectors) * 3 // 4], vectors[len(vectors) * 3 // 4 :]
    fresh = DenseIndex.build(live)
    segments, masks, ids = [], [], []
    for members in _layout(len(live), len(removed), 3):
        segments.append(DenseIndex.build(np.stack([(live if a else removed)[i] for i, a in members])))
        masks.append(np.array([a for _, a in members]))
        ids += [i if a else -1 - i for i, a in members]
    segmented = DenseSegments(segments, masks)
    ids_array = np.array(ids)
    row_of = {identity: row for row, identity in enumerate(ids)}

    assert segmented.size == len(vectors)
    np.testing.assert_array_equal(segmented.vectors([row_of[5], row_of[0]]), live[[5, 0]])
    for question in QUESTIONS:
        query = encoder.encode_query(question)
        expected_rows, expected_scores = fresh.search(query, 10)
        rows, scores = segmented.search(query, 10)
        assert ids_array[rows].tolist() == expected_rows.tolist()  # no deleted row among them
        np.testing.assert_allclose(scores, expected_scores, rtol=0, atol=1e-5)
        # Restricted to some rows (a filter), deleted ones among them never come back.
        allowed_live = np.arange(0, len(live), 3)
        allowed = [row_of[i] for i in allowed_live] + [row_of[-1], row_of[-2]]
        expected_rows, _ = fresh.search(query, 5, allowed_live)
        rows, _ = segmented.search(query, 5, np.array(allowed))
        assert ids_array[rows].tolist() == expected_rows.tolist()
