"""Hybrid search: FAISS and BM25 candidates fused by a weighted score, filtered, capped per
article, each passage given its best sentence, with a confidence level: an answer, passages
that may be related, or nothing found.

Follow-up questions ("Does he trust councils?") are resolved against the conversation's
earlier questions and searched within the articles the conversation is about; see
`Searcher.search` and `index/conversation.py`."""

from __future__ import annotations

import functools
import re
import time
from concurrent.futures import ThreadPoolExecutor
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.answer_type import answer_filter
from index.conversation import (
    HISTORY_TURNS_USED,
    ConversationContext,
    Reference,
    checked_history,
    refers_back,
)
from index.encoder import Encoder
from index.errors import IndexMismatchError, InvalidQueryError
from index.highlight import best_sentence
from index.lexical import RowScores, analyse
from index.people import PersonNames
from index.records import COMMENT, SECTIONS, Answer, Confidence, Filters, Passage, SearchResult
from index.row_groups import RowBonus, RowGroups, intersect
from index.segment import lexical_text
from index.settings import SearchMode, Settings
from index.store import IndexVersion

# Score bonus (fused scores lie in [0, 1]) within a follow-up's article for the passages of
# the person it refers to: it lifts their passages over other speakers' that match the
# follow-up's words slightly better, without hiding a much better passage by someone else.
SPEAKER_BONUS = 0.2
# The same bonus for reader comments when the question asks about them ("Which reader...",
# "How does the author reply...": `_COMMENT_CUE`); chosen on the tune set, docs/quality.md.
COMMENT_BONUS = 0.2
# Confidence of a search (`Searcher._confidence`; chosen on the tune half of the sample
# evaluation and on SciFact and SQuAD, docs/quality.md). The closest cited passage's cosine
# decides: below NOTHING_COSINE nothing is shown; from CONFIDENT_COSINE the answer is given,
# and from WEAK_COSINE too when one cited passage holds MIN_TERM_COVERAGE of the question's
# idf weight; otherwise the passages are shown as possibly related, with no short answer.
NOTHING_COSINE = 0.25
WEAK_COSINE = 0.3
CONFIDENT_COSINE = 0.55
MIN_TERM_COVERAGE = 0.4

# A follow-up is searched within the articles of the first CONTEXT_PASSAGES passages shown
# for the question that set its context, not only the best one's: when the best passage was
# from the wrong article, the reader still saw the right one. Its BM25 query adds that
# question's terms at CONTEXT_TERMS_WEIGHT, so "What does the writer blame that on?" after
# "How much have A&E visits gone up?" still matches on A&E. Both chosen on the tune set's
# follow-ups, docs/quality.md.
CONTEXT_PASSAGES = 3
CONTEXT_TERMS_WEIGHT = 0.25
# Within them, the best passage's article stays the conversation's: its passages get this
# score bonus (0.3 scored best on the tune set's follow-ups; 0.2 and 0.4 one turn less).
ARTICLE_BONUS = 0.3

QUERY_VECTORS = 1024  # question vectors a searcher keeps (1.5 KB each)
LEXICAL_THREADS = 2  # BM25 jobs of concurrent questions run at once (QA_PARALLEL_LEXICAL)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline
# Words with which a reader asks about the comments under an article rather than the article.
_COMMENT_CUE = re.compile(
    r"\b(comment\w*|readers?|repl(y|ies|ied)|respon(d|ds|ded|se))\b", re.IGNORECASE
)


@dataclass(frozen=True)
class Turn:
    """One question searched: the (row, score) pairs to show, best first, how sure, and the
    question's vector."""

    chosen: list[tuple[int, float]]
    confidence: Confidence
    query_vector: np.ndarray


