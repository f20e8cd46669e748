"""Building the `Service` the app's lifespan holds, and taking it down: the query model, the
index holder, the ingest job runner, the question log, the language model when one is
configured, the MCP server's HTTP sessions, and the timers (sync, question log pruning)."""

from __future__ import annotations

import logging

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.concurrency import run_in_threadpool

from index.encoder import TextEncoder, make_encoder
from index.endpoint_encoder import EmbeddingEndpointError
from ingest.report import IngestReport
from qa_service.admission import SearchSlots
from qa_service.answering import tool_answer
from qa_service.citations import CitationChecker
from qa_service.compose import Composer
from qa_service.holder import IndexHolder
from qa_service.jobs import Every, Job, JobRunner
from qa_service.llm import ChatModel
from qa_service.mcp_server import archive_server
from qa_service.metrics import Metrics
from qa_service.question_log import QuestionLog
from qa_service.ratelimit import RateLimiter
from qa_service.rewrite import FollowupRewriter
from qa_service.routes.questions import start_log_pruning
from qa_service.routes.sync import start_sync_timer
from qa_service.search_cache import SearchCache
from qa_service.service import Service
from qa_service.settings import ServiceSettings

log = logging.getLogger("qa_service")


async def open_service(settings: ServiceSettings, encoder: TextEncoder | None = None) -> Service:
    """The service, with the served index loaded (or the reason it is not) and watched for new
    versions. `encoder`: an already loaded model to share (the tests pass one)."""
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

    questions = None
    if settings.question_log_days:
        questions = await run_in_threadpool(QuestionLog, settings.question_log_file, settings.question_log_days)
    composer, rewriter = _language_model(settings, model)
    service = Service(
        settings=settings, encoder=model, holder=holder, metrics=metrics,
        jobs=JobRunner(settings, job_finished),
        ask_limiter=_rate_limiter(settings), feedback_limiter=_rate_limiter(settings),
        composer=composer, rewriter=rewriter,
        search_cache=SearchCache(settings.search_cache_size, settings.search_cache_bytes),
        question_log=questions,
        searches=SearchSlots(settings.max_concurrent_searches, settings.search_queue, settings.search_queue_wait_s),
    )
    await run_in_threadpool(holder.refresh)
    if holder.searcher is None:
        log.warning("not ready: %s", holder.last_error)
    holder.start_watching(settings.reload_interval_s)
    return service


def mcp_sessions(service: Service) -> StreamableHTTPSessionManager:
    """The MCP server's session manager for /mcp: the tool answers as /ask does, under /ask's
    rate limit and search slots."""
    settings = service.settings
    server = archive_server(
        lambda: service.holder.searcher, answer=tool_answer(service),
        max_question_chars=settings.max_question_chars, default_top_k=settings.top_k,
        limiter=service.ask_limiter, searches=service.searches,
    )
    return server.http_sessions()


def start_timers(service: Service) -> list[Every]:
    """The sync timer and the question log's pruning, those that are configured."""
    return [t for t in (start_sync_timer(service), start_log_pruning(service)) if t is not None]


async def close_service(service: Service, timers: list[Every]) -> None:
    for timer in timers:
        timer.stop()
    if service.question_log is not None:
        service.question_log.close()
    service.holder.stop()
    await run_in_threadpool(service.jobs.shutdown)


def _rate_limiter(settings: ServiceSettings) -> RateLimiter | None:
    """A rate limiter at QA_ASK_RATE_PER_MINUTE (None when 0); each caller gets its own buckets."""
    if not settings.ask_rate_per_minute:
        return None
    return RateLimiter(settings.ask_rate_per_minute, settings.ask_burst)


def _language_model(
    settings: ServiceSettings, encoder: TextEncoder
) -> tuple[Composer | None, FollowupRewriter | None]:
    """The composer and the follow-up rewriter, when a model is configured."""
    if settings.llm_url is None:
        return None, None
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    model = ChatModel(settings.llm_url, settings.llm_model, key, settings.llm_timeout_s,
                      settings.llm_max_tokens)
    checker = CitationChecker(encoder, settings.llm_min_support)
    composer = Composer(model, checker, settings.llm_passage_chars, settings.llm_passages)
    return composer, FollowupRewriter(model) if settings.llm_rewrite_followups else None
