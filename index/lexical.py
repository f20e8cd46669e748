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

import functools
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

from index.row_groups import values_at

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
# Chosen on the quality benchmarks, docs/history/quality-2026-11-to-12.md.
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
    frequencies: np.ndarray  # the smallest unsigned int that holds them (uint8: a chunk is short)
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
            # A quarter of float32's bytes on disk and in the page cache (170 MB less resident
            # at 1M chunks); scores are the same, as uint8 converts to float32 exactly.
            frequencies=counts.astype(np.min_scalar_type(counts.max(initial=0))),
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


@dataclass(frozen=True)
class LexicalQuery:
    """Analysed terms to score, each with its weight: idf times how often it is asked."""

    terms: tuple[str, ...]
    weights: np.ndarray  # float32


# Allowed rows up to which a restricted search looks each of them up in the terms' postings
# (a conversation's articles, an article filter) instead of scoring every posting.
DIRECT_ROWS = 2048
# Terms whose live document frequency a version keeps (the idf of every question's terms).
TERM_CACHE = 100_000


class LexicalIndex:
    """Segments searched as one collection: rows are numbered segment after segment, and
    `live[i]` (one boolean per row of segment i, None for all) says which rows count.

    A question's terms and weights are a `LexicalQuery`, and `score` gives its scores."""

    def __init__(
        self,
        segments: Sequence[LexicalSegment],
        live: Sequence[np.ndarray | None] | None = None,
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
        # Per version (deletions change it): counting a common word's live postings for its
        # idf was a pass over them on every question.
        self._df = functools.lru_cache(maxsize=TERM_CACHE)(lambda term: len(self._postings(term)[0]))

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        """One segment over `texts` (a benchmark, a test)."""
        return cls([LexicalSegment.build(texts)])

    def _postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """The live rows that contain `term` and how often, gathered from every segment."""
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
        return self._idf(np.array([self._df(t) for t in terms], dtype=np.float64))

    def query(self, text: str, also: tuple[str, float] | None = None) -> LexicalQuery:
        """`text`'s terms weighted by idf (a term asked twice counts twice), plus those of
        `also` (text, weight) at that weight; terms no live passage holds are left out."""
        counts: Counter[str] = Counter()
        for part, weight in [(text, 1.0)] + ([also] if also else []):
            for term, repeats in Counter(analyse([part])[0]).items():
                counts[term] += weight * repeats
        terms = [t for t in counts if self._df(t)]
        idf = self.idf(terms)
        weights = np.array([np.float32(counts[t] * w) for t, w in zip(terms, idf)], dtype=np.float32)
        return LexicalQuery(tuple(terms), weights)

    def scores(self, query: str | LexicalQuery) -> np.ndarray:
        """BM25 score of every row (zero where no query term occurs, and for rows that are not
        live)."""
        if isinstance(query, str):
            query = self.query(query)
        out = np.zeros(self.size, dtype=np.float32)
        for term, weight in zip(query.terms, query.weights):
            for number, (segment, live) in enumerate(zip(self._segments, self._live)):
                passages, frequencies = segment.postings(term)
                if live is not None and len(passages):
                    keep = live[passages]
                    passages, frequencies = passages[keep], frequencies[keep]
                if not len(passages):
                    continue
                # The segment's slices of the score and length arrays, indexed by its own
                # rows: no offset added to every posting (a fifth of the time at 1M rows).
                low, high = self._offsets[number], self._offsets[number + 1]
                passages = passages.astype(np.intp)
                norms = self._norms[low:high][passages]
                out[low:high][passages] += weight * (frequencies / (frequencies + norms))
        return out

    def score_rows(self, query: LexicalQuery, rows: np.ndarray) -> np.ndarray:
        """The score `scores` gives each of `rows`, looked up in the terms' postings."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(len(rows), dtype=np.float32)
        segment_of = np.searchsorted(self._offsets, rows, side="right") - 1
        for term, weight in zip(query.terms, query.weights):
            for number in np.unique(segment_of):
                segment, live = self._segments[number], self._live[number]
                passages, frequencies = segment.postings(term)
                if not len(passages):
                    continue
                at = np.flatnonzero(segment_of == number)
                # In the postings' own dtype: searchsorted would otherwise convert them all.
                local = (rows[at] - self._offsets[number]).astype(passages.dtype)
                found = np.minimum(np.searchsorted(passages, local), len(passages) - 1)
                hit = passages[found] == local
                if live is not None:
                    hit &= live[local]
                f = frequencies[found[hit]]
                out[at[hit]] += weight * (f / (f + self._norms[rows[at[hit]]]))
        return out

    def score(self, query: LexicalQuery, allowed: np.ndarray | None = None) -> RowScores:
        """`query`'s scores, zero outside `allowed` (ascending rows) when given. A few allowed
        rows (a conversation's articles, an article filter) are looked up in the postings;
        otherwise every row is scored."""
        if allowed is not None and len(allowed) <= DIRECT_ROWS:
            allowed = np.asarray(allowed, dtype=np.int64)
            return RowScores(self.score_rows(query, allowed), allowed)
        scores = self.scores(query)
        if allowed is not None:
            kept = np.zeros_like(scores)
            kept[allowed] = scores[allowed]
            scores = kept
        return RowScores(scores)


@dataclass(frozen=True)
class RowScores:
    """A question's BM25 scores: of every row, or (`rows` given, ascending) of those rows
    only, every other row scoring 0."""

    scores: np.ndarray
    rows: np.ndarray | None = None

    def top(self, n: int, among: np.ndarray | None = None) -> np.ndarray:
        """Rows of the `n` highest positive scores (among `among`, ascending rows), best first."""
        if among is None and self.rows is None:
            return _top_positive(self.scores, n)
        rows = self.rows if among is None else among
        scores = self.at(rows)
        found = np.flatnonzero(scores > 0)
        return np.asarray(rows, dtype=np.int64)[found[np.lexsort((found, -scores[found]))][:n]]

    def at(self, rows: np.ndarray) -> np.ndarray:
        """The score of each of `rows`."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.rows is None:
            return self.scores[rows]
        return values_at(self.rows, self.scores, rows)


def _top_positive(scores: np.ndarray, n: int) -> np.ndarray:
    """Rows of the `n` highest positive scores, best first (ties in any order).

    The n-th largest of the maxima of many equal slices is a bar the n-th largest score
    reaches (n slices have a score at least that high), so only the rows at or above it are
    sorted: two passes over the scores instead of a selection over all of them (at a million
    rows 1 ms; torch.topk took 3 to 5)."""
    size = len(scores)
    width = size // (8 * n) if n > 0 else 0
    rows = None
    if width >= 16:
        whole = size - size % width
        maxima = scores[:whole].reshape(-1, width).max(axis=1)
        if whole < size:
            maxima = np.append(maxima, scores[whole:].max())
        bar = np.partition(maxima, len(maxima) - n)[len(maxima) - n]
        if bar > 0:
            rows = np.flatnonzero(scores >= bar)
    if rows is None:
        rows = np.flatnonzero(scores > 0)
    if len(rows) > n:
        rows = rows[np.argpartition(-scores[rows], n - 1)[:n]]
    return rows[np.argsort(-scores[rows], kind="stable")]
