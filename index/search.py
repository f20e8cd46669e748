"""Search as a pipeline of stages: candidates (dense and BM25 over the index's segments) ->
fusion (index/fusion.py) -> rerank (index/rerank.py, when one is configured) -> the passages
shown (filters, a cap per article, each passage's best sentence) -> answer (index/answer.py:
the sentence that answers, and who said it) -> confidence (index/confidence.py: a calibrated
probability and the level shown). `SearchPolicy` (index/policy.py) holds the knobs.

Follow-up questions ("Does he trust councils?") are resolved against the conversation's
earlier questions and searched within the articles the conversation is about; see
`Searcher.search` and `index/conversation.py`."""

from __future__ import annotations

import functools
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.answer import short_answer, term_share
from index.answer_type import answer_filter
from index.candidates import Candidates
from index.confidence import (
    CalibrationChoice,
    Signals,
    calibration_stamp,
    choose_calibration,
    decide,
    shows_nothing,
)
from index.conversation import (
    HISTORY_TURNS_USED,
    ConversationContext,
    Reference,
    checked_history,
    refers_back,
)
from index.encoder import Encoder
from index.errors import IndexMismatchError, InvalidQueryError
from index.fusion import Fused
from index.highlight import best_sentence
from index.lexical import analyse
from index.policy import SearchPolicy
from index.records import COMMENT, Filters, Passage, SearchResult
from index.rerank import Reranker, rerank
from index.row_groups import RowBonus, intersect
from index.row_index import RowIndex
from index.segment import lexical_text
from index.settings import SearchMode, Settings
from index.store import IndexVersion

