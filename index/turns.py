"""The retrieval half of a search: one question's candidates fused, reranked when a reranker is
set (the first `rerank_top_n`, within the search's `RerankRun`), and cut to the passages shown
(`Turn`). Follow-ups use the same stages within their conversation's articles
(index/followup.py); `Searcher` (index/search.py) turns a `Turn` into passages, a short answer
and a confidence."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from index.candidates import Candidates
from index.confidence import shows_nothing
from index.fusion import Fused
from index.lexical import analyse
from index.policy import SearchPolicy
from index.records import COMMENT
from index.rerank import Reranker, RerankRun, passage_text
from index.row_groups import RowBonus
from index.row_index import RowIndex
from index.settings import SearchMode
from index.version import IndexVersion

# Words with which a reader asks about the comments under an article rather than the article.
_COMMENT_CUE = re.compile(
    r"\b(comment\w*|readers?|repl(y|ies|ied)|respon(d|ds|ded|se))\b", re.IGNORECASE
)


@dataclass(frozen=True)
class Turn:
    """One question searched: the (row, fused score) pairs to show, best first, each one's cosine
    with the question, and what the confidence stage reads of them. `closest` is their best
    cosine (for a follow-up, also against it read in context); `scoped` says filters or a
    conversation narrowed the search; `in_context` is a follow-up read after the question that
    set its context (None for a question searched on its own); `rerank_error` says why the
    passages are in fused order though a reranker is set (it failed in this search)."""

    chosen: list[tuple[int, float]]
    fused: Fused | None
    cosines: np.ndarray
    closest: float
    first_cosine: float
    scoped: bool
    in_context: str | None = None
    rerank_error: str | None = None


class TurnSearch:
    """Searches one question at a time over one index version with one policy."""

    def __init__(
        self,
        index: IndexVersion,
        rows: RowIndex,
        query_vector: Callable[[str], np.ndarray],
        policy: SearchPolicy,
        parallel_lexical: bool,
        reranker: Reranker | None = None,
    ) -> None:
        self.index = index
        self.rows = rows
        self.query_vector = query_vector
        self.policy = policy
        self.reranker = reranker
        self._candidates = Candidates(index, query_vector, parallel_lexical)
        self._comment_bonus = RowBonus.of(rows.of_section(COMMENT), policy.comment_bonus)

    def fresh(
        self, question: str, allowed: np.ndarray | None, mode: SearchMode, top_k: int,
        run: RerankRun | None = None,
    ) -> Turn:
        """A question searched on its own, at most `per_article_cap` passages from one article.
        `run` is the search's use of the reranker (by default one of its own)."""
        run = run if run is not None else RerankRun(self.reranker)
        fused = self.reranked(question, self.rank(question, allowed, mode, self.question_bonus(question)), run)
        query_vector = self.query_vector(question)  # computed by rank, kept by the cache
        chosen = self._cap_per_article(fused.pairs(), top_k)
        if not chosen:
            return Turn([], fused, np.zeros(0), 0.0, 0.0, scoped=allowed is not None, rerank_error=run.error)
        cosines = self.index.vectors[[row for row, _ in chosen]] @ query_vector
        return Turn(
            chosen, fused, cosines, closest=float(np.max(cosines)), first_cosine=float(cosines[0]),
            scoped=allowed is not None, rerank_error=run.error,
        )

    def rank(
        self,
        question: str,
        allowed: np.ndarray | None,
        mode: SearchMode,
        bonus: RowBonus | None = None,
        candidates: int | None = None,
        also_lexical: tuple[str, float] | None = None,
    ) -> Fused:
        """The candidates stage with the policy's pool size and fusion weight."""
        n = candidates or self.policy.candidates
        return self._candidates.fused(question, allowed, mode, n, self.policy.dense_weight, bonus, also_lexical)

    def reranked(self, question: str, fused: Fused, run: RerankRun | None = None) -> Fused:
        """`fused` with its first `rerank_top_n` rows reordered by the reranker, when one is set
        and has not failed in this search (`run`, by default one of its own); each passage is
        read with its article's title and its speaker (`passage_text`)."""
        run = run if run is not None else RerankRun(self.reranker)
        if run.reranker is None:
            return fused
        ranked = fused.pairs()
        pairs = run.apply(question, ranked, self.rerank_text, self.policy.rerank_top_n)
        if pairs is ranked:  # no reranker, nothing to reorder, or it failed: as fused
            return fused
        rows = np.array([row for row, _ in pairs], dtype=np.int64)
        scores = np.array([score for _, score in pairs], dtype=np.float32)
        position = {row: i for i, row in enumerate(fused.rows.tolist())}
        order = np.array([position[row] for row in rows.tolist()], dtype=np.int64)
        return Fused(rows, scores, *(None if a is None else a[order] for a in (fused.dense, fused.lexical)))

    def rerank_text(self, row: int) -> str:
        """What the reranker reads of the passage at `row`: title, speaker and text."""
        chunk = self.index.chunks[row]
        return passage_text(self.index.articles[chunk.article_id].title, chunk.speaker, chunk.text)

    def shows_nothing(self, turn: Turn) -> bool:
        return not turn.chosen or shows_nothing(turn.closest, turn.scoped, self.policy.confidence)

    def term_weights(self, question: str) -> dict[str, float]:
        """The question's analysed terms, each with its BM25 idf."""
        terms = sorted(set(analyse([question])[0]))
        return dict(zip(terms, self.index.lexical.idf(terms).tolist()))

    def question_bonus(self, question: str) -> RowBonus | None:
        """Per-row score bonus that the question's own words call for: reader comments for a
        question about them; None when there is none."""
        return self._comment_bonus if _COMMENT_CUE.search(question) else None

    def _cap_per_article(self, ranked: list[tuple[int, float]], top_k: int) -> list[tuple[int, float]]:
        taken: dict[str, int] = defaultdict(int)
        chosen = []
        for row, score in ranked:
            article = self.rows.article_ids[row]
            if taken[article] < self.policy.per_article_cap:
                taken[article] += 1
                chosen.append((row, score))
                if len(chosen) == top_k:
                    break
        return chosen
