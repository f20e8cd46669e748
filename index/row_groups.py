"""Sets of rows the searcher restricts or favours, without a pass over every row per question.

A filter ("this article", "this speaker", comments) or a score bonus is a sorted array of row
numbers, looked up in groups built once per version, so a question's cost grows with the rows
it names, not with the collection."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NO_ROWS = np.zeros(0, dtype=np.int64)


class RowGroups:
    """Rows grouped by an integer key per row: `rows(k)` is every row whose key is k, ascending."""

    def __init__(self, keys: np.ndarray, count: int | None = None) -> None:
        keys = np.asarray(keys, dtype=np.int64)
        count = int(keys.max()) + 1 if count is None and len(keys) else (count or 0)
        self._order = np.argsort(keys, kind="stable")
        self._bounds = np.searchsorted(keys[self._order], np.arange(count + 1))

    def rows(self, key: int) -> np.ndarray:
        if not 0 <= key < len(self._bounds) - 1:
            return NO_ROWS
        return self._order[self._bounds[key] : self._bounds[key + 1]]

    def union(self, keys: np.ndarray) -> np.ndarray:
        """The rows of every key in `keys`, ascending."""
        keys = np.asarray(keys, dtype=np.int64)
        keys = keys[(keys >= 0) & (keys < len(self._bounds) - 1)]
        if not len(keys):
            return NO_ROWS
        starts, ends = self._bounds[keys], self._bounds[keys + 1]
        lengths = ends - starts
        positions = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(
            starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths
        )
        return np.sort(self._order[positions])


def values_at(sorted_rows: np.ndarray, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`values[i]` for each of `rows` that is `sorted_rows[i]`, 0 for the others."""
    if not len(sorted_rows):
        return np.zeros(len(rows), dtype=values.dtype)
    found = np.minimum(np.searchsorted(sorted_rows, rows), len(sorted_rows) - 1)
    return np.where(sorted_rows[found] == rows, values[found], values.dtype.type(0))


def intersect(*row_sets: np.ndarray | None) -> np.ndarray | None:
    """Rows in every given set (None: no restriction); None when no set is given."""
    present = [rows for rows in row_sets if rows is not None]
    if not present:
        return None
    out = present[0]
    for rows in present[1:]:
        out = np.intersect1d(out, rows, assume_unique=True)
    return out


@dataclass(frozen=True)
class RowBonus:
    """A score bonus for some rows: `values[i]` for `rows[i]` (ascending), 0 elsewhere."""

    rows: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, rows: np.ndarray, value: float) -> RowBonus | None:
        if not len(rows):
            return None
        return cls(np.asarray(rows, dtype=np.int64), np.full(len(rows), value, dtype=np.float32))

    @classmethod
    def total(cls, *bonuses: RowBonus | None) -> RowBonus | None:
        """The sum of the bonuses that apply, or None when none does."""
        present = [b for b in bonuses if b is not None]
        if len(present) <= 1:
            return present[0] if present else None
        rows, position = np.unique(np.concatenate([b.rows for b in present]), return_inverse=True)
        values = np.bincount(position, weights=np.concatenate([b.values for b in present]))
        return cls(rows, values.astype(np.float32))

    @property
    def largest(self) -> float:
        return float(self.values.max())

    def at(self, rows: np.ndarray) -> np.ndarray:
        """The bonus of each of `rows`."""
        return values_at(self.rows, self.values, rows)