QUERY_VECTORS = 1024  # question vectors a searcher keeps (1.5 KB each)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline
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
    set its context (None for a question searched on its own)."""

    chosen: list[tuple[int, float]]
    fused: Fused | None
    cosines: np.ndarray
    closest: float
    first_cosine: float
    scoped: bool
    in_context: str | None = None


class Searcher:
    """Searches one loaded index version. Cheap to create; across queries it keeps only the
    vectors of recent questions.

    `calibration` turns the confidence stage's signals into a probability; by default it is
    chosen for the index's folder and model (`choose_calibration`). `reranker`, when given,
    reorders the first fused candidates (index/rerank.py)."""

    def __init__(
        self,
        index: IndexVersion,
        encoder: Encoder,
        settings: Settings,
        calibration: CalibrationChoice | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        if index.manifest.model != encoder.model_name:
            raise IndexMismatchError(
                f"index built with {index.manifest.model!r}, encoder is {encoder.model_name!r}"
            )
        self.index = index
        self.encoder = encoder
        self.settings = settings
        self.policy = SearchPolicy.from_settings(settings)
        index_dir = index.path.parent.parent  # it holds CURRENT, versions/<v> and calibration.json
        self.calibration_stamp = calibration_stamp(index_dir)
        self.calibration = calibration or choose_calibration(index_dir, index.manifest.model)
        # What a cached result depends on: the version and the calibration that set its confidence.
        self.generation = (index.version, self.calibration_stamp)
        self.reranker = reranker
        # A follow-up searches its conversation's earlier questions again, and readers repeat
        # popular questions: their vectors are kept (the model is the version's, so per searcher).
        self._query_vector = functools.lru_cache(maxsize=QUERY_VECTORS)(encoder.encode_query)
        self._candidates = Candidates(index, self._query_vector, settings.parallel_lexical)
        index.dense.set_search_params(settings.ivf_nprobe, settings.hnsw_ef_search)
        self._rows = RowIndex(index)
        self._comment_bonus = RowBonus.of(self._rows.of_section(COMMENT), self.policy.comment_bonus)

    @property
    def version(self) -> str:
        return self.index.version

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
        follow-up is searched within the articles of the latest answer (`_search_followup`).
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

        context = None
        if earlier and refers_back(question) is not None:
            context = self._resolve(earlier[-HISTORY_TURNS_USED:], allowed, mode)
        turn = self._search_turn(question, context, allowed, mode, top_k)

        def result(passages, confidence, answer=None, probability=None) -> SearchResult:
            took = round((time.perf_counter() - started) * 1000, 2)
            return SearchResult(question, passages, confidence, answer, self.version, took, probability)

        if self._shows_nothing(turn):
            return result([], "none"), None
        weights = self._term_weights(question)
        can_answer = answer_filter(question)
        passages = self._passages(turn, weights, can_answer)
        answer = short_answer(question, passages[0], weights, can_answer, self._rows.people)
        signals = self._signals(question, turn, weights, answer)
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

    def _signals(self, question: str, turn: Turn, weights: dict[str, float], answer) -> Signals:
        """What the confidence stage reads of a turn (`Signals`); no model call."""
        first_row, first_score = turn.chosen[0]
        second_score = turn.chosen[1][1] if len(turn.chosen) > 1 else 0.0
        # Where each retriever alone put the first passage (the first fused candidate).
        ranks = [turn.fused.retriever_rank(0, dense) if turn.fused else None for dense in (True, False)]
        dense_rank, lexical_rank = (1.0 / r if r else 0.0 for r in ranks)
        first_article = self._rows.article_ids[first_row]
        same_article = sum(self._rows.article_ids[row] == first_article for row, _ in turn.chosen[:3])
        # A follow-up's own words say little ("Why?"): its coverage is read in context.
        coverage_weights = self._term_weights(turn.in_context) if turn.in_context else weights
        chunk = self.index.chunks[first_row]
        passage_terms = analyse([lexical_text(chunk, self.index.articles[chunk.article_id].title)])[0]
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

    def _shows_nothing(self, turn: Turn) -> bool:
        return not turn.chosen or shows_nothing(turn.closest, turn.scoped, self.policy.confidence)

    def rank(
        self,
        question: str,
        depth: int = 100,
        filters: Filters | None = None,
        mode: SearchMode | None = None,
    ) -> list[tuple[int, float]]:
        """Up to `depth` (chunk row, fused score) pairs, best first, with no per-article cap and
        no abstention: the ranking `search` cuts its answer from, for scoring retrieval on
        benchmarks (documents = best passage per article). Each retriever contributes at
        least `depth` candidates, so a deep ranking is not cut short by the candidate pool."""
        question = _clean_question(question)
        if depth < 1:
            raise InvalidQueryError(f"depth must be at least 1, got {depth}")
        mode = mode or self.settings.search_mode
        allowed = self._rows.allowed(filters or Filters())
        candidates = max(depth, self.policy.candidates)
        bonus = self._question_bonus(question)
        fused = self._rank(question, allowed, mode, bonus, candidates=candidates)
        return fused.pairs()[:depth]

    def _resolve(
        self, earlier: list[str], allowed: np.ndarray | None, mode: SearchMode
    ) -> ConversationContext | None:
        """The context the latest of `earlier` leaves: each question is searched as `search`
        would (a follow-up resolved against the ones before it) and its best passage gives
        the article and speaker. A question on which `search` finds nothing leaves the
        context as it was; a follow-up about a person whose best passage names nobody keeps
        that person. The people a later "he" may mean are that speaker and those named in
        the sentences that answer, in the first passages shown ("Which GP leader chairs the
        NHS Alliance?" is answered by a passage that names him but quotes no one)."""
        context: ConversationContext | None = None
        for question in earlier:
            turn = self._search_turn(question, context, allowed, mode, self.settings.top_k)
            if self._shows_nothing(turn):
                continue  # nothing was shown, so there is nothing to refer back to
            shown = [self.index.chunks[row] for row, _ in turn.chosen[: self.policy.context_passages]]
            reference = refers_back(question) if context is not None else None
            speaker = shown[0].speaker
            if speaker is None and context is not None and reference == "person":
                speaker = context.people[0] if context.people else None
            weights = self._term_weights(question)
            named = []
            for chunk in shown:
                sentence = best_sentence(chunk.text, weights)
                named += self._rows.people.mentioned(chunk.text[sentence.start : sentence.end])
            people = tuple(dict.fromkeys(([speaker] if speaker else []) + named))
            articles = tuple(dict.fromkeys(chunk.article_id for chunk in shown))
            if context is not None and reference is not None:
                # A follow-up to a follow-up ("How quickly did they catch on?") is read after
                # the question that set the subject, not after the previous vague turn alone.
                question = f"{context.question} {question}"
            context = ConversationContext(articles, people, question)
        return context

    def _search_turn(
        self,
        question: str,
        context: ConversationContext | None,
        allowed: np.ndarray | None,
        mode: SearchMode,
        top_k: int,
    ) -> Turn:
        """One question's passages; a follow-up (a back-reference with a context) is searched
        within the context's articles, and as a fresh question only when they have nothing
        for it."""
        reference = refers_back(question) if context is not None else None
        if context is not None and reference is not None:
            turn = self._search_followup(question, context, reference, allowed, mode, top_k)
            if not self._shows_nothing(turn):
                return turn
        fused = self._reranked(question, self._rank(question, allowed, mode, self._question_bonus(question)))
        query_vector = self._query_vector(question)  # computed by _rank, kept by the cache
        chosen = self._cap_per_article(fused.pairs(), top_k)
        if not chosen:
            return Turn([], fused, np.zeros(0), 0.0, 0.0, scoped=allowed is not None)
        cosines = self.index.vectors[[row for row, _ in chosen]] @ query_vector
        return Turn(
            chosen, fused, cosines, closest=float(np.max(cosines)), first_cosine=float(cosines[0]),
            scoped=allowed is not None,
        )

    def _search_followup(
        self,
        question: str,
        context: ConversationContext,
        reference: Reference,
        allowed: np.ndarray | None,
        mode: SearchMode,
        top_k: int,
    ) -> Turn:
        """A follow-up searched within the conversation's articles, the best one's passages
        and the person it refers to favoured, and the context question's terms added to its
        BM25 query at the policy's `context_terms_weight`. The per-article cap does not
        apply. A passage counts as close when it is close to the follow-up itself or to the
        follow-up read after the question that set the context ("How does the author reply
        to this commenter?" says little on its own)."""
        scope = intersect(self._rows.of_articles(context.articles), allowed)
        best_article = self._rows.of_articles(context.articles[:1])
        bonus = RowBonus.total(
            RowBonus.of(best_article, self.policy.article_bonus),
            self._person_bonus(context, reference, scope),
            self._question_bonus(question),
        )
        also = (context.question, self.policy.context_terms_weight)
        fused = self._reranked(question, self._rank(question, scope, mode, bonus, also_lexical=also))
        query_vector = self._query_vector(question)
        chosen = fused.pairs()[:top_k]
        in_context = f"{context.question} {question}"
        if not chosen:
            return Turn([], fused, np.zeros(0), 0.0, 0.0, scoped=True, in_context=in_context)
        vectors = self.index.vectors[[row for row, _ in chosen]]
        cosines = vectors @ query_vector
        close = np.maximum(cosines, vectors @ self._query_vector(in_context))
        return Turn(
            chosen, fused, cosines, closest=float(np.max(close)), first_cosine=float(close[0]),
            scoped=True, in_context=in_context,
        )

    def _rank(
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

    def _reranked(self, question: str, fused: Fused) -> Fused:
        """`fused` reordered by the reranker over its first `candidates` rows, when one is set."""
        if self.reranker is None:
            return fused
        pairs = rerank(self.reranker, question, fused.pairs(), lambda row: self.index.chunks[row].text,
                       self.policy.candidates)
        rows = np.array([row for row, _ in pairs], dtype=np.int64)
        scores = np.array([score for _, score in pairs], dtype=np.float32)
        position = {row: i for i, row in enumerate(fused.rows.tolist())}
        order = np.array([position[row] for row in rows.tolist()], dtype=np.int64)
        return Fused(rows, scores, *(None if a is None else a[order] for a in (fused.dense, fused.lexical)))

    def _term_weights(self, question: str) -> dict[str, float]:
        """The question's analysed terms, each with its BM25 idf."""
        terms = sorted(set(analyse([question])[0]))
        return dict(zip(terms, self.index.lexical.idf(terms).tolist()))

    def _person_bonus(
        self, context: ConversationContext, reference: Reference, scope: np.ndarray | None
    ) -> RowBonus | None:
        """Per-row score bonus for the people referred to (those the last answer's speaker and
        sentences name, for a pronoun; the article's author for "the author"): their own
        words, and within `scope` the passages that name them ("Ed Mayo ... says ministers
        need to" is reported speech, which has no speaker). None when no one is referred to."""
        author = self.index.articles[context.article_id].author
        people = {"person": context.people, "author": (author,) if author else (), "thing": ()}[reference]
        if not people:
            return None
        spoken = self._rows.of_speakers(people)
        if reference != "person":
            return RowBonus.of(spoken, self.policy.speaker_bonus)
        surnames = self.index.lexical.query(" ".join(person.split()[-1] for person in people))
        naming = self.index.lexical.score(surnames, scope).top(self.index.lexical.size, among=scope)
        return RowBonus.of(np.union1d(spoken, naming), self.policy.speaker_bonus)

    def _question_bonus(self, question: str) -> RowBonus | None:
        """Per-row score bonus that the question's own words call for: reader comments for a
        question about them; None when there is none."""
        return self._comment_bonus if _COMMENT_CUE.search(question) else None

    def _cap_per_article(
        self, ranked: list[tuple[int, float]], top_k: int
    ) -> list[tuple[int, float]]:
        taken: dict[str, int] = defaultdict(int)
        chosen = []
        for row, score in ranked:
            article = self._rows.article_ids[row]
            if taken[article] < self.policy.per_article_cap:
                taken[article] += 1
                chosen.append((row, score))
                if len(chosen) == top_k:
                    break
        return chosen


def _clean_question(question: str) -> str:
    """The question with control characters (NUL, escape codes...) as spaces, stripped;
    InvalidQueryError when nothing is left."""
    question = _CONTROL.sub(" ", question).strip()
    if not question:
        raise InvalidQueryError("question is empty")
    return question
