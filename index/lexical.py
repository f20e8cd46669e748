"""BM25 over chunk text (bm25s), with English stemming and stopwords."""

from __future__ import annotations

import functools
from pathlib import Path

import bm25s
import numpy as np
import Stemmer


@functools.cache
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def analyse(texts: list[str]) -> list[list[str]]:
    """Lower-case, drop English stopwords, stem: the same analysis for documents and queries."""
    return bm25s.tokenize(
        texts, stopwords="en_plus", stemmer=_stemmer(), return_ids=False, show_progress=False
    )


class LexicalIndex:
    def __init__(self, retriever: bm25s.BM25) -> None:
        self._retriever = retriever
        self._vocab: dict[str, int] = retriever.vocab_dict

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        retriever = bm25s.BM25()
        retriever.index(analyse(texts), show_progress=False)
        return cls(retriever)

    def save(self, directory: Path) -> None:
        self._retriever.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        return cls(bm25s.BM25.load(str(directory), show_progress=False, verbosity=0))

    def term_ids(self, query: str) -> list[int]:
        return [self._vocab[t] for t in analyse([query])[0] if t in self._vocab]

    def scores(self, query: str, mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every chunk (zero where `mask` is 0 or no query term occurs)."""
        ids = self.term_ids(query)
        n = self._retriever.scores["num_docs"]
        if not ids:
            return np.zeros(n, dtype=np.float32)
        return self._retriever.get_scores_from_ids(ids, weight_mask=mask)