class Searcher:
    """Searches one loaded index version. Cheap to create; across queries it keeps only the
    vectors of recent questions."""

    def __init__(self, index: IndexVersion, encoder: Encoder, settings: Settings) -> None:
        if index.manifest.model != encoder.model_name:
            raise IndexMismatchError(
                f"index built with {index.manifest.model!r}, encoder is {encoder.model_name!r}"
            )
        self.index = index
        self.encoder = encoder
        self.settings = settings
        # A follow-up searches its conversation's earlier questions again, and readers repeat
        # popular questions: their vectors are kept (the model is the version's, so per searcher).
        self._query_vector = functools.lru_cache(maxsize=QUERY_VECTORS)(encoder.encode_query)
        # A question's BM25 runs here while its vector is computed (`_rank`); the threads end
        # when the searcher is dropped for a new version.
        self._lexical_pool = (
            ThreadPoolExecutor(max_workers=LEXICAL_THREADS, thread_name_prefix="bm25")
            if settings.parallel_lexical else None
        )
        index.dense.set_search_params(settings.ivf_nprobe, settings.hnsw_ef_search)
        # Rows grouped by article, speaker and section, once per version, so that filters,
        # a follow-up's articles and bonuses are row sets, not passes over every row. The
        # chunk table's columns are vectorised (no Chunk per row: that took seconds and
        # hundreds of MB at a million chunks), and a speaker is coded once per distinct name.
        table = index.chunks
        self._article_ids = table.article_ids
        self._by_article = RowGroups(table.article_index, len(index.articles.dates))
        self._speaker_codes: dict[str, int] = {}
        names: set[str] = set()

        def speaker_code(name: str | None) -> int:
            if name:
                names.add(name)
            return self._speaker_codes.setdefault((name or "").casefold(), len(self._speaker_codes))

        codes = table.map_speakers(speaker_code).astype(np.int64)
        self._by_speaker = RowGroups(codes, len(self._speaker_codes))
        self._people = PersonNames(names)
        section_codes = np.zeros(len(table), dtype=np.int64)
        for code, section in enumerate(SECTIONS):
            section_codes[table.sections == section] = code
        self._by_section = RowGroups(section_codes, len(SECTIONS))
        self._comment_bonus = RowBonus.of(self._by_section.rows(SECTIONS.index(COMMENT)), COMMENT_BONUS)

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
        """The best `top_k` passages for `question`, or an abstention.

        `history` is the conversation's earlier user questions, oldest first. It only matters
        when `question` refers back (`refers_back`): then the last few earlier questions are
        searched again, in order, each one resolved against those before it, and the
        follow-up is searched within the articles of the latest answer (`_search_followup`).
        Stateless: the same history and index always resolve the same way."""
        started = time.perf_counter()
        question = _clean_question(question)
        top_k = self.settings.top_k if top_k is None else top_k
        if top_k < 1:
            raise InvalidQueryError(f"top_k must be at least 1, got {top_k}")
        earlier = checked_history(history)
        mode = mode or self.settings.search_mode
        allowed = self._allowed(filters or Filters())

        context = None
        if earlier and refers_back(question) is not None:
            context = self._resolve(earlier[-HISTORY_TURNS_USED:], allowed, mode)
        turn = self._search_turn(question, context, allowed, mode, top_k)

        passages: list[Passage] = []
        can_answer = answer_filter(question)
        if turn.confidence != "none":
            rows = [row for row, _ in turn.chosen]
            dense_scores = self.index.vectors[rows] @ turn.query_vector
            weights = self._term_weights(question)
            for rank, ((row, score), dense) in enumerate(zip(turn.chosen, dense_scores), start=1):
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
        confidence = turn.confidence
        answer = _answer(passages) if confidence == "high" else None
        # "How many nurses..." is not answered by a sentence without a number, however close
        # its passage: the short answer is withheld, the passages stay.
        if answer is not None and can_answer is not None and not can_answer(answer.text):
            confidence, answer = "low", None
        return SearchResult(
            question=question,
            passages=passages,
            confidence=confidence,
            answer=answer,
            index_version=self.version,
            took_ms=round((time.perf_counter() - started) * 1000, 2),
        )

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
        allowed = self._allowed(filters or Filters())
        candidates = max(depth, self.settings.candidates)
        bonus = self._question_bonus(question)
        ranked = self._rank(question, allowed, mode, bonus, candidates=candidates)
        return ranked[:depth]

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
            if turn.confidence == "none":
                continue  # nothing was shown, so there is nothing to refer back to
            shown = [self.index.chunks[row] for row, _ in turn.chosen[:CONTEXT_PASSAGES]]
            reference = refers_back(question) if context is not None else None
            speaker = shown[0].speaker
            if speaker is None and context is not None and reference == "person":
                speaker = context.people[0] if context.people else None
            weights = self._term_weights(question)
            named = []
            for chunk in shown:
                sentence = best_sentence(chunk.text, weights)
                named += self._people.mentioned(chunk.text[sentence.start : sentence.end])
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
        """One question's passages and confidence; a follow-up (a back-reference with a
        context) is searched within the context's articles, and as a fresh question only
        when they have nothing for it."""
        reference = refers_back(question) if context is not None else None
        if context is not None and reference is not None:
            turn = self._search_followup(question, context, reference, allowed, mode, top_k)
            if turn.confidence != "none":
                return turn
        ranked = self._rank(question, allowed, mode, self._question_bonus(question))
        query_vector = self._query_vector(question)  # computed by _rank, kept by the cache
        chosen = self._cap_per_article(ranked, top_k)
        rows = [row for row, _ in chosen]
        closest = float(np.max(self.index.vectors[rows] @ query_vector)) if rows else 0.0
        confidence = self._confidence(question, rows, closest, scoped=allowed is not None)
        return Turn(chosen, confidence, query_vector)

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
        BM25 query at `CONTEXT_TERMS_WEIGHT`. The per-article cap does not apply. Confidence
        is that of a scoped search, and a passage counts as close when it is close to the
        follow-up itself or to the follow-up read after the question that set the context
        ("How does the author reply to this commenter?" says little on its own)."""
        numbers = [self.index.articles.number(a) for a in context.articles]
        scope = intersect(self._by_article.union([n for n in numbers if n is not None]), allowed)
        best_article = self._by_article.rows(-1 if numbers[0] is None else numbers[0])
        bonus = RowBonus.total(
            RowBonus.of(best_article, ARTICLE_BONUS),
            self._person_bonus(context, reference, scope),
            self._question_bonus(question),
        )
        also = (context.question, CONTEXT_TERMS_WEIGHT)
        ranked = self._rank(question, scope, mode, bonus, also_lexical=also)
        query_vector = self._query_vector(question)
        chosen = ranked[:top_k]
        rows = [row for row, _ in chosen]
        if not rows:
            return Turn([], "none", query_vector)
        vectors = self.index.vectors[rows]
        closest = float(np.max(vectors @ query_vector))
        if closest < CONFIDENT_COSINE:  # from there the answer is given anyway: spare a model call
            in_context = self._query_vector(f"{context.question} {question}")
            closest = max(closest, float(np.max(vectors @ in_context)))
        return Turn(chosen, self._confidence(question, rows, closest, scoped=True), query_vector)

    def _confidence(self, question: str, rows: list[int], closest: float, scoped: bool) -> Confidence:
        """How sure the search is that `rows` (the passages it would show, `closest` their best
        cosine) answer `question`; `scoped` says the asker (filters) or the conversation (a
        follow-up) narrowed the search.

        Nothing is shown below `NOTHING_COSINE` (`abstain_below` in a scoped search: asking
        "in this article" should show what the article has). The answer is given from
        `CONFIDENT_COSINE`, or from `WEAK_COSINE` when one passage holds `MIN_TERM_COVERAGE`
        of the question's words: a question from another domain often lands at a middling
        cosine on some passage ("Which NFL team won Super Bowl 50?" against medical abstracts)
        while its distinctive words are nowhere in it. Between, the passages may be related:
        a reader's paraphrase shares few words with the article, so it is shown, not refused."""
        floor = self.settings.abstain_below if scoped else NOTHING_COSINE
        if not rows or closest < floor:
            return "none"
        if closest >= CONFIDENT_COSINE:
            return "high"
        if closest >= WEAK_COSINE and self.term_coverage(question, rows) >= MIN_TERM_COVERAGE:
            return "high"
        return "low"

    def term_coverage(self, question: str, rows: Sequence[int]) -> float:
        """The largest share of the question's BM25 weight (idf of its analysed terms; a term
        the index has never seen weighs most) that one passage of `rows` contains. 1.0 for a
        question with no searchable terms, which leaves the decision to the cosine."""
        weights = self._term_weights(question)
        if not weights:
            return 1.0
        total = sum(weights.values())
        best = 0.0
        chunks = [self.index.chunks[row] for row in rows]
        passages = analyse([lexical_text(c, self.index.articles[c.article_id].title) for c in chunks])
        for present in map(set, passages):
            covered = sum(w for t, w in weights.items() if t in present)
            best = max(best, covered / total)
        return best

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
        codes = [self._speaker_codes.get(person.casefold(), -1) for person in people]
        spoken = self._by_speaker.union(codes)
        if reference != "person":
            return RowBonus.of(spoken, SPEAKER_BONUS)
        surnames = self.index.lexical.query(" ".join(person.split()[-1] for person in people))
        naming = self.index.lexical.score(surnames, scope).top(self.index.lexical.size, among=scope)
        return RowBonus.of(np.union1d(spoken, naming), SPEAKER_BONUS)

    def _question_bonus(self, question: str) -> RowBonus | None:
        """Per-row score bonus that the question's own words call for: reader comments for a
        question about them; None when there is none."""
        return self._comment_bonus if _COMMENT_CUE.search(question) else None

    def _allowed(self, filters: Filters) -> np.ndarray | None:
        """The rows `filters` allow, ascending; None when they allow everything."""
        if filters.empty:
            return None
        unknown = set(filters.sections or ()) - set(SECTIONS)
        if unknown:
            raise InvalidQueryError(f"unknown section {sorted(unknown)}; sections are {list(SECTIONS)}")
        by_article = by_speaker = by_section = by_date = None
        if filters.article_ids:
            numbers = [self.index.articles.number(a) for a in filters.article_ids]
            by_article = self._by_article.union([n for n in numbers if n is not None])
        if filters.speakers:
            codes = [self._speaker_codes.get(s.casefold(), -1) for s in filters.speakers]
            by_speaker = self._by_speaker.union(codes)
        if filters.sections:
            by_section = self._by_section.union([SECTIONS.index(s) for s in filters.sections])
        if filters.date_from or filters.date_to:
            by_date = self._by_article.union(self._articles_dated(filters.date_from, filters.date_to))
        return intersect(by_article, by_speaker, by_section, by_date)

    def _articles_dated(self, first: str | None, last: str | None) -> np.ndarray:
        """Numbers of the articles dated from `first` to `last` (inclusive; undated ones never)."""
        order, dates = self._articles_by_date
        low = np.searchsorted(dates, first or "", side="left")
        low = max(int(low), int(np.searchsorted(dates, "", side="right")))  # skip the undated
        high = np.searchsorted(dates, last, side="right") if last else len(dates)
        return order[low:high]

    @functools.cached_property
    def _articles_by_date(self) -> tuple[np.ndarray, np.ndarray]:
        """Article numbers in date order, and their dates to the day (built on the first date
        filter): an article dated "2021-03-04T10:00:00Z" is on 2021-03-04."""
        dates = self.index.articles.dates.astype("U10")
        order = np.argsort(dates, kind="stable")
        return order, dates[order]

    def _rank(
        self,
        question: str,
        allowed: np.ndarray | None,
        mode: SearchMode,
        bonus: RowBonus | None = None,
        candidates: int | None = None,
        also_lexical: tuple[str, float] | None = None,
    ) -> list[tuple[int, float]]:
        """(row, score in [0, 1]) best first.

        Hybrid: the union of both retrievers' candidates, scored by a convex combination of
        min-max normalised cosine and max-normalised BM25 (it beat reciprocal rank fusion on
        our evaluation: RRF lets a passage ranked 25th by one retriever count nearly as much
        as the 1st). `bonus` (the person a follow-up refers to, reader comments for a question
        about them) adds the favoured rows' own best candidates and is added to their scores,
        rescaled to stay in [0, 1]. `also_lexical` (text, weight) adds that text's BM25 scores,
        times the weight, to the question's."""
        n = candidates or self.settings.candidates
        favoured = None if bonus is None else intersect(bonus.rows, allowed)
        # BM25 needs no vector: it runs on another thread while the question is embedded.
        lexical_job = None
        if mode in ("hybrid", "lexical") and self._lexical_pool is not None:
            lexical_job = self._lexical_pool.submit(self._lexical, question, allowed, favoured, n, also_lexical)
        candidates = []
        if mode in ("hybrid", "dense"):
            query_vector = self._query_vector(question)
            candidates.append(self.index.dense.search(query_vector, n, allowed)[0])
            if favoured is not None:
                candidates.append(self.index.dense.search(query_vector, n, favoured)[0])
        lexical = None
        if mode in ("hybrid", "lexical"):
            if lexical_job is not None:
                lexical, lexical_candidates = lexical_job.result()
            else:
                lexical, lexical_candidates = self._lexical(question, allowed, favoured, n, also_lexical)
            candidates += lexical_candidates
        rows = np.unique(np.concatenate(candidates)).astype(np.int64)
        if len(rows) == 0:
            return []
        weight = {"dense": 1.0, "lexical": 0.0}.get(mode, self.settings.dense_weight)
        scores = np.zeros(len(rows), dtype=np.float32)
        if weight > 0:  # hybrid or dense: the vector is the one searched with above
            dense = self.index.vectors[rows] @ query_vector
            span = float(dense.max() - dense.min())
            scores += weight * ((dense - dense.min()) / span if span > 0 else np.ones_like(dense))
        if weight < 1 and lexical is not None:
            bm25 = lexical.at(rows)
            top = float(bm25.max())
            if top > 0:
                scores += (1 - weight) * bm25 / top
        if bonus is not None:
            scores = (scores + bonus.at(rows)) / (1.0 + bonus.largest)
        order = np.argsort(-scores, kind="stable")
        return [(int(rows[i]), float(scores[i])) for i in order]

    def _lexical(
        self,
        question: str,
        allowed: np.ndarray | None,
        favoured: np.ndarray | None,
        n: int,
        also: tuple[str, float] | None,
    ) -> tuple[RowScores, list[np.ndarray]]:
        """The question's BM25 scores and its top `n` rows (and the favoured rows' own)."""
        scores = self.index.lexical.score(self.index.lexical.query(question, also=also), allowed)
        top = [scores.top(n)] + ([scores.top(n, among=favoured)] if favoured is not None else [])
        return scores, top

    def _cap_per_article(
        self, ranked: list[tuple[int, float]], top_k: int
    ) -> list[tuple[int, float]]:
        taken: dict[str, int] = defaultdict(int)
        chosen = []
        for row, score in ranked:
            article = self._article_ids[row]
            if taken[article] < self.settings.per_article_cap:
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


def _answer(passages: list[Passage]) -> Answer:
    """The highlighted sentence of the best passage, with who said it (when the text names them)."""
    top = passages[0]
    sentence = top.chunk.text[top.highlight.start : top.highlight.end]
    return Answer(text=sentence, speaker=top.chunk.speaker, citation=top.rank)
