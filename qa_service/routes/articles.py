"""Articles: GET /articles and GET /articles/{id} (what the index holds, and an article's full
text, for showing a citation in place); POST /articles and DELETE /articles/{id} (bearer token:
add, replace or remove an article's file in the articles folder, then reindex in the background)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import PurePath
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from index.records import ARTICLE_ID_PATTERN, ARTICLE_ID_RULE, ArticleRecord, is_valid_article_id
from qa_service import articles as article_files
from qa_service.schemas import ArticleIn, ArticleList, ArticleOut, ArticleSummary, JobAccepted
from qa_service.service import ADMIN_ERRORS, ERRORS, SearcherDep, Service, ServiceDep, job_accepted, require_admin

T = TypeVar("T")

ArticleId = Annotated[str, Path(pattern=ARTICLE_ID_PATTERN, description="article id")]

# POST /articles reads its body itself (JSON or a file upload), so the OpenAPI document is told.
ARTICLE_BODY = {"requestBody": {"required": True, "content": {
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
}}}


def articles_router() -> APIRouter:
    router = APIRouter()

    @router.get("/articles", response_model=ArticleList, responses=ERRORS, tags=["articles"])
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

    @router.get("/articles/{article_id}", response_model=ArticleOut, responses=ERRORS, tags=["articles"])
    def get_article(article_id: ArticleId, searcher: SearcherDep) -> ArticleOut:
        index = searcher.index
        article = index.articles.get(article_id)
        if article is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no article {article_id!r} in index {index.version}")
        summary = _summary(article, index.chunk_counts.get(article_id, 0))
        return ArticleOut(**summary.model_dump(), source=article.source, text=article.text,
                          index_version=index.version)

    @router.post(
        "/articles", status_code=202, response_model=JobAccepted, responses=ADMIN_ERRORS,
        dependencies=[Depends(require_admin)], tags=["admin"], openapi_extra=ARTICLE_BODY,
    )
    async def add_article(request: Request, service: ServiceDep) -> JobAccepted:
        """Add or replace one article (JSON, or an uploaded file), then reindex in the background.

        The article is answerable once the returned job has succeeded."""
        article_id, save = await _saving(request, service)
        _refuse_bundled(service, article_id)
        await run_in_threadpool(_locked, service, save)
        return job_accepted(service.jobs.submit(f"article {article_id} added or replaced", article_id), article_id)

    @router.delete(
        "/articles/{article_id}", status_code=202, response_model=JobAccepted, responses=ADMIN_ERRORS,
        dependencies=[Depends(require_admin)], tags=["admin"],
    )
    def delete_article(article_id: ArticleId, service: ServiceDep) -> JobAccepted:
        """Remove one article's file, then reindex in the background."""
        _refuse_bundled(service, article_id)
        if not _locked(service, partial(article_files.delete_article, service.settings.articles_dir, article_id)):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no article {article_id!r} in the articles folder")
        return job_accepted(service.jobs.submit(f"article {article_id} deleted", article_id), article_id)

    return router


async def _saving(request: Request, service: Service) -> tuple[str, Callable[[], object]]:
    """The article id the request sends, and what saves its file into the articles folder."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    articles_dir = service.settings.articles_dir
    if content_type == "application/json":
        try:
            article = ArticleIn.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from None
        meta = article.model_dump(exclude={"id", "text"})
        return article.id, partial(article_files.save_json_article, articles_dir, article.id, article.text, meta)
    if content_type == "multipart/form-data":
        article_id, suffix, data = await _read_upload(request)
        return article_id, partial(article_files.save_uploaded_article, articles_dir, article_id, suffix, data)
    raise HTTPException(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        "send the article as application/json or as a multipart/form-data file upload",
    )


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
