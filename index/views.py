"""A version's segments seen as one index: rows numbered segment after segment (as the dense
and BM25 indexes over segments number them), articles by their live copy."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from index.dense import DenseSegments
from index.records import ArticleRecord, Chunk
from index.segment import ArticleStore, ChunkTable, Segment


class ArticleView(Mapping[str, ArticleRecord]):
    """The live articles of a version across its segments, in id order. An article's live
    copy is the one in the latest segment that holds it and has not deleted it."""

    def __init__(self, segments: Sequence[Segment], deleted: Sequence[np.ndarray]) -> None:
        owner: dict[str, tuple[ArticleStore, int]] = {}
        for segment, dead in zip(segments, deleted):
            store = segment.articles
            dead_set = set(dead.tolist())
            for position, article_id in enumerate(store.ids):
                if position not in dead_set:
                    owner[article_id] = (store, position)
        self.ids = sorted(owner)
        self._owner = owner
        self._position = {article_id: i for i, article_id in enumerate(self.ids)}
        self.dates = [owner[a][0].dates[owner[a][1]] for a in self.ids]

    def positions(self, article_ids: Sequence[str]) -> np.ndarray:
        """Each id's position, 0 for an id that is not live."""
        return np.array([self._position.get(a, 0) for a in article_ids], dtype=np.int64)

    def __getitem__(self, article_id: str) -> ArticleRecord:
        return self._owner[article_id][0][article_id]

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._owner

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


class ChunkView(Sequence[Chunk]):
    """The chunk rows of a version's segments, numbered segment after segment (as the dense
    and BM25 indexes number them), deleted rows included: `live` says which count. Per-row
    columns as ChunkTable has them; `article_index` points into the ArticleView (a deleted
    row points at position 0: no search returns it)."""

    def __init__(self, segments: Sequence[Segment], live: Sequence[np.ndarray], articles: ArticleView) -> None:
        self._tables = [segment.chunks for segment in segments]
        sizes = [len(table) for table in self._tables]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.live = np.concatenate(list(live) or [np.zeros(0, dtype=bool)])

        def joined(name: str) -> np.ndarray:
            return np.concatenate([getattr(t, name) for t in self._tables] or [np.zeros(0, dtype=object)])

        self.article_ids = joined("article_ids")
        self.speakers = joined("speakers")
        self.sections = joined("sections")
        self.start = joined("start")
        self.end = joined("end")
        index = np.zeros(len(self.live), dtype=np.int64)
        for table, offset in zip(self._tables, self._offsets):
            positions = articles.positions(table.article_list)
            index[offset : offset + len(table)] = positions[table.article_index] if len(positions) else 0
        self.article_index = index

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
        return np.concatenate([t.map_speakers(transform) for t in self._tables] or [np.zeros(0, dtype=object)])


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
