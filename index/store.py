"""The on-disk index: immutable version directories plus a CURRENT pointer.

Layout of INDEX_DIR:
    CURRENT                 name of the served version (replaced atomically)
    versions/<name>/        manifest.json, articles.jsonl, chunks.jsonl, vectors.npy,
                            dense.faiss, bm25/ -- every file's sha256 is in the manifest
    cache/                  embedding cache (owned by ingest)
    .ingest.lock            held by the one ingest allowed at a time

A version is written under a temporary name, verified, renamed into place, and only then
does CURRENT move; a crash at any point leaves the previous version served.
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
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from index.dense import DenseIndex
from index.errors import (
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    IndexWriteError,
    IngestError,
)
from index.lexical import LexicalIndex
from index.records import ArticleRecord, Chunk

FORMAT_VERSION = 1
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


@dataclass
class IndexVersion:
    """A loaded, verified index version, ready to search."""

    path: Path
    manifest: Manifest
    articles: dict[str, ArticleRecord]
    chunks: list[Chunk]
    vectors: np.ndarray
    dense: DenseIndex
    lexical: LexicalIndex

    @property
    def version(self) -> str:
        return self.manifest.version

    @functools.cached_property
    def chunk_counts(self) -> dict[str, int]:
        """Chunks per article id."""
        return dict(Counter(chunk.article_id for chunk in self.chunks))


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
    manifest = read_manifest(version_dir)
    if expected_model is not None and manifest.model != expected_model:
        raise IndexMismatchError(
            f"index {version_dir} was built with model {manifest.model!r} but "
            f"{expected_model!r} is configured; rebuild with qa-ingest or change the model setting"
        )
    _verify_files(version_dir, manifest)
    try:
        articles = [ArticleRecord(**r) for r in _read_jsonl(version_dir / "articles.jsonl")]
        chunks = [Chunk(**r) for r in _read_jsonl(version_dir / "chunks.jsonl")]
        vectors = np.load(version_dir / "vectors.npy", allow_pickle=False)
        dense = DenseIndex.load(version_dir / "dense.faiss")
        lexical = LexicalIndex.load(version_dir / "bm25")
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
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
        articles={a.id: a for a in articles},
        chunks=chunks,
        vectors=vectors,
        dense=dense,
        lexical=lexical,
    )


def _verify_files(version_dir: Path, manifest: Manifest) -> None:
    if not manifest.files:
        raise IndexCorruptError(f"{version_dir / 'manifest.json'} lists no files")
    for relative, expected in manifest.files.items():
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
) -> Manifest:
    """Write a complete new version, verify it, then point CURRENT at it. Call under ingest_lock."""
    if vectors.shape[0] != len(chunks):
        raise ValueError(f"{len(chunks)} chunks but {vectors.shape[0]} vectors")
    versions = index_dir / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    name = _next_version_name(index_dir)
    tmp = versions / f"{_TMP_PREFIX}{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        manifest = _write_version(tmp, name, articles, chunks, vectors, model, chunking)
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
) -> Manifest:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    _write_jsonl(directory / "articles.jsonl", [asdict(a) for a in articles])
    _write_jsonl(directory / "chunks.jsonl", [asdict(c) for c in chunks])
    np.save(directory / "vectors.npy", vectors, allow_pickle=False)
    DenseIndex.build(vectors).save(directory / "dense.faiss")
    LexicalIndex.build([lexical_text(c) for c in chunks]).save(directory / "bm25")

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
    )
    manifest_path = directory / "manifest.json"
    manifest_path.write_text(json.dumps(asdict(manifest), indent=2), encoding="utf-8")
    _fsync_file(manifest_path)
    _fsync_dir(directory)
    return manifest


def lexical_text(chunk: Chunk) -> str:
    """What BM25 sees: the passage plus its speaker, so a name finds what that person said."""
    return f"{chunk.speaker}\n{chunk.text}" if chunk.speaker else chunk.text


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
    for entry in versions.iterdir():
        if entry.name.startswith(_TMP_PREFIX):
            shutil.rmtree(entry, ignore_errors=True)
    for old in names[:-keep]:
        if old != current:
            shutil.rmtree(versions / old, ignore_errors=True)
