"""The FastAPI app: `create_app(settings)` builds it; its lifespan loads the model and the index.

Routes:
  POST /ask, GET /ask?q=            cited passages for a question (with conversation history)
  GET /articles, GET /articles/{id} what the index holds, full text for showing a citation in place
  POST /articles, DELETE /articles/{id}, POST /admin/reindex, GET /admin/jobs/{id}   (bearer token)
  GET /healthz, GET /readyz, GET /metrics
  /, /widget.js, /read/{id}         the chat widget and its pages (qa_service.pages)
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import PurePath
from typing import Annotated, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from index.encoder import Encoder
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
    Filters,
    is_valid_article_id,
)
from index.search import Searcher
from ingest.load import ArticleFormatError
from ingest.pipeline import IngestReport
from qa_service import articles as article_files
from qa_service.holder import IndexHolder
from qa_service.jobs import Job, JobRunner
from qa_service.metrics import CONTENT_TYPE, Metrics
from qa_service.middleware import BodySizeLimit, RecordMetrics
from qa_service.pages import pages_router
from qa_service.ratelimit import RateLimiter
from qa_service.schemas import (
    ArticleIn,
    ArticleList,
    ArticleOut,
    ArticleSummary,
    AskFilters,
    AskRequest,
    AskResponse,
    ErrorOut,
    Health,
    JobAccepted,
    JobOut,
    Readiness,
    Turn,
)
from qa_service.settings import ServiceSettings

log = logging.getLogger("qa_service")
T = TypeVar("T")

ArticleId = Annotated[str, Path(pattern=ARTICLE_ID_PATTERN, description="article id")]


@dataclass
class Service:
    """What the routes share, created by the lifespan and reached through dependencies."""

    settings: ServiceSettings
    encoder: Encoder
    holder: IndexHolder
    jobs: JobRunner
    metrics: Metrics
    articles_lock: threading.Lock  # one writer of the articles folder at a time
    ask_limiter: RateLimiter | None


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
    if service.ask_limiter is None:
        return
    client = request.client.host if request.client else "unknown"
    wait = service.ask_limiter.retry_after(client)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many questions from {client}; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )


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
ERRORS = {code: {"model": ErrorOut} for code in (400, 404, 413, 422, 503)}
ASK_ERRORS = {code: {"model": ErrorOut} for code in (400, 413, 422, 429, 503)}
ADMIN_ERRORS = {code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 415, 422)}


def _ask(service: Service, searcher: Searcher, question: str, history: list[Turn],
         top_k: int | None, filters: AskFilters | None) -> AskResponse:
    started = time.perf_counter()
    limit = service.settings.max_question_chars
    if len(question) > limit:
        raise InvalidQueryError(f"question is {len(question)} characters; the limit is {limit}")
    if len(history) > service.settings.max_history_turns:
        raise InvalidQueryError(
            f"history has {len(history)} turns; the limit is {service.settings.max_history_turns}"
        )
    result = searcher.search(
        question,
        top_k=top_k,
        filters=_filters(filters),
        history=[turn.content for turn in history if turn.role == "user" and turn.content.strip()],
    )
    service.metrics.answers.labels(result.confidence).inc()
    return AskResponse.of(result, took_ms=round((time.perf_counter() - started) * 1000, 2))


def _filters(filters: AskFilters | None) -> Filters | None:
    if filters is None:
        return None
    return Filters(
        article_ids=frozenset(filters.article_ids),
        speakers=frozenset(filters.speakers),
        sections=frozenset(filters.sections),
        date_from=filters.date_from,
        date_to=filters.date_to,
    )


def _accepted(job: Job, article_id: str | None = None) -> JobAccepted:
    return JobAccepted(job_id=job.id, status_url=f"/admin/jobs/{job.id}", article_id=article_id)


def create_app(settings: ServiceSettings, encoder: Encoder | None = None) -> FastAPI:
    """Build the app. Pass an `encoder` to share an already loaded model (the tests do)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        model = encoder or await run_in_threadpool(
            Encoder, settings.model, settings.embed_batch_size, settings.query_backend
        )
        # Builds the question path (ONNX export and its check) now, not in the first request.
        await run_in_threadpool(model.encode_query, "warm-up")
        metrics = Metrics()
        holder = IndexHolder(
            settings, model, on_swap=metrics.served,
            on_load_error=lambda _version: metrics.index_load_failures.inc(),
        )

        def job_finished(job: Job, report: IngestReport | None) -> None:
            metrics.ingest_jobs.labels("failed" if report is None else "succeeded").inc()
            if report is not None and report.published:
                holder.refresh()  # serve the new version now rather than at the next poll

        limiter = None
        if settings.ask_rate_per_minute:
            limiter = RateLimiter(settings.ask_rate_per_minute, settings.ask_burst)
        service = Service(settings, model, holder, JobRunner(settings, model, job_finished), metrics,
                          threading.Lock(), limiter)
        app.state.service = service
        app.state.metrics = metrics
        await run_in_threadpool(holder.refresh)
        if holder.searcher is None:
            log.warning("not ready: %s", holder.last_error)
        holder.start_watching(settings.reload_interval_s)
        try:
            yield
        finally:
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
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RecordMetrics)
    _add_error_handlers(app)
    app.include_router(pages_router())

    @app.post("/ask", response_model=AskResponse, responses=ASK_ERRORS, tags=["ask"],
              dependencies=[Depends(ask_rate_limit)])
    def ask(body: AskRequest, service: ServiceDep, searcher: SearcherDep) -> AskResponse:
        """Cited passages that answer the question, best first, and a short answer when one stands out."""
        return _ask(service, searcher, body.question, body.history, body.top_k, body.filters)

    @app.get("/ask", response_model=AskResponse, responses=ASK_ERRORS, tags=["ask"],
             dependencies=[Depends(ask_rate_limit)])
    def ask_get(
        service: ServiceDep,
        searcher: SearcherDep,
        q: Annotated[str, Query(description="the question")],
        top_k: Annotated[int | None, Query(ge=1, le=20)] = None,
        article: Annotated[list[str], Query(description="only these article ids")] = [],  # noqa: B006
        speaker: Annotated[list[str], Query(description="only these speakers")] = [],  # noqa: B006
    ) -> AskResponse:
        """The same as POST /ask, for curl: `curl 'http://127.0.0.1:8000/ask?q=who+argues+...'`."""
        filters = AskFilters(article_ids=article, speakers=speaker) if article or speaker else None
        return _ask(service, searcher, q, [], top_k, filters)

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
        return _accepted(service.jobs.submit(f"article {article_id} added or replaced"), article_id)

    @app.delete(
        "/articles/{article_id}", status_code=202, response_model=JobAccepted, responses=ADMIN_ERRORS,
        dependencies=[Depends(require_admin)], tags=["admin"],
    )
    def delete_article(article_id: ArticleId, service: ServiceDep) -> JobAccepted:
        """Remove one article's file, then reindex in the background."""
        _refuse_bundled(service, article_id)
        if not _locked(service, partial(article_files.delete_article, service.settings.articles_dir, article_id)):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no article {article_id!r} in the articles folder")
        return _accepted(service.jobs.submit(f"article {article_id} deleted"), article_id)

    @app.post(
        "/admin/reindex", status_code=202, response_model=JobAccepted, responses=ADMIN_ERRORS,
        dependencies=[Depends(require_admin)], tags=["admin"],
    )
    def reindex(service: ServiceDep) -> JobAccepted:
        """Bring the index in line with the articles folder (incremental), in the background."""
        return _accepted(service.jobs.submit("reindex requested"))

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
                         chunks=len(searcher.index.chunks), detail=service.holder.last_error)

    @app.get("/metrics", response_class=Response, tags=["ops"],
             responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}})
    def metrics(service: ServiceDep) -> Response:
        service.metrics.ingest_jobs_pending.set(service.jobs.running())
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    return app


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
        return error(status_of.get(type(exc), 400), str(exc))

    for exc_type in (QAError, ArticleFormatError, *status_of):
        app.add_exception_handler(exc_type, known_error)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error(500, f"internal error ({type(exc).__name__}); see the service log")
