"""Which models a search uses, as values: the embedding (`EmbeddingSpec`, recorded in every
index version) and the reranker (`RerankSpec`). Their `key`s are what a vector cache, an index
and a confidence calibration are tied to: vectors or weights made under one key say nothing
about another's. Nothing here loads a model."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from index.errors import QAError
from index.settings import DEFAULT_MODEL, Settings, canonical_model

EmbeddingProvider = Literal["sentence-transformers", "openai"]
# sentence-transformers' own file of a model's settings, where its named prompts live.
_ST_CONFIG = "config_sentence_transformers.json"


@dataclass(frozen=True)
class EmbeddingSpec:
    """An embedding model and the prefixes put before questions and passages. `provider`:
    "sentence-transformers" (a local model, name or path) or "openai" (an OpenAI-compatible
    /embeddings endpoint; the URL is not part of the identity, the model name is)."""

    provider: EmbeddingProvider
    model: str
    query_prefix: str = ""
    document_prefix: str = ""

    def __post_init__(self) -> None:
        # The default model by any of its names (an index built with QA_MODEL=all-MiniLM-L6-v2).
        if self.provider == "sentence-transformers":
            object.__setattr__(self, "model", canonical_model(self.model))

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddingSpec:
        """The configured embedding; unset prefixes are the local model's own prompts."""
        if settings.embed_url:
            return cls("openai", str(settings.embed_model), settings.query_prefix or "",
                       settings.document_prefix or "")
        prompts = model_prompts(settings.model)
        query = settings.query_prefix if settings.query_prefix is not None else prompts.get("query", "")
        document = settings.document_prefix
        if document is None:
            document = prompts.get("document", prompts.get("passage", ""))
        return cls("sentence-transformers", settings.model, query, document)

    @classmethod
    def from_record(cls, record: dict[str, Any] | None, model: str) -> EmbeddingSpec:
        """The spec an index version recorded; a version written before specs were recorded
        was a local model with no prefixes."""
        if not record:
            return cls("sentence-transformers", model)
        return cls(record["provider"], record["model"], record.get("query_prefix", ""),
                   record.get("document_prefix", ""))

    def record(self) -> dict[str, str]:
        return asdict(self)

    @property
    def key(self) -> str:
        """One string for the whole identity (a vector cache's key, a calibration's)."""
        return json.dumps(self.record(), sort_keys=True)

    @property
    def is_default(self) -> bool:
        """The shipped model with no prefixes: the shipped calibration applies to it."""
        return self == EmbeddingSpec("sentence-transformers", DEFAULT_MODEL)

    def describe(self) -> str:
        parts = [f"{self.model} ({self.provider})"]
        if self.query_prefix:
            parts.append(f"question prefix {self.query_prefix!r}")
        if self.document_prefix:
            parts.append(f"passage prefix {self.document_prefix!r}")
        return ", ".join(parts)


@dataclass(frozen=True)
class RerankSpec:
    """A reranker: a local cross-encoder (`model` a name or path) or an endpoint (`model` the
    name sent to it, else its URL) speaking `format`."""

    kind: Literal["cross-encoder", "endpoint"]
    model: str
    format: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> RerankSpec | None:
        """The configured reranker; None when the rerank stage is off."""
        if settings.rerank:
            return cls("cross-encoder", settings.rerank)
        if settings.rerank_url:
            return cls("endpoint", settings.rerank_model or settings.rerank_url, settings.rerank_format)
        return None

    @property
    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def describe(self) -> str:
        return f"{self.model} ({self.kind}{', ' + self.format if self.format else ''})"


def model_prompts(model: str) -> dict[str, str]:
    """The named prompts (e.g. {"query": "query: "}) a local sentence-transformers model
    declares in its folder; empty for a model without them or not found on disk."""
    from index.encoder import resolve_model_path

    try:
        path = Path(resolve_model_path(model)) / _ST_CONFIG
        prompts = json.loads(path.read_text(encoding="utf-8")).get("prompts") or {}
    except (QAError, OSError, ValueError, AttributeError):  # loading the model will say why
        return {}
    return {str(k): str(v) for k, v in prompts.items() if isinstance(v, str)}
