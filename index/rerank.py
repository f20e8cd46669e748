"""The rerank stage: rescores the first fused candidates before they are cut to the passages
shown.

A reranker (index/rerankers.py: a local cross-encoder or a rerank endpoint) implements
`Reranker`: one score per (question, passage text). `rerank` orders the first `depth`
candidates by those scores and keeps the rest after them. It changes only the order, so the
confidence stage reads the same signals whichever runs.

A reranker is an external component: it may be slow, down or wrong. `RerankRun` is one search's
use of it: a failure of any kind keeps the fused order and says why (`error`, which the search
result reports as `rerank_error`), and ends reranking for the rest of that search."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Protocol

from index.errors import RerankError
from index.models import RerankSpec

log = logging.getLogger(__name__)

Ranked = list[tuple[int, float]]


class Reranker(Protocol):
    spec: RerankSpec  # what a calibration fitted with this reranker is tied to

    def scores(self, question: str, texts: Sequence[str]) -> Sequence[float]:
        """One relevance score per text, in the order of `texts`; higher is more relevant.
        Raises RerankError with a short reason when it cannot score them."""
        ...


def passage_text(title: str | None, speaker: str | None, text: str) -> str:
    """A passage as the reranker reads it: "Title\\nSpeaker: text". The passage alone often
    lacks what a question asks after: who is speaking ("who argues against...?" is answered by
    the speaker, who is not in the quote) and what the article is about (its title)."""
    spoken = f"{speaker}: {text}" if speaker else text
    return f"{title}\n{spoken}" if title else spoken


def rerank(
    reranker: Reranker,
    question: str,
    ranked: Ranked,
    text_of: Callable[[int], str],
    depth: int,
) -> Ranked:
    """`ranked` (row, score) with its first `depth` ordered by `reranker`'s scores, best first
    (equal scores keep the fused order); the rest follow in fused order. Scores stay fusion's.
    RerankError when the reranker's scores are not one finite number per passage: a passage
    must not silently vanish, nor land anywhere by accident."""
    head, tail = ranked[:depth], ranked[depth:]
    if len(head) < 2:
        return ranked  # nothing to reorder: no call
    scores = checked_scores(reranker.scores(question, [text_of(row) for row, _ in head]), len(head))
    order = sorted(range(len(head)), key=lambda i: -scores[i])
    return [head[i] for i in order] + tail


def checked_scores(scores: Sequence[float], expected: int) -> list[float]:
    """`scores` as floats, or RerankError when there are not `expected` finite numbers."""
    if len(scores) != expected:
        raise RerankError(f"the reranker gave {len(scores)} scores for {expected} passages")
    try:
        values = [float(score) for score in scores]
    except (TypeError, ValueError):
        values = [math.nan]
    if any(isinstance(score, bool | str) for score in scores) or not all(map(math.isfinite, values)):
        raise RerankError("the reranker gave a score that is not a finite number")
    return values


class RerankRun:
    """One search's calls to the reranker (None: no reranker). The first failure of any kind
    (RerankError, or any other exception: the reranker is not ours) is kept as `error`, the
    fused order is kept, and the rest of the search is not reranked: a follow-up searches up to
    three earlier questions again, and a reranker that is down must cost a search at most one
    timeout, not four."""

    def __init__(self, reranker: Reranker | None) -> None:
        self.reranker = reranker
        self.error: str | None = None

    def apply(self, question: str, ranked: Ranked, text_of: Callable[[int], str], depth: int) -> Ranked:
        """`ranked` reranked (see `rerank`), or as it is when there is no reranker, or it fails
        now or failed earlier in this search."""
        if self.reranker is None or self.error is not None:
            return ranked
        try:
            return rerank(self.reranker, question, ranked, text_of, depth)
        except Exception as exc:  # noqa: BLE001 - any failure of the reranker keeps the fused order
            self.error = failure_reason(exc)
            log.warning("rerank failed, passages in fused order: %s", self.error)
            return ranked


def failure_reason(exc: Exception) -> str:
    """A short reason for a failed rerank: a RerankError's own message, or the exception."""
    if isinstance(exc, RerankError):
        return str(exc)
    return shorten(f"the reranker failed: {type(exc).__name__}: {exc}")


def shorten(text: str, limit: int = 200) -> str:
    """`text` on one line, at most `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
