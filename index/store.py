"""The on-disk index: immutable version directories plus a CURRENT pointer.

Layout of INDEX_DIR:
    CURRENT                 name of the served version (replaced atomically)
    versions/<name>/        manifest.json, articles.jsonl, table/, vectors.npy,
                            dense.faiss, lexical/ -- every file's sha256 is in the manifest
    cache/                  embedding cache (owned by ingest)
    .ingest.lock            held by the one ingest allowed at a time

A version is written under a temporary name, verified, renamed into place, and only then
does CURRENT move; a crash at any point leaves the previous version served.

Format 2 (memory at a million chunks): a loaded version keeps in memory only the FAISS index
(the one copy of the vectors; see index/dense.py), BM25, and per-chunk columns from `table/`
(article, offsets, section, speaker as small integer arrays). Article text is read from
articles.jsonl on demand (`ArticleStore`: byte offsets, one pread per article), and a chunk's
text is its article's `text[start:end]`, so no text is held for the whole collection.
vectors.npy is kept for incremental ingest (memory-mapped) and for rebuilding the dense index.
Versions written before 2026-11-23 also have chunks.jsonl, a copy of every chunk's text that
nothing read; it was dropped because writing it was a fifth of the time of adding one article
to a large index (docs/benchmarks.md).

Format 3: lexical/ holds term frequencies and passage lengths (index/lexical.py), scored at
query time with the collection's statistics, where format 2's bm25/ held bm25s's precomputed
scores. Same scores (to 4e-6), and a step towards segments that share one collection's idf.
An older index is rebuilt by the next qa-ingest from its vector cache, embedding nothing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
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
from index.lexical import LexicalIndex, LexicalSegment
from index.records import SECTIONS, ArticleRecord, Chunk
from index.settings import DenseIndexSetting

FORMAT_VERSION = 3
CURRENT = "CURRENT"
VERSIONS = "versions"
_TMP_PREFIX = ".tmp-"
_VERSION_RE = re.compile(r"^v(\d{6})-\d{8}T\d{6}Z$")


@dataclass
class Manifest:
    version: str
    model: str
    dim: int
    chunking: dict[str, Any]
    articles: dict[str, str]  # article id -> content hash
    counts: dict[str, int]
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    format_version: int = FORMAT_VERSION
    created: str = ""
    build: dict[str, str] = field(default_factory=dict)
    dense: dict[str, Any] = field(default_factory=dict)  # FAISS index kind and parameters


@dataclass(frozen=True)
class DenseOptions:
    """How publish builds the dense index (index/settings.py: dense_index and friends)."""

    setting: DenseIndexSetting = "auto"
    ann_min_chunks: int = 50_000
    nprobe: int | None = None
    ef_search: int = 64


class ArticleStore(Mapping[str, ArticleRecord]):
    """Articles of a version, read from articles.jsonl on demand: id -> byte offset of its
    line. Holds ids, offsets and dates (search filters on dates); a small LRU keeps the
    articles just cited. Iterates in file order (sorted by id)."""

    _CACHE = 256

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, ArticleRecord] = OrderedDict()
        ids: list[str] = []
        offsets: list[int] = []
        dates: list[str] = []
        position = 0
        for line in self._file:
            if line.strip():
                row = json.loads(line)
                ids.append(sys.intern(row["id"]))
                offsets.append(position)
                dates.append(row.get("date") or "")
                ArticleRecord(**row)  # fail at load, not at the first question, on a bad row
            position += len(line)
        offsets.append(position)
        self.ids = ids
        self._offsets = np.asarray(offsets, dtype=np.int64)
        self._position = {article_id: i for i, article_id in enumerate(ids)}
        self.dates = dates

    def position(self, article_id: str) -> int:
        return self._position[article_id]

    def __getitem__(self, article_id: str) -> ArticleRecord:
        with self._lock:
            cached = self._cache.get(article_id)
            if cached is not None:
                self._cache.move_to_end(article_id)
                return cached
        i = self._position[article_id]  # KeyError for an unknown id, as a dict would
        start, end = int(self._offsets[i]), int(self._offsets[i + 1])
        article = ArticleRecord(**json.loads(os.pread(self._file.fileno(), end - start, start)))
        with self._lock:
            self._cache[article_id] = article
            if len(self._cache) > self._CACHE:
                self._cache.popitem(last=False)
        return article

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._position

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def close(self) -> None:
        self._file.close()


class ChunkTable(Sequence[Chunk]):
    """Chunks of a version as columns (table/*.npy); `table[row]` makes the Chunk, its text
    cut from the article. Per-row columns for vectorised filters: `article_ids`, `speakers`
    (object arrays sharing one string per distinct value), `sections`, `article_index`."""

    def __init__(self, directory: Path, articles: ArticleStore) -> None:
        self._articles = articles
        self.article_index = np.load(directory / "article.npy")
        self.start = np.load(directory / "start.npy")
        self.end = np.load(directory / "end.npy")
        self._section_codes = np.load(directory / "section.npy")
        self._speaker_codes = np.load(directory / "speaker.npy")
        # Ids and hashes are read for a few rows per question: leave them on disk.
        self._ids = np.load(directory / "id.npy", mmap_mode="r")
        self._hashes = np.load(directory / "text_hash.npy", mmap_mode="r")
        names = json.loads((directory / "speakers.json").read_text(encoding="utf-8"))
        self._speaker_names: list[str | None] = [sys.intern(n) for n in names] + [None]
        n = len(self.article_index)
        if not all(len(a) == n for a in (self.start, self.end, self._section_codes, self._speaker_codes, self._ids, self._hashes)):
            raise ValueError(f"chunk table columns in {directory} differ in length")
        if n and (self.article_index.max() >= len(articles) or self._speaker_codes.max() >= len(names)):
            raise ValueError(f"chunk table in {directory} points past its articles or speakers")
        ids = np.empty(len(articles.ids), dtype=object)
        ids[:] = articles.ids
        self.article_ids = ids[self.article_index]
        speakers = np.empty(len(self._speaker_names), dtype=object)
        speakers[:] = self._speaker_names  # code -1 (no speaker) indexes the trailing None
        self.speakers = speakers[self._speaker_codes]
        sections = np.empty(len(SECTIONS), dtype=object)
        sections[:] = SECTIONS
        self.sections = sections[self._section_codes]

    def __len__(self) -> int:
        return len(self.article_index)

    @property
    def article_list(self) -> list[str]:
        """Article ids in table order: `article_index` values index this list."""
        return self._articles.ids

    def __getitem__(self, row):  # int -> Chunk, slice -> list[Chunk]
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        row = int(row)
        if row < 0:
            row += len(self)
        return self.chunk_with_text(row, self._articles[self.article_ids[row]].text)

    def chunk_with_text(self, row: int, article_text: str) -> Chunk:
        """Row `row` as a Chunk, its text cut from `article_text`, its article's full text
        (ingest passes the text it already holds instead of reading it again)."""
        start, end = int(self.start[row]), int(self.end[row])
        return Chunk(
            id=self._ids[row].decode("utf-8"),
            article_id=self.article_ids[row],
            text=article_text[start:end],
            start=start,
            end=end,
            section=self.sections[row],
            speaker=self.speakers[row],
            text_hash=self._hashes[row].decode("utf-8"),
        )

    def __iter__(self) -> Iterator[Chunk]:
        for row in range(len(self)):
            yield self[row]

    def map_speakers(self, transform: Callable[[str | None], Any]) -> np.ndarray:
        """`transform(speaker)` for every row, computed once per distinct speaker."""
        mapped = np.empty(len(self._speaker_names), dtype=object)
        mapped[:] = [transform(name) for name in self._speaker_names]
        return mapped[self._speaker_codes]


class VectorRows:
    """`version.vectors[rows]`: rows reconstructed from the dense index, its only copy."""

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


@dataclass
class IndexVersion:
    """A loaded, verified index version, ready to search."""

    path: Path
    manifest: Manifest
    articles: ArticleStore
    chunks: ChunkTable
    vectors: VectorRows
    dense: DenseSegments
    lexical: LexicalIndex

    @property
    def version(self) -> str:
        return self.manifest.version

    @functools.cached_property
    def chunk_counts(self) -> dict[str, int]:
        """Chunks per article id."""
        counts = np.bincount(self.chunks.article_index, minlength=len(self.articles.ids))
        return {a: int(c) for a, c in zip(self.articles.ids, counts) if c}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False))
            handle.write("\n")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


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


def load_index(index_dir: Path, expected_model: str | None = None) -> IndexVersion:
    """Load and verify the version CURRENT points to."""
    name = current_version_name(index_dir)
    if name is None:
        raise IndexNotFoundError(
            f"no index at {index_dir}: build one with `qa-ingest ARTICLES_DIR --index {index_dir}`"
        )
    return load_version_dir(index_dir / VERSIONS / name, expected_model)


def load_version_dir(version_dir: Path, expected_model: str | None = None) -> IndexVersion:
    if not version_dir.is_dir():
        raise IndexCorruptError(f"index version directory {version_dir} is missing")
    manifest = _manifest_for_model(version_dir, expected_model)
    _verify_files(version_dir, manifest)
    try:
        articles = ArticleStore(version_dir / "articles.jsonl")
        chunks = ChunkTable(version_dir / "table", articles)
        # Header only: serving searches the dense index; ingest maps the file when it reuses rows.
        vectors = np.load(version_dir / "vectors.npy", mmap_mode="r", allow_pickle=False)
        dense = DenseSegments([DenseIndex.load(version_dir / "dense.faiss")])
        lexical = LexicalIndex([LexicalSegment.load(version_dir / "lexical")])
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise IndexCorruptError(f"index version {version_dir} cannot be read: {exc}") from exc
    expected = (manifest.counts.get("articles"), manifest.counts.get("chunks"))
    found = (len(articles), len(chunks))
    if found != expected or vectors.shape != (len(chunks), manifest.dim) or dense.size != len(chunks):
        raise IndexCorruptError(
            f"index version {version_dir} is inconsistent: manifest says {expected[0]} articles "
            f"and {expected[1]} chunks of dimension {manifest.dim}; found {found[0]} articles, "
            f"{found[1]} chunks, vectors {vectors.shape}, dense index of {dense.size}"
        )
    return IndexVersion(
        path=version_dir,
        manifest=manifest,
        articles=articles,
        chunks=chunks,
        vectors=VectorRows(dense),
        dense=dense,
        lexical=lexical,
    )


@dataclass
class ReusableVersion:
    """What incremental ingest needs from the served version: its chunk table and its vectors
    (memory-mapped), without loading FAISS or BM25 or checking files it does not read."""

    manifest: Manifest
    chunks: ChunkTable
    vectors: np.ndarray  # memory-mapped float32 (chunks, dim)
    dense_path: Path

    @property
    def version(self) -> str:
        return self.manifest.version


def open_reusable(index_dir: Path, expected_model: str | None = None) -> ReusableVersion | None:
    name = current_version_name(index_dir)
    if name is None:
        return None
    version_dir = index_dir / VERSIONS / name
    manifest = _manifest_for_model(version_dir, expected_model)
    _verify_files(version_dir, manifest, only=("articles.jsonl", "vectors.npy", "table/"))
    try:
        chunks = ChunkTable(version_dir / "table", ArticleStore(version_dir / "articles.jsonl"))
        vectors = np.load(version_dir / "vectors.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise IndexCorruptError(f"index version {version_dir} cannot be read: {exc}") from exc
    if vectors.shape != (len(chunks), manifest.dim) or len(chunks) != manifest.counts.get("chunks"):
        raise IndexCorruptError(f"index version {version_dir} is inconsistent")
    return ReusableVersion(manifest, chunks, vectors, version_dir / "dense.faiss")


def _manifest_for_model(version_dir: Path, expected_model: str | None) -> Manifest:
    """The version's manifest, refused if it was built with another model than `expected_model`."""
    manifest = read_manifest(version_dir)
    if expected_model is not None and manifest.model != expected_model:
        raise IndexMismatchError(
            f"index {version_dir} was built with model {manifest.model!r} but "
            f"{expected_model!r} is configured; rebuild with qa-ingest or change the model setting"
        )
    return manifest


def _verify_files(version_dir: Path, manifest: Manifest, only: tuple[str, ...] | None = None) -> None:
    if not manifest.files:
        raise IndexCorruptError(f"{version_dir / 'manifest.json'} lists no files")
    for relative, expected in manifest.files.items():
        if only is not None and not relative.startswith(only):
            continue
        path = version_dir / relative
        if not path.is_file():
            raise IndexCorruptError(f"index file {path} is missing")
        if _sha256(path) != expected:
            raise IndexCorruptError(f"index file {path} is corrupt (checksum mismatch)")


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
            # Holding the lock, any temporary version folder belongs to a writer that died:
            # clear it now, even if this run ends up publishing nothing.
            _remove_leftovers(index_dir)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def publish(
    index_dir: Path,
    *,
    articles: list[ArticleRecord],
    chunks: list[Chunk],
    vectors: np.ndarray,
    model: str,
    chunking: dict[str, Any],
    keep_versions: int = 3,
    dense: DenseOptions | None = None,
) -> Manifest:
    """Write a complete new version, verify it, then point CURRENT at it. Call under ingest_lock.

    `articles` must be sorted by id and `chunks` grouped by article in that order."""
    if vectors.shape[0] != len(chunks):
        raise ValueError(f"{len(chunks)} chunks but {vectors.shape[0]} vectors")
    versions = index_dir / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    name = _next_version_name(index_dir)
    tmp = versions / f"{_TMP_PREFIX}{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        manifest = _write_version(
            tmp, name, articles, chunks, vectors, model, chunking, dense or DenseOptions(), index_dir
        )
        load_version_dir(tmp, expected_model=model)  # verify what is on disk before serving it
        final = versions / name
        os.rename(tmp, final)
        _fsync_dir(versions)
        _point_current(index_dir, name)
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
    prune_versions(index_dir, keep_versions)
    return manifest


def _write_version(
    directory: Path,
    name: str,
    articles: list[ArticleRecord],
    chunks: list[Chunk],
    vectors: np.ndarray,
    model: str,
    chunking: dict[str, Any],
    dense: DenseOptions,
    index_dir: Path,
) -> Manifest:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    # vars(), not asdict(): the fields are plain values, and asdict's deep copy was seconds at 100k articles.
    _write_jsonl(directory / "articles.jsonl", [vars(a) for a in articles])
    _write_table(directory / "table", articles, chunks)
    np.save(directory / "vectors.npy", vectors, allow_pickle=False)
    kind = choose_kind(len(vectors), dense.setting, dense.ann_min_chunks)
    dense_index = DenseIndex.build(
        vectors, kind, nprobe=dense.nprobe, ef_search=dense.ef_search,
        trained=_trained_ivf(index_dir) if kind == "ivf" else None,
    )
    dense_index.save(directory / "dense.faiss")
    dense_info = {"kind": dense_index.kind, "setting": dense.setting}
    del dense_index
    titles = {article.id: article.title for article in articles}
    LexicalSegment.build([lexical_text(c, titles[c.article_id]) for c in chunks]).save(directory / "lexical")

    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        _fsync_file(path)
        files[str(path.relative_to(directory))] = _sha256(path)
    manifest = Manifest(
        version=name,
        model=model,
        dim=int(vectors.shape[1]),
        chunking=chunking,
        articles={a.id: a.content_hash for a in articles},
        counts={"articles": len(articles), "chunks": len(chunks)},
        files=files,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        build=_package_versions(),
        dense=dense_info,
    )
    manifest_path = directory / "manifest.json"
    manifest_path.write_text(json.dumps(asdict(manifest), indent=2), encoding="utf-8")
    _fsync_file(manifest_path)
    _fsync_dir(directory)
    return manifest


def _write_table(directory: Path, articles: list[ArticleRecord], chunks: list[Chunk]) -> None:
    """Per-chunk columns (ChunkTable): small integer arrays, plus ids and hashes as bytes."""
    directory.mkdir()
    position = {a.id: i for i, a in enumerate(articles)}
    speaker_codes: dict[str, int] = {}
    section_codes = {name: i for i, name in enumerate(SECTIONS)}
    n = len(chunks)
    article = np.empty(n, dtype=np.int32)
    start = np.empty(n, dtype=np.int64)
    end = np.empty(n, dtype=np.int64)
    section = np.empty(n, dtype=np.uint8)
    speaker = np.empty(n, dtype=np.int32)
    for row, chunk in enumerate(chunks):
        article[row] = position[chunk.article_id]
        start[row] = chunk.start
        end[row] = chunk.end
        section[row] = section_codes[chunk.section]
        speaker[row] = -1 if chunk.speaker is None else speaker_codes.setdefault(chunk.speaker, len(speaker_codes))
    np.save(directory / "article.npy", article)
    np.save(directory / "start.npy", start)
    np.save(directory / "end.npy", end)
    np.save(directory / "section.npy", section)
    np.save(directory / "speaker.npy", speaker)
    np.save(directory / "id.npy", np.array([c.id.encode("utf-8") for c in chunks], dtype=bytes))
    np.save(directory / "text_hash.npy", np.array([c.text_hash.encode("utf-8") for c in chunks], dtype=bytes))
    (directory / "speakers.json").write_text(json.dumps(list(speaker_codes)), encoding="utf-8")


def _trained_ivf(index_dir: Path) -> DenseIndex | None:
    """The served version's IVF index, whose trained centroids a republish can reuse."""
    name = current_version_name(index_dir)
    path = index_dir / VERSIONS / name / "dense.faiss" if name else None
    if path is None or not path.is_file():
        return None
    try:
        manifest = read_manifest(path.parent)
        if manifest.dense.get("kind") != "ivf":
            return None
        return DenseIndex.load(path)
    except (IndexCorruptError, IndexMismatchError, RuntimeError):
        return None


def lexical_text(chunk: Chunk, title: str | None) -> str:
    """What BM25 sees: the article's title, the speaker and the passage, so a name finds what
    that person said and a question in the title's words finds the article's passages."""
    return "\n".join(part for part in (title, chunk.speaker, chunk.text) if part)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _point_current(index_dir: Path, name: str) -> None:
    tmp = index_dir / f"{CURRENT}.tmp"
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, index_dir / CURRENT)
    _fsync_dir(index_dir)


def prune_versions(index_dir: Path, keep: int) -> None:
    """Drop leftovers of interrupted publishes and all but the newest `keep` versions."""
    versions = index_dir / VERSIONS
    current = current_version_name(index_dir)
    names = sorted(e.name for e in versions.iterdir() if _VERSION_RE.match(e.name))
    _remove_leftovers(index_dir)
    for old in names[:-keep]:
        if old != current:
            shutil.rmtree(versions / old, ignore_errors=True)


def _remove_leftovers(index_dir: Path) -> None:
    """Temporary folders of interrupted publishes. Call only while holding ingest_lock."""
    versions = index_dir / VERSIONS
    if versions.is_dir():
        for entry in versions.iterdir():
            if entry.name.startswith(_TMP_PREFIX):
                shutil.rmtree(entry, ignore_errors=True)
