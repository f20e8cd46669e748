"""Questions embedded by ONNX Runtime, without torch in the process.

The encoder's transformer is exported to ONNX once, by a process that has torch (a short-lived
`python -m index.query_model` child, or one that already loaded the model), into a folder:
`model.onnx`, the tokenizer as `tokenizer.json`, and `query-model.json` with the model's name,
its pooling and the vectors torch gives a few probe texts. A serving process loads that folder
with ONNX Runtime and the `tokenizers` library only, and checks that it reproduces the probe
vectors before it answers with it. Importing sentence-transformers alone costs a process about
430 MB (docs/history/benchmarks-2026-11-to-12.md), which a server that only embeds questions does not need.

    python -m index.query_model MODEL FOLDER   # export MODEL's question path into FOLDER
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from index.errors import QAError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MODEL_FILE, TOKENIZER_FILE, META_FILE = "model.onnx", "tokenizer.json", "query-model.json"
IN_INDEX = Path("cache") / "query-model"  # where an index folder keeps its question path
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Texts whose torch vectors are kept with the export, and compared with ONNX Runtime's.
PROBES = ("who argues against means-testing?", "A longer question, with punctuation & numbers: 22 per cent?")
TOLERANCE = 1e-4


class NotExportable(QAError):
    """The model cannot be run by ONNX Runtime with the same result."""


class OnnxQueryModel:
    """One question at a time: tokenized by `tokenizers`, run by ONNX Runtime, pooled and
    normalised in numpy as the sentence-transformers model does."""

    def __init__(self, session, tokenizer, pooling: str) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._pooling = pooling
        self._inputs = [i.name for i in session.get_inputs()]

    @classmethod
    def load(cls, folder: Path, model_name: str, threads: int) -> OnnxQueryModel:
        """The question path exported into `folder` for `model_name`, checked against its probe
        vectors; NotExportable when it is missing, for another model, or gives other vectors."""
        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise NotExportable(f"{folder} holds no exported question path yet") from exc
        except (OSError, ValueError) as exc:
            raise NotExportable(f"{folder} holds an unreadable question path ({exc})") from exc
        if meta.get("model") != model_name:
            raise NotExportable(f"{folder} holds the question path of {meta.get('model')!r}, not {model_name!r}")
        import onnxruntime
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        tokenizer.enable_truncation(meta["max_length"])
        tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = False
        session = onnxruntime.InferenceSession(str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"])
        query_model = cls(session, tokenizer, meta["pooling"])
        for probe, expected in meta["probes"].items():
            difference = float(np.abs(query_model.encode(probe) - np.asarray(expected, dtype=np.float32)).max())
            if difference > TOLERANCE:
                raise NotExportable(f"ONNX and torch vectors differ by {difference:.2g}")
        return query_model

    @property
    def dim(self) -> int:
        """The vectors' length: the exported model's last output axis (fixed at export)."""
        width = self._session.get_outputs()[0].shape[-1]
        return width if isinstance(width, int) else len(self.encode(PROBES[0]))

    def encode_many(self, texts: list[str], batch_tokens: int = 512) -> np.ndarray:
        """The vectors of `texts`, run together in batches of similar length of at most
        `batch_tokens` word pieces with their padding: for short texts about twice as fast
        as one by one, and the same vectors (within 1e-7)."""
        encodings = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        vectors: np.ndarray | None = None
        start = 0
        while start < len(order):
            end = start + 1  # the longest of a batch is its last: it sets the padded width
            while end < len(order) and (end + 1 - start) * len(encodings[order[end]].ids) <= batch_tokens:
                end += 1
            chosen = order[start:end]
            pooled = self._run([encodings[i] for i in chosen])
            if vectors is None:
                vectors = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
            vectors[chosen] = pooled
            start = end
        return vectors if vectors is not None else np.zeros((0, 0), dtype=np.float32)

    def _run(self, encodings: list) -> np.ndarray:
        """Normalised vectors of a batch of tokenized texts, padded to the longest."""
        width = max(len(e.ids) for e in encodings)
        columns = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in INPUTS}
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            columns["input_ids"][row, :n] = encoding.ids
            columns["attention_mask"][row, :n] = encoding.attention_mask
            columns["token_type_ids"][row, :n] = encoding.type_ids
        hidden = self._session.run(None, {name: columns[name] for name in self._inputs})[0]
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = columns["attention_mask"].astype(np.float32)[:, :, None]
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def encode(self, text: str) -> np.ndarray:
        encoding = self._tokenizer.encode(text)
        columns = {
            "input_ids": encoding.ids,
            "attention_mask": encoding.attention_mask,
            "token_type_ids": encoding.type_ids,
        }
        feed = {name: np.asarray([columns[name]], dtype=np.int64) for name in self._inputs}
        hidden = self._session.run(None, feed)[0][0]
        if self._pooling == "cls":
            vector = hidden[0]
        else:
            mask = np.asarray(encoding.attention_mask, dtype=np.float32)[:, None]
            vector = (hidden * mask).sum(axis=0) / max(float(mask.sum()), 1e-9)
        return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


def export(model: SentenceTransformer, model_name: str, folder: Path) -> None:
    """Write `model`'s question path into `folder` (replaced whole, through a temporary
    sibling, so a reader never sees half of it)."""
    import torch

    modules = list(model)
    transformer, pooling = modules[0], modules[1] if len(modules) > 1 else None
    pooling_mode = getattr(pooling, "pooling_mode", None)
    backend = getattr(model.tokenizer, "backend_tokenizer", None)
    if pooling_mode not in ("mean", "cls") or not hasattr(transformer, "auto_model") or backend is None:
        raise NotExportable(f"model layout {[type(m).__name__ for m in modules]} is not a transformer "
                            "with mean or CLS pooling and a fast tokenizer")
    network = transformer.auto_model.eval()
    sample = model.tokenizer([PROBES[0]], return_tensors="pt")
    names = [n for n in INPUTS if n in sample]

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = network  # a submodule, so its weights export as weights

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.network(**dict(zip(names, tensors))).last_hidden_state

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        try:
            # The tracer warns about Python control flow on shapes; the probes check the result.
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    LastHiddenState(), tuple(sample[n] for n in names), str(staging / MODEL_FILE),
                    input_names=names, output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                    dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
                )
        except Exception as exc:  # exporters raise many types; the fallback is the same
            raise NotExportable(f"ONNX export failed: {exc}") from exc
        backend.save(str(staging / TOKENIZER_FILE))
        # prompt="": the bare text, as ONNX Runtime is given it (not a default prompt of the model's).
        probes = model.encode(list(PROBES), prompt="", normalize_embeddings=True, convert_to_numpy=True)
        meta = {
            "model": model_name,
            "pooling": pooling_mode,
            "max_length": int(model.max_seq_length),
            "probes": {text: vector.tolist() for text, vector in zip(PROBES, probes)},
        }
        (staging / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export_in_child(model_name: str, folder: Path) -> None:
    """`export` run by a child process, so that torch never enters this one (the child loads
    the model as `load_sentence_transformer` does: offline)."""
    done = subprocess.run(
        [sys.executable, "-m", "index.query_model", model_name, str(folder)],
        capture_output=True, text=True, timeout=600,
    )
    if done.returncode != 0:
        raise NotExportable(f"exporting the question path failed: {done.stderr.strip()[-500:]}")


def main(argv: list[str] | None = None) -> int:
    from index.encoder import load_sentence_transformer

    model_name, folder = (argv if argv is not None else sys.argv[1:])[:2]
    export(load_sentence_transformer(model_name), model_name, Path(folder))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
