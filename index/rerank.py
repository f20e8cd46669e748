"""The rerank stage: reorders the first fused candidates before they are cut to the passages
shown.

No reranker is configured yet (a later issue plugs in cross-encoders and rerank endpoints and
calibrates each). A reranker implements `Reranker`; `rerank` applies it to the first `depth`
candidates and keeps the rest after them. It changes only the order, so the confidence stage
reads the same signals whichever runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol


class Reranker(Protocol):
    def rerank(self, question: str, texts: Sequence[str]) -> list[int]:
        """Positions into `texts`, best first (a permutation of range(len(texts)))."""
        ...


def rerank(
    reranker: Reranker,
    question: str,
    ranked: list[tuple[int, float]],
    text_of: Callable[[int], str],
    depth: int,
) -> list[tuple[int, float]]:
    """`ranked` (row, score) with its first `depth` reordered by `reranker`; scores stay
    fusion's. A reranker that does not return a permutation is an error, not a silent loss
    of passages."""
    head, tail = ranked[:depth], ranked[depth:]
    order = reranker.rerank(question, [text_of(row) for row, _ in head])
    if sorted(order) != list(range(len(head))):
        raise ValueError(f"reranker returned {order!r}, not a permutation of {len(head)} positions")
    return [head[i] for i in order] + tail
