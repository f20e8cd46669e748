"""A loaded index version: its segments, in the manifest's order, joined into one view of
articles, chunks, vectors, dense and BM25 search, with each segment's deleted articles masked
out, and checked against the manifest's counts before anything is served from it. Which
version to load is the store's business (index/store.py: load_index)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.dense import DenseSegments
from index.errors import IndexCorruptError
from index.files import verify_files
from index.lexical import LexicalIndex
from index.manifest import Manifest, checked_manifest
from index.models import EmbeddingSpec
from index.segment import SEGMENTS, Segment, load_segment
from index.views import ArticleView, ChunkView, VectorRows


@dataclass
class IndexVersion:
    """A loaded, verified index version, ready to search."""

    path: Path
    manifest: Manifest
    segments: dict[str, Segment]
    articles: ArticleView
    chunks: ChunkView
    vectors: VectorRows
    dense: DenseSegments
    lexical: LexicalIndex

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def live_chunks(self) -> int:
        return int(self.chunks.live.sum())

    @functools.cached_property
    def chunk_counts(self) -> dict[str, int]:
        """Live chunks per article id."""
        counts = np.bincount(self.chunks.article_index[self.chunks.live], minlength=len(self.articles.id_array))
        return dict(zip(self.articles.id_array[counts > 0].tolist(), counts[counts > 0].tolist()))


def load_version_dir(
    version_dir: Path, loaded: Mapping[str, Segment] | None = None, *, embedding: EmbeddingSpec | None = None,
) -> IndexVersion:
    if not version_dir.is_dir():
        raise IndexCorruptError(f"index version directory {version_dir} is missing")
    manifest = checked_manifest(version_dir, embedding)
    if manifest.files:
        verify_files(version_dir, manifest.files)
    segments_dir = version_dir.parent.parent / SEGMENTS
    segments: dict[str, Segment] = {}
    for entry in manifest.segments:
        name = entry["name"]
        known = (loaded or {}).get(name)
        segments[name] = known or load_segment(segments_dir / name, expected=manifest.embedding_spec)
    if not segments:
        raise IndexCorruptError(f"index version {version_dir} names no segments")
    deleted = [deleted_positions(version_dir, entry) for entry in manifest.segments]
    ordered = list(segments.values())
    articles = ArticleView(ordered, deleted)
    live = [live_rows(segment.chunks.article_index, dead) for segment, dead in zip(ordered, deleted)]
    chunks = ChunkView(ordered, live, articles)
    masks = [None if m.all() else m for m in live]  # None: nothing deleted, nothing to check
    dense = DenseSegments([s.dense for s in ordered], masks)
    lexical = LexicalIndex([s.lexical for s in ordered], masks)
    version = IndexVersion(
        path=version_dir, manifest=manifest, segments=segments, articles=articles, chunks=chunks,
        vectors=VectorRows(dense), dense=dense, lexical=lexical,
    )
    expected = (manifest.counts.get("articles"), manifest.counts.get("chunks"))
    found = (len(articles), version.live_chunks)
    if found != expected or any(s.info.dim != manifest.dim for s in ordered if len(s.chunks)):
        raise IndexCorruptError(
            f"index version {version_dir} is inconsistent: manifest says {expected[0]} articles "
            f"and {expected[1]} chunks of dimension {manifest.dim}; its segments hold {found[0]} "
            f"live articles and {found[1]} live chunks"
        )
    return version


def deleted_positions(version_dir: Path, entry: Mapping[str, Any]) -> np.ndarray:
    if not entry.get("deleted"):
        return np.zeros(0, dtype=np.int64)
    try:
        return np.load(version_dir / entry["deleted"], allow_pickle=False).astype(np.int64)
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"deletions {version_dir / entry['deleted']} cannot be read: {exc}") from exc


def live_rows(article_index: np.ndarray, deleted_positions: Sequence[int] | np.ndarray) -> np.ndarray:
    """One boolean per chunk row of a segment (`article_index`: each row's article position
    in it): the row's article is not deleted."""
    if not len(deleted_positions):
        return np.ones(len(article_index), dtype=bool)
    return ~np.isin(article_index, deleted_positions)


def live_chunk_count(segment_dir: Path, deleted_positions: Sequence[int] | np.ndarray) -> int:
    article_index = np.load(segment_dir / "table" / "article.npy", mmap_mode="r")
    return int(live_rows(article_index, deleted_positions).sum())
