"""BM25 over passages held in segments, scored with collection-wide statistics.

A segment stores term frequencies and passage lengths, not scores: a term's idf and the
average passage length belong to the whole collection (every live passage of every segment),
so passages split over several segments, with some of them deleted, score exactly as the
same live passages indexed at once, and adding a segment or deleting a passage rewrites no
other segment. Lucene's BM25, as bm25s computes it by default (Kamphuis et al., 2020):
idf = ln(1 + (N - df + 0.5) / (df + 0.5)), term part = tf / (tf + k1 (1 - b + b dl / avgdl)).
bm25s still does the analysis of a segment's texts (it stems each distinct word once).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
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
    distinct word once (30% less time than `analyse` over 5,000 SciFact abstracts)."""
    return bm25s.tokenize(
        texts, stopwords="en_plus", stemmer=_stemmer(), token_pattern=TOKEN_PATTERN, show_progress=False
    )


_ARRAYS = ("indptr", "passages", "frequencies", "lengths")


@dataclass(frozen=True)
class LexicalSegment:
    """Postings of one segment's passages, by term: term t's passages are
    `passages[indptr[t]:indptr[t + 1]]` (ascending), with its count in each in `frequencies`."""

    terms: dict[str, int]  # analysed term -> its row of indptr
    indptr: np.ndarray  # int64, len(terms) + 1
    passages: np.ndarray  # int32, row of the passage within the segment
    frequencies: np.ndarray  # float32
    lengths: np.ndarray  # int32, analysed terms of each passage

    @classmethod
    def build(cls, texts: list[str]) -> LexicalSegment:
        tokenized = tokenize_corpus(texts)
        lengths = np.fromiter(map(len, tokenized.ids), dtype=np.int64, count=len(texts))
        flat = np.fromiter(
            (t for ids in tokenized.ids for t in ids), dtype=np.int64, count=int(lengths.sum())
        )
        passage_of = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        # One sort by (term, passage) gives every posting list, in passage order, with its counts.
        keys, counts = np.unique(flat * max(len(texts), 1) + passage_of, return_counts=True)
        term_of = keys // max(len(texts), 1)
        indptr = np.searchsorted(term_of, np.arange(len(tokenized.vocab) + 1)).astype(np.int64)
        return cls(
            terms=dict(tokenized.vocab),
            indptr=indptr,
            passages=(keys % max(len(texts), 1)).astype(np.int32),
            frequencies=counts.astype(np.float32),
            lengths=lengths.astype(np.int32),
        )

    def __len__(self) -> int:
        return len(self.lengths)

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """The passages that contain `term`, and how often."""
        row = self.terms.get(term)
        if row is None:
            return _NO_PASSAGES, _NO_FREQUENCIES
        start, end = self.indptr[row], self.indptr[row + 1]
        return self.passages[start:end], self.frequencies[start:end]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True)
        terms = sorted(self.terms, key=self.terms.__getitem__)
        (directory / "terms.json").write_text(json.dumps(terms), encoding="utf-8")
        for name in _ARRAYS:
            np.save(directory / f"{name}.npy", getattr(self, name), allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> LexicalSegment:
        # Memory-mapped: the postings stay file-backed page cache, shared and reclaimable.
        terms = json.loads((directory / "terms.json").read_text(encoding="utf-8"))
        arrays = {
            name: np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            for name in _ARRAYS
        }
        segment = cls(terms={t: i for i, t in enumerate(terms)}, **arrays)
        if len(segment.indptr) != len(terms) + 1 or segment.indptr[-1] != len(segment.passages):
            raise ValueError(f"{directory}: postings do not match the term list")
        return segment


_NO_PASSAGES = np.zeros(0, dtype=np.int32)
_NO_FREQUENCIES = np.zeros(0, dtype=np.float32)


class LexicalIndex:
    """Segments searched as one collection: rows are numbered segment after segment, and
    `live[i]` (one boolean per row of segment i, None for all) says which rows count."""

    def __init__(
        self, segments: Sequence[LexicalSegment], live: Sequence[np.ndarray | None] | None = None
    ) -> None:
        self._segments = list(segments)
        live = list(live) if live is not None else [None] * len(self._segments)
        if len(live) != len(self._segments):
            raise ValueError("one live mask per segment")
        sizes = [len(segment) for segment in self._segments]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.size = int(self._offsets[-1])
        self._live = [None if mask is None else np.asarray(mask, dtype=bool) for mask in live]
        live_lengths = [
            seg.lengths if mask is None else seg.lengths[mask]
            for seg, mask in zip(self._segments, self._live)
        ]
        self.live_count = sum(len(lengths) for lengths in live_lengths)
        total = sum(int(np.sum(lengths, dtype=np.int64)) for lengths in live_lengths)
        average = total / self.live_count if self.live_count and total else 1.0
        # The length part of the term score depends only on the passage: once per version,
        # one array over every segment's rows.
        self._norms = np.concatenate(
            [(K1 * (1 - B + B * seg.lengths / average)).astype(np.float32) for seg in self._segments]
            or [np.zeros(0, dtype=np.float32)]
        )

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        """One segment over `texts` (a benchmark, a test)."""
        return cls([LexicalSegment.build(texts)])

    def _postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """The live rows that contain `term` (their number is its document frequency) and
        how often, gathered from every segment."""
        rows, frequencies = [], []
        for offset, segment, live in zip(self._offsets, self._segments, self._live):
            passages, counts = segment.postings(term)
            if live is not None and len(passages):
                keep = live[passages]
                passages, counts = passages[keep], counts[keep]
            if len(passages):
                rows.append(passages + offset if offset else passages)
                frequencies.append(counts)
        if len(rows) == 1:
            return rows[0], frequencies[0]
        if not rows:
            return _NO_PASSAGES, _NO_FREQUENCIES
        return np.concatenate(rows), np.concatenate(frequencies)

    def _idf(self, df: np.ndarray) -> np.ndarray:
        return np.log(1.0 + (self.live_count - df + 0.5) / (df + 0.5))

    def idf(self, terms: list[str]) -> np.ndarray:
        """BM25's idf of analysed `terms`; a term no passage contains gets the highest idf."""
        return self._idf(np.array([len(self._postings(t)[0]) for t in terms], dtype=np.float64))

    def scores(self, query: str, mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every row (zero where `mask` is 0, where no query term occurs, and
        for rows that are not live). A term asked twice counts twice."""
        out = np.zeros(self.size, dtype=np.float32)
        for term, repeats in Counter(analyse([query])[0]).items():
            rows, frequencies = self._postings(term)
            if not len(rows):
                continue
            weight = np.float32(repeats * self._idf(np.float64(len(rows))))
            out[rows] += weight * (frequencies / (frequencies + self._norms[rows]))
        if mask is not None:
            out *= mask
        return out
