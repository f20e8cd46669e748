"""The FastAPI app: `create_app(settings)` builds it; its lifespan loads the model and the index.

Routes:
  POST /ask, GET /ask?q=, POST /ask/stream   cited passages for a question, and a composed
                                    answer when a language model is configured (routes.ask)
  GET /articles, GET /articles/{id} what the index holds, full text for showing a citation in place
  POST /articles, DELETE /articles/{id}, POST /admin/reindex, GET /admin/jobs/{id}   (bearer token)
  POST /admin/sync                  sync the articles folder from QA_SYNC_URLS, then ingest (routes.sync)
  POST /feedback, GET /admin/insights   readers' feedback; what readers ask (routes.questions)
  /admin/judging, /admin/judgments…  editors judge what readers asked (routes.judging)
  /mcp                              the archive as a Model Context Protocol server (qa_service.mcp_server)
  GET /healthz, GET /readyz, GET /metrics
  /, /widget.js, /read/{id}         the chat widget and its pages (qa_service.pages)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import PurePath
from typing import Annotated, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from index.encoder import TextEncoder, make_encoder
from index.endpoint_encoder import EmbeddingEndpointError
from index.errors import (
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    IngestError,
    InvalidQueryError,
    QAError,
)
from index.records import (
    ARTICLE_ID_PATTERN,
    ARTICLE_ID_RULE,
    ArticleRecord,
    SearchResult,
    is_valid_article_id,
)
from ingest.load import ArticleFormatError
from ingest.pipeline import IngestReport
from qa_service import articles as article_files
from qa_service.admission import SearchSlots
from qa_service.citations import CitationChecker
from qa_service.compose import Composer
from qa_service.holder import IndexHolder
from qa_service.jobs import Job, JobRunner
from qa_service.llm import ChatModel
from qa_service.mcp_server import HTTPRoute, archive_server
from qa_service.metrics import CONTENT_TYPE, Metrics
from qa_service.middleware import BodySizeLimit, RecordMetrics
from qa_service.pages import pages_router
from qa_service.question_log import QuestionLog
from qa_service.ratelimit import RateLimiter
from qa_service.rewrite import FollowupRewriter
from qa_service.routes.ask import ask_router
from qa_service.routes.judging import judging_router
from qa_service.routes.questions import questions_router, start_log_pruning
from qa_service.routes.sync import start_sync_timer, sync_router
from qa_service.schemas import (
    ArticleIn,
    ArticleList,
    ArticleOut,
    ArticleSummary,
    Health,
    JobAccepted,
    JobOut,
    Readiness,
)
from qa_service.search_cache import SearchCache
from qa_service.service import (
    ADMIN_ERRORS,
    ERRORS,
    SearcherDep,
    Service,
    ServiceDep,
    job_accepted,
    require_admin,
)
from qa_service.settings import ServiceSettings

log = logging.getLogger("qa_service")
T = TypeVar("T")

ArticleId = Annotated[str, Path(pattern=ARTICLE_ID_PATTERN, description="article id")]


def create_app(settings: ServiceSettings, encoder: TextEncoder | None = None) -> FastAPI:
    """Build the app. Pass an `encoder` to share an already loaded model (the tests do)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Off the event loop: with QA_QUERY_BACKEND=torch the constructor loads the model.
        model = encoder or await run_in_threadpool(make_encoder, settings, settings.query_threads)
        # Builds the question path (read or exported, and checked) now, not in the first request.
        try:
            await run_in_threadpool(model.encode_query, "warm-up")
        except EmbeddingEndpointError as exc:  # it may come up later; each question says so meanwhile
            log.warning("the embeddings endpoint is not answering yet: %s", exc)
        metrics = Metrics()
        holder = IndexHolder(
            settings, model, on_swap=metrics.served,
            on_load_error=lambda _version: metrics.index_load_failures.inc(),
        )

        def job_finished(job: Job, report: IngestReport | None) -> None:
            metrics.ingest_jobs.labels("failed" if report is None else "succeeded").inc()
            if report is not None and report.published:
                holder.refresh()  # serve the new version now rather than at the next poll

        def limiter() -> RateLimiter | None:  # /ask and /feedback each get their own, same rate
            if not settings.ask_rate_per_minute:
                return None
            return RateLimiter(settings.ask_rate_per_minute, settings.ask_burst)

        questions = None
        if settings.question_log_days:
            questions = await run_in_threadpool(QuestionLog, settings.question_log_file, settings.question_log_days)
        service = Service(settings, model, holder, JobRunner(settings, job_finished), metrics,
                          threading.Lock(), limiter(), *_language_model(settings, model),
                          SearchCache(settings.search_cache_size, settings.search_cache_bytes), questions, limiter(),
                          SearchSlots(settings.max_concurrent_searches, settings.search_queue,
                                      settings.search_queue_wait_s))
        app.state.service = service
        app.state.metrics = metrics
        mcp = archive_server(lambda: holder.searcher, max_question_chars=settings.max_question_chars,
                             default_top_k=settings.top_k, limiter=service.ask_limiter,
                             on_answer=partial(_answered, service),
                             searches=service.searches)
        app.state.mcp_sessions = mcp.http_sessions()
        await run_in_threadpool(holder.refresh)
        if holder.searcher is None:
            log.warning("not ready: %s", holder.last_error)
        holder.start_watching(settings.reload_interval_s)
        timers = [t for t in (start_sync_timer(service), start_log_pruning(service)) if t is not None]
        try:
            async with app.state.mcp_sessions.run():
                yield
        finally:
            for timer in timers:
                timer.stop()
            if questions is not None:
                questions.close()
            holder.stop()
            await run_in_threadpool(service.jobs.shutdown)

    app = FastAPI(
        title="Article QA",
        version="1",
        summary="Ask questions of an article archive; get cited passages back.",
        lifespan=lifespan,
    )
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
    _add_error_handlers(app)
    app.include_router(pages_router())

    app.include_router(ask_router())
    app.include_router(sync_router())
    app.include_router(questions_router())
    app.include_router(judging_router())
    # The SDK's transport is an ASGI app of its own, so a plain route: not in the OpenAPI
    # document, which describes the JSON API; MCP clients read the tool's schema from the server.
    app.router.routes.append(HTTPRoute("/mcp"))

    @app.get("/articles", response_model=ArticleList, responses=ERRORS, tags=["articles"])
    def list_articles(
        searcher: SearcherDep,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> ArticleList:
        index = searcher.index
        counts = index.chunk_counts
        ids = sorted(index.articles)[offset : offset + limit]
        return ArticleList(
            articles=[_summary(index.articles[i], counts.get(i, 0)) for i in ids],
            total=len(index.articles), offset=offset, limit=limit, index_version=index.version,
        )

    @app.get("/articles/{article_id}", response_model=ArticleOut, responses=ERRORS, tags=["articles"])
    def get_article(article_id: ArticleId, searcher: SearcherDep) -> ArticleOut:
        index = searcher.index
        article = index.articles.get(article_id)
        if article is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no article {article_id!r} in index {index.version}")
        summary = _summary(article, index.chunk_counts.get(article_id, 0))
        return ArticleOut(**summary.model_dump(), source=article.source, text=article.text,
                          index_version=index.version)

    @app.post(
        "/articles", status_code=202, response_model=JobAccepted, responses=ADMIN_ERRORS,
        dependencies=[Depends(require_admin)], tags=["admin"],
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": ArticleIn.model_json_schema()},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary",
                             "description": ".txt, .md (YAML front matter) or .html"},
                    "id": {"type": "string", "pattern": ARTICLE_ID_PATTERN,
                           "description": "article id (default: the file name without extension)"},
                },
            }},
        }}},
    )
    async def add_article(request: Request, service: ServiceDep) -> JobAccepted:
        """Add or replace one article (JSON, or an uploaded file), then reindex in the background.

        The article is answerable once the returned job has succeeded."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        articles_dir = service.settings.articles_dir
        if content_type == "application/json":
            try:
                article = ArticleIn.model_validate_json(await request.body())
            except ValidationError as exc:
                raise RequestValidationError(exc.errors(include_url=False)) from None
            article_id = article.id
            meta = article.model_dump(exclude={"id", "text"})
            save = partial(article_files.save_json_article, articles_dir, article_id, article.text, meta)
        elif content_type == "multipart/form-data":
            article_id, suffix, data = await _read_upload(request)
            save = partial(article_files.save_uploaded_article, articles_dir, article_id, suffix, data)
        else:
            raise HTTPException(
                status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                "send the article as application/json or as a multipart/form-data file upload",
            )
        _refuse_bundled(service, article_id)
        await run_in_threadpool(_locked, service, save)
        return job_accepted(service.jobs.submit(f"article {article_id} added or replaced", article_id), article_id)

    @app.delete(
        "/articles/{article_id}", status_code=202, response_model=JobAccepted, responses=ADMIN_ERRORS,
        dependencies=[Depends(require_admin)], tags=["admin"],
    )
    def delete_article(article_id: ArticleId, service: ServiceDep) -> JobAccepted:
        """Remove one article's file, then reindex in the background."""
        _refuse_bundled(service, article_id)
        if not _locked(service, partial(article_files.delete_article, service.settings.articles_dir, article_id)):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no article {article_id!r} in the articles folder")
        return job_accepted(service.jobs.submit(f"article {article_id} deleted", article_id), article_id)

    @app.post(
        "/admin/reindex", status_code=202, response_model=JobAccepted, responses=ADMIN_ERRORS,
        dependencies=[Depends(require_admin)], tags=["admin"],
    )
    def reindex(service: ServiceDep) -> JobAccepted:
        """Bring the index in line with the articles folder (incremental), in the background."""
        return job_accepted(service.jobs.submit("reindex requested"))

    @app.get(
        "/admin/jobs/{job_id}", response_model=JobOut, responses=ADMIN_ERRORS,
        dependencies=[Depends(require_admin)], tags=["admin"],
    )
    def get_job(job_id: Annotated[str, Path(max_length=64)], service: ServiceDep) -> JobOut:
        job = service.jobs.get(job_id)
        if job is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id!r} (finished jobs are kept for a while)")
        return JobOut(**vars(job))

    @app.get("/healthz", response_model=Health, tags=["ops"])
    def healthz() -> Health:
        """The process is up."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}}, tags=["ops"])
    def readyz(service: ServiceDep, response: Response) -> Readiness:
        """An index is loaded and answering; which version."""
        searcher = service.holder.searcher
        if searcher is None:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
            return Readiness(ready=False, index_version=None, articles=0, chunks=0,
                             detail=service.holder.last_error)
        return Readiness(ready=True, index_version=searcher.version, articles=len(searcher.index.articles),
                         chunks=searcher.index.live_chunks, detail=service.holder.last_error,
                         calibration=searcher.calibration.reason)

    @app.get("/metrics", response_class=Response, tags=["ops"],
             responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}})
    def metrics(service: ServiceDep) -> Response:
        service.metrics.ingest_jobs_pending.set(service.jobs.running())
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    return app


def _language_model(settings: ServiceSettings, encoder: TextEncoder) -> tuple[Composer | None, FollowupRewriter | None]:
    """The composer and the follow-up rewriter, when a model is configured."""
    if settings.llm_url is None:
        return None, None
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    model = ChatModel(settings.llm_url, settings.llm_model, key, settings.llm_timeout_s,
                      settings.llm_max_tokens)
    checker = CitationChecker(encoder, settings.llm_min_support)
    composer = Composer(model, checker, settings.llm_passage_chars, settings.llm_passages)
    return composer, FollowupRewriter(model) if settings.llm_rewrite_followups else None


def _answered(service: Service, question: str, result: SearchResult) -> None:
    """Count and log a question asked through the MCP tool, as /ask does its own."""
    service.metrics.answers.labels(result.confidence).inc()
    if result.rerank_error:
        service.metrics.rerank_failures.inc()
    service.record_question(question, result, result.took_ms)


def _summary(article: ArticleRecord, chunks: int) -> ArticleSummary:
    return ArticleSummary(id=article.id, title=article.title, author=article.author,
                          date=article.date, url=article.url, chunks=chunks)


def _locked(service: Service, action: Callable[[], T]) -> T:
    with service.articles_lock:
        return action()


def _refuse_bundled(service: Service, article_id: str) -> None:
    """An article that came from a .jsonl bundle has no file of its own to replace or delete."""
    searcher = service.holder.searcher
    in_index = searcher is not None and article_id in searcher.index.articles
    if in_index and not article_files.files_of(service.settings.articles_dir, article_id):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"article {article_id!r} has no file of its own in the articles folder: it comes from a "
            ".jsonl bundle (edit that file, then POST /admin/reindex), or its deletion is still being indexed",
        )


async def _read_upload(request: Request) -> tuple[str, str, bytes]:
    try:
        form = await request.form(max_files=1, max_fields=4)
    except HTTPException:  # the body over QA_MAX_BODY_BYTES (413), or stalled (408)
        raise
    except Exception as exc:  # Starlette raises several types for a broken multipart body
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"the multipart body cannot be read: {exc}") from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise HTTPException(422, "the form needs a 'file' field with the article")
    name = PurePath(upload.filename or "").name
    article_id = form.get("id") or PurePath(name).stem
    if not is_valid_article_id(article_id):
        raise HTTPException(
            422, f"article id {article_id!r} is not valid: {ARTICLE_ID_RULE}; give one in the 'id' field"
        )
    return article_id, PurePath(name).suffix, await upload.read()


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
