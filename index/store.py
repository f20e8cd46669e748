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

Each version and segment records the embedding spec its vectors were made with (model or
endpoint model, and prefixes: index/models.py); `check_embedding` refuses another. A version
written before specs were recorded reads as its model without prefixes.

Format 5 keeps each segment's article ids and hashes as memory-mapped arrays (keys/), so an
update that names its articles does not read every id; format 4 (issue 15) brought segments;
format 3 BM25 postings with collection statistics
(index/lexical.py). An older index is rebuilt by the next qa-ingest from its vector cache.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from index.dense import DenseIndex, DenseSegments, choose_kind
from index.errors import (
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexWriteError,
    IngestError,
)
from index.files import checksum_files, fsync_dir, verify_files, write_json
from index.lexical import LexicalIndex
from index.models import EmbeddingSpec
from index.records import ArticleRecord, Chunk
from index.segment import (
    SEGMENTS,
    TMP_PREFIX,
    ArticleKeys,
    DenseOptions,
    Segment,
    SegmentInfo,
    load_segment,
    read_segment_info,
    write_segment,
)
from index.views import ArticleView, ChunkView, VectorRows

FORMAT_VERSION = 5
CURRENT = "CURRENT"
VERSIONS = "versions"
_VERSION_RE = re.compile(r"^v(\d{6})-\d{8}T\d{6}Z$")


@dataclass
class Manifest:
    version: str
    model: str
    dim: int
    chunking: dict[str, Any]
    counts: dict[str, int]  # live articles and chunks
    # In order: {"name", "deleted": file of deleted article positions or None}.
    segments: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # the version's own files -> sha256
    format_version: int = FORMAT_VERSION
    created: str = ""
    build: dict[str, str] = field(default_factory=dict)
    # EmbeddingSpec.record(): the model and prefixes that made the vectors; {} in a version
    # written before specs were recorded (a local model, no prefixes).
    embedding: dict[str, str] = field(default_factory=dict)

    @property
    def embedding_spec(self) -> EmbeddingSpec:
        return EmbeddingSpec.from_record(self.embedding or None, self.model)


# Which setting changes each part of an EmbeddingSpec, for the message of a mismatch.
_SPEC_SETTINGS = {
    "provider": "QA_EMBED_URL",
    "model": "QA_MODEL / QA_EMBED_MODEL",
    "query_prefix": "QA_QUERY_PREFIX",
    "document_prefix": "QA_DOCUMENT_PREFIX",
}


def check_embedding(manifest: Manifest, spec: EmbeddingSpec, dim: int | None = None,
                    source: Path | str | None = None) -> None:
    """Refuse (IndexMismatchError) to use an index version's vectors with an encoder of
    another spec, or one whose vectors (`dim`, when known) are of another length: questions
    and passages embedded differently are not comparable, and their scores would be silently
    wrong. `source` names the index in the message (default: the version's name)."""
    where = f"index {source}" if source is not None else f"index version {manifest.version}"
    built = manifest.embedding_spec
    if built != spec:
        differ = [name for name in _SPEC_SETTINGS if getattr(built, name) != getattr(spec, name)]
        raise IndexMismatchError(
            f"{where} was built with {built.describe()} but {spec.describe()} is configured; "
            f"rebuild with qa-ingest or change {', '.join(_SPEC_SETTINGS[name] for name in differ)}"
        )
    if dim is not None and manifest.dim and dim != manifest.dim:
        raise IndexMismatchError(
            f"{where} holds {manifest.dim}-dimensional vectors of {built.describe()}, but the "
            f"configured encoder gives {dim}-dimensional ones: the endpoint serves another model "
            "under that name; point QA_EMBED_URL at the one the index was built with, or build "
            "a new index (another --index folder) with qa-ingest"
        )


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


def current_version_name(index_dir: Path) -> str | None:
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name or None


def read_manifest(version_dir: Path) -> Manifest:
    path = version_dir / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"{path} is missing") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        found = data.get("format_version") if isinstance(data, dict) else None
        raise IndexMismatchError(
            f"{path}: index format {found!r}, this program reads format {FORMAT_VERSION}; "
            "rebuild the index with qa-ingest"
        )
    try:
        return Manifest(**data)
    except TypeError as exc:
        raise IndexCorruptError(f"{path} has unexpected fields: {exc}") from exc


def current_manifest(index_dir: Path) -> Manifest | None:
    name = current_version_name(index_dir)
    return None if name is None else read_manifest(index_dir / VERSIONS / name)


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


