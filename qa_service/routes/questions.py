"""What readers ask: POST /feedback (a reader's "helpful / not helpful" on an answer) and
GET /admin/insights (the most asked questions, the unanswered ones grouped, counts per day),
both from the question log (qa_service/question_log.py)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status

from ingest.embed import cache_key
from qa_service.jobs import Every
from qa_service.question_log import QuestionLog
from qa_service.schemas import ErrorOut, FeedbackIn, FeedbackOut, InsightsOut
from qa_service.service import ADMIN_ERRORS, Service, ServiceDep, feedback_rate_limit, require_admin

PRUNE_EVERY_S = 3600
_LOG_OFF = "the question log is off (QA_QUESTION_LOG_DAYS=0)"


def questions_router() -> APIRouter:
    router = APIRouter()

    @router.post(
        "/feedback", response_model=FeedbackOut, tags=["ask"],
        dependencies=[Depends(feedback_rate_limit)],
        responses={code: {"model": ErrorOut} for code in (400, 404, 408, 409, 413, 422, 429)},
    )
    def feedback(body: FeedbackIn, service: ServiceDep) -> FeedbackOut:
        """Say whether an answer helped; the last word on an answer counts. Not-helpful
        answers are listed with the unanswered questions in /admin/insights."""
        if not _log(service).feedback(body.answer_id, body.helpful):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no answer {body.answer_id!r} in the question log")
        return FeedbackOut(answer_id=body.answer_id, helpful=body.helpful)

    @router.get(
        "/admin/insights", response_model=InsightsOut, tags=["admin"],
        dependencies=[Depends(require_admin)], responses=ADMIN_ERRORS,
    )
    def insights(
        service: ServiceDep, days: Annotated[int, Query(ge=1, le=3660, description="how far back")] = 30
    ) -> InsightsOut:
        """The most asked questions, the unanswered ones (nothing found, or marked not helpful)
        grouped by similarity (the QA_INSIGHTS_SAMPLE most asked of them), and questions and
        unanswered ones per day."""
        settings = service.settings
        # Kept vectors are filed under the encoder's spec: another model or prefix never reuses them.
        found = _log(service).insights(days, service.encoder.encode_questions,
                                       model=cache_key(service.encoder.spec), sample=settings.insights_sample)
        return InsightsOut.model_validate(asdict(found))

    return router


def _log(service: Service) -> QuestionLog:
    if service.question_log is None:
        raise HTTPException(status.HTTP_409_CONFLICT, _LOG_OFF)
    return service.question_log


def start_log_pruning(service: Service) -> Every | None:
    """Deletes what is past the retention period, at start and every hour."""
    log = service.question_log
    return None if log is None else Every(PRUNE_EVERY_S, log.prune, name="question-log-pruning")
