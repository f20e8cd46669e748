"""A version's segments seen as one index: rows numbered segment after segment (as the dense
and BM25 indexes over segments number them), articles by their live copy."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from index.dense import DenseSegments
from index.records import ArticleRecord, Chunk
from index.segment import Segment
from index.segment_tables import ArticleStore, ChunkTable


class ArticleView(Mapping[str, ArticleRecord]):
    """The live articles of a version across its segments. Articles are numbered segment after
    segment, deleted ones included, as chunk rows are: `dates[i]`, `live[i]` and a chunk's
    `article_index` use that numbering. Nothing is built per article: a swap to a version
    that shares its segments joins a few arrays (a dict over every id was 2 s and 200 MB at
    a million articles). An article's live copy is in the latest segment that holds it and
    has not deleted it."""

    def __init__(self, segments: Sequence[Segment], deleted: Sequence[np.ndarray]) -> None:
        self._stores = [segment.articles for segment in segments]
        sizes = [len(store) for store in self._stores]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.live = np.ones(int(self.offsets[-1]), dtype=bool)
        for offset, dead in zip(self.offsets, deleted):
            self.live[offset + np.asarray(dead, dtype=np.int64)] = False
        self.dates = _joined([store.dates for store in self._stores])
        self._count = int(self.live.sum())

    def _locate(self, article_id: str) -> tuple[ArticleStore, int] | None:
        """The live copy's store and its number in the view's numbering."""
        for store, offset in zip(reversed(self._stores), reversed(self.offsets[:-1])):
            position = store.find(article_id)
            if position is not None and self.live[offset + position]:
                return store, int(offset + position)
        return None

    def number(self, article_id: str) -> int | None:
        """The live copy's number (what a chunk's `article_index` holds), None if there is none."""
        found = self._locate(article_id)
        return None if found is None else found[1]

    @functools.cached_property
    def ids(self) -> list[str]:
        """Live ids, sorted (built on first use: listing articles, counting their chunks)."""
        return sorted(self.id_array[self.live].tolist())

    @functools.cached_property
    def id_array(self) -> np.ndarray:
        """Every article's id in the view's numbering, deleted ones included."""
        return _joined([store.id_array for store in self._stores])

    def __getitem__(self, article_id: str) -> ArticleRecord:
        found = self._locate(article_id)
        if found is None:
            raise KeyError(article_id)
        return found[0][article_id]

    def __contains__(self, article_id: object) -> bool:
        return isinstance(article_id, str) and self._locate(article_id) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return self._count


def _joined(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate(list(arrays)) if arrays else np.zeros(0, dtype=object)


class ChunkView(Sequence[Chunk]):
    """The chunk rows of a version's segments, numbered segment after segment (as the dense
    and BM25 indexes number them), deleted rows included: `live` says which count. Per-row
    columns the searcher filters on, joined; `article_index` is in the ArticleView's
    numbering."""

    def __init__(self, segments: Sequence[Segment], live: Sequence[np.ndarray], articles: ArticleView) -> None:
        self._tables = [segment.chunks for segment in segments]
        sizes = [len(table) for table in self._tables]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.live = np.concatenate(list(live) or [np.zeros(0, dtype=bool)])
        self.article_ids = _joined([t.article_ids for t in self._tables])
        self.sections = _joined([t.sections for t in self._tables])
        self.article_index = np.concatenate(
            [t.article_index.astype(np.int64) + offset for t, offset in zip(self._tables, articles.offsets)]
            or [np.zeros(0, dtype=np.int64)]
        )

    def __len__(self) -> int:
        return len(self.live)

    def _locate(self, row: int) -> tuple[ChunkTable, int]:
        if row < 0:
            row += len(self)
        segment = int(np.searchsorted(self._offsets, row, side="right")) - 1
        return self._tables[segment], row - int(self._offsets[segment])

    def __getitem__(self, row):  # int -> Chunk, slice -> list[Chunk]
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        table, local = self._locate(int(row))
        return table[local]

    def live_chunks(self) -> Iterator[Chunk]:
        """The chunks that count, in row order (the rows of deleted articles skipped)."""
        for row in np.flatnonzero(self.live):
            yield self[int(row)]

    def map_speakers(self, transform) -> np.ndarray:
        return _joined([t.map_speakers(transform) for t in self._tables])


class VectorRows:
    """`version.vectors[rows]`: rows reconstructed from the dense indexes, their only copy."""

    def __init__(self, dense: DenseSegments) -> None:
        self._dense = dense

    @property
    def shape(self) -> tuple[int, int]:
        return (self._dense.size, self._dense.dim)

    def __len__(self) -> int:
        return self._dense.size

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """Every row (a full float32 copy: for tools and tests, not for serving)."""
        matrix = self._dense.vectors(np.arange(self._dense.size))
        return matrix if dtype is None else matrix.astype(dtype)

    def __getitem__(self, rows) -> np.ndarray:
        if isinstance(rows, (int, np.integer)):
            return self._dense.vectors([int(rows)])[0]
        if isinstance(rows, slice):
            rows = range(*rows.indices(self._dense.size))
        return self._dense.vectors(np.asarray(rows, dtype=np.int64))