def load_version_dir(
    version_dir: Path, loaded: Mapping[str, Segment] | None = None, *, embedding: EmbeddingSpec | None = None,
) -> IndexVersion:
    if not version_dir.is_dir():
        raise IndexCorruptError(f"index version directory {version_dir} is missing")
    manifest = _checked_manifest(version_dir, embedding)
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


def _checked_manifest(version_dir: Path, embedding: EmbeddingSpec | None) -> Manifest:
    """The version's manifest, refused if it was built with another embedding spec than `embedding`."""
    manifest = read_manifest(version_dir)
    if embedding is not None:
        check_embedding(manifest, embedding, source=version_dir)
    return manifest


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
    manifest = _checked_manifest(version_dir, embedding)
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


def _package_versions() -> dict[str, str]:
    versions = {}
    for name in ("faiss-cpu", "bm25s", "sentence-transformers", "torch"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def _next_version_name(index_dir: Path) -> str:
    seqs = [0]
    versions = index_dir / VERSIONS
    if versions.is_dir():
        for entry in versions.iterdir():
            match = _VERSION_RE.match(entry.name)
            if match:
                seqs.append(int(match.group(1)))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"v{max(seqs) + 1:06d}-{stamp}"


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
            _remove_leftovers(index_dir)
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
    if embedding is None:
        embedding = base.manifest.embedding_spec if base else EmbeddingSpec.from_record(None, model)
    if embedding.model != model:
        raise ValueError(f"publishing vectors of {embedding.describe()} as model {model!r}")
    if base is not None:
        check_embedding(base.manifest, embedding)
    versions = index_dir / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    name = _next_version_name(index_dir)
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
        _check_version(tmp, manifest)
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
    model = embedding.model
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
    (directory / "deleted").mkdir()
    entries = []
    articles = chunks = 0
    dim = 0
    for segment in order:
        known = base.infos.get(segment) if base else None
        info = known or read_segment_info(index_dir / SEGMENTS / segment)
        if info.model != model or info.embedding_spec != embedding:
            raise IndexCorruptError(
                f"segment {segment} was built with {info.embedding_spec.describe()}, not {embedding.describe()}"
            )
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
    manifest = Manifest(
        version=name,
        model=model,
        dim=dim,
        chunking=chunking,
        counts={"articles": articles, "chunks": chunks},
        segments=entries,
        files=checksum_files(directory),
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        build=_package_versions(),
        embedding=embedding.record(),
    )
    write_json(directory / "manifest.json", asdict(manifest))
    fsync_dir(directory)
    return manifest


def _check_version(directory: Path, manifest: Manifest) -> None:
    written = read_manifest(directory)
    if written.files:
        verify_files(directory, written.files)
    if written != manifest:
        raise IndexCorruptError(f"{directory / 'manifest.json'} does not read back as written")


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


def point_current(index_dir: Path, name: str) -> None:
    tmp = index_dir / f"{CURRENT}.tmp"
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, index_dir / CURRENT)
    fsync_dir(index_dir)


def prune(index_dir: Path, keep: int) -> None:
    """Drop leftovers of interrupted writes, all but the newest `keep` versions (never the
    current one), and every segment that no remaining version names."""
    versions = index_dir / VERSIONS
    current = current_version_name(index_dir)
    names = sorted(e.name for e in versions.iterdir() if _VERSION_RE.match(e.name))
    _remove_leftovers(index_dir)
    for old in names[:-keep]:
        if old != current:
            shutil.rmtree(versions / old, ignore_errors=True)
    named: set[str] = set()
    for entry in versions.iterdir():
        if _VERSION_RE.match(entry.name):
            try:
                named.update(s["name"] for s in read_manifest(entry).segments)
            except (IndexCorruptError, IndexMismatchError):
                continue
    segments = index_dir / SEGMENTS
    if segments.is_dir():
        for entry in segments.iterdir():
            if not entry.name.startswith(TMP_PREFIX) and entry.name not in named:
                shutil.rmtree(entry, ignore_errors=True)


def _remove_leftovers(index_dir: Path) -> None:
    """Temporary folders of interrupted writes. Call only while holding ingest_lock."""
    for folder in (index_dir / VERSIONS, index_dir / SEGMENTS):
        if folder.is_dir():
            for entry in folder.iterdir():
                if entry.name.startswith(TMP_PREFIX):
                    shutil.rmtree(entry, ignore_errors=True)
