"""The systems `bench.quality` ranks the same chunks with: our `Searcher.rank` in lexical,
dense and hybrid mode, txtai's hybrid index over the same chunks and vectors, and our hybrid as
the service serves it (`search`, with its per-article cap)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from index.search import Searcher
from index.version import IndexVersion

if TYPE_CHECKING:
    from bench.quality import CachingEncoder

MODES = {"bm25": "lexical", "dense": "dense", "hybrid": "hybrid"}
SERVED_TOP_K = 20  # what a client asks `/ask` for when it scores a ranking


class TxtaiPeer:
    """txtai's hybrid index over the same chunks and vectors (bench/quality.py's docstring)."""

    def __init__(self, index: IndexVersion, encoder: CachingEncoder) -> None:
        from txtai import Embeddings

        texts = [chunk.text for chunk in index.chunks]
        rows = {text: row for row, text in enumerate(texts)}

        def transform(inputs: list[str]) -> np.ndarray:
            out = np.zeros((len(inputs), index.vectors.shape[1]), dtype=np.float32)
            for position, text in enumerate(inputs):
                row = rows.get(text)
                out[position] = (
                    index.vectors[row] if row is not None else encoder.encode_query(text)
                )
            return out

        self._embeddings = Embeddings(
            {
                "method": "external",
                "transform": transform,
                "hybrid": True,
                "content": False,
                "backend": "numpy",
            }
        )
        self._embeddings.index((row, text, None) for row, text in enumerate(texts))

    def rank(self, question: str, depth: int) -> list[tuple[int, float]]:
        return [(int(uid), float(score)) for uid, score in self._embeddings.search(question, depth)]


def ranker(system: str, searcher: Searcher, peer: TxtaiPeer | None) -> Callable[[str, int], list]:
    if system == "txtai":
        assert peer is not None
        return peer.rank
    mode = MODES[system]
    return lambda question, depth: searcher.rank(question, depth=depth, mode=mode)


def served_rank(searcher: Searcher) -> Callable[[str, int], list]:
    """Our hybrid as the service answers: `search` with `SERVED_TOP_K` (per-article cap; when
    nothing is shown, a miss)."""
    rows = {chunk.id: row for row, chunk in enumerate(searcher.index.chunks)}

    def rank(question: str, depth: int) -> list[tuple[int, float]]:
        result = searcher.search(question, top_k=min(depth, SERVED_TOP_K))
        return [(rows[p.chunk.id], p.score) for p in result.passages]

    return rank
