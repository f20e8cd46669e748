"""Prometheus metrics, in a registry owned by one app (several apps in one process, as in the
tests, must not share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from index.search import Searcher

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._http_and_index()
        self._ingest_and_search()
        self._answers_and_llm()

    def _http_and_index(self) -> None:
        """Requests served, and the index version serving them."""
        self.requests = Counter(
            "qa_http_requests", "HTTP requests by route, method and status",
            ["route", "method", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "qa_http_request_seconds", "HTTP request latency by route", ["route", "method"],
            buckets=(0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.index_info = Gauge(
            "qa_index_info", "the index version served (value 1)", ["version"], registry=self.registry
        )
        self.index_chunks = Gauge("qa_index_chunks", "chunks in the served index", registry=self.registry)
        self.index_articles = Gauge(
            "qa_index_articles", "articles in the served index", registry=self.registry
        )
        self.index_swaps = Counter(
            "qa_index_swaps", "index versions loaded into service", registry=self.registry
        )
        self.index_load_failures = Counter(
            "qa_index_load_failures", "published versions that failed verification and were not served",
            registry=self.registry,
        )

    def _ingest_and_search(self) -> None:
        """Ingest jobs, and how searches fared: cached, refused for load, reranked or not."""
        self.ingest_jobs = Counter(
            "qa_ingest_jobs", "finished ingest jobs by outcome", ["status"], registry=self.registry
        )
        self.ingest_jobs_pending = Gauge(
            "qa_ingest_jobs_pending", "ingest jobs queued or running", registry=self.registry
        )
        self.search_cache = Counter(
            "qa_search_cache", "searches by whether the cache of the served version had them (hit, "
            "miss); the hit rate is hit / (hit + miss)", ["result"], registry=self.registry,
        )
        self.searches_refused = Counter(
            "qa_searches_refused", "questions refused with 503 because every search slot was taken "
            "(QA_MAX_CONCURRENT_SEARCHES) and the queue was full or its wait ran out", registry=self.registry,
        )
        self.rerank_failures = Counter(
            "qa_rerank_failures", "searches whose reranker failed (timed out, unreachable, an error "
            "or an unusable answer): their passages are in fused order, and not cached",
            registry=self.registry,
        )

    def _answers_and_llm(self) -> None:
        """Answers by confidence, and the language model's calls, sentences and rewrites."""
        self.answers = Counter(
            "qa_answers", "questions answered, by confidence (high: an answer; low: possibly "
            "related passages; none: nothing found)", ["confidence"], registry=self.registry,
        )

        self.llm_calls = Counter(
            "qa_llm_calls", "calls to the language model, by outcome (ok, failed)", ["outcome"],
            registry=self.registry,
        )
        self.llm_latency = Histogram(
            "qa_llm_seconds", "time to a whole composed answer, checks included",
            buckets=(0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60), registry=self.registry,
        )
        self.llm_sentences = Counter(
            "qa_llm_sentences", "composed sentences, by verdict (kept, dropped)", ["verdict"],
            registry=self.registry,
        )

        self.llm_rewrites = Counter(
            "qa_llm_rewrites", "follow-ups the model rewrote before the search, by outcome (ok; "
            "failed: searched as asked)", ["outcome"], registry=self.registry,
        )

    def served(self, searcher: Searcher) -> None:
        self.index_info.clear()
        self.index_info.labels(searcher.version).set(1)
        self.index_chunks.set(searcher.index.live_chunks)
        self.index_articles.set(len(searcher.index.articles))
        self.index_swaps.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
