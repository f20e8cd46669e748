"""Passages and questions embedded by an OpenAI-compatible endpoint (Ollama, TEI, vLLM,
llama.cpp's server, OpenAI) instead of a local model: `POST {url}/embeddings` with
`{"model", "input": [...]}`, answered `{"data": [{"index", "embedding"}]}`.

The endpoint is someone else's server: it may be slow, busy or down, and it may answer in a
shape we do not expect. A busy or failing answer (429, 5xx), a refused connection or a timeout
is tried again with exponential backoff (a `Retry-After` is honoured, up to a cap); what is
still failing after that, and any answer that is not one finite vector per text, all of one
length, becomes an `EmbeddingEndpointError` that says what to check, never a wrong vector.

Chunking still counts word pieces, with the default model's packaged tokenizer: a length
measure, not the endpoint model's own tokens (`embed_max_tokens` leaves room for the
difference)."""

from __future__ import annotations

import email.utils
import os
import threading
import time
from typing import Any

import httpx
import numpy as np

from index.encoder import resolve_model_path
from index.errors import QAError
from index.models import EmbeddingSpec
from index.settings import DEFAULT_MODEL, Settings

# Texts sent to learn the vectors' length, once per encoder.
_PROBE = "dimension probe"


class EmbeddingEndpointError(QAError):
    """The embeddings endpoint failed or answered something that is not one vector per text."""


