"""What the confidence stage reads of a searched turn (`Signals`, index/confidence.py): numbers
the search already has, and no model call."""

from __future__ import annotations

from index.answer import term_share
from index.lexical import analyse
from index.records import Answer
from index.confidence import Signals
from index.segment import lexical_text
from index.turns import Turn, TurnSearch


def read_signals(turns: TurnSearch, turn: Turn, weights: dict[str, float], answer: Answer | None) -> Signals:
    """The signals of `turn`'s first passage; `weights` are the question's term weights and
    `answer` the answer stage's sentence (None when it found none)."""
    index, article_ids = turns.index, turns.rows.article_ids
    first_row, first_score = turn.chosen[0]
    second_score = turn.chosen[1][1] if len(turn.chosen) > 1 else 0.0
    # Where each retriever alone put the first passage (the first fused candidate).
    ranks = [turn.fused.retriever_rank(0, dense) if turn.fused else None for dense in (True, False)]
    dense_rank, lexical_rank = (1.0 / r if r else 0.0 for r in ranks)
    first_article = article_ids[first_row]
    same_article = sum(article_ids[row] == first_article for row, _ in turn.chosen[:3])
    # A follow-up's own words say little ("Why?"): its coverage is read in context.
    coverage_weights = turns.term_weights(turn.in_context) if turn.in_context else weights
    chunk = index.chunks[first_row]
    passage_terms = analyse([lexical_text(chunk, index.articles[chunk.article_id].title)])[0]
    return Signals(
        cosine=turn.first_cosine,
        margin=first_score - second_score,
        agree=float(dense_rank == lexical_rank == 1.0),
        dense_rank=dense_rank,
        lexical_rank=lexical_rank,
        same_article=same_article / min(3, len(turn.chosen)),
        coverage=term_share(coverage_weights, passage_terms),
        sentence_coverage=term_share(weights, analyse([answer.text])[0]) if answer else 0.0,
        followup=float(turn.in_context is not None),
    )
