"""The candidates stage and the row sets behind filters, on the real sample index."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index.candidates import Candidates
from index.encoder import Encoder
from index.records import COMMENT, Filters
from index.row_index import RowIndex
from index.store import load_index

QUESTION = "who argues against means-testing?"
DUFFY = "000_b56ffdfc634a8662"


def test_each_mode_ranks_by_its_own_retriever_within_the_allowed_rows(sample_index: Path, encoder: Encoder) -> None:
    index = load_index(sample_index)
    vector = encoder.encode_query(QUESTION)
    candidates = Candidates(index, encoder.encode_query, parallel=False)

    dense = candidates.fused(QUESTION, None, "dense", 20, 0.6)
    cosines = index.vectors[dense.rows] @ vector
    assert np.all(np.diff(cosines) <= 1e-6) and dense.lexical is None  # best cosine first
    lexical = candidates.fused(QUESTION, None, "lexical", 20, 0.6)
    assert lexical.dense is None and np.all(np.diff(lexical.lexical) <= 1e-6)
    hybrid = candidates.fused(QUESTION, None, "hybrid", 20, 0.6)
    assert set(dense.rows[:5]) | set(lexical.rows[:5]) <= set(hybrid.rows.tolist())
    assert hybrid.retriever_rank(0, dense=True) is not None

    rows = RowIndex(index)
    allowed = rows.of_articles([DUFFY])
    scoped = candidates.fused(QUESTION, allowed, "hybrid", 20, 0.6)
    assert len(scoped.rows) and set(scoped.rows.tolist()) <= set(allowed.tolist())
    # The same question with its BM25 run on a second thread: the same candidates and scores.
    threaded = Candidates(index, encoder.encode_query, parallel=True).fused(QUESTION, None, "hybrid", 20, 0.6)
    assert threaded.rows.tolist() == hybrid.rows.tolist() and np.allclose(threaded.scores, hybrid.scores)


def test_row_sets_match_the_chunk_table(sample_index: Path) -> None:
    index = load_index(sample_index)
    rows = RowIndex(index)
    table = [index.chunks[row] for row in range(len(index.chunks.article_ids))]
    assert rows.of_articles([DUFFY]).tolist() == [r for r, c in enumerate(table) if c.article_id == DUFFY]
    assert rows.of_speakers(["simon duffy"]).tolist() == [r for r, c in enumerate(table) if c.speaker == "Simon Duffy"]
    assert rows.of_section(COMMENT).tolist() == [r for r, c in enumerate(table) if c.section == COMMENT]
    assert rows.of_articles(["no-such-article"]).tolist() == [] and rows.allowed(Filters()) is None
    both = rows.allowed(Filters(article_ids=frozenset({DUFFY}), sections=frozenset({COMMENT})))
    assert both.tolist() == [r for r, c in enumerate(table) if c.article_id == DUFFY and c.section == COMMENT]
