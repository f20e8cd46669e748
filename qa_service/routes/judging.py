"""Editors judge what readers asked: GET /admin/judging (the logged questions waiting for an
editor, with the passages they were shown), POST /admin/judgments and DELETE
/admin/judgments/{id} (judge, undo), GET /admin/judgments/summary (how often confident
answers were right, week by week) and GET /admin/judgments/export (the judgments as an
evaluation set, as `qa-judgments export` writes it). Judgments are stored in the question
log's database (qa_service/judgments.py)."""

from __future__ import annotations

import time
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status

from index.errors import QAError
from index.records import ArticleRecord, Chunk
from index.search import Searcher
from qa_service.judging_schemas import (
    JudgingOut,
    JudgingPassageOut,
    JudgingQuestionOut,
    JudgmentIn,
    JudgmentOut,
    JudgmentSummaryOut,
)
from qa_service.judgments import ANSWERS, Judgment, JudgmentStore, Logged, Span, eval_rows, ndjson, summarised
from qa_service.question_log import Shown, normalised
from qa_service.schemas import ErrorOut
from qa_service.service import ADMIN_ERRORS, SearcherDep, Service, ServiceDep, require_admin

NDJSON = "application/x-ndjson"
_LOG_OFF = "the question log is off (QA_QUESTION_LOG_DAYS=0)"
_ERRORS = {**ADMIN_ERRORS, 503: {"model": ErrorOut}}


def judging_router() -> APIRouter:
    router = APIRouter(tags=["admin"], dependencies=[Depends(require_admin)], responses=_ERRORS)

    @router.get("/admin/judging", response_model=JudgingOut)
    def judging(
        service: ServiceDep,
        searcher: SearcherDep,
        days: Annotated[int, Query(ge=1, le=3660, description="how far back")] = 30,
        limit: Annotated[int, Query(ge=1, le=200, description="questions listed")] = 20,
        include_judged: Annotated[bool, Query(description="list judged wordings too")] = False,
    ) -> JudgingOut:
        """The questions waiting for an editor, most useful first: unanswered, marked not
        helpful, low confidence, then confident ones (to measure them); the newest first
        within each, one per wording, with the passages they were shown."""
        found = _store(service).queue(days, limit, include_judged)
        articles = _Articles(searcher)
        return JudgingOut(
            questions=[_waiting(logged, found.judgments, articles) for logged in found.questions],
            waiting=found.waiting, judged=found.judged,
        )

    @router.post("/admin/judgments", status_code=status.HTTP_201_CREATED, response_model=JudgmentOut)
    def judge(body: JudgmentIn, service: ServiceDep) -> JudgmentOut:
        """Judge a logged question: this span of an article answers it ('answers'; several may),
        or the archive does not ('not_in_archive'). Either replaces the other on the question."""
        store = _store(service)
        logged = store.asked(body.question_id)
        if logged is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                f"no question {body.question_id!r} in the question log (or pruned since)")
        span = _span(_Articles(_searcher(service)), body) if body.verdict == ANSWERS else None
        judge = (body.judge.strip() or None) if body.judge else None
        return JudgmentOut.of(store.add(logged, body.verdict, span, judge))

    @router.delete("/admin/judgments/{judgment_id}", response_model=JudgmentOut)
    def undo(judgment_id: Annotated[int, Path(ge=1, le=2**62)], service: ServiceDep) -> JudgmentOut:
        """Remove a judgment (undo): the judgment removed."""
        removed = _store(service).remove(judgment_id)
        if removed is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no judgment {judgment_id}")
        return JudgmentOut.of(removed)

    @router.get("/admin/judgments/summary", response_model=JudgmentSummaryOut)
    def summary(
        service: ServiceDep, weeks: Annotated[int, Query(ge=1, le=520, description="weeks back")] = 2
    ) -> JudgmentSummaryOut:
        """How often confident answers were right, measured on the newsroom's own readers:
        per week (this week first), the confident answers judged and how many were right."""
        return JudgmentSummaryOut.of(summarised(_store(service).all(), weeks, time.time()))

    @router.get("/admin/judgments/export", response_class=Response,
                responses={200: {"content": {NDJSON: {}}, "description": "JSON lines: qa-eval's format"}})
    def export(service: ServiceDep) -> Response:
        """The judgments as an evaluation set (`qa-judgments export`): one row per question,
        in the format qa-eval and qa-calibrate read."""
        return Response(ndjson(eval_rows(_store(service).all())), media_type=NDJSON)

    return router


