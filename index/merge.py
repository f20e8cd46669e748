"""Merging segments, so that many small ones (one per publish) become a few large ones and
deleted articles are dropped for good. The policy is tiered, after Lucene's
TieredMergePolicy, simplified: segments are grouped into tiers by the order of magnitude of
their live chunks (everything under FLOOR_CHUNKS is one tier), and when a tier holds
SEGMENTS_PER_TIER segments they are merged into one, which lands in the same tier or the
next. A segment whose deleted share passes MAX_DELETED_SHARE is rewritten without them. Each
merge writes one new segment and publishes a version that names it instead of its sources;
the sources are removed once no kept version names them.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index import store
from index.errors import IndexWriteError
from index.manifest import Manifest, VERSIONS
from index.models import EmbeddingSpec
from index.records import ArticleRecord, Chunk
from index.segment import SEGMENTS, DenseOptions, load_segment, write_segment
from index.version import deleted_positions, live_chunk_count

SEGMENTS_PER_TIER = 10
FLOOR_CHUNKS = 1_000
MAX_DELETED_SHARE = 0.3


@dataclass(frozen=True)
class SegmentStats:
    name: str
    chunks: int  # every row, deleted ones included
    live_chunks: int

    @property
    def tier(self) -> int:
        return int(math.log10(max(self.live_chunks, FLOOR_CHUNKS)))


def plan(segments: Sequence[SegmentStats], optimize: bool = False) -> list[str] | None:
    """The segments to merge next, in index order, or None. `optimize`: all of them into one
    (unless that one already has no deletions)."""
    if optimize:
        if len(segments) > 1 or any(s.live_chunks < s.chunks for s in segments):
            return [s.name for s in segments]
        return None
    for segment in segments:
        if segment.chunks and 1 - segment.live_chunks / segment.chunks > MAX_DELETED_SHARE:
            return [segment.name]
    tiers: dict[int, list[SegmentStats]] = {}
    for segment in segments:
        tiers.setdefault(segment.tier, []).append(segment)
    for tier in sorted(tiers):
        members = tiers[tier]
        if len(members) >= SEGMENTS_PER_TIER:
            smallest = {s.name for s in sorted(members, key=lambda s: s.live_chunks)[:SEGMENTS_PER_TIER]}
            return [s.name for s in segments if s.name in smallest]
    return None


def segment_stats(index_dir: Path, manifest: Manifest) -> list[SegmentStats]:
    version_dir = index_dir / VERSIONS / manifest.version
    out = []
    for entry in manifest.segments:
        path = index_dir / SEGMENTS / entry["name"]
        rows = len(np.load(path / "table" / "article.npy", mmap_mode="r"))
        live = live_chunk_count(path, deleted_positions(version_dir, entry))
        out.append(SegmentStats(entry["name"], rows, live))
    return out


def merge(
    index_dir: Path,
    group: Sequence[str],
    *,
    model: str,
    chunking: dict[str, Any],
    keep_versions: int,
    dense: DenseOptions,
    embedding: EmbeddingSpec | None = None,
) -> Manifest:
    """Merge the live articles of the segments `group` of the current version into one
    segment and publish a version with it in their place. Call under ingest_lock.
    `embedding`: refuse a version of another spec (the merged segment keeps the version's)."""
    base = store.open_for_update(index_dir, embedding=embedding)
    if base is None:
        raise ValueError("no index to merge")
    spec = base.manifest.embedding_spec
    # Each live article of the group with its chunks and their vectors, then in id order.
    kept: list[tuple[ArticleRecord, list[Chunk], np.ndarray]] = []
    for name in group:
        segment = load_segment(index_dir / SEGMENTS / name, expected=spec)
        dead = set(base.deleted[name].tolist())
        table = segment.chunks
        order = np.argsort(table.article_index, kind="stable")
        bounds = np.searchsorted(table.article_index[order], np.arange(len(table.article_list) + 1))
        vectors = segment.vectors()
        for position, article_id in enumerate(table.article_list):
            if position in dead:
                continue
            article = segment.articles[article_id]
            rows = order[bounds[position] : bounds[position + 1]]
            pieces = [table.chunk_with_text(int(row), article.text) for row in rows]
            kept.append((article, pieces, np.asarray(vectors[rows])))
    kept.sort(key=lambda item: item[0].id)
    chunks = [chunk for _, pieces, _ in kept for chunk in pieces]
    vectors = np.concatenate([v for _, _, v in kept]) if kept else np.zeros((0, base.manifest.dim), np.float32)
    try:
        merged = write_segment(
            index_dir, [article for article, _, _ in kept], chunks, vectors, model, dense,
            trained=store.trained_ivf(index_dir, base, len(chunks), dense), embedding=spec,
        )
    except OSError as exc:  # typically a full disk: the version before the merge stays served
        free = shutil.disk_usage(index_dir).free
        raise IndexWriteError(
            f"could not write the merge of segments {', '.join(group)}: {exc} ({free} bytes free); "
            "the previous version stays in service"
        ) from exc
    return store.publish(
        index_dir, base=base, new=None, model=model, chunking=chunking,
        keep_versions=keep_versions, dense=dense, replace=(list(group), merged), embedding=spec,
    )


def run_merges(
    index_dir: Path,
    *,
    model: str,
    chunking: dict[str, Any],
    keep_versions: int,
    dense: DenseOptions,
    optimize: bool = False,
    on_merge: Callable[[], None] | None = None,
    embedding: EmbeddingSpec | None = None,
) -> int:
    """Merge as the policy asks until it asks for nothing; the number of merges done.
    `on_merge()` is called as each merge starts. `embedding`: as `merge`."""
    done = 0
    while True:
        manifest = store.current_manifest(index_dir)
        group = plan(segment_stats(index_dir, manifest), optimize) if manifest else None
        if not group:
            return done
        if on_merge:
            on_merge()
        merge(index_dir, group, model=model, chunking=chunking, keep_versions=keep_versions, dense=dense,
              embedding=embedding)
        done += 1
        optimize = False  # one merge of everything is all --optimize asks for
