"""The rerankers the rerank stage (index/rerank.py) can use: a local sentence-transformers
cross-encoder (`QA_RERANK`), or a rerank endpoint (`QA_RERANK_URL`) speaking Cohere's v2 API
(as Jina, vLLM and llama.cpp's server do) or Hugging Face TEI's. `make_reranker` builds the one
the settings name. Each scores (question, passage) pairs and says why when it cannot, as a
`RerankError`; nothing here loads a model or opens a connection on import."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, Literal

import httpx
import numpy as np

from index.errors import RerankError
from index.models import RerankSpec
from index.rerank import shorten
from index.settings import Settings

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

RerankFormat = Literal["cohere", "tei"]
# Requests to an endpoint at once; more wait, within their own deadline. A search holds one.
_ENDPOINT_WORKERS = 16


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder on the CPU (`model`: a local path, or a hub name
    already in the local cache: like the embedding model, it is never downloaded unless
    HF_HUB_OFFLINE=0 is set). Loaded at first use or by `warm_up`, once; a model that fails to
    load is not tried again (the settings do not change while the process runs), and every
    search says why."""

    def __init__(self, model: str, batch_size: int = 32) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self.spec = RerankSpec("cross-encoder", model)
        self._model: CrossEncoder | None = None
        self._load_error: str | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the model now rather than in the first search; RerankError when it cannot be."""
        self._loaded()

    def close(self) -> None:
        """Nothing to release: the model goes with the process."""

    def scores(self, question: str, texts: Sequence[str]) -> list[float]:
        model = self._loaded()
        scores = np.asarray(model.predict([(question, text) for text in texts], batch_size=self.batch_size,
                                          show_progress_bar=False, convert_to_numpy=True), dtype=np.float64)
        if scores.ndim == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        if scores.ndim != 1:
            raise RerankError(f"cross-encoder {self.model_name!r} gives {scores.shape[-1]} scores per "
                              "passage, not one: it is not a reranker")
        return scores.tolist()

    def _loaded(self) -> CrossEncoder:
        with self._lock:
            if self._model is None and self._load_error is None:
                try:
                    self._model = load_cross_encoder(self.model_name)
                except RerankError as exc:
                    self._load_error = str(exc)
            if self._load_error is not None:
                raise RerankError(self._load_error)
            assert self._model is not None
            return self._model


def load_cross_encoder(model: str) -> CrossEncoder:
    """`model` as a CrossEncoder on the CPU; RerankError saying why it cannot be one. A bare
    encoder (an embedding model such as the packaged MiniLM) is refused: sentence-transformers
    would load it with a new, untrained scoring head, whose order is noise."""
    # Weights come from a local path or the local cache; never reach for a hub (as the encoder).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from sentence_transformers import CrossEncoder
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    try:
        loaded = CrossEncoder(model, device="cpu")
    except Exception as exc:  # the library raises many types; the reason is what matters
        raise RerankError(shorten(f"cannot load cross-encoder {model!r}: {exc}")) from exc
    config = getattr(loaded.model, "config", None)
    architectures = getattr(config, "architectures", None) or []
    if architectures and all(name.endswith("Model") for name in architectures):
        raise RerankError(
            f"{model!r} is not a cross-encoder ({', '.join(architectures)} has no trained scoring "
            "head; an embedding model?): give a reranker such as a cross-encoder/ms-marco model's folder"
        )
    return loaded


class EndpointReranker:
    """A rerank endpoint: POST {url}/rerank in `format`.

    cohere (Cohere v2, Jina, vLLM, llama.cpp): {"model", "query", "documents", "top_n"} ->
    {"results": [{"index", "relevance_score"}]}. tei (Hugging Face TEI): {"query", "texts",
    "raw_scores": false, "truncate": true} -> [{"index", "score"}]. Servers differ on order and
    on honouring top_n, so the answer is read by index and sorted here.

    The answer must score every passage sent: fewer results, an index out of range or given
    twice, or a score that is not a number is an error (the search keeps the fused order)
    rather than a ranking that silently loses passages or places the unscored ones by guess.

    `timeout_s` bounds the whole call, connecting included: the request runs on a worker thread
    and the search waits for it no longer than that (the worker's own connect and read limits
    end the request soon after). No retries: a reader is waiting, and the fused order stands."""

    def __init__(self, url: str, model: str | None = None, api_key: str | None = None,
                 format: RerankFormat = "cohere", timeout_s: float = 2.0) -> None:
        if format not in ("cohere", "tei"):
            raise ValueError(f"format must be 'cohere' or 'tei', got {format!r}")
        self.url = url.rstrip("/") + "/rerank"
        self.model = model
        self.format: RerankFormat = format
        self.timeout_s = timeout_s
        self.spec = RerankSpec("endpoint", model or url.rstrip("/"), format)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout_s, headers=headers, follow_redirects=False)
        self._workers = ThreadPoolExecutor(_ENDPOINT_WORKERS, thread_name_prefix="rerank")

    def warm_up(self) -> None:
        """Nothing to load: the endpoint is asked at each search."""

    def scores(self, question: str, texts: Sequence[str]) -> list[float]:
        call = self._workers.submit(self._post, question, list(texts))
        try:
            answer = call.result(timeout=self.timeout_s)
        except FutureTimeout:
            call.cancel()  # still queued behind other searches' calls: never sent
            raise RerankError(f"the rerank endpoint timed out after {self.timeout_s:g} s") from None
        return read_scores(answer, self.format, len(texts))

    def close(self) -> None:
        """Stop taking calls; one in flight ends within its timeout."""
        self._workers.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def request_body(self, question: str, texts: list[str]) -> dict[str, Any]:
        if self.format == "tei":
            return {"query": question, "texts": texts, "raw_scores": False, "truncate": True}
        body: dict[str, Any] = {"query": question, "documents": texts, "top_n": len(texts)}
        return body | ({"model": self.model} if self.model else {})

    def _post(self, question: str, texts: list[str]) -> Any:
        try:
            response = self._client.post(self.url, json=self.request_body(question, texts))
        except httpx.TimeoutException:
            raise RerankError(f"the rerank endpoint timed out after {self.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            reason = shorten(str(exc) or type(exc).__name__, 120)
            failed = "could not be reached" if isinstance(exc, httpx.ConnectError) else "request failed"
            raise RerankError(f"the rerank endpoint {failed} ({reason})") from None
        if response.status_code != 200:
            raise RerankError(f"the rerank endpoint answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise RerankError("the rerank endpoint answered something other than JSON") from None


def read_scores(answer: Any, format: RerankFormat, sent: int) -> list[float]:
    """One score per passage sent, in the order sent, from an endpoint's parsed JSON answer;
    RerankError saying what is wrong with it."""
    if format == "tei":
        results, score_key, expected = answer, "score", "a list of {index, score}"
    else:
        results = answer.get("results") if isinstance(answer, dict) else None
        score_key, expected = "relevance_score", '{"results": [{index, relevance_score}]}'
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise RerankError(f"the rerank endpoint's answer is not {expected}")
    scores: list[float | None] = [None] * sent
    for result in results:
        index, score = result.get("index"), result.get(score_key)
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < sent:
            raise RerankError(f"the rerank endpoint answered index {shorten(repr(index), 40)} for "
                              f"{sent} passages")
        if scores[index] is not None:
            raise RerankError(f"the rerank endpoint answered index {index} twice")
        if not isinstance(score, int | float) or isinstance(score, bool) or not math.isfinite(score):
            raise RerankError(f"the rerank endpoint answered a {score_key} that is not a number: "
                              f"{shorten(repr(score), 40)}")
        scores[index] = float(score)
    if len(results) < sent:
        raise RerankError(f"the rerank endpoint answered {len(results)} scores for {sent} passages")
    return [score for score in scores if score is not None]


def make_reranker(settings: Settings) -> CrossEncoderReranker | EndpointReranker | None:
    """The reranker `settings` name (`RerankSpec.from_settings`), not yet loaded; None when the
    rerank stage is off."""
    if settings.rerank:
        return CrossEncoderReranker(settings.rerank)
    if settings.rerank_url:
        key = settings.rerank_api_key.get_secret_value() if settings.rerank_api_key else None
        return EndpointReranker(settings.rerank_url, settings.rerank_model, key, settings.rerank_format,
                                settings.rerank_timeout_s)
    return None
