"""The turn stage on its own (a question's passages, the per-article cap, a reranker's order)
and the follow-up stage's scope, on the real sample index."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from index.conversation import ConversationContext
from index.encoder import Encoder
from index.followup import search_turn
from index.models import RerankSpec
from index.policy import SearchPolicy
from index.rerank import passage_text
from index.row_index import RowIndex
from index.search import Searcher
from index.settings import Settings
from index.store import load_index
from index.turns import TurnSearch

QUESTION = "who argues against means-testing?"


def turn_search(index_dir: Path, encoder: Encoder, reranker=None, **settings) -> TurnSearch:
    index = load_index(index_dir)
    policy = SearchPolicy.from_settings(Settings(index_dir=index_dir, **settings))
    return TurnSearch(index, RowIndex(index), encoder.encode_query, policy, False, reranker)


def test_a_fresh_turn_keeps_the_fused_order_within_the_cap_per_article(sample_index: Path, encoder: Encoder) -> None:
    turns = turn_search(sample_index, encoder, per_article_cap=1)
    turn = turns.fresh(QUESTION, None, "hybrid", top_k=5)
    articles = [turns.rows.article_ids[row] for row, _ in turn.chosen]
    assert max(Counter(articles).values()) == 1 and len(turn.chosen) == len(set(turns.rows.article_ids))
    fused = turn.fused.pairs()
    assert [row for row, _ in turn.chosen][0] == fused[0][0]
    assert [score for _, score in turn.chosen] == sorted((s for _, s in turn.chosen), reverse=True)
    assert turn.first_cosine == turn.cosines[0] and turn.closest == max(turn.cosines)


class ShortestFirst:
    """A reranker that prefers shorter passages: any order the fusion would not give."""

    spec = RerankSpec("cross-encoder", "shortest-first")

    def scores(self, question, texts):
        return [-float(len(text)) for text in texts]


def test_a_reranker_orders_the_passages_shown(sample_index: Path, encoder: Encoder) -> None:
    settings = Settings(index_dir=sample_index, per_article_cap=50)
    plain = Searcher(load_index(sample_index), encoder, settings).search(QUESTION, top_k=5)
    reranked = Searcher(load_index(sample_index), encoder, settings, reranker=ShortestFirst()).search(QUESTION, top_k=5)
    # It read each passage with its title and speaker.
    lengths = [len(passage_text(p.article.title, p.chunk.speaker, p.chunk.text)) for p in reranked.passages]
    assert lengths == sorted(lengths) and reranked.rerank_error is None
    assert [p.chunk.id for p in reranked.passages] != [p.chunk.id for p in plain.passages]


def test_a_follow_up_is_searched_within_its_conversation_s_articles(sample_index: Path, encoder: Encoder) -> None:
    turns = turn_search(sample_index, encoder)
    first = turns.fresh(QUESTION, None, "hybrid", top_k=5)
    article = turns.rows.article_ids[first.chosen[0][0]]
    context = ConversationContext((article,), (), QUESTION)
    turn = search_turn(turns, "why does he think so?", context, None, "hybrid", top_k=5)
    assert turn.in_context == f"{QUESTION} why does he think so?" and turn.scoped
    assert {turns.rows.article_ids[row] for row, _ in turn.chosen} == {article}
    # A question that does not refer back is searched as a fresh one, context or not.
    fresh = search_turn(turns, "what do readers say about GP surgeries?", context, None, "hybrid", top_k=5)
    assert fresh.in_context is None
