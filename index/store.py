"""The on-disk index: versions made of shared, immutable segments, plus a CURRENT pointer.

Layout of INDEX_DIR:
    CURRENT                 name of the served version (replaced atomically)
    segments/<name>/        immutable parts of the index (index/segment.py)
    versions/<name>/        manifest.json: the segments in force, in order, and for each the
                            file of its deleted article positions (deleted/<segment>.npy)
    cache/                  embedding cache (owned by ingest)
    .ingest.lock            held by the one ingest allowed at a time

Adding articles writes one new segment; removing or replacing one marks its old copy deleted
in the segment that holds it. Unchanged segments are named again by the next version, never
rewritten. A version is written under a temporary name, verified, renamed into place, and
only then does CURRENT move; a crash at any point leaves the previous version served.
Segments that no kept version names are removed by `prune`.

This module is the served version and the next one: load it, open it for an update, and
publish the next version (which segments it names, which of their articles are deleted).
The record itself (manifest.json, CURRENT, the embedding check, the format history) is
index/manifest.py; a loaded version, index/version.py; removing what no version needs,
index/prune.py.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.dense import DenseIndex, choose_kind
from index.errors import IndexCorruptError, IndexNotFoundError, IndexWriteError, IngestError
from index.files import fsync_dir, verify_files
from index.manifest import (
    VERSIONS,
    Manifest,
    check_embedding,
    check_version,
    checked_manifest,
    current_version_name,
    next_version_name,
    point_current,
    read_manifest,
    write_manifest,
)
from index.models import EmbeddingSpec
from index.prune import prune, remove_leftovers
from index.records import ArticleRecord, Chunk
from index.segment import (
    SEGMENTS,
    TMP_PREFIX,
    DenseOptions,
    Segment,
    SegmentInfo,
    read_segment_info,
    write_segment,
)
from index.segment_tables import ArticleKeys
from index.version import IndexVersion, deleted_positions, live_chunk_count, load_version_dir


def load_index(
    index_dir: Path, loaded: Mapping[str, Segment] | None = None, *, embedding: EmbeddingSpec | None = None,
) -> IndexVersion:
    """Load and verify the version CURRENT points to. Segments in `loaded` (those of the
    version served now) are used as they are, not read or verified again. `embedding`: refuse
    a version built with another embedding spec (model, provider or prefixes)."""
    name = current_version_name(index_dir)
    if name is None:
        raise IndexNotFoundError(
            f"no index at {index_dir}: build one with `qa-ingest ARTICLES_DIR --index {index_dir}`"
        )
    return load_version_dir(index_dir / VERSIONS / name, loaded, embedding=embedding)


def current_manifest(index_dir: Path) -> Manifest | None:
    name = current_version_name(index_dir)
    return None if name is None else read_manifest(index_dir / VERSIONS / name)


@dataclass
class UpdateBase:
    """What an update needs from the served version: its manifest, each segment's
    segment.json, article keys (memory-mapped) and deleted positions. No dense index,
    postings or article text is opened, and nothing is read per article until asked."""

    manifest: Manifest
    infos: dict[str, SegmentInfo]  # segment name -> its segment.json
    keys: dict[str, ArticleKeys]  # segment name -> its article ids and hashes
    deleted: dict[str, np.ndarray]  # segment name -> deleted article positions

    @property
    def version(self) -> str:
        return self.manifest.version

    def find(self, article_id: str) -> tuple[str, int, str] | None:
        """(segment, position, content hash) of the live copy of `article_id`, or None."""
        for name, keys in reversed(self.keys.items()):  # the newest copy, as ArticleView
            position = keys.find(article_id)
            if position is not None and position not in self._dead[name]:
                return name, position, keys.hashes[position].decode("ascii")
        return None

    @functools.cached_property
    def _dead(self) -> dict[str, set[int]]:
        return {name: set(dead.tolist()) for name, dead in self.deleted.items()}

    @functools.cached_property
    def hashes(self) -> dict[str, str]:
        """Live article id -> content hash, for every article (what a folder diff needs)."""
        out: dict[str, str] = {}
        for name, keys in self.keys.items():
            live = np.ones(len(keys.ids), dtype=bool)
            live[self.deleted[name]] = False
            out.update(zip(np.char.decode(keys.ids[live], "ascii").tolist(),
                           np.char.decode(keys.hashes[live], "ascii").tolist()))
        return out


def open_for_update(index_dir: Path, *, embedding: EmbeddingSpec | None = None) -> UpdateBase | None:
    name = current_version_name(index_dir)
    if name is None:
        return None
    version_dir = index_dir / VERSIONS / name
    manifest = checked_manifest(version_dir, embedding)
    if manifest.files:
        verify_files(version_dir, manifest.files)
    infos: dict[str, SegmentInfo] = {}
    keys: dict[str, ArticleKeys] = {}
    deleted: dict[str, np.ndarray] = {}
    live = 0
    for entry in manifest.segments:
        segment_dir = index_dir / SEGMENTS / entry["name"]
        info = infos[entry["name"]] = read_segment_info(segment_dir)
        keys[entry["name"]] = ArticleKeys.load(segment_dir)
        deleted[entry["name"]] = dead = deleted_positions(version_dir, entry)
        if len(keys[entry["name"]].ids) != info.counts["articles"] or (len(dead) and dead.max() >= info.counts["articles"]):
            raise IndexCorruptError(f"segment {segment_dir}: its article keys or deletions do not match segment.json")
        live += info.counts["articles"] - len(np.unique(dead))
    if live != manifest.counts.get("articles"):
        raise IndexCorruptError(f"index version {version_dir}: its segments do not hold its articles")
    return UpdateBase(manifest, infos, keys, deleted)


@contextlib.contextmanager
def ingest_lock(index_dir: Path) -> Iterator[None]:
    """Only one writer per index directory; a second one fails at once with a clear message."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / ".ingest.lock").open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise IngestError(f"another ingest is already writing to {index_dir}") from exc
            raise
        try:
            # Holding the lock, any temporary folder belongs to a writer that died: clear it
            # now, even if this run ends up publishing nothing.
            remove_leftovers(index_dir)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class NewArticles:
    """Articles for a new segment: sorted by id, their chunks grouped in that order, one
    vector per chunk."""

    articles: list[ArticleRecord]
    chunks: list[Chunk]
    vectors: np.ndarray


