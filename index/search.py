"""Search as a pipeline of stages: candidates (dense and BM25 over the index's segments) ->
fusion (index/fusion.py) -> rerank (index/rerank.py, when one is configured), cut to the
passages shown (index/turns.py; a follow-up within its conversation's articles,
index/followup.py) -> answer (index/answer.py: the sentence that answers, and who said it) ->
confidence (index/signals.py, index/confidence.py: a calibrated probability and the level
shown). `SearchPolicy` (index/policy.py) holds the knobs."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Sequence

import numpy as np

from index.answer import short_answer
from index.answer_type import answer_filter
from index.confidence import CalibrationChoice, Signals, calibration_stamp, choose_calibration, decide
from index.conversation import HISTORY_TURNS_USED, checked_history, refers_back
from index.encoder import TextEncoder
from index.errors import InvalidQueryError, RerankError
from index.followup import resolve, search_turn
from index.highlight import best_sentence
from index.manifest import check_embedding
from index.policy import SearchPolicy
from index.records import Filters, Passage, SearchResult
from index.rerank import Reranker, RerankRun
from index.row_index import RowIndex
from index.settings import SearchMode, Settings
from index.signals import read_signals
from index.turns import Turn, TurnSearch
from index.version import IndexVersion

QUERY_VECTORS = 1024  # question vectors a searcher keeps (1.5 KB each)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline


class Searcher:
    """Searches one loaded index version. Cheap to create; across queries it keeps only the
    vectors of recent questions.

    `calibration` turns the confidence stage's signals into a probability; by default it is
    chosen for the index's folder and model (`choose_calibration`). `reranker`, when given,
    reorders the first `rerank_top_n` fused candidates (index/rerank.py; `make_reranker` in
    index/rerankers.py builds the configured one); when it fails, a search keeps the fused
    order and says why (`SearchResult.rerank_error`)."""

    def __init__(
        self,
        index: IndexVersion,
        encoder: TextEncoder,
        settings: Settings,
        calibration: CalibrationChoice | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        check_embedding(index.manifest, encoder.spec, source=index.path)
        self.index = index
        self.encoder = encoder
        self.settings = settings
        self.reranker = reranker
        # What a calibration is tied to: the embedding that made the index and the reranker.
        self.embedding = index.manifest.embedding_spec
        self.rerank_spec = reranker.spec if reranker else None
        self.policy = SearchPolicy.from_settings(settings)
        index_dir = index.path.parent.parent  # it holds CURRENT, versions/<v> and calibration.json
        self.calibration_stamp = calibration_stamp(index_dir)
        self.calibration = calibration or choose_calibration(index_dir, self.embedding, self.rerank_spec)
        # What a cached result depends on: the version and the calibration that set its confidence.
        self.generation = (index.version, self.calibration_stamp)
        # A follow-up searches its conversation's earlier questions again, and readers repeat
        # popular questions: their vectors are kept (the model is the version's, so per searcher).
        query_vector = functools.lru_cache(maxsize=QUERY_VECTORS)(self._query_vector)
        index.dense.set_search_params(settings.ivf_nprobe, settings.hnsw_ef_search)
        self._rows = RowIndex(index)
        self._turns = TurnSearch(index, self._rows, query_vector, self.policy, settings.parallel_lexical, reranker)

    @property
    def version(self) -> str:
        return self.index.version

    def _query_vector(self, text: str) -> np.ndarray:
        """A question's vector, checked against the index's length at each question rather
        than once at load: an embeddings endpoint may be down when the index is loaded (the
        server is ready, and recovers when it comes up) and may later serve another model
        under the same name (refused, never compared)."""
        vector = self.encoder.encode_query(text)
        if vector.shape[-1] != self.index.manifest.dim:
            check_embedding(self.index.manifest, self.encoder.spec, vector.shape[-1], source=self.index.path)
        return vector

    def search(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        mode: SearchMode | None = None,
        history: Sequence[str] | None = None,
    ) -> SearchResult:
        """See `search_with_signals`."""
        return self.search_with_signals(question, top_k, filters, mode, history)[0]

    def search_with_signals(
        self,
        question: str,
        top_k: int | None = None,
        filters: Filters | None = None,
        mode: SearchMode | None = None,
        history: Sequence[str] | None = None,
    ) -> tuple[SearchResult, Signals | None]:
        """The best `top_k` passages for `question`, with a short answer when the calibrated
        confidence reaches the policy's target, or an abstention.

        `history` is the conversation's earlier user questions, oldest first. It only matters
        when `question` refers back (`refers_back`): then the last few earlier questions are
        searched again, in order, each one resolved against those before it, and the
        follow-up is searched within the articles of the latest answer (index/followup.py).
        Stateless: the same history and index always resolve the same way. The signals are
        those the confidence stage read (None when nothing was shown): `qa-calibrate` fits on
        them."""
        started = time.perf_counter()
        question = _clean_question(question)
        top_k = self.settings.top_k if top_k is None else top_k
        if top_k < 1:
            raise InvalidQueryError(f"top_k must be at least 1, got {top_k}")
        earlier = checked_history(history)
        mode = mode or self.settings.search_mode
        allowed = self._rows.allowed(filters or Filters())

        run = RerankRun(self.reranker)  # a failure ends reranking for the whole search
        context = None
        if earlier and refers_back(question) is not None:
            context = resolve(self._turns, earlier[-HISTORY_TURNS_USED:], allowed, mode, self.settings.top_k, run)
        turn = search_turn(self._turns, question, context, allowed, mode, top_k, run)

        def result(passages, confidence, answer=None, probability=None) -> SearchResult:
            took = round((time.perf_counter() - started) * 1000, 2)
            return SearchResult(question, passages, confidence, answer, self.version, took, probability,
                                rerank_error=run.error)

        if self._turns.shows_nothing(turn):
            return result([], "none"), None
        weights = self._turns.term_weights(question)
        can_answer = answer_filter(question)
        passages = self._passages(turn, weights, can_answer)
        answer = short_answer(question, passages[0], weights, can_answer, self._rows.people)
        signals = read_signals(self._turns, turn, weights, answer)
        confidence, probability = decide(
            signals, turn.closest, turn.scoped, answer is not None,
            self.calibration.calibration, self.policy.confidence,
        )
        return result(passages, confidence, answer if confidence == "high" else None, probability), signals

    def _passages(self, turn: Turn, weights: dict[str, float], can_answer) -> list[Passage]:
        """The chosen rows as passages, each with its best sentence highlighted."""
        passages = []
        for rank, ((row, score), dense) in enumerate(zip(turn.chosen, turn.cosines), start=1):
            chunk = self.index.chunks[row]
            passages.append(
                Passage(
                    rank=rank,
                    score=round(score, 4),
                    dense_score=round(float(dense), 4),
                    chunk=chunk,
                    article=self.index.articles[chunk.article_id],
                    highlight=best_sentence(chunk.text, weights, can_answer),
                )
            )
        return passages

    def rank(
        self,
        question: str,
        depth: int = 100,
        filters: Filters | None = None,
        mode: SearchMode | None = None,
    ) -> list[tuple[int, float]]:
        """Up to `depth` (chunk row, fused score) pairs, best first, with no per-article cap and
        no abstention: the ranking `search` cuts its answer from (reranked when a reranker is
        set), for scoring retrieval on benchmarks (documents = best passage per article). Each
        retriever contributes at least `depth` candidates, so a deep ranking is not cut short by
        the candidate pool. RerankError when the reranker fails: a benchmark must not score
        the fused order as the reranker's."""
        question = _clean_question(question)
        if depth < 1:
            raise InvalidQueryError(f"depth must be at least 1, got {depth}")
        mode = mode or self.settings.search_mode
        allowed = self._rows.allowed(filters or Filters())
        candidates = max(depth, self.policy.candidates)
        bonus = self._turns.question_bonus(question)
        fused = self._turns.rank(question, allowed, mode, bonus, candidates=candidates)
        run = RerankRun(self.reranker)
        fused = self._turns.reranked(question, fused, run)
        if run.error is not None:
            raise RerankError(run.error)
        return fused.pairs()[:depth]


def _clean_question(question: str) -> str:
    """The question with control characters (NUL, escape codes...) as spaces, stripped;
    InvalidQueryError when nothing is left."""
    question = _CONTROL.sub(" ", question).strip()
    if not question:
        raise InvalidQueryError("question is empty")
    return question
