"""Every ranking and confidence knob of a search, in one object built from `Settings`.

The fixed values were each chosen on the tune pool, never on a reported set
(docs/history/quality-2026-11-to-12.md names the measurement behind each)."""

from __future__ import annotations

from dataclasses import dataclass, field

from index.confidence import ConfidencePolicy
from index.settings import Settings


@dataclass(frozen=True)
class SearchPolicy:
    """candidates: taken from each retriever; dense_weight: of the cosine in fusion (BM25 gets
    the rest); per_article_cap: passages of one article in one answer (single questions);
    rerank_top_n: fused passages a reranker rescores, when one is set (the rest keep their
    order after them).

    Bonuses are added to fused scores (which lie in [0, 1]):
    speaker_bonus: within a follow-up's articles, the person it refers to; it lifts their
        passages over other speakers' that match the words slightly better, without hiding a
        much better passage by someone else;
    comment_bonus: reader comments, when the question asks about them ("which reader...");
    article_bonus: within a follow-up's articles, the article of the best passage shown
        before (0.3 scored best on the tune pool's follow-ups; 0.2 and 0.4 one turn less).

    A follow-up is searched within the articles of the first `context_passages` passages shown
    for the question that set its context (the reader saw them all), and its BM25 query adds
    that question's terms at `context_terms_weight`."""

    candidates: int = 200
    dense_weight: float = 0.6
    per_article_cap: int = 4
    rerank_top_n: int = 20
    speaker_bonus: float = 0.2
    comment_bonus: float = 0.2
    article_bonus: float = 0.3
    context_passages: int = 3
    context_terms_weight: float = 0.25
    confidence: ConfidencePolicy = field(default_factory=ConfidencePolicy)

    @classmethod
    def from_settings(cls, settings: Settings) -> SearchPolicy:
        return cls(
            candidates=settings.candidates,
            dense_weight=settings.dense_weight,
            per_article_cap=settings.per_article_cap,
            rerank_top_n=settings.rerank_top_n,
            confidence=ConfidencePolicy(
                target_precision=settings.target_precision,
                scoped_nothing_below=settings.abstain_below,
            ),
        )
