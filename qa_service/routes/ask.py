"""Questions: POST /ask and GET /ask (cited passages, an extractive answer, and a composed one
when a language model is configured), POST /ask/stream (the same as Server-Sent Events, the
composed answer written as the model writes it)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from fastapi.sse import EventSourceResponse, format_sse_event

from index.conversation import refers_back
from index.errors import InvalidQueryError
from index.records import Filters, SearchResult
from index.search import Searcher
from qa_service.compose import ComposedAnswer
from qa_service.llm import GenerationError
from qa_service.rewrite import archive_turns
from qa_service.schemas import MAX_FILTER_VALUES, AskFilters, AskRequest, AskResponse, GeneratedOut, Turn
from qa_service.service import (
    ASK_ERRORS,
    SearcherDep,
    Service,
    ServiceDep,
    ask_rate_limit,
    check_question_length,
    search_slot,
)

NO_MODEL = "composed answers are off: the service has no language model (set QA_LLM_URL)"

STREAM_DOC = {
    200: {
        "description": "Server-Sent Events: `passages` (the /ask response without `generated`), "
        "then `delta` events (`{\"text\": ...}`) as the model writes, then `done` "
        "(`{\"generated\": ... or null}`) or `error` (`{\"generation_error\": ...}`).",
        "content": {"text/event-stream": {"schema": {
            "type": "object",
            "required": ["event", "data"],
            "properties": {
                "event": {"type": "string", "enum": ["passages", "delta", "done", "error"]},
                "data": {"type": "string", "contentMediaType": "application/json"},
            },
        }}},
    },
    **ASK_ERRORS,
}


def ask_router() -> APIRouter:
    # The search slot is held while the route runs (search, and a composed answer for /ask),
    # not while /ask/stream streams the answer after it.
    router = APIRouter(
        tags=["ask"], dependencies=[Depends(ask_rate_limit), Depends(search_slot, scope="function")]
    )

    @router.post("/ask", response_model=AskResponse, responses=ASK_ERRORS)
    def ask(body: AskRequest, service: ServiceDep, searcher: SearcherDep) -> AskResponse:
        """Cited passages that answer the question, best first, a short answer when one stands
        out, and a composed answer checked against its citations when a model is configured."""
        started = time.perf_counter()
        result = _search(service, searcher, body.question, body.history, body.top_k, body.filters)
        return _respond(service, result, body.question, started, body.generate)

    @router.get("/ask", response_model=AskResponse, responses=ASK_ERRORS)
    def ask_get(
        service: ServiceDep,
        searcher: SearcherDep,
        q: Annotated[str, Query(description="the question")],
        top_k: Annotated[int | None, Query(ge=1, le=20)] = None,
        # Bounded here as POST's filters are, so that building them below cannot fail.
        article: Annotated[list[str], Query(max_length=MAX_FILTER_VALUES,
                                            description="only these article ids")] = [],  # noqa: B006
        speaker: Annotated[list[str], Query(max_length=MAX_FILTER_VALUES,
                                            description="only these speakers")] = [],  # noqa: B006
        generate: Annotated[bool | None, Query(description="compose an answer (see POST /ask)")] = None,
    ) -> AskResponse:
        """The same as POST /ask, for curl: `curl 'http://127.0.0.1:8000/ask?q=who+argues+...'`."""
        started = time.perf_counter()
        filters = AskFilters(article_ids=article, speakers=speaker) if article or speaker else None
        result = _search(service, searcher, q, [], top_k, filters)
        return _respond(service, result, q, started, generate)

    # Returns its response itself: with `response_class=EventSourceResponse` FastAPI expects a
    # generator, which would open the stream before the question is checked. StreamingResponse
    # keeps a JSON body out of the documented 200.
    @router.post("/ask/stream", response_class=StreamingResponse, response_model=None,
                 responses=STREAM_DOC)
    def ask_stream(body: AskRequest, service: ServiceDep, searcher: SearcherDep) -> EventSourceResponse:
        """POST /ask as a stream, for the widget: the passages at once, then the composed answer."""
        started = time.perf_counter()
        # Searched before the stream opens, so a bad question is a plain 4xx, not an event.
        result = _search(service, searcher, body.question, body.history, body.top_k, body.filters)
        response = _response(service, result, body.question, started)
        return EventSourceResponse(_events(service, result, response, body.generate))

    return router


def _search(service: Service, searcher: Searcher, question: str, history: list[Turn],
            top_k: int | None, filters: AskFilters | None) -> SearchResult:
    check_question_length(question, service.settings.max_question_chars)
    if len(history) > service.settings.max_history_turns:
        raise InvalidQueryError(
            f"history has {len(history)} turns; the limit is {service.settings.max_history_turns}"
        )
    earlier = [turn.content for turn in history if turn.role == "user" and turn.content.strip()]
    for turn in earlier:  # an earlier question is held to the same limit as the question
        check_question_length(turn, service.settings.max_question_chars)
    searched = _rewritten(service, searcher, question, earlier) or question
    wanted = _filters(filters)
    key = (searched.strip(), top_k, wanted, tuple(earlier))
    result, cached = service.search_cache.get(
        searcher.generation, key, lambda: searcher.search(searched, top_k=top_k, filters=wanted, history=earlier)
    )
    service.metrics.search_cache.labels("hit" if cached else "miss").inc()
    service.metrics.answers.labels(result.confidence).inc()
    if result.rerank_error is not None:  # never a cached result: those are reranked
        service.metrics.rerank_failures.inc()
    return result


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


def _response(service: Service, result: SearchResult, asked: str, started: float) -> AskResponse:
    """The response to `asked`, whose search (`result`) may have been of its rewrite, logged
    in the question log when it is on."""
    response = AskResponse.of(result, took_ms=_ms_since(started))
    if result.question != asked.strip():
        response.question, response.searched_as = asked.strip(), result.question
    response.answer_id = service.record_question(asked, result, response.took_ms)
    return response


def _respond(service: Service, result: SearchResult, asked: str, started: float,
             generate: bool | None) -> AskResponse:
    generated, error = None, _not_composed(service, generate)
    if _composing(service, generate, result):
        generated, error = _compose(service, result)
    response = _response(service, result, asked, started)
    response.generated, response.generation_error = generated, error
    return response


def _composing(service: Service, generate: bool | None, result: SearchResult) -> bool:
    wanted = generate if generate is not None else service.composer is not None
    return wanted and service.composer is not None and service.composer.wants(result)


def _not_composed(service: Service, generate: bool | None) -> str | None:
    """The error for a composed answer asked for of a service without a model."""
    return NO_MODEL if generate and service.composer is None else None


def _compose(service: Service, result: SearchResult) -> tuple[GeneratedOut | None, str | None]:
    composer = service.composer
    assert composer is not None
    started = time.perf_counter()
    try:
        composed = composer.compose(result)
    except GenerationError as exc:
        _count_failure(service, started)
        return None, str(exc)
    return _count_success(service, composed, started), None


def _events(service: Service, result: SearchResult, response: AskResponse,
            generate: bool | None) -> Iterator[bytes]:
    yield _event("passages", response.model_dump(mode="json", exclude={"generated", "generation_error"}))
    if not _composing(service, generate, result):
        error = _not_composed(service, generate)
        yield _event("error", {"generation_error": error}) if error else _event("done", {"generated": None})
        return
    composer = service.composer
    assert composer is not None
    started = time.perf_counter()
    written = []
    try:
        for delta in composer.stream(result):
            written.append(delta)
            yield _event("delta", {"text": delta})
        composed = composer.check(result, "".join(written), started)
    except GenerationError as exc:
        _count_failure(service, started)
        yield _event("error", {"generation_error": str(exc)})
        return
    generated = _count_success(service, composed, started)
    yield _event("done", {"generated": generated.model_dump(mode="json")})


def _count_success(service: Service, composed: ComposedAnswer, started: float) -> GeneratedOut:
    metrics = service.metrics
    metrics.llm_calls.labels("ok").inc()
    metrics.llm_latency.observe(time.perf_counter() - started)
    kept = sum(sentence.supported for sentence in composed.sentences)
    metrics.llm_sentences.labels("kept").inc(kept)
    metrics.llm_sentences.labels("dropped").inc(len(composed.sentences) - kept)
    return GeneratedOut.of(composed)


def _count_failure(service: Service, started: float) -> None:
    service.metrics.llm_calls.labels("failed").inc()
    service.metrics.llm_latency.observe(time.perf_counter() - started)


def _event(name: str, data: object) -> bytes:
    return format_sse_event(event=name, data_str=json.dumps(data, ensure_ascii=False))


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _filters(filters: AskFilters | None) -> Filters | None:
    if filters is None:
        return None
    return Filters(
        article_ids=frozenset(filters.article_ids),
        speakers=frozenset(filters.speakers),
        sections=frozenset(filters.sections),
        date_from=filters.date_from.isoformat() if filters.date_from else None,
        date_to=filters.date_to.isoformat() if filters.date_to else None,
    )