def _store(service: Service) -> JudgmentStore:
    if service.question_log is None:
        raise HTTPException(status.HTTP_409_CONFLICT, _LOG_OFF)
    return JudgmentStore(service.question_log)


def _searcher(service: Service) -> Searcher:
    searcher = service.holder.searcher
    if searcher is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, service.holder.last_error or "no index loaded")
    return searcher


class _Articles:
    """The served index's articles, and their chunks, each found once per request."""

    def __init__(self, searcher: Searcher) -> None:
        self.searcher = searcher
        self._chunks: dict[str, list[Chunk]] = {}

    def get(self, article_id: str) -> ArticleRecord | None:
        return self.searcher.index.articles.get(article_id)

    def holding(self, article_id: str, start: int, end: int) -> Chunk | None:
        """The chunk of the article that holds `start`; where chunks overlap, the one that
        holds most of [start, end)."""
        holding = [c for c in self._chunks_of(article_id) if c.start <= start < c.end]
        return max(holding, key=lambda c: (min(c.end, end) - start, -(start - c.start)), default=None)

    def _chunks_of(self, article_id: str) -> list[Chunk]:
        if article_id not in self._chunks:
            index = self.searcher.index
            number = index.articles.number(article_id)
            rows = [] if number is None else np.flatnonzero(index.chunks.article_index == number)
            self._chunks[article_id] = [index.chunks[int(row)] for row in rows]
        return self._chunks[article_id]


def _span(articles: _Articles, body: JudgmentIn) -> Span:
    """The span judged, as stored: the article's text from start to end without the
    whitespace around it (the offsets moved to match), and who speaks at its start."""
    assert body.article_id is not None and body.start is not None and body.end is not None
    article = articles.get(body.article_id)
    if article is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"no article {body.article_id!r} in index {articles.searcher.version}")
    if body.end > len(article.text):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"end ({body.end}) is past the end of article {article.id!r} "
                            f"({len(article.text)} characters)")
    text = article.text[body.start:body.end]
    start = body.start + len(text) - len(text.lstrip())
    end = body.end - (len(text) - len(text.rstrip()))
    if start >= end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"the span {body.start}-{body.end} of article {article.id!r} holds only whitespace")
    chunk = articles.holding(article.id, start, end)
    return Span(article.id, start, end, article.text[start:end], chunk.speaker if chunk else None)


def _waiting(logged: Logged, judgments: dict[str, list[Judgment]], articles: _Articles) -> JudgingQuestionOut:
    return JudgingQuestionOut(
        question_id=logged.id, question=logged.question, asked_at=logged.asked_at,
        confidence=logged.confidence, helpful=logged.helpful, reason=logged.reason,
        passages=_passages(_shown(logged, articles.searcher), articles),
        judgments=[JudgmentOut.of(j) for j in judgments.get(normalised(logged.question), [])],
    )


def _shown(logged: Logged, searcher: Searcher) -> list[Shown]:
    """The passages the question was shown; for one logged before they were, those it finds now."""
    if logged.shown is not None:
        return logged.shown
    try:
        result = searcher.search(logged.question)
    except QAError:  # a question the search refuses now (e.g. a limit lowered since)
        return []
    return [(p.chunk.article_id, p.chunk.start, p.chunk.end) for p in result.passages]


def _passages(shown: list[Shown], articles: _Articles) -> list[JudgingPassageOut]:
    """`shown` resolved against the index served now: a passage whose article is gone (or no
    longer that long) is left out; the others keep their rank."""
    passages = []
    for rank, (article_id, start, end) in enumerate(shown, start=1):
        article = articles.get(article_id)
        if article is None or not 0 <= start < end <= len(article.text):
            continue
        chunk = articles.holding(article_id, start, end)
        passages.append(JudgingPassageOut(
            rank=rank, article_id=article_id, title=article.title, section=chunk.section if chunk else "body",
            speaker=chunk.speaker if chunk else None, start=start, end=end, text=article.text[start:end],
        ))
    return passages
