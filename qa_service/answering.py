"""One path from a question to its cited passages, for POST /ask, GET /ask, /ask/stream and the
MCP tool alike: the limits on a question, the follow-up rewrite, the search cache, the metrics
(answers by confidence, cache hits and misses, rerank failures) and the question log. The rate
limit (`admit_question`) runs before it, as does the wait for a search slot: both are meant to
refuse a question before it costs anything.

No FastAPI here: the MCP server (qa_service/mcp_server.py) is handed `tool_answer`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from index.conversation import refers_back
from index.errors import InvalidQueryError
from index.records import Filters, SearchResult
from index.search import Searcher
from qa_service.llm import GenerationError
from qa_service.ratelimit import RateLimiter, admit
from qa_service.rewrite import archive_turns
from qa_service.schemas import Turn

if TYPE_CHECKING:
    from qa_service.service import Service

TOO_MANY_QUESTIONS = "too many questions"


@dataclass(frozen=True)
class Answered:
    result: SearchResult  # the search of the question, or of its rewrite (`result.question`)
    answer_id: str | None  # its entry in the question log; None when the log is off


def admit_question(limiter: RateLimiter | None, client: str) -> None:
    """/ask's rate per client address (QA_ASK_RATE_PER_MINUTE), for /ask and the MCP tool:
    raises RateLimited when `client` is over it."""
    admit(limiter, client, TOO_MANY_QUESTIONS)


def check_question_length(question: str, limit: int) -> None:
    """QA_MAX_QUESTION_CHARS, for /ask and the MCP tool alike."""
    if len(question) > limit:
        raise InvalidQueryError(f"question is {len(question)} characters; the limit is {limit}")


def answer_question(
    service: Service,
    searcher: Searcher,
    question: str,
    *,
    history: Sequence[Turn] = (),
    top_k: int | None = None,
    filters: Filters | None = None,
) -> Answered:
    """Search `searcher` for `question` (a follow-up of the user turns in `history`), through
    the cache of the served version's searches; count it, and log it when the log is on.
    Raises InvalidQueryError for a question or history over the service's limits."""
    started = time.perf_counter()
    earlier = _earlier_questions(service, question, history)
    searched = _rewritten(service, searcher, question, earlier) or question
    key = (searched.strip(), top_k, filters, tuple(earlier))
    result, cached = service.search_cache.get(
        searcher.generation, key, lambda: searcher.search(searched, top_k=top_k, filters=filters, history=earlier)
    )
    metrics = service.metrics
    metrics.search_cache.labels("hit" if cached else "miss").inc()
    metrics.answers.labels(result.confidence).inc()
    if result.rerank_error is not None:  # never a cached result: those are reranked
        metrics.rerank_failures.inc()
    took_ms = round((time.perf_counter() - started) * 1000, 2)
    return Answered(result, service.record_question(question, result, took_ms))


def tool_answer(service: Service) -> Callable[[Searcher, str, int], SearchResult]:
    """The MCP tool's way to answer (`archive_server(answer=...)`): this module's path."""

    def answer(searcher: Searcher, question: str, top_k: int) -> SearchResult:
        return answer_question(service, searcher, question, top_k=top_k).result

    return answer


def _earlier_questions(service: Service, question: str, history: Sequence[Turn]) -> list[str]:
    """The user turns of `history`, once the question and the history are within the limits."""
    limits = service.settings
    check_question_length(question, limits.max_question_chars)
    if len(history) > limits.max_history_turns:
        raise InvalidQueryError(f"history has {len(history)} turns; the limit is {limits.max_history_turns}")
    earlier = [turn.content for turn in history if turn.role == "user" and turn.content.strip()]
    for turn in earlier:  # an earlier question is held to the same limit as the question
        check_question_length(turn, limits.max_question_chars)
    return earlier


def _rewritten(service: Service, searcher: Searcher, question: str, earlier: list[str]) -> str | None:
    """The follow-up rewritten to stand alone, or None: not a follow-up, rewriting is off, or
    the rewrite failed (then the search's own resolver handles it)."""
    if service.rewriter is None or not earlier or refers_back(question) is None:
        return None
    try:
        rewritten = service.rewriter.rewrite(question, archive_turns(searcher, earlier))
    except GenerationError:
        service.metrics.llm_rewrites.labels("failed").inc()
        return None
    service.metrics.llm_rewrites.labels("ok").inc()
    return rewritten