def publish(
    index_dir: Path,
    *,
    base: UpdateBase | None,
    new: NewArticles | None,
    remove: Sequence[str] = (),
    model: str,
    chunking: dict[str, Any],
    keep_versions: int = 3,
    dense: DenseOptions | None = None,
    replace: tuple[Sequence[str], SegmentInfo] | None = None,
    embedding: EmbeddingSpec | None = None,
) -> Manifest:
    """Write a new version: `base`'s segments, `new` as one more segment, and `remove` (and
    every article of `new` that `base` holds) marked deleted where `base` holds them. With
    `replace` (a merge), the segments named are replaced, where the first of them stood, by
    the given segment, which holds their live articles. Call under ingest_lock.

    `embedding`: the spec `new`'s vectors were made with (default: `base`'s, or `model` with
    no prefixes); recorded in the version, and it must be `base`'s: one version never mixes
    vectors of two specs."""
    dense = dense or DenseOptions()
    embedding = _publishing_spec(base, model, embedding)
    versions = index_dir / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    name = next_version_name(index_dir)
    tmp = versions / f"{TMP_PREFIX}{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        added = None
        if new is not None:
            added = write_segment(
                index_dir, new.articles, new.chunks, new.vectors, model, dense,
                trained=trained_ivf(index_dir, base, len(new.chunks), dense), embedding=embedding,
            )
        manifest = _write_version(tmp, name, index_dir, base, added, new, remove, replace, embedding, chunking)
        # Verify what is on disk before serving it: the version's own files. A new segment was
        # verified as it was written, and the ones it shares when they were; reading them all
        # again would cost the archive, not the change.
        check_version(tmp, manifest)
        os.rename(tmp, versions / name)
        fsync_dir(versions)
        point_current(index_dir, name)
    except OSError as exc:  # typically a full disk: say so, and leave nothing half-written
        shutil.rmtree(tmp, ignore_errors=True)
        free = shutil.disk_usage(versions).free
        raise IndexWriteError(
            f"could not write index version {name} in {versions}: {exc} ({free} bytes free on "
            "that device); the previous version stays in service"
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune(index_dir, keep_versions)
    return manifest


def _publishing_spec(base: UpdateBase | None, model: str, embedding: EmbeddingSpec | None) -> EmbeddingSpec:
    """The spec a new version records (publish's `embedding`, defaulted), refused when it is
    not `model`'s or not `base`'s."""
    if embedding is None:
        embedding = base.manifest.embedding_spec if base else EmbeddingSpec.from_record(None, model)
    if embedding.model != model:
        raise ValueError(f"publishing vectors of {embedding.describe()} as model {model!r}")
    if base is not None:
        check_embedding(base.manifest, embedding)
    return embedding


def _write_version(
    directory: Path,
    name: str,
    index_dir: Path,
    base: UpdateBase | None,
    added: SegmentInfo | None,
    new: NewArticles | None,
    remove: Sequence[str],
    replace: tuple[Sequence[str], SegmentInfo] | None,
    embedding: EmbeddingSpec,
    chunking: dict[str, Any],
) -> Manifest:
    """Write the version `name` in `directory`: the deletions of its segments, then its manifest."""
    order, deleted = _segments_in_force(base, added, new, remove, replace)
    (directory / "deleted").mkdir()
    entries, counts, dim = _write_deletions(directory, index_dir, base, order, deleted, embedding)
    return write_manifest(
        directory, name, embedding=embedding, dim=dim, chunking=chunking, counts=counts, segments=entries,
    )


def _segments_in_force(
    base: UpdateBase | None,
    added: SegmentInfo | None,
    new: NewArticles | None,
    remove: Sequence[str],
    replace: tuple[Sequence[str], SegmentInfo] | None,
) -> tuple[list[str], dict[str, set[int]]]:
    """The next version's segments in order, each with its deleted article positions:
    `base`'s, the merged segment of `replace` where the first it replaces stood, `added` last;
    `remove` and every article of `new` marked deleted where `base` holds their live copy."""
    order = [entry["name"] for entry in base.manifest.segments] if base else []
    deleted = {segment: set(base.deleted[segment].tolist()) for segment in order} if base else {}
    if replace is not None:
        replaced, merged = replace
        at = order.index(replaced[0])
        order = [s for s in order if s not in replaced]
        order.insert(at, merged.name)
        deleted[merged.name] = set()
    for article_id in list(remove) + ([a.id for a in new.articles] if new else []):
        held = base.find(article_id) if base else None
        if held is not None and held[0] in deleted:
            deleted[held[0]].add(held[1])
    if added is not None:
        order.append(added.name)
        deleted[added.name] = set()
    return order, deleted


def _write_deletions(
    directory: Path,
    index_dir: Path,
    base: UpdateBase | None,
    order: list[str],
    deleted: dict[str, set[int]],
    embedding: EmbeddingSpec,
) -> tuple[list[dict[str, Any]], dict[str, int], int]:
    """Save each segment's deleted positions under `directory`/deleted/ and return the
    manifest's segment entries, its live counts and the vectors' dimension. A segment whose
    every article is deleted is left out: the version no longer needs it."""
    entries = []
    articles = chunks = 0
    dim = 0
    for segment in order:
        info = _segment_info(index_dir, base, segment, embedding)
        dead = sorted(deleted[segment])
        if len(dead) == info.counts["articles"]:
            continue  # every article of it deleted: the version no longer needs it
        entry: dict[str, Any] = {"name": segment, "deleted": None}
        if dead:
            entry["deleted"] = f"deleted/{segment}.npy"
            np.save(directory / entry["deleted"], np.asarray(dead, dtype=np.int32), allow_pickle=False)
        entries.append(entry)
        articles += info.counts["articles"] - len(dead)
        chunks += live_chunk_count(index_dir / SEGMENTS / segment, dead)
        dim = dim or info.dim
    return entries, {"articles": articles, "chunks": chunks}, dim


def _segment_info(index_dir: Path, base: UpdateBase | None, segment: str, embedding: EmbeddingSpec) -> SegmentInfo:
    """segment.json of `segment` (as `base` read it, when it did), refused if its vectors
    were made with another spec than the version's."""
    known = base.infos.get(segment) if base else None
    info = known or read_segment_info(index_dir / SEGMENTS / segment)
    if info.model != embedding.model or info.embedding_spec != embedding:
        raise IndexCorruptError(
            f"segment {segment} was built with {info.embedding_spec.describe()}, not {embedding.describe()}"
        )
    return info


def trained_ivf(index_dir: Path, base: UpdateBase | None, n: int, dense: DenseOptions) -> DenseIndex | None:
    """For a new segment of `n` chunks that will be IVF (a large merge), the largest IVF index
    among the served version's segments, whose trained centroids it reuses to skip k-means."""
    if base is None or choose_kind(n, dense.setting, dense.ann_min_chunks) != "ivf":
        return None
    ivf = [(info.counts["chunks"], name) for name, info in base.infos.items() if info.dense.get("kind") == "ivf"]
    if not ivf:
        return None
    try:
        return DenseIndex.load(index_dir / SEGMENTS / max(ivf)[1] / "dense.faiss")
    except RuntimeError:
        return None
