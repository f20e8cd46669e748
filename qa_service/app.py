"""The FastAPI app: `create_app(settings)` wires it; its lifespan builds the `Service`
(qa_service/wiring.py: the model, the index, the jobs, the question log).

Routes, one module per resource (qa_service/routes/):
  POST /ask, GET /ask?q=, POST /ask/stream   cited passages for a question, and a composed
                                    answer when a language model is configured (ask; the
                                    answering itself: qa_service.answering)
  GET /articles, GET /articles/{id} what the index holds, full text for showing a citation in place
  POST /articles, DELETE /articles/{id}   (bearer token) add, replace or remove one (articles)
  POST /admin/reindex, GET /admin/jobs/{id}   (bearer token) index jobs (admin)
  POST /admin/sync                  sync the articles folder from QA_SYNC_URLS, then ingest (sync)
  POST /feedback, GET /admin/insights   readers' feedback; what readers ask (questions)
  /admin/judging, /admin/judgments…  editors judge what readers asked (judging)
  GET /healthz, GET /readyz, GET /metrics   (ops)
  /mcp                              the archive as a Model Context Protocol server (qa_service.mcp_server)
  /, /widget.js, /read/{id}         the chat widget and its pages (qa_service.pages)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from index.encoder import TextEncoder
from index.endpoint_encoder import EmbeddingEndpointError
from index.errors import (
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    IngestError,
    InvalidQueryError,
    QAError,
)
from ingest.load import ArticleFormatError
from qa_service.mcp_server import HTTPRoute
from qa_service.middleware import BodySizeLimit, RecordMetrics
from qa_service.pages import pages_router
from qa_service.routes.admin import admin_router
from qa_service.routes.articles import articles_router
from qa_service.routes.ask import ask_router
from qa_service.routes.judging import judging_router
from qa_service.routes.ops import ops_router
from qa_service.routes.questions import questions_router
from qa_service.routes.sync import sync_router
from qa_service.settings import ServiceSettings
from qa_service.wiring import close_service, mcp_sessions, open_service, start_timers

log = logging.getLogger("qa_service")


def create_app(settings: ServiceSettings, encoder: TextEncoder | None = None) -> FastAPI:
    """Build the app. Pass an `encoder` to share an already loaded model (the tests do)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await open_service(settings, encoder)
        app.state.service = service
        app.state.metrics = service.metrics
        app.state.mcp_sessions = mcp_sessions(service)  # one per start: a session manager runs once
        timers = start_timers(service)
        try:
            async with app.state.mcp_sessions.run():
                yield
        finally:
            await close_service(service, timers)

    app = FastAPI(
        title="Article QA",
        version="1",
        summary="Ask questions of an article archive; get cited passages back.",
        lifespan=lifespan,
    )
    _add_middleware(app, settings)
    _add_error_handlers(app)
    for router in (pages_router(), ask_router(), sync_router(), questions_router(), judging_router()):
        app.include_router(router)
    # /mcp is a route of its own, not `app.mount`: a mount answers only /mcp/… and redirects
    # /mcp there (307), while /mcp is the documented address; and FastAPI's add_route and
    # include_router leave a plain Starlette route out of the request's scope, so the metrics
    # would count it as "unmatched" (HTTPRoute names itself, as FastAPI's routes do). The SDK's
    # transport is an ASGI app of its own, so it is not in the OpenAPI document, which describes
    # the JSON API; MCP clients read the tool's schema from the server.
    app.router.routes.append(HTTPRoute("/mcp"))
    for router in (articles_router(), admin_router(), ops_router()):
        app.include_router(router)
    return app


def _add_middleware(app: FastAPI, settings: ServiceSettings) -> None:
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    app.add_middleware(RecordMetrics)
    if settings.trusted_proxies:
        # Outermost, so the rate limit, the metrics and uvicorn's access log all see the
        # reader's address. uvicorn's own middleware: X-Forwarded-For is read only from a
        # trusted peer, and the right-most address in it that is not itself trusted is taken.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)


def _add_error_handlers(app: FastAPI) -> None:
    """Every error a caller can cause is a 4xx with a sentence saying what was wrong."""

    def error(code: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                return error(400, f"the request body is not valid JSON: {err.get('ctx', {}).get('error', '')}".strip())
            if err.get("type") == "model_attributes_type" and tuple(err.get("loc", ())) == ("body",):
                return error(422, "the request body must be a JSON object sent with Content-Type: application/json")
            where = ".".join(str(part) for part in err.get("loc", ()) if part != "body")
            problems.append(f"{where or 'body'}: {err.get('msg')}")
        return error(422, "; ".join(problems) or "invalid request")

    status_of = {
        InvalidQueryError: 422, ArticleFormatError: 422, IngestError: 409,
        IndexNotFoundError: 503, IndexCorruptError: 503, IndexMismatchError: 503,
    }

    async def known_error(_request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, EmbeddingEndpointError):
            # Its message names the endpoint's address: for the operator's log, not the reader.
            log.warning("%s", exc)
            return error(503, "questions cannot be embedded now: the embeddings endpoint failed")
        return error(status_of.get(type(exc), 400), str(exc))

    for exc_type in (QAError, ArticleFormatError, EmbeddingEndpointError, *status_of):
        app.add_exception_handler(exc_type, known_error)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error(500, f"internal error ({type(exc).__name__}); see the service log")
