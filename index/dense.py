"""Dense retrieval with FAISS: inner product over L2-normalised vectors (cosine similarity).

The index type follows the index size (`choose_kind`): exact flat search for small indexes,
an inverted file over 8-bit scalar-quantised vectors (IVF-SQ8) for large ones, where a flat
scan of every vector per question is too slow and float32 vectors (1.5 GB per million 384-d
chunks) do not fit the memory budget. HNSW (also over SQ8) can be asked for by setting.

The FAISS index is the only in-memory copy of the vectors: `vectors(rows)` reconstructs rows
from it (exactly for flat, to within the 8-bit quantisation step for SQ8, about 1e-3 in
cosine), so a version never holds the float32 matrix and a FAISS copy side by side.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from index.settings import DenseIndexSetting

DenseKind = Literal["flat", "ivf", "hnsw"]

# A filter that leaves at most this many rows is searched exactly over just those rows:
# cheaper than an approximate search, and an ANN search with a restrictive filter would
# otherwise find few or none of the allowed rows in the lists (or graph nodes) it visits.
EXACT_SUBSET_MAX = 50_000


def set_query_threads(threads: int) -> None:
    """Threads FAISS, and torch if this process has loaded it, use within one question
    (process-wide; the encoder takes its own count, `Encoder.for_settings`). A server answers
    many questions at once, so one thread each: see qa_service/cli.py for the measurements."""
    faiss.omp_set_num_threads(threads)
    if "torch" in sys.modules:  # never imported for this: a server without torch stays so
        sys.modules["torch"].set_num_threads(threads)


def choose_kind(n: int, setting: DenseIndexSetting = "auto", ann_min_chunks: int = 50_000) -> DenseKind:
    """`setting` unless it is "auto"; then flat below `ann_min_chunks` vectors, else IVF."""
    if setting != "auto":
        return setting
    return "ivf" if n >= ann_min_chunks else "flat"


def ivf_lists(n: int) -> int:
    """Number of IVF lists: about 2 * sqrt(n), a power of two, so a list holds ~sqrt(n)/2."""
    return max(16, 2 ** round(math.log2(max(1.0, 2 * math.sqrt(n)))))


def default_nprobe(nlist: int) -> int:
    """Lists visited per question. Measured recall@10 against exact search (docs/benchmarks.md):
    100k chunks, 512 lists: 0.91 at nprobe 16, 0.94 at 32, 0.97 at 64 (0.8 ms); 1M chunks,
    2048 lists: 0.967 at 32, 0.978 at 64 (1.8 ms), 0.982 at 128 (3.5 ms)."""
    return min(nlist, max(64, nlist // 32))


class DenseIndex:
    def __init__(self, index: faiss.Index) -> None:
        self._index = index
        ivf = _as_ivf(index)
        if ivf is not None and ivf.direct_map.type == faiss.DirectMap.NoMap:
            ivf.make_direct_map()  # row -> (list, offset), needed by reconstruct
        self._ivf = ivf
        self.kind: DenseKind = (
            "ivf" if ivf is not None else "hnsw" if isinstance(index, faiss.IndexHNSW) else "flat"
        )

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        kind: DenseKind = "flat",
        *,
        nprobe: int | None = None,
        ef_search: int = 64,
        trained: DenseIndex | None = None,
    ) -> DenseIndex:
        """An index of `vectors` (row i gets id i). `trained`: a previous IVF index of similar
        size whose coarse centroids and quantiser are reused, so a republish skips k-means."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        if kind == "flat" or n == 0:
            index: faiss.Index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 64
            index.hnsw.efSearch = ef_search
            index.train(vectors)
        elif kind == "ivf":
            nlist = ivf_lists(n)
            reuse = trained is not None and _as_ivf(trained._index) is not None
            if reuse and _as_ivf(trained._index).nlist == nlist:
                index = faiss.clone_index(trained._index)
                index.reset()
            else:
                quantizer = faiss.IndexFlatIP(dim)
                index = faiss.IndexIVFScalarQuantizer(
                    quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
                )
                index.cp.niter = 10  # k-means converges well enough for routing; 25 costs 2.5x
                # ~40 training points per list (FAISS's own floor is 39): enough for routing,
                # and k-means on all of a million vectors would take minutes on two cores.
                sample = min(n, 40 * nlist)
                rng = np.random.default_rng(0)
                rows = np.sort(rng.choice(n, sample, replace=False)) if sample < n else slice(None)
                index.train(vectors[rows])
            index.nprobe = nprobe or default_nprobe(nlist)
        else:
            raise ValueError(f"unknown dense index kind {kind!r}")
        if n:
            index.add(vectors)
        return cls(index)

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> DenseIndex:
        return cls(faiss.read_index(str(path)))

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def exact(self) -> bool:
        return self.kind == "flat"

    def set_search_params(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Query-time effort: IVF lists visited (default `default_nprobe`), HNSW candidates."""
        ivf = self._ivf
        if ivf is not None:
            ivf.nprobe = min(int(nprobe or default_nprobe(ivf.nlist)), ivf.nlist)
        if isinstance(self._index, faiss.IndexHNSW) and ef_search:
            self._index.hnsw.efSearch = int(ef_search)

    def vectors(self, rows: np.ndarray | list[int]) -> np.ndarray:
        """The stored vectors of `rows` (float32, shape (len(rows), dim))."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._index.reconstruct_batch(rows)

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` (row ids, cosine scores), restricted to `allowed` row ids when given."""
        k = min(k, self.size if allowed is None else len(allowed))
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        query = query.reshape(1, -1).astype(np.float32)
        params = None
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=np.int64)
            if not self.exact and len(allowed) <= EXACT_SUBSET_MAX:
                return self._search_subset(query[0], k, allowed)
            selector = faiss.IDSelectorBatch(allowed)
            ivf = self._ivf
            if ivf is not None:
                # A filter keeping a fraction f of rows leaves ~f of each visited list: visit
                # 1/f times as many lists to see as many candidates as an unfiltered search.
                widen = self.size / max(1, len(allowed))
                nprobe = min(ivf.nlist, int(math.ceil(ivf.nprobe * widen)))
                params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
            elif isinstance(self._index, faiss.IndexHNSW):
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(k, self._index.hnsw.efSearch))
            else:
                params = faiss.SearchParameters(sel=selector)
        scores, ids = self._index.search(query, k, params=params)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def _search_subset(self, query: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = self.vectors(allowed) @ query
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return allowed[top], scores[top].astype(np.float32)


def _as_ivf(index: faiss.Index) -> faiss.IndexIVF | None:
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


class DenseSegments:
    """Dense indexes of segments searched as one: rows are numbered segment after segment
    (as `LexicalIndex` numbers them), and `live[i]` (a boolean per row of segment i, None for
    all) says which rows may be returned. Each segment is searched with its own index (exact
    when small, approximate when large) and the results merged by score."""

    def __init__(self, segments: Sequence[DenseIndex], live: Sequence[np.ndarray | None] | None = None) -> None:
        if not segments:
            raise ValueError("at least one dense segment")
        self._segments = list(segments)
        self._live = list(live) if live is not None else [None] * len(self._segments)
        if len(self._live) != len(self._segments):
            raise ValueError("one live mask per segment")
        self._dead = [0 if m is None else int(len(m) - np.count_nonzero(m)) for m in self._live]
        self._offsets = np.concatenate([[0], np.cumsum([s.size for s in self._segments])]).astype(np.int64)
        self.size = int(self._offsets[-1])
        self.dim = self._segments[0].dim

    @property
    def kind(self) -> DenseKind:
        """The kind of the largest segment's index (what most rows are searched with)."""
        return max(self._segments, key=lambda s: s.size).kind

    def set_search_params(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        for segment in self._segments:
            segment.set_search_params(nprobe, ef_search)

    def vectors(self, rows: np.ndarray | list[int]) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(self._segments) == 1:
            return self._segments[0].vectors(rows)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        owner = np.searchsorted(self._offsets, rows, side="right") - 1
        for i in np.unique(owner):
            at = owner == i
            out[at] = self._segments[i].vectors(rows[at] - self._offsets[i])
        return out

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top `k` live (row ids, cosine scores), restricted to `allowed` row ids when given."""
        rows, scores = [], []
        allowed = None if allowed is None else np.sort(np.asarray(allowed, dtype=np.int64))
        for i, segment in enumerate(self._segments):
            start, end = self._offsets[i], self._offsets[i + 1]
            live = self._live[i]
            local = None
            if allowed is not None:
                local = allowed[np.searchsorted(allowed, start) : np.searchsorted(allowed, end)] - start
                if live is not None:
                    local = local[live[local]]
                if not len(local):
                    continue
            # Deleted rows are dropped after the search, so ask for as many more as there are.
            extra = self._dead[i] if local is None else 0
            ids, found = segment.search(query, k + extra, local)
            if live is not None and local is None:
                keep = live[ids]
                ids, found = ids[keep], found[keep]
            rows.append(ids[:k] + start)
            scores.append(found[:k])
        if len(rows) <= 1:
            return (rows[0], scores[0]) if rows else (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        rows_all, scores_all = np.concatenate(rows), np.concatenate(scores)
        order = np.lexsort((rows_all, -scores_all))[:k]
        return rows_all[order], scores_all[order]
