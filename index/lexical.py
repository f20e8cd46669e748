"""BM25 over chunk text (bm25s), with English stemming and stopwords."""

from __future__ import annotations

import functools
import re
import threading
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS

_local = threading.local()


def _stemmer() -> Stemmer.Stemmer:
    # One per thread: the service analyses questions in a thread pool, and a PyStemmer
    # object is not meant to be shared between threads.
    if not hasattr(_local, "stemmer"):
        _local.stemmer = Stemmer.Stemmer("english")
    return _local.stemmer


# Every run of word characters is a token, single ones included ("hepatitis C", "type 1
# diabetes"); bm25s's default pattern drops them. Stopwords still remove "a", "i", "d".
TOKEN_PATTERN = r"(?u)\b\w+\b"
_TOKEN = re.compile(TOKEN_PATTERN)
STOPWORDS = frozenset(STOPWORDS_EN_PLUS)
# BM25 parameters for passages of near-equal length (chunks of at most 128 word pieces):
# weaker length normalisation and term saturation than bm25s's defaults (1.5, 0.75).
# Chosen on the quality benchmarks, docs/quality.md.
K1 = 1.2
B = 0.5


def analyse(texts: list[str]) -> list[list[str]]:
    """Lower-case, split on TOKEN_PATTERN, drop bm25s's English stopwords, stem. For search
    time (a question, a few passages): the tokens `tokenize_corpus` gives, without its fixed
    cost per call (progress bar, vocabulary), which was a tenth of a search's time."""
    stem = _stemmer().stemWords
    return [stem([t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS]) for text in texts]


def tokenize_corpus(texts: list[str]) -> bm25s.tokenization.Tokenized:
    """`analyse` for many texts at once, as token ids and a vocabulary: bm25s stems each
    distinct word once, and indexing from ids skips a pass over every token (30% less time
    to build BM25 over 5,000 SciFact abstracts)."""
    return bm25s.tokenize(
        texts, stopwords="en_plus", stemmer=_stemmer(), token_pattern=TOKEN_PATTERN, show_progress=False
    )


class LexicalIndex:
    def __init__(self, retriever: bm25s.BM25) -> None:
        self._retriever = retriever
        self._vocab: dict[str, int] = retriever.vocab_dict

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        retriever = bm25s.BM25(k1=K1, b=B)
        retriever.index(tokenize_corpus(texts), show_progress=False)
        return cls(retriever)

    def save(self, directory: Path) -> None:
        self._retriever.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        # Memory-mapped: the score matrix (~0.5 GB at a million chunks) stays file-backed page
        # cache, shared and reclaimable, instead of anonymous memory; loading takes 0.2 s, not 13.
        return cls(bm25s.BM25.load(str(directory), mmap=True, show_progress=False, verbosity=0))

    @functools.cached_property
    def _document_frequency(self) -> np.ndarray:
        # bm25s keeps a documents x terms CSC matrix: a term's column length is its df.
        return np.diff(np.asarray(self._retriever.scores["indptr"]))

    def idf(self, terms: list[str]) -> np.ndarray:
        """BM25's idf of analysed `terms`; a term no passage contains gets the highest idf."""
        n = self._retriever.scores["num_docs"]
        known = self._document_frequency
        ids = [self._vocab.get(t, len(known)) for t in terms]
        df = np.array([known[i] if i < len(known) else 0 for i in ids], dtype=np.float64)
        return np.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def term_ids(self, query: str) -> list[int]:
        return [self._vocab[t] for t in analyse([query])[0] if t in self._vocab]

    def scores(self, query: str, mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every chunk (zero where `mask` is 0 or no query term occurs)."""
        ids = self.term_ids(query)
        n = self._retriever.scores["num_docs"]
        if not ids:
            return np.zeros(n, dtype=np.float32)
        return self._retriever.get_scores_from_ids(ids, weight_mask=mask)