class EndpointEncoder:
    """An OpenAI-compatible `/embeddings` endpoint with the surface of `index.encoder.Encoder`;
    vectors are float32 and L2-normalised here (endpoints differ in whether they normalise).

    Nothing is called at construction: `dim` asks the endpoint once (a probe) and keeps the
    answer; `load_model` loads the tokenizer and makes that probe, so that an ingest against a
    server that is down fails before it chunks anything."""

    def __init__(
        self,
        url: str,
        spec: EmbeddingSpec,
        *,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 3,
        batch_size: int = 64,
        max_tokens: int = 512,
        backoff_s: float = 0.5,
        max_wait_s: float = 30.0,
    ) -> None:
        if spec.provider != "openai":
            raise ValueError(f"an embeddings endpoint cannot embed as {spec.describe()}")
        self.url = url.rstrip("/")
        self.endpoint = f"{self.url}/embeddings"
        self.spec = spec
        self.model_name = spec.model
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s  # the first wait; doubled at each further try
        self.max_wait_s = max_wait_s  # the longest wait between tries, Retry-After included
        self._max_tokens = max_tokens
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._dim: int | None = None
        self._tokenizer: Any = None
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings) -> EndpointEncoder:
        if not settings.embed_url:
            raise ValueError("settings name no embeddings endpoint (embed_url)")
        key = settings.embed_api_key.get_secret_value() if settings.embed_api_key else None
        return cls(
            settings.embed_url, EmbeddingSpec.from_settings(settings), api_key=key,
            timeout_s=settings.embed_timeout_s, retries=settings.embed_retries,
            batch_size=settings.embed_batch_size, max_tokens=settings.embed_max_tokens,
        )

    # -- the Encoder surface ------------------------------------------------------------------

    def load_model(self) -> None:
        """Nothing to load but the tokenizer; the probe for `dim` checks the endpoint now."""
        _ = self.tokenizer, self.dim

    @property
    def dim(self) -> int:
        """The vectors' length, learnt from one probe call."""
        if self._dim is None:
            self._dim = int(self._post([_PROBE]).shape[1])
        return self._dim

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def tokenizer(self):  # a transformers PreTrainedTokenizerBase
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = _packaged_tokenizer()
            return self._tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.tokenize(text))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Passages' vectors, each text after the spec's passage prefix."""
        return self._embed([self.spec.document_prefix + text for text in texts])

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_questions([text])[0]

    def encode_questions(self, texts: list[str]) -> np.ndarray:
        """Questions' (and other short texts') vectors, each after the question prefix."""
        return self._embed([self.spec.query_prefix + text for text in texts])

    def prepare_question_path(self) -> bool:
        """Nothing to prepare: questions are embedded by the endpoint."""
        return False

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- requests ------------------------------------------------------------------------------

    def _embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._post(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _post(self, texts: list[str]) -> np.ndarray:
        """One request's vectors, in the order of `texts`, tried again as the class says."""
        body = {"model": self.spec.model, "input": texts}
        tries = 0
        while True:
            tries += 1
            wait: float | None = None
            try:
                response = self._http().post(self.endpoint, json=body, headers=self._headers)
            except httpx.TimeoutException:
                problem = (f"no answer within {self.timeout_s:g} s for {len(texts)} texts (raise "
                           "QA_EMBED_TIMEOUT_S, or send fewer at once: QA_EMBED_BATCH_SIZE)")
            except httpx.TransportError as exc:
                problem = f"could not connect: {exc or type(exc).__name__}"
            except httpx.HTTPError as exc:  # anything else httpx raises: not worth another try
                raise EmbeddingEndpointError(f"embeddings endpoint {self.endpoint} failed: {exc}") from exc
            else:
                if response.is_success:
                    vectors = self._vectors(response, len(texts))
                    if self._dim is not None and vectors.shape[1] != self._dim:
                        raise self._shape_error(f"{vectors.shape[1]}-dimensional vectors where it gave "
                                                f"{self._dim}-dimensional ones before")
                    return vectors
                if response.status_code != 429 and response.status_code < 500:
                    raise EmbeddingEndpointError(self._refused(response))
                problem = f"HTTP {response.status_code}{_detail(response)}"
                wait = _retry_after(response)
            if tries > self.retries:
                raise EmbeddingEndpointError(
                    f"embeddings endpoint {self.endpoint} failed after {tries} "
                    f"{'try' if tries == 1 else 'tries'}: {problem}; check that it is running and "
                    f"serves model {self.spec.model!r} (QA_EMBED_URL, QA_EMBED_MODEL)"
                )
            backoff = self.backoff_s * 2 ** (tries - 1)
            time.sleep(min(backoff if wait is None else wait, self.max_wait_s))

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout_s)
            return self._client

    def _refused(self, response: httpx.Response) -> str:
        """A 4xx other than 429: trying again would not help; say what to check."""
        status = response.status_code
        if status in (401, 403):
            check = "QA_EMBED_API_KEY"
        elif status == 404:
            check = (f"QA_EMBED_URL (the API's base, e.g. http://host:port/v1) and "
                     f"QA_EMBED_MODEL {self.spec.model!r}")
        else:
            check = "QA_EMBED_MODEL, and QA_EMBED_MAX_TOKENS / QA_CHUNK_TOKENS if the texts are too long"
        return (f"embeddings endpoint {self.endpoint} refused the request: HTTP {status}"
                f"{_detail(response)}; check {check}")

    def _vectors(self, response: httpx.Response, count: int) -> np.ndarray:
        """The answer's vectors by their `index`, checked to be `count` finite, non-zero
        vectors of one length, and normalised."""
        try:
            payload = response.json()
        except ValueError:
            raise self._shape_error("a body that is not JSON") from None
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise self._shape_error("no 'data' list")
        if len(data) != count:
            raise self._shape_error(f"{len(data)} vectors for {count} texts")
        rows: list[Any] = [None] * count
        for position, item in enumerate(data):
            embedding = item.get("embedding") if isinstance(item, dict) else None
            index = item.get("index", position) if isinstance(item, dict) else position
            if not isinstance(embedding, list):
                raise self._shape_error(f"item {position} without an 'embedding' list")
            if type(index) is not int or not 0 <= index < count or rows[index] is not None:
                raise self._shape_error(f"indexes that are not 0 to {count - 1} once each")
            if not all(type(x) in (float, int) for x in embedding):
                raise self._shape_error(f"an embedding (index {index}) that is not a list of numbers")
            rows[index] = embedding
        lengths = {len(row) for row in rows}
        if len(lengths) != 1 or 0 in lengths:
            raise self._shape_error(f"vectors of lengths {sorted(lengths)}")
        matrix = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        if not np.isfinite(matrix).all() or not np.isfinite(norms).all() or (norms == 0).any():
            raise self._shape_error("a vector that is zero or not finite")
        return (matrix / norms).astype(np.float32)

    def _shape_error(self, what: str) -> EmbeddingEndpointError:
        return EmbeddingEndpointError(
            f"embeddings endpoint {self.endpoint} answered {what}; it must answer OpenAI's "
            f'{{"data": [{{"index", "embedding"}}]}}, one vector per text: check that QA_EMBED_URL '
            f"is an OpenAI-compatible API and QA_EMBED_MODEL {self.spec.model!r} an embedding model"
        )


def _detail(response: httpx.Response, limit: int = 200) -> str:
    """The server's own words about an error (OpenAI's {"error": {"message"}}, or the text)."""
    try:
        payload = response.json()
        error = payload.get("error") if isinstance(payload, dict) else None
        text = str(error.get("message") if isinstance(error, dict) else error or payload)
    except ValueError:
        text = response.text
    text = " ".join(text.split())
    if not text:
        return ""
    return f" ({text if len(text) <= limit else text[: limit - 1] + '…'})"


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds a 429 or 503 asks us to wait (a number or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _packaged_tokenizer():
    """The default model's tokenizer, from its package (never a hub)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_path(DEFAULT_MODEL))
