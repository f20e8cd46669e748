"""What the routes share: the `Service` the lifespan builds, and the dependencies that reach it
(the searcher, the rate limits, the search slot, the admin token)."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from index.encoder import TextEncoder
from index.records import SearchResult
from index.search import Searcher
from qa_service.admission import HEAVY_CHARS, Busy, SearchSlots, searched_chars
from qa_service.answering import admit_question
from qa_service.compose import Composer
from qa_service.holder import IndexHolder
from qa_service.jobs import Job, JobRunner
from qa_service.metrics import Metrics
from qa_service.question_log import QuestionLog
from qa_service.ratelimit import RateLimited, RateLimiter, admit
from qa_service.rewrite import FollowupRewriter
from qa_service.schemas import AskRequest, ErrorOut, JobAccepted
from qa_service.search_cache import SearchCache
from qa_service.settings import ServiceSettings


@dataclass(kw_only=True)
class Service:
    """What the routes share, built by the lifespan (qa_service/wiring.py) and reached through
    dependencies."""

    settings: ServiceSettings
    encoder: TextEncoder
    holder: IndexHolder
    jobs: JobRunner
    metrics: Metrics
    ask_limiter: RateLimiter | None  # /ask and the MCP tool (QA_ASK_RATE_PER_MINUTE); None when off
    feedback_limiter: RateLimiter | None  # /feedback: the same rate, buckets of its own
    composer: Composer | None  # None when no language model is configured (QA_LLM_URL)
    rewriter: FollowupRewriter | None  # None unless QA_LLM_REWRITE_FOLLOWUPS is on too
    search_cache: SearchCache  # recent searches of the served version (QA_SEARCH_CACHE_SIZE)
    question_log: QuestionLog | None  # None when QA_QUESTION_LOG_DAYS is 0
    searches: SearchSlots  # searches at once (QA_MAX_CONCURRENT_SEARCHES) and waiting
    articles_lock: threading.Lock = field(default_factory=threading.Lock)  # one writer of the articles folder

    def record_question(self, question: str, result: SearchResult, took_ms: float) -> str | None:
        """Log an answered question when the question log is on: its answer id, else None.
        The passages shown are logged as offsets into their articles, in rank order, so that
        an editor judging the question sees them even after the index is rebuilt."""
        if self.question_log is None:
            return None
        articles = list(dict.fromkeys(p.chunk.article_id for p in result.passages))
        shown = [(p.chunk.article_id, p.chunk.start, p.chunk.end) for p in result.passages]
        return self.question_log.record(question, result.confidence, articles, took_ms, shown)


# Dependencies are `async def`: they do no I/O, and FastAPI runs a plain `def` dependency in
# its thread pool, one hop per dependency per request (about a millisecond of /ask's time).
async def get_service(request: Request) -> Service:
    return request.app.state.service


async def get_searcher(service: Annotated[Service, Depends(get_service)]) -> Searcher:
    searcher = service.holder.searcher
    if searcher is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, service.holder.last_error or "no index loaded")
    return searcher


async def ask_rate_limit(request: Request, service: Annotated[Service, Depends(get_service)]) -> None:
    _within(request, partial(admit_question, service.ask_limiter))


async def feedback_rate_limit(request: Request, service: Annotated[Service, Depends(get_service)]) -> None:
    _within(request, partial(admit, service.feedback_limiter, too_much="too much feedback"))


async def search_slot(request: Request, service: Annotated[Service, Depends(get_service)]) -> AsyncIterator[None]:
    """Holds one of the process's search slots while the route runs: 503 when none is free
    within QA_SEARCH_QUEUE_WAIT_S, or the queue (QA_SEARCH_QUEUE) is full. A heavy request
    (`HEAVY_CHARS` to search) waits for one of the heavy ones (admission.py); a body FastAPI
    will refuse takes none. FastAPI has read the body before its dependencies run, so reading
    it here reads what it kept."""
    body = await request.body()
    asked = _valid_ask(body) if body else None
    if body and asked is None:
        yield  # FastAPI answers it with a 422 before the route runs: nothing is searched
        return
    heavy = searched_chars(request.query_params.get("q", ""), asked) > HEAVY_CHARS
    try:
        async with service.searches.slot(heavy):
            yield
    except Busy:
        service.metrics.searches_refused.inc()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, BUSY, headers={"Retry-After": str(Busy.retry_after_s)}
        ) from None


def _valid_ask(body: bytes) -> AskRequest | None:
    """`body` as the AskRequest FastAPI will accept (it validates the parsed JSON the same
    way), or None for one it refuses, which then takes no search slot and waits for none."""
    try:
        return AskRequest.model_validate(json.loads(body))
    except (ValueError, ValidationError):
        return None


def _within(request: Request, admit_client: Callable[[str], None]) -> None:
    """A 429 with Retry-After when the request's client is over the rate `admit_client` checks."""
    try:
        admit_client(request.client.host if request.client else "unknown")
    except RateLimited as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": str(exc.retry_after)}
        ) from None


_bearer = HTTPBearer(auto_error=False, description="QA_ADMIN_TOKEN")


async def require_admin(
    service: Annotated[Service, Depends(get_service)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    token = service.settings.admin_token
    if token is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "admin routes are turned off: start the service with QA_ADMIN_TOKEN set to enable them",
        )
    given = credentials.credentials if credentials else ""
    if not secrets.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong bearer token" if given else "this route needs 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


ServiceDep = Annotated[Service, Depends(get_service)]
SearcherDep = Annotated[Searcher, Depends(get_searcher)]
ERRORS = {code: {"model": ErrorOut} for code in (400, 404, 408, 413, 422, 503)}
BUSY = "too many questions at once; try again in a second"
ASK_ERRORS = {
    **{code: {"model": ErrorOut} for code in (400, 408, 413, 422, 429)},
    503: {"model": ErrorOut, "description": f"no index is loaded yet, or busy: {BUSY} (with Retry-After)",
          "headers": {"Retry-After": {"description": "seconds to wait, when busy", "schema": {"type": "integer"}}}},
}
ADMIN_ERRORS = {code: {"model": ErrorOut} for code in (400, 401, 403, 404, 408, 409, 413, 415, 422)}


def job_accepted(job: Job, article_id: str | None = None) -> JobAccepted:
    return JobAccepted(job_id=job.id, status_url=f"/admin/jobs/{job.id}", article_id=article_id)
