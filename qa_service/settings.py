"""Service settings: the index and search settings plus what only the HTTP service needs.

Read from `QA_*` environment variables (e.g. `QA_ADMIN_TOKEN`, `QA_CORS_ORIGINS='["https://a.org"]'`).
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from index.settings import Settings, empty_is_unset
from ingest.sync import is_source_url


class ServiceSettings(Settings):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    admin_token: SecretStr | None = Field(
        None, description="bearer token for the write and admin routes; unset turns them off"
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed to call the API from a browser"
    )
    max_question_chars: int = Field(1000, ge=10)
    max_history_turns: int = Field(20, ge=0)
    max_body_bytes: int = Field(
        2_000_000, ge=1024, description="largest request body (JSON or uploaded article)"
    )
    body_timeout_s: float = Field(
        10.0, gt=0, description="a request body that stops arriving for this long gets a 408 and the connection closed"
    )
    max_concurrent_searches: int = Field(
        8, ge=1, description="questions searched at once (/ask, the MCP tool); more wait in the search queue"
    )
    search_queue: int = Field(
        32, ge=0, description="questions that may wait for a search slot; beyond them, 503 with Retry-After"
    )
    search_queue_wait_s: float = Field(
        2.0, ge=0, description="longest a question waits for a search slot before its 503"
    )
    ask_rate_per_minute: int = Field(
        120, ge=0, description="sustained /ask requests a minute per client address; 0 turns the limit off"
    )
    ask_burst: int = Field(30, ge=1, description="/ask requests a client may send at once before the rate applies")
    query_threads: int = Field(
        1, ge=1, description="threads torch, FAISS and ONNX Runtime use within one question"
    )
    search_cache_size: int = Field(
        1000, ge=0, description="recent searches kept per index version for repeated questions; 0 turns it off"
    )
    search_cache_bytes: int = Field(
        64 * 2**20, ge=0, description="bytes the search cache may hold (64 MiB), estimated from "
        "its results' sizes (the least recently used go first); its keys are 16-byte digests",
    )
    reload_interval_s: float = Field(
        1.0, gt=0, description="how often the service checks for a newly published index version"
    )
    question_log_days: int = Field(
        30, ge=0, description="days the question log (questions, confidence, articles cited, "
        "feedback; nothing about the reader) keeps a question; 0 turns the log off",
    )
    insights_sample: int = Field(
        300, ge=1, description="unanswered questions /admin/insights groups by similarity: the most "
        "asked (the latest first among equals); each is embedded once and its vector kept in the log",
    )
    question_log_path: Path | None = Field(
        None, description="the question log's SQLite file (default: questions.sqlite beside the index folder)"
    )
    sync_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="feeds or sitemaps the articles folder is synced from (POST /admin/sync, and "
        "every sync_interval_s); comma-separated or a JSON list",
    )
    sync_interval_s: float = Field(
        0, ge=0, description="seconds between syncs from sync_urls (each an ingest job); 0: only on POST /admin/sync"
    )
    ingest_worker_idle_s: float = Field(
        120, gt=0, description="an ingest job runs in a child process, kept for the next job until it "
        "has been idle this long (then its ~500 MB of torch and model are given back)"
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="addresses or networks of the proxies in front (e.g. 127.0.0.1 or "
        "10.0.0.0/8, comma-separated or a JSON list); from them, and only them, the client's "
        "address is taken from X-Forwarded-For",
    )


    # Composed answers (qa_service.compose); unset llm_url turns them off.
    llm_url: str | None = Field(
        None, description="base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:11434/v1 "
        "(Ollama) or http://127.0.0.1:8090/v1 (qa-llm); unset: no composed answers",
    )
    llm_model: str = Field("local", description="model name sent to the endpoint")
    llm_api_key: SecretStr | None = Field(None, description="bearer key, if the endpoint needs one")
    llm_timeout_s: float = Field(20.0, gt=0, description="longest wait for a whole composed answer")
    llm_max_tokens: int = Field(160, ge=16, le=4096, description="longest composed answer, in tokens")
    llm_passages: int = Field(2, ge=1, le=20, description="best passages the model is given")
    llm_passage_chars: int = Field(
        300, ge=80, description="characters of each passage (around its best sentence) the model sees"
    )
    llm_rewrite_followups: bool = Field(
        False, description="let the model rewrite a follow-up into a standalone question before "
        "the search (one short call; the search's own resolver stays underneath)",
    )
    llm_min_support: float = Field(
        0.55, ge=0.0, le=1.0,
        description="similarity a composed sentence needs to a sentence of a passage it cites",
    )

    @field_validator("trusted_proxies", "sync_urls", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [p.strip() for p in text.split(",") if p.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8)"
                ) from None
        return value

    @field_validator("sync_urls")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not is_source_url(url):
                raise ValueError(f"{url!r} is not an http(s) URL of a feed or sitemap")
        return value

    _empty_service_setting_is_unset = field_validator(
        "admin_token", "llm_url", "llm_api_key", mode="before"
    )(empty_is_unset)

    @property
    def question_log_file(self) -> Path:
        return self.question_log_path or self.index_dir.parent / "questions.sqlite"
