"""Embed chunks in batches, reusing vectors cached by (embedding spec, chunk text hash)."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from index.encoder import TextEncoder
from index.models import EmbeddingSpec
from index.records import Chunk

_LOOKUP_BATCH = 500

# Batches of texts -> (batch number, its vectors) for each, in any order.
BatchEncoder = Callable[[list[list[str]]], Iterator[tuple[int, np.ndarray]]]


def cache_key(spec: EmbeddingSpec) -> str:
    """What cached vectors are filed under: the whole spec (model, provider, prefixes), so
    that two specs never share a vector; for a local model without prefixes, its bare name,
    as before specs existed, so a cache written then is still used (its vectors are the same,
    bit for bit)."""
    return spec.model if spec == EmbeddingSpec("sentence-transformers", spec.model) else spec.key


def _encode_here(encoder: TextEncoder) -> BatchEncoder:
    return lambda batches: ((number, encoder.encode(texts)) for number, texts in enumerate(batches))


class VectorCache:
    """An SQLite table of vectors; each batch is committed, so a killed ingest keeps its work.
    Rows are filed under `cache_key(spec)` (the column is named `model`) and the dimension."""

    def __init__(self, path: Path, spec: EmbeddingSpec, dim: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, text_hash TEXT, dim INTEGER, "
            "vector BLOB, PRIMARY KEY (model, text_hash))"
        )
        self._model = cache_key(spec)
        self._dim = dim

    def get_many(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        hashes = list(hashes)
        for i in range(0, len(hashes), _LOOKUP_BATCH):
            batch = hashes[i : i + _LOOKUP_BATCH]
            rows = self._db.execute(
                f"SELECT text_hash, vector FROM vectors WHERE model = ? AND dim = ? "
                f"AND text_hash IN ({','.join('?' * len(batch))})",
                [self._model, self._dim, *batch],
            )
            for text_hash, blob in rows:
                found[text_hash] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)",
                [(self._model, h, self._dim, v.astype(np.float32).tobytes()) for h, v in items.items()],
            )

    def close(self) -> None:
        self._db.close()


def embed_chunks(
    chunks: list[Chunk],
    encoder: TextEncoder,
    cache: VectorCache,
    batch_size: int = 256,
    progress: bool | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    encode_batches: BatchEncoder | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for `chunks` (in order) and how many texts had to be embedded.

    `on_batch(done, total)` is called after each embedded batch (the service's job progress).
    `encode_batches` embeds the batches elsewhere (the Ray engine); by default, `encoder` here."""
    vectors = cache.get_many({c.text_hash for c in chunks})
    missing: dict[str, str] = {}
    for chunk in chunks:
        if chunk.text_hash not in vectors:
            missing.setdefault(chunk.text_hash, chunk.text)
    if missing:
        show = sys.stderr.isatty() if progress is None else progress
        # Shortest first: each model batch then holds texts of similar length and pads little,
        # as the model's own encode does when it sorts a whole call (ingest reached 0.89 of
        # that throughput with batches of mixed lengths; see docs/history/benchmarks-2026-11-to-12.md).
        items = sorted(missing.items(), key=lambda item: len(item[1]))
        batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
        encode = encode_batches or _encode_here(encoder)
        done = 0
        with tqdm(total=len(items), desc="embedding", unit="chunk", disable=not show) as bar:
            for number, encoded in encode([[text for _, text in batch] for batch in batches]):
                fresh = {h: v for (h, _), v in zip(batches[number], encoded)}
                cache.put_many(fresh)
                vectors.update(fresh)
                done += len(fresh)
                bar.update(len(fresh))
                if on_batch:
                    on_batch(done, len(items))
    matrix = np.zeros((len(chunks), encoder.dim), dtype=np.float32)
    for row, chunk in enumerate(chunks):
        matrix[row] = vectors[chunk.text_hash]
    return matrix, len(missing)
