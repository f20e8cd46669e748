"""A version's record on disk: versions/<name>/manifest.json, and CURRENT, the name of the
served version (index/store.py describes the whole layout).

A manifest names the segments in force, in order, each with the file of its deleted article
positions; the live counts; the embedding spec the vectors were made with (model or endpoint
model, and prefixes: index/models.py), which `check_embedding` holds a configured encoder to;
and every file of the version with its sha256. A version written before specs were recorded
reads as its model without prefixes.

Format 5 keeps each segment's article ids and hashes as memory-mapped arrays (keys/), so an
update that names its articles does not read every id; format 4 (issue 15) brought segments;
format 3 BM25 postings with collection statistics
(index/lexical.py). An older index is rebuilt by the next qa-ingest from its vector cache.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from index.errors import IndexCorruptError, IndexMismatchError
from index.files import checksum_files, fsync_dir, verify_files, write_json
from index.models import EmbeddingSpec

FORMAT_VERSION = 5
CURRENT = "CURRENT"
VERSIONS = "versions"
VERSION_RE = re.compile(r"^v(\d{6})-\d{8}T\d{6}Z$")


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


def checked_manifest(version_dir: Path, embedding: EmbeddingSpec | None) -> Manifest:
    """The version's manifest, refused if it was built with another embedding spec than `embedding`."""
    manifest = read_manifest(version_dir)
    if embedding is not None:
        check_embedding(manifest, embedding, source=version_dir)
    return manifest


def next_version_name(index_dir: Path) -> str:
    """One more than the highest version number in the index, stamped with the UTC time."""
    seqs = [0]
    versions = index_dir / VERSIONS
    if versions.is_dir():
        for entry in versions.iterdir():
            match = VERSION_RE.match(entry.name)
            if match:
                seqs.append(int(match.group(1)))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"v{max(seqs) + 1:06d}-{stamp}"


def write_manifest(
    directory: Path,
    name: str,
    *,
    embedding: EmbeddingSpec,
    dim: int,
    chunking: dict[str, Any],
    counts: dict[str, int],
    segments: list[dict[str, Any]],
) -> Manifest:
    """Write and fsync the manifest of the version being written in `directory`, once the
    rest of it is there: it records every file already in `directory` by checksum, and the
    packages that built it."""
    manifest = Manifest(
        version=name,
        model=embedding.model,
        dim=dim,
        chunking=chunking,
        counts=counts,
        segments=segments,
        files=checksum_files(directory),
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        build=_package_versions(),
        embedding=embedding.record(),
    )
    write_json(directory / "manifest.json", asdict(manifest))
    fsync_dir(directory)
    return manifest


def check_version(directory: Path, manifest: Manifest) -> None:
    """The version in `directory` reads back as `manifest`, and its own files match their
    checksums: what is served must be what was written."""
    written = read_manifest(directory)
    if written.files:
        verify_files(directory, written.files)
    if written != manifest:
        raise IndexCorruptError(f"{directory / 'manifest.json'} does not read back as written")


def point_current(index_dir: Path, name: str) -> None:
    """Serve version `name`: CURRENT replaced atomically (written aside, fsynced, renamed)."""
    tmp = index_dir / f"{CURRENT}.tmp"
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(name + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, index_dir / CURRENT)
    fsync_dir(index_dir)


def _package_versions() -> dict[str, str]:
    versions = {}
    for name in ("faiss-cpu", "bm25s", "sentence-transformers", "torch"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions
