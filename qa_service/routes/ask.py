"""Questions: POST /ask and GET /ask (cited passages, an extractive answer, and a composed one
when a language model is configured), POST /ask/stream (the same as Server-Sent Events, the
composed answer written as the model writes it). The search, its counting and its logging are
qa_service/answering.py's, shared with the MCP tool; composing is here."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from fastapi.sse import EventSourceResponse, format_sse_event

from index.records import Filters, SearchResult
from qa_service.answering import Answered, answer_question
from qa_service.compose import ComposedAnswer
from qa_service.llm import GenerationError
from qa_service.schemas import MAX_FILTER_VALUES, AskFilters, AskRequest, AskResponse, GeneratedOut, Section
from qa_service.service import ASK_ERRORS, SearcherDep, Service, ServiceDep, ask_rate_limit, search_slot

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
        answered = answer_question(service, searcher, body.question, history=body.history,
                                   top_k=body.top_k, filters=_filters(body.filters))
        return _respond(service, answered, body.question, started, body.generate)

    @router.get("/ask", response_model=AskResponse, responses=ASK_ERRORS)
    def ask_get(
        service: ServiceDep,
        searcher: SearcherDep,
        q: Annotated[str, Query(description="the question")],
        filters: Annotated[AskFilters | None, Depends(query_filters)],
        top_k: Annotated[int | None, Query(ge=1, le=20)] = None,
        generate: Annotated[bool | None, Query(description="compose an answer (see POST /ask)")] = None,
    ) -> AskResponse:
        """The same as POST /ask, for curl: `curl 'http://127.0.0.1:8000/ask?q=who+argues+...'`;
        a filter's values as repeated parameters (`&section=body&speaker=A&speaker=B`)."""
        started = time.perf_counter()
        answered = answer_question(service, searcher, q, top_k=top_k, filters=_filters(filters))
        return _respond(service, answered, q, started, generate)

    # Returns its response itself: with `response_class=EventSourceResponse` FastAPI expects a
    # generator, which would open the stream before the question is checked. StreamingResponse
    # keeps a JSON body out of the documented 200.
    @router.post("/ask/stream", response_class=StreamingResponse, response_model=None,
                 responses=STREAM_DOC)
    def ask_stream(body: AskRequest, service: ServiceDep, searcher: SearcherDep) -> EventSourceResponse:
        """POST /ask as a stream, for the widget: the passages at once, then the composed answer."""
        started = time.perf_counter()
        # Searched before the stream opens, so a bad question is a plain 4xx, not an event.
        answered = answer_question(service, searcher, body.question, history=body.history,
                                   top_k=body.top_k, filters=_filters(body.filters))
        response = _response(answered, body.question, started)
        return EventSourceResponse(_events(service, answered.result, response, body.generate))

    return router


async def query_filters(
    # Bounded as POST's filters are, so that building them below cannot fail.
    article: Annotated[list[str], Query(max_length=MAX_FILTER_VALUES,
                                        description="only these article ids")] = [],  # noqa: B006
    speaker: Annotated[list[str], Query(max_length=MAX_FILTER_VALUES,
                                        description="only these speakers")] = [],  # noqa: B006
    section: Annotated[list[Section], Query(description="only the article's text (body), or "
                                            "only its readers' comments (comment)")] = [],  # noqa: B006
    date_from: Annotated[datetime.date | None, Query(description="YYYY-MM-DD; articles dated on or after")] = None,
    date_to: Annotated[datetime.date | None, Query(description="YYYY-MM-DD; articles dated on or before")] = None,
) -> AskFilters | None:
    """GET /ask's filters, POST's `filters` as query parameters; None when there are none."""
    if not (article or speaker or section or date_from or date_to):
        return None
    return AskFilters(article_ids=article, speakers=speaker, sections=section, date_from=date_from, date_to=date_to)


def _response(answered: Answered, asked: str, started: float) -> AskResponse:
    """The response to `asked`, whose search may have been of its rewrite."""
    result = answered.result
    response = AskResponse.of(result, took_ms=_ms_since(started), answer_id=answered.answer_id)
    if result.question != asked.strip():
        response.question, response.searched_as = asked.strip(), result.question
    return response


def _respond(service: Service, answered: Answered, asked: str, started: float,
             generate: bool | None) -> AskResponse:
    generated, error = None, _not_composed(service, generate)
    if _composing(service, generate, answered.result):
        generated, error = _compose(service, answered.result)
    response = _response(answered, asked, started)
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
